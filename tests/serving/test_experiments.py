"""Experiments over HTTP: the real app, store and MLflow registry (two ALS versions)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from movierec.client import AuthError, MovierecClient, RequestRejectedError
from movierec.config import Settings
from movierec.data.sources import LoadedData
from movierec.serving.app import create_app
from movierec.serving.experiment_schemas import ExperimentRequest
from tests.servers import api_server
from tests.serving.conftest import API_KEY, Registry
from tests.serving.test_admin import _served_registry

ADMIN = {"X-API-Key": API_KEY}
HORIZON_SECONDS = 3
USERS = range(1, 41)


@pytest.fixture
def settings(registry: Registry, synth_data: LoadedData, tmp_path: Path) -> Settings:
    """A data dir with its own copy of the registry (v1 champion, v2) and the ratings."""
    return _served_registry(registry, synth_data, tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _start(client: TestClient, **body: Any) -> dict[str, Any]:
    """Start an experiment and wait for its arms' top-N lists (until then an answer scored
    alone and one from a list may differ in a score's last bits)."""
    values = {"name": "v2 against the champion", "treatment_version": 2, **body}
    response = client.post("/admin/experiments", json=values, headers=ADMIN)
    assert response.status_code == 201, response.text
    app: Any = client.app
    active = app.state.experiments.active
    deadline = time.monotonic() + 30
    while any(arm.top_n is not None and arm.top_n.share_filled < 1 for arm in active.arms):
        assert time.monotonic() < deadline, "the arms' top-N lists were not computed in time"
        time.sleep(0.05)
    return response.json()


def _recommend(client: TestClient, user: int) -> dict[str, Any]:
    response = client.get(f"/users/{user}/recommendations", params={"k": 10})
    assert response.status_code == 200
    return response.json()


def test_an_ab_test_assigns_users_measures_them_and_promotes_the_winner(
    client: TestClient,
) -> None:
    experiment = _start(
        client, planned_users=len(USERS) // 2, horizon_days=HORIZON_SECONDS / 86_400
    )
    assert experiment["control_version"] == 1  # the champion, by default
    assert experiment["status"] == "running"
    answers = {user: _recommend(client, user) for user in USERS}
    arms = {user: answer["experiment"]["arm"] for user, answer in answers.items()}
    assert set(arms.values()) == {"control", "treatment"}
    for user, answer in answers.items():
        assert answer["experiment"]["id"] == experiment["id"]
        version = 2 if arms[user] == "treatment" else 1
        assert answer["model"]["version"] == version
        assert _recommend(client, user)["experiment"]["arm"] == arms[user]  # sticky
    # Treated users rate one to three of the movies they were shown; the others none.
    now = int(time.time())
    ratings = [
        {"user_id": user, "movie_id": item["movie_id"], "rating": 5.0, "timestamp": now}
        for user, answer in answers.items()
        if arms[user] == "treatment"
        for item in answer["items"][: 1 + user % 3]
    ]
    assert client.post("/ratings", json={"ratings": ratings}).status_code == 201

    early = client.get(f"/experiments/{experiment['id']}").json()
    assert early["result"]["final"] is False  # showings still within the horizon
    refused = client.post(f"/admin/experiments/{experiment['id']}/promote", headers=ADMIN)
    assert refused.status_code == 409
    assert "not final" in refused.json()["detail"]

    time.sleep(HORIZON_SECONDS + 1)
    details = client.get(f"/experiments/{experiment['id']}").json()
    control, treatment = details["arms"]
    assert (control["arm"], control["version"], treatment["version"]) == ("control", 1, 2)
    assert control["users"] + treatment["users"] == details["users"] == len(USERS)
    assert treatment["rated"] == len(ratings)
    assert control["rated"] == 0
    assert treatment["impressions"] == 10 * treatment["users"]
    assert treatment["hit_rate"]["low"] < treatment["hit_rate"]["value"]
    result = details["result"]
    assert (result["method"], result["test"], result["winner"]) == (
        "fixed_horizon",
        "welch_t",
        "treatment",
    )
    assert result["final"] is True
    assert result["p_value"] < 0.05

    promoted = client.post(f"/admin/experiments/{experiment['id']}/promote", headers=ADMIN)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["model"]["version"] == 2
    assert client.get("/models/current").json()["version"] == 2
    aliases = {v["version"]: v["aliases"] for v in client.get("/models").json()["versions"]}
    assert aliases[2] == ["champion"]
    assert aliases[1] == ["previous-champion"]  # kept for rollback
    assert _recommend(client, 1)["experiment"] is None
    again = client.post(f"/admin/experiments/{experiment['id']}/promote", headers=ADMIN)
    assert again.status_code == 409


