"""POST /admin/generate-ratings: synthetic activity stored like posted ratings (durable, folded
in at once), admin only, bad requests refused with nothing stored."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from movierec.config import Settings
from movierec.data.store import RatingsStore
from movierec.serving.app import create_app


def stored(settings: Settings) -> int:
    with RatingsStore(settings.store_url) as store:
        return store.stats().n_ratings


def test_generated_ratings_are_stored_and_used(
    client: TestClient, ml_settings: Settings, admin: dict[str, str]
) -> None:
    before, started = stored(ml_settings), int(time.time())
    with RatingsStore(ml_settings.store_url) as store:
        top_user = store.max_user_id()
    body = {"ratings": 600, "users": 24, "new_user_share": 1 / 6, "seed": 11}
    answer = client.post("/admin/generate-ratings", json=body, headers=admin)
    assert answer.status_code == 201, answer.text
    result = answer.json()
    assert result["received"] == 600
    assert result["seed"] == 11
    assert result["new_user_ids"] == list(range(top_user + 1, top_user + 5))
    assert len(result["user_ids"]) == 24
    assert set(result["new_user_ids"]) <= set(result["user_ids"])
    assert result["changed"] == 600  # a known user's re-rating replaces the stored one
    with RatingsStore(ml_settings.store_url) as store:
        fresh = store.ratings_frame(since=started)
    assert len(fresh) == 600  # every one durable
    assert set(fresh["user_id"]) == set(result["user_ids"])
    assert before + 400 < stored(ml_settings) <= before + 600
    newcomer = result["new_user_ids"][0]
    profile = client.get(f"/users/{newcomer}").json()
    assert profile["n_ratings"] >= 1
    recommended = client.get(f"/users/{newcomer}/recommendations").json()
    assert recommended["strategy"] in {"folded_in", "popular_fallback"}  # by its rating count


def test_a_seed_is_chosen_and_said(client: TestClient, admin: dict[str, str]) -> None:
    body = {"ratings": 30, "users": 3, "new_user_share": 0}
    answer = client.post("/admin/generate-ratings", json=body, headers=admin)
    assert answer.status_code == 201, answer.text
    assert isinstance(answer.json()["seed"], int)
    assert answer.json()["new_user_ids"] == []


def test_admin_only(client: TestClient) -> None:
    assert client.post("/admin/generate-ratings", json={}).status_code == 401
    wrong = {"X-API-Key": "not-the-key"}
    assert client.post("/admin/generate-ratings", json={}, headers=wrong).status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"favoured_genres": ["Spaghetti Western"]}, 422, "favoured_genres.0: Input should be"),
        ({"users": 10_000, "new_user_share": 0.5}, 409, "the served model knows 610 users"),
        ({"users": 1, "new_user_share": 1, "ratings": 10_000}, 409, "at most 9742 ratings"),
        ({"users": 0}, 422, "greater than or equal to 1"),
        ({"ratings": 100_001}, 422, "less than or equal to 100000"),
        ({"rating_shift": 9}, 422, "less than or equal to 4.5"),
        ({"raters": 3}, 422, "Extra inputs are not permitted"),
    ],
)
def test_bad_requests_say_why_and_store_nothing(
    client: TestClient, ml_settings: Settings, admin: dict[str, str], *, body: dict[str, Any],
    status: int, message: str,
) -> None:  # fmt: skip
    before = stored(ml_settings)
    answer = client.post("/admin/generate-ratings", json=body, headers=admin)
    assert answer.status_code == status
    assert message in answer.text
    assert stored(ml_settings) == before


def test_fewer_ratings_than_users(client: TestClient, admin: dict[str, str]) -> None:
    body = {"ratings": 3, "users": 50, "new_user_share": 0.5, "seed": 1}
    answer = client.post("/admin/generate-ratings", json=body, headers=admin).json()
    assert answer["received"] == 3
    assert len(answer["user_ids"]) <= 3
    assert set(answer["new_user_ids"]) <= set(answer["user_ids"])


def test_no_model_is_a_503(tmp_path: Any, admin: dict[str, str]) -> None:
    from tests.serving.conftest import settings_for

    with TestClient(create_app(settings_for(tmp_path))) as bare:
        answer = bare.post("/admin/generate-ratings", json={}, headers=admin)
    assert answer.status_code == 503
    assert "no model is loaded" in answer.json()["detail"]
