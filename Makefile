# One Makefile for humans and CI. `make run` installs what it needs on first use.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000
DEMO_INVOICES ?= 100

.PHONY: install run test test-fast lint format typecheck bench services clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 (or run make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/invoiceflow db upgrade
	$(BIN)/invoiceflow demo-data --invoices $(DEMO_INVOICES)
	$(BIN)/invoiceflow serve --host 127.0.0.1 --port $(PORT)

test: lint
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -x -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy src

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python bench/api_bench.py

services:
	bash .ci/system-packages.sh
	bash .ci/services.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
