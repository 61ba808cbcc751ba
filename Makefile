# The README's two commands: `make run` and `make test`. Everything installs into .venv
# from pyproject.toml, pinned by constraints.txt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/dagster_home

.PHONY: install run dev worker test unit lint bench e2e clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) scripts/check_pins.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/python scripts/check_pins.py --installed
	touch $(STAMP)

$(VENV)/.installed-%: $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[test,$*]'
	touch $@

install: $(STAMP)

run: install
	$(BIN)/python -m aragora_pipelines.main

# The Dagster UI, webserver and daemon, on http://127.0.0.1:3000: `dg dev` as from an activated venv.
dev: install
	VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dg dev

# One Celery worker of the scale-out deployment (README "Scale out"); NAME=... to run several on one machine.
worker: $(VENV)/.installed-scale
	PATH="$(CURDIR)/$(BIN):$$PATH" deploy/bin/worker $(or $(NAME),aragora)

lint: install
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q -m "not e2e"

# The fast unit suite alone (no multi-process or fault-soak tests).
unit: lint
	$(BIN)/python -m pytest -q -m "not e2e and not slow"

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/ingest_vs_dlt.py
	$(BIN)/python benchmarks/backfill.py

e2e: $(VENV)/.installed-e2e
	$(BIN)/python -m pytest -q tests/e2e

clean:
	rm -rf $(VENV) .pytest_cache data
