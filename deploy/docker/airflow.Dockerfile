# syntax=docker/dockerfile:1
# Airflow for the compose deployment's `airflow` profile: Apache Airflow's own image, with
# movierec installed beside it in a virtual environment of its own (Airflow pins a dependency
# tree that cannot share an environment with MLflow 3; see the Makefile). The DAG in
# deploy/airflow runs `movierec ...` commands; the venv's bin folder is on PATH after Airflow's,
# so `python` stays Airflow's and `movierec` is movierec's.
#
# Build from the repository root:  docker build -f deploy/docker/airflow.Dockerfile -t movierec-airflow .

ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11

FROM ${AIRFLOW_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /tmp/movierec
RUN python -m venv /opt/airflow/movierec
COPY deploy/docker/requirements.lock ./
RUN /opt/airflow/movierec/bin/pip install --require-virtualenv -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/airflow/movierec/bin/pip install --require-virtualenv --no-deps . \
    && /opt/airflow/movierec/bin/pip check

FROM ${AIRFLOW_IMAGE} AS airflow
LABEL org.opencontainers.image.title="movierec-airflow" \
      org.opencontainers.image.description="Airflow with movierec's CLI for the retraining DAG" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /opt/airflow/movierec /opt/airflow/movierec
COPY --chown=airflow:0 params.yaml /opt/movierec/params.yaml
COPY --chown=airflow:0 deploy/airflow/movierec_retrain.py /opt/airflow/dags/movierec_retrain.py
ENV PATH=$PATH:/opt/airflow/movierec/bin \
    MOVIEREC_PARAMS=/opt/movierec/params.yaml
# Airflow's image runs as its `airflow` user (uid 50000); the API server's health route.
USER 50000:0
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/api/v2/monitor/health', timeout=8)"]
