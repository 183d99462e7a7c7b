# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: install demo test bench-asr clean-out

# constraints.txt pins every transitive dependency to a set verified together.
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/callintel run --config callintel.yaml

test: install
	$(BIN)/python -m pytest

bench-asr: install
	$(BIN)/python bench/asr.py

clean-out:
	rm -rf data/out
