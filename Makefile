# movierec: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
DATASETS_DIR ?= $(abspath ../shared/datasets)

.PHONY: run test lint format typecheck bench clean spark zenml

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

# Airflow pins its own dependency tree (it cannot share an environment with mlflow 3): it gets a
# venv of its own, used only by the test that loads deploy/airflow's DAG with Airflow itself.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed-airflow-3

$(AIRFLOW_STAMP):
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet 'apache-airflow>=3.1,<4'
	touch $@

# ZenML pins pydantic, click, alembic and OpenTelemetry below mlflow 3's: a venv of its own too,
# whose pipeline (deploy/zenml) calls movierec's CLI in .venv; used by tests/deploy/test_zenml.py.
ZENML_VENV := .venv-zenml
ZENML_STAMP := $(ZENML_VENV)/.installed-zenml-0.98

$(ZENML_STAMP):
	test -x $(ZENML_VENV)/bin/python || $(PYTHON) -m venv $(ZENML_VENV)
	$(ZENML_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ZENML_VENV)/bin/python -m pip install --quiet 'zenml[local]>=0.98,<0.99'
	touch $@

# The UI's browser tests drive Debian's Chromium (a test tool's own browser download fails
# offline); installed once, as root with apt-get, or with sudo when there is one.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver

# The Prometheus rule and config checks (tests/deploy) run Debian's promtool, and the
# monitoring integration test its prometheus server: the same package gives both.
PROMTOOL := /usr/bin/promtool

$(PROMTOOL):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq prometheus

# The API replica tests (tests/serving/test_replicas.py) run Debian's nginx in front of two
# replicas, and a Redis server of their own to stop and start again.
NGINX := /usr/sbin/nginx
REDIS_SERVER := /usr/bin/redis-server

$(NGINX):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nginx

$(REDIS_SERVER):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server

# Training on Spark (`movierec train --engine spark`): PySpark (~450 MB, the `spark` extra) in
# .venv, a Java 17+ runtime, and Debian's PostgreSQL JDBC driver for Spark's reads from the store
# (no Maven).
SPARK_STAMP := $(VENV)/.installed-spark-4
JDBC_JAR := /usr/share/java/postgresql.jar
JAVA := /usr/bin/java

$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $@

$(JDBC_JAR):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libpostgresql-jdbc-java

$(JAVA):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openjdk-17-jre-headless

## spark: install PySpark, Java and the PostgreSQL JDBC driver (`movierec train --engine spark`)
spark: $(SPARK_STAMP) $(JDBC_JAR) $(JAVA)

MOVIEREC := MOVIEREC_DATASETS_DIR=$${MOVIEREC_DATASETS_DIR:-$(DATASETS_DIR)} $(BIN)/movierec

## run: create the environment, get the data, train and register a champion, serve the API and
## the UI (ports: MOVIEREC_PORT, MOVIEREC_UI_PORT; Ctrl-C stops both)
run: $(STAMP)
	$(MOVIEREC) pipeline run --config params.yaml
	$(MOVIEREC) models list
	$(MOVIEREC) recommend --user 1 -k 10
	$(MOVIEREC) similar --movie 1 -k 10
	$(MOVIEREC) up --host $${MOVIEREC_HOST:-127.0.0.1} --port $${MOVIEREC_PORT:-8000} \
		--ui-port $${MOVIEREC_UI_PORT:-8501}

## zenml: the training pipeline (params.yaml) run by ZenML: deploy/zenml, from .venv-zenml, on
## the active ZenML stack (by default a local store in ~/.config/zenml), steps calling .venv's CLI
zenml: $(STAMP) $(ZENML_STAMP)
	MOVIEREC_CLI=$(abspath $(BIN))/movierec ZENML_ANALYTICS_OPT_IN=$${ZENML_ANALYTICS_OPT_IN:-false} \
		MOVIEREC_DATASETS_DIR=$${MOVIEREC_DATASETS_DIR:-$(DATASETS_DIR)} \
		$(ZENML_VENV)/bin/python deploy/zenml/pipeline.py --config params.yaml

## test: create the environment (with dev extras) and run lint, types and the whole test suite
test: $(STAMP) $(AIRFLOW_STAMP) $(ZENML_STAMP) $(CHROMIUM) $(PROMTOOL) $(NGINX) $(REDIS_SERVER) \
		$(SPARK_STAMP) $(JDBC_JAR) $(JAVA)
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
# The serving, feedback and replica benchmarks load the API with Debian's wrk.
WRK := /usr/bin/wrk

$(WRK):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk

bench: $(STAMP) $(CHROMIUM) $(WRK)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/models.py
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/ui.py       # needs Debian's chromium (make test installs it)
	$(BIN)/python benchmarks/monitoring.py
	$(BIN)/python benchmarks/feedback.py  # PostgreSQL at 127.0.0.1:5432 (--pg none: skip)

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) $(ZENML_VENV) .pytest_cache .mypy_cache .ruff_cache
