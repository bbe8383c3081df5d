# Two commands on a fresh machine: `make demo` (offline, CPU, a few minutes) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench

$(BIN)/synbench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dask,s3,realzoo]'
	touch $@

demo: $(BIN)/synbench
	$(BIN)/synbench demo --root data

test: $(BIN)/synbench
	$(BIN)/python -m pytest

lint: $(BIN)/synbench
	$(BIN)/ruff check synbench flows tests benchmarks

bench: $(BIN)/synbench
	$(BIN)/python benchmarks/bench_probe.py
	$(BIN)/python benchmarks/bench_extract.py
