"""Experiments page: the list and the start form, against the real API (one registry version,
so a start names a version the registry lacks and the API's refusal is shown)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from movierec.client import MovierecClient
from movierec.data.sources import LoadedData
from movierec.serving.experiment_schemas import ExperimentRequest
from tests.servers import api_server
from tests.serving.conftest import API_KEY, Registry, registry, synth_data
from tests.serving.test_admin import _served_registry
from tests.ui.conftest import app_for, on_page, texts

__all__ = ["registry", "synth_data"]  # the registry fixtures of the API tests, used here


def test_no_experiment_yet_and_a_refused_start_says_why(ui: AppTest) -> None:
    on_page(ui, "experiments")
    assert "No experiment yet" in texts(ui)
    ui.text_input(key="admin_key").input(API_KEY).run()
    ui.number_input(key="exp_treatment").set_value(7)  # sent with the form
    ui.button[0].click().run()  # the form's submit button
    assert not ui.exception
    assert "no version 7" in texts(ui)
    assert "No experiment yet" in texts(ui)  # nothing half-created


def test_a_wrong_admin_key_shows_the_apis_message(ui: AppTest) -> None:
    on_page(ui, "experiments")
    ui.text_input(key="admin_key").input("not-the-key").run()
    ui.button[0].click().run()
    assert "invalid API key" in texts(ui)


def test_a_running_experiment_is_shown_with_its_arms_and_test(
    registry: Registry, synth_data: LoadedData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _served_registry(registry, synth_data, tmp_path)
    with api_server(settings) as url, MovierecClient(url, api_key=API_KEY) as api:
        started = api.start_experiment(ExperimentRequest(name="ui check", treatment_version=2))
        api.recommend_user(1)
        ui = on_page(app_for(url, monkeypatch), "experiments")
        shown = texts(ui)
        assert "No experiment yet" not in shown
        assert "welch t, fixed horizon at alpha 0.05" in shown
        listed, arms = ui.dataframe[0].value, ui.dataframe[1].value
        assert list(listed["name"]) == ["ui check"]
        assert list(arms["version"]) == [1, 2]
        ui.text_input(key="admin_key").input(API_KEY).run()
        ui.button(key="exp_promote").click().run()
        assert "is not final" in texts(ui)
        ui.button(key="exp_stop").click().run()
        assert api.experiment(started.id).status == "stopped"
