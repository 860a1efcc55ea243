"""Monitoring: request counts, rates and latency percentiles read from the API's /metrics."""

from __future__ import annotations

import httpx
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import on_page, texts


def test_requests_rates_and_latencies(ui: AppTest, api_url: str) -> None:
    for user in range(1, 6):
        httpx.get(f"{api_url}/users/{user}/recommendations").raise_for_status()
    on_page(ui, "monitoring")
    requests = next(m for m in ui.metric if m.label == "Requests")
    assert float(requests.value.replace(",", "")) >= 5
    routes = ui.dataframe[0].value
    row = routes[routes["route"] == "GET /users/{user_id}/recommendations"].iloc[0]
    assert row["requests"] >= 5
    assert 0 < row["p50 ms"] <= row["p95 ms"] <= row["p99 ms"]
    assert "not available" in texts(ui)  # drift and served quality: said, not an error
