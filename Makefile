# Two commands for a newcomer: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.example.toml

.PHONY: run test lint venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: venv
	$(BIN)/calsync --config $(CONFIG) run

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check calsync tests bench
	$(BIN)/ruff format --check calsync tests bench
	$(BIN)/mypy calsync

clean:
	rm -rf $(VENV) .calsync .pytest_cache .mypy_cache .ruff_cache .hypothesis