def test_interleaving_shows_one_list_of_both_teams(client: TestClient) -> None:
    before = {user: _recommend(client, user)["items"] for user in USERS}
    experiment = _start(client, design="interleaving")
    for user in USERS:
        answer = _recommend(client, user)
        assert answer["experiment"] == {
            "id": experiment["id"],
            "name": experiment["name"],
            "design": "interleaving",
            "arm": "interleaved",
        }
        assert answer == _recommend(client, user)  # a reload shows the same list
        assert len(answer["items"]) == 10
    app: Any = client.app
    runner = app.state.experiments
    runner.log.flush()
    shown = runner.log.store.exposures(experiment["id"])
    # Each list is stored as one sub-list per team, and both teams picked movies.
    assert sorted(set(shown.codes.tolist())) == [0, 1]
    assert len(set(shown.users.tolist())) == len(USERS)
    control_team = {int(m) for m in shown.movies[(shown.codes == 0).repeat(shown.lengths)].tolist()}
    first_choices = {items[0]["movie_id"] for items in before.values()}
    assert first_choices & control_team  # the champion's favourites are the control's picks
    details = client.get(f"/experiments/{experiment['id']}").json()
    assert details["result"]["test"] == "sign_test"
    assert details["ties"] == len(USERS)  # nobody rated anything yet
    assert details["result"]["winner"] is None


def test_anonymous_visitors_are_assigned_by_session(client: TestClient) -> None:
    _start(client)
    body = {"liked": [1, 2, 3], "k": 5}
    assert client.post("/recommend/anonymous", json=body).json()["experiment"] is None
    arms = set()
    for session in range(20):
        with_session = {**body, "session_id": f"session-{session}"}
        first = client.post("/recommend/anonymous", json=with_session).json()
        assert first == client.post("/recommend/anonymous", json=with_session).json()
        arms.add(first["experiment"]["arm"])
    assert arms == {"control", "treatment"}


def test_other_workers_follow_a_started_and_stopped_experiment(settings: Settings) -> None:
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        experiment = _start(first)
        app: Any = second.app
        app.state.experiments.sync()  # what its thread does every few seconds
        assert _recommend(second, 7)["experiment"]["id"] == experiment["id"]
        stop = first.post(f"/admin/experiments/{experiment['id']}/stop", headers=ADMIN)
        assert stop.json()["status"] == "stopped"
        app.state.experiments.sync()
        assert _recommend(second, 7)["experiment"] is None


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"treatment_version": 1}, 422, "both version 1"),
        ({"treatment_version": 9}, 404, "no version 9"),
        ({"control_version": 8, "treatment_version": 2}, 404, "no version 8"),
        ({"treatment_version": 2, "treatment_share": 1.0}, 422, "treatment_share"),
        ({"treatment_version": 2, "design": "bandit"}, 422, "design"),
        ({"treatment_version": 2, "name": "   "}, 422, "name"),
        ({"treatment_version": 2, "planned_users": 1}, 422, "planned_users"),
        ({"treatment_version": True}, 422, "treatment_version"),
        ({"treatment_version": 2, "alpha": 0}, 422, "alpha"),
        ({"treatment_version": 2, "extra": 1}, 422, "extra"),
    ],
)
def test_a_bad_experiment_is_refused_and_nothing_is_created(
    client: TestClient, body: dict[str, Any], status: int, message: str
) -> None:
    values = {"name": "bad", **body}
    response = client.post("/admin/experiments", json=values, headers=ADMIN)
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert client.get("/experiments").json()["experiments"] == []
    assert _recommend(client, 1)["experiment"] is None


