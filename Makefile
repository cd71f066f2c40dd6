# Fleetwatch: every set-up step a fresh clone needs lives here.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint bench bench-quick demo clean venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test,bench,fuzz]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/fleetwatch run

test: $(STAMP)
	$(VENV)/bin/ruff check pipeline tests bench
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check pipeline tests bench

bench: $(STAMP)
	$(PY) -m bench.run --full

bench-quick: $(STAMP)
	$(PY) -m bench.run --quick

demo: $(STAMP)
	$(PY) -m deploy.demo.run

clean:
	rm -rf $(VENV) data .pytest_cache
