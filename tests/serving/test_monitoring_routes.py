"""The monitoring routes' answers to bad or empty input: clear 422s, empty figures, no NaN."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    ("route", "params", "says"),
    [
        ("/monitoring/online", {"days": 0}, "query.days"),
        ("/monitoring/online", {"days": "soon"}, "query.days"),
        ("/monitoring/online", {"since": "yesterday"}, "query.since"),
        ("/monitoring/stats/history", {"hours": 0}, "query.hours"),
        ("/monitoring/stats/history", {"hours": 25}, "query.hours"),
        ("/monitoring/stats/history", {"step_minutes": 1_000}, "query.step_minutes"),
    ],
)
def test_bad_windows_are_clear_422s(
    client: TestClient, route: str, params: dict[str, object], says: str
) -> None:
    answer = client.get(route, params=params)
    assert answer.status_code == 422
    assert says in answer.json()["detail"]


def test_a_window_with_nothing_in_it_is_empty_not_nan(client: TestClient) -> None:
    future = client.get("/monitoring/online", params={"since": "2100-01-01T00:00:00Z"})
    assert future.status_code == 200
    assert future.json()["versions"] == []
    for route in ("/monitoring/stats", "/monitoring/stats/history", "/monitoring/online"):
        json.loads(client.get(route).text, parse_constant=pytest.fail)  # NaN/Infinity refused
