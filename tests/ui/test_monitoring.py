"""Monitoring: traffic from /metrics, served quality, online feedback, each as a person sees it."""

from __future__ import annotations

import httpx
import pandas as pd
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import on_page


def _table_with(ui: AppTest, column: str) -> pd.DataFrame:
    return next(frame.value for frame in ui.dataframe if column in frame.value.columns)


def test_requests_rates_and_latencies(ui: AppTest, api_url: str) -> None:
    for user in range(1, 6):
        httpx.get(f"{api_url}/users/{user}/recommendations").raise_for_status()
    on_page(ui, "monitoring")
    requests = next(m for m in ui.metric if m.label == "Requests")
    assert float(requests.value.replace(",", "")) >= 5
    routes = _table_with(ui, "route")
    row = routes[routes["route"] == "GET /users/{user_id}/recommendations"].iloc[0]
    assert row["requests"] >= 5
    assert 0 < row["p50 ms"] <= row["p95 ms"] <= row["p99 ms"]


def test_served_quality_and_online_feedback_of_the_champion(ui: AppTest, api_url: str) -> None:
    shown = httpx.get(f"{api_url}/users/7/recommendations", params={"k": 5}).json()
    champion = f"{shown['model']['name']} v{shown['model']['version']}"
    liked = shown["items"][0]["movie_id"]
    ratings = {"ratings": [{"user_id": 7, "movie_id": liked, "rating": 5.0}]}
    httpx.post(f"{api_url}/ratings", json=ratings).raise_for_status()
    on_page(ui, "monitoring")
    served = _table_with(ui, "coverage %").set_index("model").loc[champion]
    assert served["lists"] >= 1
    assert 0 < served["coverage %"] <= 100
    assert 0 <= served["popularity pct"] <= 1
    online = _table_with(ui, "hit rate %").set_index("model").loc[champion]
    assert online["rated"] >= 1
    assert online["rated ≥ positive"] >= 1
    assert 0 < online["hit rate %"] <= 100


def test_data_drift_of_a_new_crowd(ui: AppTest, api_url: str) -> None:
    # Ten new users rating ten movies each: 100 distinct ratings, over the 50 that drift
    # needs whatever the other tests of this server posted before.
    ratings = [
        {"user_id": 900_000 + user, "movie_id": movie, "rating": 1.0}
        for user in range(10)
        for movie in [1, 2, 3, 6, 10, 16, 19, 21, 25, 32]
    ]
    httpx.post(f"{api_url}/ratings", json={"ratings": ratings}).raise_for_status()
    on_page(ui, "monitoring")
    drifted = next(m for m in ui.metric if m.label == "Features drifted")
    assert not drifted.value.startswith("0 of")
    features = _table_with(ui, "threshold").set_index("feature")
    assert bool(features.loc["new users", "drifted"])  # every one of them is new to the model
    assert next(m for m in ui.metric if m.label == "Verdict").value in {"drift", "no drift"}
