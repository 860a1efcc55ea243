"""Experiments page: the list and the start form, against the real API (one registry version,
so a start names a version the registry lacks and the API's refusal is shown); a running
experiment on a two-version registry; and what the page says of an experiment's test in each
of its states (the page's views of the API's answer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from movierec.client import MovierecClient
from movierec.data.sources import LoadedData
from movierec.serving.experiment_schemas import ExperimentDetails, ExperimentRequest
from movierec.ui.experiments import arms_table, horizon, percent, verdict
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
        assert "No verdict yet" in shown
        assert "fixed-horizon Welch's t-test" in shown
        assert "1 of 400 planned users" in shown
        listed, arms = ui.dataframe[0].value, ui.table[0].value
        assert list(listed["name"]) == ["ui check"]
        assert list(arms.columns) == ["Control · v1", "Treatment · v2"]
        details = api.experiment(started.id)
        assert list(arms.loc["movies shown"]) == [str(arm.impressions) for arm in details.arms]
        assert [m.value for m in ui.metric] == [
            value
            for arm in details.arms
            for value in (str(arm.users), percent(arm.user_hit_rate.value),
                          percent(arm.hit_rate.value))
        ]  # fmt: skip
        ui.text_input(key="admin_key").input(API_KEY).run()
        ui.button(key="exp_promote").click().run()
        assert "is not final" in texts(ui)
        ui.button(key="exp_stop").click().run()
        assert api.experiment(started.id).status == "stopped"


def _details(design: str = "ab", **result: object) -> ExperimentDetails:
    """An experiment's answer as the API gives it: 100 users planned and in, nothing pending."""
    rate = {"value": 0.2, "low": 0.1, "high": 0.3}
    arm = {"users": 50, "impressions": 500, "rated": 100, "positive": 60, "pending": 0,
           "hit_rate": rate, "positive_rate": rate, "user_hit_rate": rate,
           "preferred_by": 30 if design == "interleaving" else None}  # fmt: skip
    test = {"test": "welch_t" if design == "ab" else "sign_test", "alpha": 0.05,
            "statistic": 2.5, "p_value": 0.01, "winner": "treatment", "final": True,
            "effect": {"value": 0.05, "low": 0.01, "high": 0.09}, **result}  # fmt: skip
    return ExperimentDetails.model_validate(
        {"id": 3, "name": "x", "design": design, "status": "running", "control_version": 1,
         "treatment_version": 2, "treatment_share": 0.5, "planned_users": 100, "alpha": 0.05,
         "horizon_days": 7.0, "positive_rating": 4.0, "created_at": "2026-01-01T00:00:00Z",
         "stopped_at": None, "users": 100, "ties": 40 if design == "interleaving" else None,
         "arms": [{**arm, "arm": "control", "version": 1},
                  {**arm, "arm": "treatment", "version": 2}],
         "result": test}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("result", "kind", "headline"),
    [
        ({}, "success", "Treatment · v2 wins"),
        ({"winner": "control", "effect": {"value": -0.05, "low": -0.09, "high": -0.01}},
         "warning", "Control · v1 wins"),
        ({"winner": None, "p_value": 0.4}, "warning", "No significant difference"),
        ({"final": False}, "info", "No verdict yet"),
    ],
)  # fmt: skip
def test_the_verdict_names_the_winner_the_test_and_its_figures(
    result: dict[str, object], kind: str, headline: str
) -> None:
    said = verdict(_details(**result))
    assert (said.kind, said.headline) == (kind, headline)
    assert "fixed-horizon Welch's t-test" in said.text
    assert f"p = {_details(**result).result.p_value:.2g} (α = 0.05)" in said.text


def test_no_verdict_yet_says_what_the_plan_still_waits_for() -> None:
    details = _details(final=False)
    details.users = 60
    details.arms[1].pending = 25
    said = verdict(details)
    assert "60 of 100 planned users" in said.text
    assert "25 shown movies may still be rated (horizon: 7 days)" in said.text
    assert "peeking" in said.text
    assert horizon(details) == [
        (0.6, "Users: 60 of 100 planned"),
        (0.975, "Feedback windows closed (horizon: 7 days): 975 of 1,000 shown movies"),
    ]


def test_an_interleaving_test_is_read_as_a_sign_test_of_preferences() -> None:
    details = _details("interleaving")
    assert "fixed-horizon sign test of the users' preferences" in verdict(details).text
    assert "share of preferences − 50%: +5.0 pp (95% CI +1.0 to +9.0 pp)" in verdict(details).text
    table = arms_table(details)
    assert list(table.loc["preferred by"]) == ["30 users", "30 users"]
    assert list(table.loc["share"]) == ["half of every list (team draft)"] * 2
