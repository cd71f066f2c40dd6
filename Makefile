# Fleetwatch: every set-up step a fresh clone needs lives here.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
# Three workers on two cores, one test file each at a time (files share module fixtures such as brokers and Go
# builds): many tests wait on real time (Go programs running, Kafka sessions expiring), so two workers leave a
# quarter of the cores idle.
PYTEST_ARGS ?= -n 3 --dist loadfile

.PHONY: run test lint bench bench-quick demo clean venv go119

# Debian's Go 1.19 prints the older runtime formats (KB scavenger lines, text goroutine dumps without the
# goroutineleak profile) that the tests produce for real. Installed once, when missing.
GO119 := /usr/lib/go-1.19/bin/go
$(GO119):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-1.19-go >/dev/null

go119: $(GO119)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test,bench,fuzz]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/fleetwatch run

test: $(STAMP) $(GO119)
	$(VENV)/bin/ruff check pipeline tests bench
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check pipeline tests bench
	$(VENV)/bin/lint-imports --no-cache

bench: $(STAMP)
	$(PY) -m bench.run --full

bench-quick: $(STAMP)
	$(PY) -m bench.run --quick

demo: $(STAMP)
	$(PY) -m deploy.demo.run

clean:
	rm -rf $(VENV) data .pytest_cache
