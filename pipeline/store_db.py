"""The DuckDB half of the store: publishing the committed Parquet parts as one database file.

Part of the store (with pipeline/store.py): the only code that touches Parquet or DuckDB files.
Why copy-and-swap: see pipeline/store.py.
"""
from __future__ import annotations

import json
import os
import shutil
import traceback

import duckdb

from pipeline.schemas import TABLES

DB_NAME = "callintel.duckdb"


class StoreError(Exception):
    """A problem with the output folder; the message says what to do."""


def _fingerprint() -> str:
    # Any schema change rebuilds the DuckDB tables from Parquet on the next publish.
    return json.dumps({name: str(t.schema) for name, t in TABLES.items()}, sort_keys=True)


def _exec(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> list:
    # DuckDB 2 refuses new work on a connection while a result is unread: always consume it.
    return con.execute(sql, params).fetchall()



class DatabaseMixin:
    """Needs self.out, self.db_path, self.parquet, self.manifest(), self.meta() and self._require_lock() (see Store)."""

    def publish(self, views: dict[str, str] | None = None, fresh: bool = False) -> bool:
        """Bring callintel.duckdb up to the manifest; returns False when it already was.

        fresh builds the file anew instead of updating a copy: after a deletion, since DuckDB leaves deleted
        rows' bytes in freed blocks of the file. For the same reason the file is built anew when the stored
        text was redacted again since it was built (pipeline/redact_archive.py): updated, it would keep the
        card numbers and phone numbers the archive no longer holds.
        """
        self._require_lock()
        manifest, redacted_by = self.manifest(), self.meta().get("redaction_hash")
        built = self._db_built()
        want = (_fingerprint(), json.dumps(views or {}, sort_keys=True), redacted_by,
                {(t, p) for t, parts in manifest.items() for p in parts})
        if not fresh and built == want:
            return False
        fresh = fresh or built is None or built[2] != redacted_by
        tmp = self.out / (DB_NAME + ".next")
        tmp.unlink(missing_ok=True)
        if not fresh:
            shutil.copyfile(self.db_path, tmp)
        try:
            self._build(tmp, manifest, views, want, redacted_by)
        except duckdb.Error as exc:
            # Its frames hold the connection: kept alive by the error until exit, it is never freed, and DuckDB's
            # binding then lists each of its objects as leaked (40 lines after the run's own one-line error).
            traceback.clear_frames(exc.__traceback__)
            raise
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.db_path)
        return True

    def _build(self, tmp, manifest: dict, views: dict | None, want: tuple, redacted_by: str | None) -> None:
        with duckdb.connect(str(tmp)) as con:
            self._sync_tables(con, manifest)
            for name, sql in (views or {}).items():
                _exec(con, f"CREATE OR REPLACE VIEW {name} AS {sql}")
            _exec(con, "CREATE OR REPLACE TABLE _callintel_meta AS SELECT $f AS fingerprint, $v AS views, "
                       "$r AS redacted_by", {"f": want[0], "v": want[1], "r": redacted_by})
            _exec(con, "CHECKPOINT")

    def _db_built(self) -> tuple | None:
        """(fingerprint, views, redaction rules, loaded parts) the file was built with; None without a file this
        code can update (none yet, or one from before `redacted_by` was recorded: built anew, once)."""
        if not self.db_path.exists():
            return None
        try:
            with duckdb.connect(str(self.db_path), read_only=True) as con:
                meta = _exec(con, "SELECT fingerprint, views, redacted_by FROM _callintel_meta")[0]
                loaded = _exec(con, "SELECT table_name, part FROM _loaded_parts")
        except duckdb.Error:
            return None
        return (*meta, set(loaded))

    def _sync_tables(self, con: duckdb.DuckDBPyConnection, manifest: dict[str, list[str]]) -> None:
        _exec(con, "CREATE TABLE IF NOT EXISTS _loaded_parts (table_name VARCHAR, part VARCHAR)")
        try:
            old = _exec(con, "SELECT fingerprint FROM _callintel_meta")[0][0]
        except duckdb.Error:
            old = None
        if old != _fingerprint():
            for name in TABLES:
                _exec(con, f"DROP TABLE IF EXISTS {name}")
            _exec(con, "DELETE FROM _loaded_parts")
        for name, table in TABLES.items():
            con.register("_empty", table.schema.empty_table())
            _exec(con, f"CREATE TABLE IF NOT EXISTS {name} AS SELECT * FROM _empty")
            con.unregister("_empty")
            loaded = {r[0] for r in _exec(
                con, "SELECT part FROM _loaded_parts WHERE table_name = $t", {"t": name})}
            want = manifest[name]
            if loaded - set(want):
                # Parts were replaced (re-tagging, forgetting): reload this table whole.
                _exec(con, f"DELETE FROM {name}")
                _exec(con, "DELETE FROM _loaded_parts WHERE table_name = $t", {"t": name})
                loaded = set()
            new = [p for p in want if p not in loaded]
            if new:
                files = [str(self.parquet / name / p) for p in new]
                hive = ", hive_partitioning=true, hive_types={'call_date': DATE}" if table.partitioned else ""
                _exec(con, f"INSERT INTO {name} BY NAME SELECT * FROM read_parquet($files, "
                            f"union_by_name=true{hive})", {"files": files})
                _exec(con, "INSERT INTO _loaded_parts SELECT $t, unnest($p::VARCHAR[])", {"t": name, "p": new})

    def published_by_other_release(self) -> bool:
        """Whether callintel.duckdb holds another release's tables: after an upgrade, until its first night
        publishes this release's (a table or view this release added is missing until then)."""
        try:
            with duckdb.connect(str(self.db_path), read_only=True) as con:
                return _exec(con, "SELECT fingerprint FROM _callintel_meta")[0][0] != _fingerprint()
        except (duckdb.Error, IndexError):
            return self.db_path.exists()

    def connect_read_only(self) -> duckdb.DuckDBPyConnection:
        """What analyst commands use: the published file, opened read-only."""
        if not self.db_path.exists():
            raise StoreError(f"{self.db_path.absolute()}: no database yet; run `callintel run` first, or run this "
                             "from the folder with your callintel.yaml, or give --out the folder your runs write to")
        try:
            # read-only is the file; without external access a query cannot write files either (`COPY calls TO
            # '/tmp/x.csv'`, unredacted paths and metadata anywhere on disk) nor read or attach others
            return duckdb.connect(str(self.db_path), read_only=True, config={"enable_external_access": False})
        except duckdb.Error as exc:  # truncated, overwritten, or not a database: the Parquet files hold the data
            raise StoreError(f"{self.db_path.absolute()}: cannot be opened ({str(exc).splitlines()[0]}); the next "
                             "`callintel run` builds it again from the stored Parquet files (nothing is lost)"
                             ) from None
