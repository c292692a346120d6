# Two entry points: `make demo` and `make test`. Everything else is set-up they share.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/python -m eventbus.demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check eventbus tests benchmarks examples

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy --strict eventbus

test: $(VENV)/.installed-test lint typecheck
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/match.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
