# movierec: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
DATASETS_DIR ?= $(abspath ../shared/datasets)

.PHONY: run test lint format typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

MOVIEREC := MOVIEREC_DATASETS_DIR=$${MOVIEREC_DATASETS_DIR:-$(DATASETS_DIR)} $(BIN)/movierec

## run: create the environment, load the default data set, compare models, train one, recommend
run: $(STAMP)
	$(MOVIEREC) ingest movielens
	$(MOVIEREC) snapshot
	$(MOVIEREC) data stats
	$(MOVIEREC) compare
	$(MOVIEREC) train
	$(MOVIEREC) recommend --user 1 -k 10
	$(MOVIEREC) similar --movie 1 -k 10

## test: create the environment (with dev extras) and run lint, types and the whole test suite
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	MOVIEREC_DATASETS_DIR=$${MOVIEREC_DATASETS_DIR:-$(DATASETS_DIR)} $(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

## bench: every benchmark (minutes; prints figures and ratios against same-run baselines)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/models.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