def test_experiment_routes_refuse_what_they_cannot_do(client: TestClient) -> None:
    assert (
        client.post("/admin/experiments", json={"name": "x", "treatment_version": 2}).status_code
        == 401
    )
    assert client.get("/experiments/99").status_code == 404
    assert client.get("/experiments/0").status_code == 422
    assert client.post("/admin/experiments/99/stop", headers=ADMIN).status_code == 404
    assert client.post("/admin/experiments/99/promote", headers=ADMIN).status_code == 404
    experiment = _start(client)
    second = client.post(
        "/admin/experiments", json={"name": "again", "treatment_version": 2}, headers=ADMIN
    )
    assert second.status_code == 409
    assert f"experiment {experiment['id']}" in second.json()["detail"]
    promote = client.post(f"/admin/experiments/{experiment['id']}/promote", headers=ADMIN)
    assert promote.status_code == 409  # no users yet: not final
    assert client.get("/models/current").json()["version"] == 1
    stop = f"/admin/experiments/{experiment['id']}/stop"
    assert client.post(stop, headers=ADMIN).status_code == 200
    assert client.post(stop, headers=ADMIN).status_code == 409
    assert [e["status"] for e in client.get("/experiments").json()["experiments"]] == ["stopped"]


def test_without_a_registry_champion_the_control_must_be_named(ml_settings: Settings) -> None:
    with TestClient(create_app(ml_settings)) as client:
        response = client.post(
            "/admin/experiments", json={"name": "x", "treatment_version": 2}, headers=ADMIN
        )
        assert response.status_code == 409
        assert "name control_version" in response.json()["detail"]
        named = client.post(
            "/admin/experiments",
            json={"name": "x", "control_version": 1, "treatment_version": 2},
            headers=ADMIN,
        )
        assert named.status_code == 404  # this server has no registry at all
        assert client.get("/experiments").json()["experiments"] == []


@pytest.mark.network
def test_the_client_runs_an_experiment_on_a_real_server(settings: Settings) -> None:
    with api_server(settings) as url, MovierecClient(url, api_key=API_KEY) as api:
        started = api.start_experiment(ExperimentRequest(name="typed", treatment_version=2))
        assert (started.control_version, started.status) == (1, "running")
        answer = api.recommend_anonymous(liked=[1, 2], k=3, session_id="visitor")
        assert answer.experiment is not None
        assert answer.experiment.id == started.id
        assert [e.id for e in api.experiments().experiments] == [started.id]
        details = api.experiment(started.id)
        assert details.result.final is False
        assert [arm.version for arm in details.arms] == [1, 2]
        with pytest.raises(RequestRejectedError, match="not final"):
            api.promote_experiment(started.id)
        assert api.stop_experiment(started.id).status == "stopped"
        with MovierecClient(url) as anonymous, pytest.raises(AuthError):
            anonymous.stop_experiment(started.id)


@pytest.mark.parametrize("design", ["ab", "interleaving"])
def test_the_lean_path_sends_the_routes_bytes_in_an_experiment(
    client: TestClient, design: str
) -> None:
    _start(client, design=design)
    for user in (1, 2, 3, 123_456_789):
        lean = client.get(f"/users/{user}/recommendations?k=7")
        routed = client.get(f"/users/{user}/recommendations?k=7&unknown=1")  # FastAPI's route
        assert lean.json()["experiment"] is not None
        assert lean.content == routed.content
    body = {"liked": [1, 2, 3], "k": 5, "session_id": "s-1"}
    lean = client.post("/recommend/anonymous", json=body)
    routed = client.post(
        "/recommend/anonymous",
        json=body,
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert lean.json()["experiment"] is not None
    assert lean.content == routed.content
