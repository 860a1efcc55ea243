"""Live ratings: durable in the store before the answer, folded into the next recommendation,
and never lost to a concurrent reload (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient
from mlflow import MlflowClient

from movierec.data.sources import LoadedData
from movierec.data.store import RatingsStore
from movierec.serving.app import create_app
from movierec.serving.service import MIN_FOLD_IN_RATINGS
from tests.serving.conftest import API_KEY, Registry, quick_commands, settings_for

NEW_USER = 900_001


def test_a_new_user_becomes_personalized(client: TestClient) -> None:
    rated = [1, 3114, 2355]  # Toy Story 1 and 2, A Bug's Life
    assert len(rated) == MIN_FOLD_IN_RATINGS
    first = client.post("/ratings", json={"user_id": NEW_USER, "movie_id": rated[0], "rating": 5})
    assert first.status_code == 201
    assert first.json() == {"received": 1, "changed": 1, "user_ids": [NEW_USER]}
    early = client.get(f"/users/{NEW_USER}/recommendations").json()
    assert early["strategy"] == "popular_fallback"
    assert rated[0] not in {i["movie_id"] for i in early["items"]}, "a rated movie is seen"
    batch = [{"user_id": NEW_USER, "movie_id": m, "rating": 4.5} for m in rated[1:]]
    assert client.post("/ratings", json={"ratings": batch}).json()["received"] == 2
    answer = client.get(f"/users/{NEW_USER}/recommendations").json()
    assert answer["strategy"] == "folded_in"
    assert set(rated).isdisjoint(i["movie_id"] for i in answer["items"])
    assert answer["items"][0]["reason"].startswith("because you liked ")
    profile = client.get(f"/users/{NEW_USER}").json()
    assert profile["n_ratings"] == 3
    assert profile["known_to_model"] is False


def test_a_known_users_new_rating_is_used_at_once(client: TestClient) -> None:
    before = client.get("/users/2/recommendations", params={"k": 5}).json()
    assert before["strategy"] == "personalized"
    top = before["items"][0]["movie_id"]
    stored = client.post("/ratings", json={"user_id": 2, "movie_id": top, "rating": 1.0})
    assert stored.status_code == 201
    after = client.get("/users/2/recommendations", params={"k": 5}).json()
    assert after["strategy"] == "folded_in"
    assert top not in {i["movie_id"] for i in after["items"]}


def test_bad_ratings_are_refused_and_not_stored(client: TestClient) -> None:
    off_scale = client.post("/ratings", json={"user_id": 7, "movie_id": 1, "rating": 7.5})
    assert off_scale.status_code == 422
    assert "rating scale [0.5, 5]" in off_scale.json()["detail"]
    unknown = client.post("/ratings", json={"user_id": 7, "movie_id": 999_999_999, "rating": 3})
    assert unknown.status_code == 404
    assert "999999999" in unknown.json()["detail"]
    nan = client.post(
        "/ratings",
        content=b'{"user_id": 7, "movie_id": 1, "rating": NaN}',
        headers={"content-type": "application/json"},
    )
    assert nan.status_code == 422
    batch = [{"user_id": 7, "movie_id": 1, "rating": 3}] * 101
    assert client.post("/ratings", json={"ratings": batch}).status_code == 413
    assert client.post("/ratings", json={"ratings": []}).status_code == 422
    assert client.get("/users/7/recommendations").json()["strategy"] == "personalized"


def _registry_copy(registry: Registry, data_dir: Path) -> str:
    """This test's own registry (the artifacts stay where the session fixture wrote them)."""
    shutil.copy(registry.data_dir / "mlflow.db", data_dir / "mlflow.db")
    return f"sqlite:///{data_dir / 'mlflow.db'}"


def test_ratings_survive_reloads_under_load(
    store_url: str, registry: Registry, synth_data: LoadedData, tmp_path: Path
) -> None:
    """Threads post ratings while the champion changes and reloads run: every post answers
    201, every rating is in the store, every reload swaps cleanly."""
    settings = settings_for(
        tmp_path, database_url=store_url, mlflow_tracking_uri=_registry_copy(registry, tmp_path)
    )
    with RatingsStore(store_url) as store:
        store.ingest(synth_data)
    n_posts, users = 120, [10_000 + i for i in range(6)]
    posts = [
        {"user_id": users[i % len(users)], "movie_id": 1 + i % 150, "rating": 0.5 + (i % 10) / 2,
         "timestamp": 2_000_000_000 + i}
        for i in range(n_posts)
    ]  # fmt: skip
    with TestClient(create_app(settings, job_commands=quick_commands())) as client:
        assert client.get("/models/current").json()["version"] == 1
        stop = threading.Event()
        reloads: list[int] = []

        def reload_until_done() -> None:
            admin = {"X-API-Key": API_KEY}
            uri = settings.tracking_uri
            MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
                settings.registered_model, "champion", "2"
            )
            while not stop.is_set():
                answer = client.post("/admin/reload", headers=admin)
                assert answer.status_code == 200, answer.text
                reloads.append(answer.json()["current"]["version"])

        reloader = threading.Thread(target=reload_until_done)
        reloader.start()
        try:
            with ThreadPoolExecutor(max_workers=6) as pool:
                answers = list(pool.map(lambda body: client.post("/ratings", json=body), posts))
                recommendations = list(
                    pool.map(lambda u: client.get(f"/users/{u}/recommendations"), users * 5)
                )
        finally:
            stop.set()
            reloader.join()
        assert [a.status_code for a in answers] == [201] * n_posts
        assert all(r.status_code == 200 for r in recommendations)
        assert reloads
        assert reloads[-1] == 2
        assert client.get("/models/current").json()["version"] == 2
        for user in users:
            answer = client.get(f"/users/{user}/recommendations").json()
            assert answer["strategy"] == "folded_in"
            assert answer["model"]["version"] == 2
    with RatingsStore(store_url) as store:
        stored = store.ratings_frame(since=2_000_000_000)
    got = {
        (int(u), int(m), float(r))
        for u, m, r in stored[["user_id", "item_id", "rating"]].itertuples(index=False)
    }
    assert got == {(p["user_id"], p["movie_id"], p["rating"]) for p in posts}
