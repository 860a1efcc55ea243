"""The lean path of the hot routes: the same bytes as the FastAPI routes, FastAPI for anything
unusual, and every request counted in the metrics."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.responses import Response
from starlette.types import Send

from movierec.serving import fastpath

TOY_STORY = 1
HISTORY = [{"movie_id": m, "rating": r} for m, r in ((1, 5.0), (3114, 4.5), (2355, 2.0))]


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> list[Response]:
    """The answers the lean path sent itself (FastAPI's route sent the others)."""
    sent: list[Response] = []
    real = fastpath.send_answer

    async def spy(send: Send, answer: Response) -> None:
        sent.append(answer)
        await real(send, answer)

    monkeypatch.setattr(fastpath, "send_answer", spy)
    return sent


# An unknown query parameter (FastAPI ignores it) or a charset in the content type (FastAPI
# reads the body the same way) sends the very same request through FastAPI's route.
SAME_REQUESTS = [
    ("GET", "/users/1/recommendations", "k=10", None),
    ("GET", "/users/1/recommendations", "k=7&genres=Comedy,Romance&genres=Drama&year_min=1990"
     "&year_max=2010&exclude_seen=false", None),
    ("GET", "/users/1/recommendations", "", None),
    ("GET", "/users/123456789/recommendations", "k=3", None),  # popular fallback
    ("GET", "/users/1/recommendations", "genres=No%20Such%20Genre", None),
    ("GET", "/users/1/recommendations", "year_min=2000&year_max=1990", None),  # no year
    ("GET", f"/movies/{TOY_STORY}/similar", "k=5", None),
    ("GET", f"/movies/{TOY_STORY}/similar", "", None),
    ("POST", "/recommend/anonymous", "", {"ratings": HISTORY, "k": 10}),
    ("POST", "/recommend/anonymous", "", {"liked": [1, 3114], "k": 4}),
    ("POST", "/recommend/anonymous", "", {"liked": []}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "query", "body"), SAME_REQUESTS)
def test_same_bytes_as_the_route(
    client: TestClient,
    fast: list[Response],
    *,
    method: str,
    path: str,
    query: str,
    body: dict[str, Any] | None,
) -> None:
    if method == "GET":
        lean = client.get(f"{path}?{query}")
        routed = client.get(f"{path}?{query}&unknown=1")
    else:
        lean = client.post(path, json=body)
        routed = client.post(
            path, json=body, headers={"content-type": "application/json; charset=utf-8"}
        )
    assert len(fast) == 1  # the first answer only
    assert lean.status_code == routed.status_code == 200
    assert lean.content == routed.content
    assert lean.headers["content-type"] == routed.headers["content-type"]
    assert lean.headers["content-length"] == routed.headers["content-length"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/users/1/recommendations?k=010", 200),  # not written plainly
        ("/users/1/recommendations?k=+5", 200),
        ("/users/1/recommendations?k=1&k=2", 200),  # repeated
        ("/users/1/recommendations?exclude_seen=1", 200),
        ("/users/01/recommendations", 200),
        ("/users/1/recommendations?k=0", 422),
        ("/users/1/recommendations?k=51", 422),  # over the server's max_k (50)
        ("/users/1/recommendations?k=ten", 422),
        ("/users/1/recommendations?year_min=10000", 422),
        ("/users/-1/recommendations", 422),
        (f"/users/{2**63}/recommendations", 422),
        ("/movies/999999999/similar", 404),
        ("/movies/abc/similar", 422),
    ],
)
def test_unusual_gets_fall_back(
    client: TestClient, fast: list[Response], path: str, status: int
) -> None:
    response = client.get(path)
    assert not fast
    assert response.status_code == status
    assert isinstance(response.json().get("detail", ""), str)


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b'{"liked": [1, 999999999]}', 404),  # a movie the catalog lacks
        (b'{"liked": [1], "ratings": []}', 422),
        (b'{"ratings": [{"movie_id": 1, "rating": 9}]}', 422),  # off the scale
        (b'{"liked": [1],', 422),  # malformed
        (b'{"liked": [1], "k": 51}', 422),
        (b"[1, 2]", 422),
        (("{" + '"liked": [' + ",".join(["1"] * 101) + "]}").encode(), 413),  # > max_batch
    ],
)
def test_unusual_posts_fall_back(
    client: TestClient, fast: list[Response], content: bytes, status: int
) -> None:
    response = client.post(
        "/recommend/anonymous", content=content, headers={"content-type": "application/json"}
    )
    assert not fast
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)


