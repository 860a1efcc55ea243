"""A temporal holdout replayed through a real two-worker API: train on the past, serve the
users, post their "future" ratings, and the online and served figures the API reports equal an
offline computation on the same data."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from movierec.data.sources import LoadedData
from movierec.data.store import RatingsStore
from movierec.serving.loading import load_model_folder
from tests.servers import api_server
from tests.serving.conftest import fit_als, ml_small, settings_for

__all__ = ["ml_small"]  # the session fixture, shared with the serving tests

USERS = 120
K = 10
FLUSH_WAIT = 6.0  # seconds: a worker writes its impressions every 5 s


@pytest.fixture(scope="module")
def holdout(ml_small: LoadedData) -> tuple[LoadedData, pd.DataFrame]:
    """The oldest 80% of the ratings as the data set, the rest as the future."""
    ratings = ml_small.ratings
    cutoff = ratings["timestamp"].quantile(0.8)  # 28 users rated on both sides of it
    past = ratings[ratings["timestamp"] < cutoff]
    future = ratings[ratings["timestamp"] >= cutoff]
    return dataclasses.replace(ml_small, ratings=past, checksum="past"), future


def test_replayed_future_matches_the_offline_figures(
    holdout: tuple[LoadedData, pd.DataFrame], tmp_path: Path
) -> None:
    past, future = holdout
    settings = settings_for(tmp_path, max_batch=1_000, max_body_bytes=200_000)
    with RatingsStore(settings.store_url) as store:
        store.ingest(past)
    fit_als(past).save(settings.models_dir / "als")
    model = load_model_folder(settings.models_dir / "als")
    returning = np.intersect1d(future["user_id"].unique(), past.ratings["user_id"].unique())
    users = returning[:USERS]
    assert len(users) >= 20, "enough users rate both before and after the cut"
    with api_server(settings, workers=2) as url, httpx.Client(base_url=url, timeout=30) as api:
        shown = {int(u): _recommended(url, int(u)) for u in users}
        ahead = future[future["user_id"].isin(users)]
        for start in range(0, len(ahead), 1_000):  # posted now: after the lists were shown
            chunk = ahead.iloc[start : start + 1_000]
            body = {"ratings": [
                {"user_id": int(u), "movie_id": int(m), "rating": float(r)}
                for u, m, r in zip(chunk["user_id"], chunk["item_id"], chunk["rating"], strict=True)
            ]}  # fmt: skip
            assert api.post("/ratings", json=body).status_code == 201
        time.sleep(FLUSH_WAIT)
        online = api.get("/monitoring/online").json()["versions"]
        stats = api.get("/monitoring/stats").json()["versions"]
        metrics = _scrape_until(api, "movierec_online_hit_rate")

    # Offline, on the same data: the model's own lists, and the future ratings of their movies.
    indices = [model.user_index_of(int(u)) for u in users]
    offline_items, _ = model.recommend(np.asarray(indices), k=K)
    assert model.item_ids is not None
    offline = {
        int(u): model.item_ids[row].tolist() for u, row in zip(users, offline_items, strict=True)
    }
    assert shown == offline, "the API served the model's own lists"
    rated = ahead.set_index(["user_id", "item_id"])["rating"]
    pairs = [(u, m) for u, movies in offline.items() for m in movies]
    hits = [rated[pair] for pair in pairs if pair in rated.index]
    (version,) = online
    assert (version["model"], version["version"], version["lists"]) == ("als", "none", len(users))
    assert version["impressions"] == len(pairs)
    assert version["rated"] == len(hits) > 0
    assert version["positive"] == sum(r >= 4.0 for r in hits)
    assert version["hit_rate"]["value"] == pytest.approx(len(hits) / len(pairs))
    assert version["hit_rate"]["low"] < version["hit_rate"]["value"] < version["hit_rate"]["high"]

    (served,) = stats
    day = served["windows"]["1d"]
    assert day["lists"] == len(users)  # both workers' lists, added up
    assert day["distinct_movies"] == len({m for movies in offline.values() for m in movies})
    assert day["coverage"] == pytest.approx(day["distinct_movies"] / model.n_items)
    hit_rate = re.search(r'^movierec_online_hit_rate\{model="als",version="none"\} (\S+)$', metrics,
                         re.MULTILINE)  # fmt: skip
    assert hit_rate is not None
    assert float(hit_rate.group(1)) == pytest.approx(len(hits) / len(pairs))
    lists = re.findall(r"^movierec_served_lists_total\{[^}]*\} (\S+)$", metrics, re.MULTILINE)
    assert sum(float(v) for v in lists) == len(users)


def _recommended(url: str, user: int) -> list[int]:
    # A connection of its own: the kernel spreads new connections over both workers.
    answer = httpx.get(f"{url}/users/{user}/recommendations", params={"k": K})
    assert answer.status_code == 200
    assert answer.json()["strategy"] == "personalized"
    return [item["movie_id"] for item in answer.json()["items"]]


def _scrape_until(api: httpx.Client, family: str) -> str:
    """``/metrics`` once ``family`` is in it (online feedback is computed after a first scrape,
    in the background)."""
    deadline = time.monotonic() + 30
    text = api.get("/metrics").text
    while family not in text and time.monotonic() < deadline:
        time.sleep(0.5)
        text = api.get("/metrics").text
    return text
