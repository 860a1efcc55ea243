"""Fixtures of the UI tests: a real API server over a real registry, and the UI's pages run by
Streamlit's ``AppTest`` (or a real browser) against it.

The API serves the champion of a real pipeline run on ml-latest-small (popularity and a small
ALS), so the Models page has a registry and a leaderboard to show.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from movierec.config import Settings
from movierec.training.pipeline import ModelSpec, PipelineConfig, run_pipeline
from movierec.ui import app as ui_app
from tests.servers import api_server, free_port
from tests.serving.conftest import SMALL_ALS, settings_for

APP = Path(ui_app.__file__)
PIPELINE = PipelineConfig(
    dataset="ml-latest-small",
    models=[ModelSpec(model="popularity"), ModelSpec(model="als", params=SMALL_ALS)],
)
TIMEOUT = 60  # seconds one script run may take in AppTest (a loaded 2-core machine)
CARD = re.compile(r'data-testid="mr-card" data-movie-id="(\d+)"')


@pytest.fixture(scope="session")
def ui_settings(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = settings_for(tmp_path_factory.mktemp("ui-api"), datasets_dir=datasets_dir)
    run_pipeline(settings, PIPELINE)
    return settings


@pytest.fixture(scope="session")
def api_url(ui_settings: Settings) -> Iterator[str]:
    with api_server(ui_settings) as url:
        yield url


@pytest.fixture
def dead_api_url() -> str:
    """An address where no API answers (a free port nobody listens on)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def ui(api_url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The UI's app, not yet run, talking to the real API; caches start empty."""
    return app_for(api_url, monkeypatch)


def app_for(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("MOVIEREC_API_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def on_page(app: AppTest, page: str, **params: str) -> AppTest:
    """``app`` run on ``views/<page>.py`` with the given query parameters."""
    app.query_params.update(params)
    app.run()
    if page != "for_you":
        app.switch_page(f"views/{page}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def card_ids(app: AppTest, test_id: str = "mr-card") -> list[int]:
    """The movie ids of the cards shown, in order."""
    pattern = re.compile(rf'data-testid="{test_id}" data-movie-id="(\d+)"')
    return [int(m) for element in app.get("html") for m in pattern.findall(element.proto.body)]


def texts(app: AppTest) -> str:
    """Every markdown, caption, alert and title text of the page, joined."""
    kinds = ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader")
    return "\n".join(str(e.value) for kind in kinds for e in app.get(kind))