def _count(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_fast_answers_are_counted(client: TestClient, fast: list[Response]) -> None:
    series = {
        "similar": 'movierec_http_requests_total{method="GET",route="/movies/{movie_id}/similar",'
        'status="200"}',
        "anonymous": 'movierec_http_requests_total{method="POST",route="/recommend/anonymous",'
        'status="200"}',
        "user": 'movierec_http_request_duration_seconds_count{method="GET",'
        'route="/users/{user_id}/recommendations"}',
        "strategy": 'movierec_recommendations_total{strategy="similar"}',
    }
    before = client.get("/metrics").text
    client.get(f"/movies/{TOY_STORY}/similar?k=3")
    client.post("/recommend/anonymous", json={"ratings": HISTORY})
    client.get("/users/2/recommendations?k=3")
    after = client.get("/metrics").text
    assert len(fast) == 3
    for name in series.values():
        assert _count(after, name) == _count(before, name) + 1, name


# Bodies where parsing JSON with pydantic (the lean path) and with json.loads (FastAPI) could
# part ways: numbers written as text or floats, booleans, NaN, duplicate keys, escapes, a BOM.
BORDERLINE_BODIES = [
    b'{"ratings": [{"movie_id": 1, "rating": 4}]}',
    b'{"ratings": [{"movie_id": "1", "rating": "4.5"}]}',
    b'{"ratings": [{"movie_id": 1.0, "rating": true}]}',
    b'{"ratings": [{"movie_id": 1, "rating": NaN}]}',
    b'{"ratings": [{"movie_id": 1, "rating": 1e400}]}',
    b'{"ratings": [{"movie_id": 1, "rating": "inf"}]}',
    b'{"liked": [1, 260], "liked": [3114]}',
    b'{"liked": ["\\u0031", 1e2], "k": "5"}',
    b'{"liked": [1], "k": 5.5}',
    b'{"liked": [1], "k": true}',
    b'{"liked": [1], "filters": {"genres": "Comedy"}}',
    b'{"liked": [1], "filters": {"year_min": "1990", "genres": ["\\ud800"]}}',
    b'{"liked": [9223372036854775808]}',
    b'{"liked": [1]}x',
    b'{"liked": [1,]}',
    b'\xef\xbb\xbf{"liked": [1]}',
]


@pytest.mark.parametrize("content", BORDERLINE_BODIES)
def test_borderline_bodies_answer_as_the_route(client: TestClient, content: bytes) -> None:
    lean = client.post(
        "/recommend/anonymous", content=content, headers={"content-type": "application/json"}
    )
    routed = client.post(
        "/recommend/anonymous",
        content=content,
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert (lean.status_code, lean.content) == (routed.status_code, routed.content)


# Live ratings: the lean path must store and answer exactly as the route. Each body is posted
# twice, by two new users (USER), so both posts store a rating.
RATING_BODIES = [
    b'{"user_id": USER, "movie_id": 1, "rating": 4}',
    b'{"ratings": [{"user_id": USER, "movie_id": 1, "rating": 4.5, "timestamp": 1700000000},'
    b' {"user_id": USER, "movie_id": 260, "rating": 3}]}',
    b'{"user_id": "USER", "movie_id": "1", "rating": "4.5"}',
    b'{"user_id": USER, "movie_id": 1.0, "rating": true}',
    b'{"user_id": USER, "movie_id": 1, "rating": NaN}',
    b'{"user_id": USER, "movie_id": 1, "rating": 1e400}',
    b'{"user_id": USER, "movie_id": 1, "rating": 9}',  # off the scale
    b'{"user_id": USER, "movie_id": 999999999, "rating": 4}',  # no such movie
    b'{"user_id": USER, "movie_id": 1, "rating": 4, "timestamp": "1700000000"}',
    b'{"user_id": 7, "movie_id": 1, "rating": 4, "user_id": USER}',  # the last one wins
    b'{"user_id": USER, "movie_id": 1, "rating": 4, "extra": 1}',
    b'{"user_id": USER, "movie_id": 1, "rating": 4}x',
    b'{"ratings": []}',
    b"[]",
]


@pytest.mark.parametrize("template", RATING_BODIES)
def test_ratings_answer_as_the_route(
    client: TestClient, fast: list[Response], template: bytes
) -> None:
    ids = iter(range(970_000 + 10 * RATING_BODIES.index(template), 980_000))
    users = [str(next(ids)).encode() for _ in range(2)]
    plain, charset = "application/json", "application/json; charset=utf-8"
    lean, routed = (
        client.post("/ratings", content=template.replace(b"USER", user),
                    headers={"content-type": content_type})
        for user, content_type in zip(users, [plain, charset], strict=True)
    )  # fmt: skip
    assert lean.status_code == routed.status_code
    assert lean.content.replace(users[0], b"USER") == routed.content.replace(users[1], b"USER")
    assert len(fast) == (lean.status_code == 201)  # errors: the route answered both
    if lean.status_code == 201:
        assert lean.headers["content-type"] == routed.headers["content-type"]
        for user in users:
            assert client.get(f"/users/{user.decode()}").json()["n_ratings"] >= 1
