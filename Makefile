# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: install browser demo test bench-asr clean-out

# constraints.txt pins every transitive dependency to a set verified together.
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/callintel run --config callintel.yaml

# The HTML scorecard tests open pages in a real headless browser (Debian's chromium).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  { echo "the tests need chromium: sudo apt-get install chromium"; exit 1; }

test: install browser
	$(BIN)/python -m pytest

bench-asr: install
	$(BIN)/python bench/asr.py

clean-out:
	rm -rf data/out
