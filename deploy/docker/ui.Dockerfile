# syntax=docker/dockerfile:1
# movierec's web UI (Streamlit). It talks to the API over HTTP only (movierec.client and the
# API's pydantic schemas), so it installs Streamlit, httpx and pydantic, at the versions of the
# shared lock, and movierec itself without its dependencies: no MLflow, numba or scipy: a third
# of the application image. Streamlit runs the app file directly (the `movierec` command would
# import the models); MOVIEREC_API_URL says where the API is.
#
# Build from the repository root:  docker build -f deploy/docker/ui.Dockerfile -t movierec-ui .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY deploy/docker/requirements.lock deploy/docker/ui-requirements.txt ./
# The lock as constraints: only the UI's requirements are installed, each at the lock's version.
RUN pip install --require-virtualenv --constraint requirements.lock -r ui-requirements.txt \
    && pip check
COPY pyproject.toml README.md ./
COPY src ./src
# No `pip check` after this one: movierec's metadata names the API's dependencies, which the UI
# leaves out on purpose.
RUN pip install --require-virtualenv --no-deps .

FROM ${PYTHON_IMAGE} AS ui
LABEL org.opencontainers.image.title="movierec-ui" \
      org.opencontainers.image.description="movierec web UI (Streamlit)" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 movierec \
    && useradd --system --uid 10001 --gid movierec --home-dir /home/movierec --create-home movierec
COPY --from=build /opt/venv /opt/venv
# The flags `movierec ui` passes (movierec.ui.launch), as Streamlit's environment variables:
# headless, no usage statistics leave the machine, the viewer's toolbar.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_CLIENT_TOOLBAR_MODE=viewer \
    MOVIEREC_API_URL=http://api:8000
WORKDIR /home/movierec
USER 10001:10001
EXPOSE 8501
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
ENTRYPOINT ["streamlit", "run", "/opt/venv/lib/python3.11/site-packages/movierec/ui/app.py"]
