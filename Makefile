# Two entry points: `make demo` and `make test`. Everything else is set-up they share.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck native bench clean

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
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy --strict eventbus

# The matcher's per-event modules compiled with mypyc (eventbus/patterns/native.py): used only
# while their sources are unchanged, so a failed or stale build just leaves them pure Python.
COMPILED := $(addprefix eventbus/patterns/,reading.py flatten.py leaves.py index.py fields.py crowd.py consistency.py matcher.py)
NATIVE := eventbus/_native/manifest.json

$(NATIVE): $(COMPILED) $(VENV)/.installed-test
	-$(BIN)/python -c 'from eventbus.patterns.native import main; raise SystemExit(main())'

native: $(NATIVE)

test: $(VENV)/.installed-test lint typecheck $(NATIVE)
	$(BIN)/python -m pytest -n 2 --dist loadfile
	EVENTBUS_PURE_PYTHON=1 $(BIN)/python -m pytest -n 2 --dist loadfile -q tests/patterns

# Benchmarks compare against peers (LocalStack, moto) installed in a venv of their own, so their
# pinned dependencies never touch the test environment.
BENCH_VENV := .venv-bench

$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -e '.[bench]'
	touch $@

bench: $(BENCH_VENV)/.installed $(NATIVE)
	$(BENCH_VENV)/bin/python benchmarks/match.py
	$(BENCH_VENV)/bin/python benchmarks/bus.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) .mypy_cache .pytest_cache .ruff_cache eventbus/_native
