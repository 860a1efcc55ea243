"""Experiments page: the list and the start form, against the real API (one registry version,
so a start names a version the registry lacks and the API's refusal is shown)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.serving.conftest import API_KEY
from tests.ui.conftest import on_page, texts


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
