# syntax=docker/dockerfile:1
# movierec's application image: the API (`movierec serve`, the default command), the trainer
# (`movierec pipeline run`), the scheduler (`movierec schedule`) and the data import
# (`movierec ingest ...`). One image for the four: they run the same package with the same
# dependencies (the API loads the models the trainer fits, with the same code), so four images
# would carry four copies of the same 1.5 GB of layers; compose picks the command per service.
# The UI has an image of its own (ui.Dockerfile): it needs a third of these dependencies.
#
# Build from the repository root:  docker build -f deploy/docker/app.Dockerfile -t movierec .
# Nothing of the data lives in the image: the ratings store, MLflow and the data folder are
# services and volumes (MOVIEREC_DATA_DIR=/data).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The pinned dependency set first: this layer is rebuilt only when the lock changes, not on
# every source edit.
COPY deploy/docker/requirements.lock ./
RUN pip install --require-virtualenv -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
# --no-deps: every dependency is already installed, at the lock's versions.
RUN pip install --require-virtualenv --no-deps . && pip check

FROM ${PYTHON_IMAGE} AS app
LABEL org.opencontainers.image.title="movierec" \
      org.opencontainers.image.description="movierec API, trainer, scheduler and data import" \
      org.opencontainers.image.licenses="MIT"
# libgomp1: implicit's and numba's OpenMP threads (the slim base lacks it).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1=12.2.* \
    && rm -rf /var/lib/apt/lists/*
# A fixed uid, so volumes written by one container are readable by the others.
RUN groupadd --system --gid 10001 movierec \
    && useradd --system --uid 10001 --gid movierec --home-dir /home/movierec --create-home movierec \
    && mkdir -p /data && chown movierec:movierec /data
COPY --from=build /opt/venv /opt/venv
COPY --chown=movierec:movierec params.yaml /app/params.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MOVIEREC_DATA_DIR=/data \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# The API's liveness route; the slim base has no curl, Python is there. One-shot services
# (ingest, pipeline) and the scheduler switch it off in compose.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["movierec"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
