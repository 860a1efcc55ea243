# syntax=docker/dockerfile:1
# The MLflow tracking server of the compose deployment: PostgreSQL as its backend store, an S3
# bucket (MinIO) as its artifact store, artifacts proxied (--serve-artifacts) so that movierec's
# containers need no S3 credentials. MLflow's own image ships neither a PostgreSQL driver nor
# boto3; this one installs both, with MLflow at the version movierec is tested with.
#
# Build from the repository root:  docker build -f deploy/docker/mlflow.Dockerfile -t movierec-mlflow .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY deploy/docker/requirements.lock deploy/docker/mlflow-requirements.txt ./
RUN pip install --require-virtualenv --constraint requirements.lock -r mlflow-requirements.txt \
    && pip check

FROM ${PYTHON_IMAGE} AS mlflow
LABEL org.opencontainers.image.title="movierec-mlflow" \
      org.opencontainers.image.description="MLflow tracking server (PostgreSQL store, S3 artifacts)" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 mlflow \
    && useradd --system --uid 10001 --gid mlflow --home-dir /home/mlflow --create-home mlflow
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /home/mlflow
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
# The stores and allowed hosts come as arguments from compose (they hold the database password).
ENTRYPOINT ["mlflow", "server"]
CMD ["--host", "0.0.0.0", "--port", "5000"]
