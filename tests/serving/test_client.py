"""The typed client against a real API server: answers as the API's models, clear errors, the
admin key sent only where it is needed."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from movierec.client import (
    APIUnavailableError,
    AuthError,
    MovierecClient,
    NotFoundError,
    RequestRejectedError,
)
from movierec.config import Settings
from movierec.serving.schemas import GenerateRatings, NewRating, RecommendationResponse
from tests.servers import api_server, free_port
from tests.serving.conftest import API_KEY

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def url(ml_settings: Settings) -> Iterator[str]:
    with api_server(ml_settings) as address:
        yield address


def test_read_routes_answer_typed_models(url: str) -> None:
    with MovierecClient(url) as api:
        answer = api.recommend_user(1, 5, genres=["Comedy", "Drama"], year_min=1990)
        assert isinstance(answer, RecommendationResponse)
        assert answer.strategy == "personalized"
        assert len(answer.items) == 5
        assert all({"Comedy", "Drama"} & set(m.genres) for m in answer.items)
        assert all(m.year is not None and m.year >= 1990 for m in answer.items)
        assert api.movie(1).title == "Toy Story"
        assert api.search_movies("toy story").items[0].movie_id == 1
        assert api.similar(1, 3).movie.movie_id == 1
        assert api.popular(3, genre="Horror").items
        assert api.user(1).n_ratings > 0
        assert api.users(limit=2).items[0].user_id == 1
        assert api.stats().n_ratings > 100_000
        assert api.ready().status == "ready"
        assert "movierec_http_requests_total" in api.metrics_text()
        folded = api.recommend_anonymous(liked=[1, 2, 3], k=4)
        assert folded.strategy == "folded_in"
        assert len(folded.items) == 4


def test_ratings_are_stored_and_used(url: str) -> None:
    with MovierecClient(url) as api:
        stored = api.add_ratings(
            NewRating(user_id=900_001, movie_id=m, rating=5.0) for m in (1, 2, 3)
        )
        assert (stored.received, stored.user_ids) == (3, [900_001])
        assert api.recommend_user(900_001).strategy == "folded_in"
        assert api.rate(900_001, 4, 2.0).changed == 1


def test_errors_are_typed_with_the_apis_message(url: str) -> None:
    with MovierecClient(url) as api:
        with pytest.raises(NotFoundError, match="movie 987654321 not found") as missing:
            api.movie(987654321)
        assert missing.value.status == 404
        with pytest.raises(RequestRejectedError, match="k must be between 1 and 50"):
            api.recommend_user(1, k=51)
        with pytest.raises(NotFoundError):
            api.recommend_anonymous(liked=[987654321])


def test_admin_calls_need_the_key_and_only_they_send_it(url: str) -> None:
    sent: list[httpx.Request] = []
    with MovierecClient(url) as anonymous, pytest.raises(AuthError, match="admin API key"):
        anonymous.reload()
    with MovierecClient(url, api_key="wrong-key-0123456789") as wrong:
        with pytest.raises(AuthError, match="invalid API key") as refused:
            wrong.jobs()
        assert refused.value.status == 403
    with MovierecClient(url, api_key=API_KEY) as admin:
        admin._http.event_hooks["request"].append(sent.append)
        assert admin.jobs().running is None
        admin.recommend_user(1)
    assert [r.headers.get("x-api-key") for r in sent] == [API_KEY, None]


def test_generated_ratings_through_the_client(url: str) -> None:
    with MovierecClient(url, api_key=API_KEY) as admin:
        made = admin.generate_ratings(GenerateRatings(ratings=40, users=4, seed=5))
        assert made.received == 40
        assert made.seed == 5
        with pytest.raises(RequestRejectedError, match="knows 610 users") as refused:
            admin.generate_ratings(GenerateRatings(users=5_000, new_user_share=0))
        assert refused.value.status == 409


def test_an_api_that_does_not_answer_is_one_clear_error() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    with MovierecClient(address) as api, pytest.raises(APIUnavailableError) as down:
        api.health()
    assert down.value.url == address
    assert address in str(down.value)


def test_a_slow_api_is_a_timeout_not_a_hang() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with (
            MovierecClient(address, timeout=0.5) as api,
            pytest.raises(APIUnavailableError) as slow,
        ):
            api.recommend_user(1)
    assert "no answer in time" in str(slow.value)
    assert time.monotonic() - started < 5


def test_the_address_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEREC_API_URL", "http://api.example:9000/")
    assert MovierecClient().base_url == "http://api.example:9000"
    monkeypatch.delenv("MOVIEREC_API_URL")
    assert MovierecClient().base_url == "http://127.0.0.1:8000"
