"""Models: the served model, the registry, the leaderboard, jobs behind the admin key."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from tests.serving.conftest import API_KEY
from tests.ui.conftest import on_page, texts


def test_registry_leaderboard_and_metric_curve(ui: AppTest) -> None:
    on_page(ui, "models")
    shown = texts(ui)
    assert "Serving `als` v1" in shown
    registry, leaderboard = ui.dataframe[0].value, ui.dataframe[1].value
    assert list(registry["version"]) == [1]
    assert registry["aliases"][0] == "champion"
    assert set(leaderboard["model"]) == {"als", "popularity"}
    assert leaderboard["ndcg@10"].is_monotonic_decreasing
    assert ui.get("vega_lite_chart")  # metric@K drawn


def test_a_wrong_admin_key_shows_the_apis_message(ui: AppTest) -> None:
    on_page(ui, "models")
    ui.text_input(key="admin_key").input("not-the-key").run()
    ui.button(key="start_training").click().run()
    assert "invalid API key" in texts(ui)


def test_a_job_is_started_and_followed_to_its_end(ui: AppTest) -> None:
    on_page(ui, "models")
    ui.text_input(key="admin_key").input(API_KEY).run()
    ui.selectbox(key="tune_model").select("baseline").run()
    ui.number_input(key="tune_trials").set_value(1).run()
    ui.button(key="start_tuning").click().run()
    assert "tuning job" in texts(ui)
    deadline = time.monotonic() + 240
    while "succeeded" not in texts(ui) and "failed" not in texts(ui):
        assert time.monotonic() < deadline, texts(ui)
        time.sleep(2)
        ui.run()
    assert "succeeded" in texts(ui), texts(ui)


def test_reload_tells_what_is_served(ui: AppTest) -> None:
    on_page(ui, "models")
    ui.text_input(key="admin_key").input(API_KEY).run()
    ui.button(key="reload").click().run()
    assert not ui.exception
    assert [t.value for t in ui.toast] == ["Serving als v1 (unchanged)"]
