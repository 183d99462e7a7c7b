"""callintel stages as plain functions over Arrow/pandas tables, plus the store. No Prefect, no CLI state."""
