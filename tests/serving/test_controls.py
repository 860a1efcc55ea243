"""A person's controls over HTTP (the real app on ml-latest-small): exclusions, pages without
repeats, diversity, dismissals and group lists; every bad input a clear 4xx."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from movierec.client import MovierecClient, NotFoundError
from movierec.config import Settings
from movierec.serving.app import create_app
from movierec.serving.controls import cursor
from movierec.serving.controls.ranking import DEMOTION, NEIGHBOURS
from tests.servers import api_server


def _ids(client: TestClient, user: int, **params: Any) -> list[int]:
    response = client.get(f"/users/{user}/recommendations", params={"k": 10, **params})
    assert response.status_code == 200, response.text
    return [item["movie_id"] for item in response.json()["items"]]


def _page(client: TestClient, user: int, cursor: str, k: int = 10) -> dict[str, Any]:
    response = client.get(f"/users/{user}/recommendations", params={"k": k, "cursor": cursor})
    assert response.status_code == 200, response.text
    return response.json()


def test_excluded_movies_are_left_out_and_the_list_is_refilled(client: TestClient) -> None:
    ranking = _ids(client, 1, k=20)
    answer = _ids(client, 1, exclude=ranking[:3])
    assert answer == ranking[3:13]
    body = {"user_id": 1, "k": 10, "exclude": ranking[:3]}
    posted = client.post("/recommend", json=body).json()
    assert [item["movie_id"] for item in posted["items"]] == answer


def test_pages_follow_one_ranking_and_never_repeat(client: TestClient) -> None:
    ranking = _ids(client, 2, k=30)
    first = _page(client, 2, "")
    second = _page(client, 2, first["page"]["next_cursor"])
    third = _page(client, 2, second["page"]["next_cursor"])
    pages = [[item["movie_id"] for item in page["items"]] for page in (first, second, third)]
    assert [movie for page in pages for movie in page] == ranking
    assert not any(page["page"]["ranking_changed"] for page in (first, second, third))
    assert client.get("/users/2/recommendations").json()["page"] is None  # not asked for


def test_a_page_after_the_ranking_changed_says_so_and_repeats_nothing(
    client: TestClient,
) -> None:
    first = _page(client, 3, "")
    shown = [item["movie_id"] for item in first["items"]]
    # The user rates a movie of the first page: their ranking changes under the cursor.
    rating = {"user_id": 3, "movie_id": shown[0], "rating": 1.0}
    assert client.post("/ratings", json=rating).status_code == 201
    second = _page(client, 3, first["page"]["next_cursor"])
    assert second["page"]["ranking_changed"] is True
    assert not {item["movie_id"] for item in second["items"]} & set(shown)
    assert len(second["items"]) == 10


def test_diversity_mixes_genres(client: TestClient) -> None:
    def genre_diversity(answer: dict[str, Any]) -> float:
        genres = [set(item["genres"]) for item in answer["items"]]
        pairs = [(a, b) for i, a in enumerate(genres) for b in genres[i + 1 :]]
        return float(np.mean([1 - len(a & b) / np.sqrt(len(a) * len(b)) for a, b in pairs]))

    url = "/users/4/recommendations"
    plain = client.get(url, params={"k": 10}).json()
    same = client.get(url, params={"k": 10, "diversity": 0.0}).json()
    diverse = client.get(url, params={"k": 10, "diversity": 0.8}).json()
    assert same == plain
    assert genre_diversity(diverse) > genre_diversity(plain)
    assert diverse["items"][0] == plain["items"][0]  # the best movie still leads


def test_a_dismissed_movie_never_comes_back_until_undone(client: TestClient) -> None:
    user = 5
    before = _ids(client, user, k=50)
    dismissed = before[0]
    created = client.post(f"/users/{user}/dismissals", json={"movie_id": dismissed})
    assert created.status_code == 201
    assert created.json()["movie"]["movie_id"] == dismissed
    again = client.post(f"/users/{user}/dismissals", json={"movie_id": dismissed})
    assert (again.status_code, again.json()["created"]) == (200, False)
    # At once, on the cached top-N answer (the lean path's plain GET) and everywhere else.
    assert dismissed not in _ids(client, user)
    assert dismissed not in _ids(client, user, k=50)
    assert dismissed not in _ids(client, user, diversity=0.5)
    page = _page(client, user, "")
    assert dismissed not in [item["movie_id"] for item in page["items"]]
    listed = client.get(f"/users/{user}/dismissals").json()["items"]
    assert [d["movie"]["movie_id"] for d in listed] == [dismissed]
    undo = client.delete(f"/users/{user}/dismissals/{dismissed}")
    assert undo.status_code == 200
    assert _ids(client, user, k=50) == before
    assert client.delete(f"/users/{user}/dismissals/{dismissed}").status_code == 404


def test_the_neighbours_of_a_dismissed_movie_move_down(client: TestClient) -> None:
    user = 6
    before = _ids(client, user, k=40)
    for dismissed in before[:10]:  # a movie with neighbours in the user's list
        similar = client.get(f"/movies/{dismissed}/similar", params={"k": NEIGHBOURS}).json()
        neighbours = {item["movie_id"] for item in similar["items"]}
        if neighbours & set(before[:20]):
            break
    else:
        pytest.fail("no movie of the list has a neighbour in it")
    client.post(f"/users/{user}/dismissals", json={"movie_id": dismissed})
    after = _ids(client, user, k=40)
    # Each neighbour moves DEMOTION places down; the others keep their order.
    rest = [movie for movie in before if movie != dismissed]
    keys = [i + DEMOTION * (movie in neighbours) for i, movie in enumerate(rest)]
    expected = [movie for _, movie in sorted(zip(keys, rest, strict=True), key=lambda t: t[0])]
    assert after[:30] == expected[:30]
    assert after[:30] != rest[:30]


def test_a_folded_in_user_dismisses_at_once(client: TestClient) -> None:
    user = 900_100
    ratings = [{"user_id": user, "movie_id": m, "rating": 5.0} for m in (1, 2, 3, 4)]
    assert client.post("/ratings", json={"ratings": ratings}).status_code == 201
    answer = client.get(f"/users/{user}/recommendations").json()
    assert answer["strategy"] == "folded_in"
    top = answer["items"][0]["movie_id"]
    client.post(f"/users/{user}/dismissals", json={"movie_id": top})
    assert top not in _ids(client, user)


def test_other_workers_see_a_first_dismissal_within_seconds(ml_settings: Settings) -> None:
    with (
        TestClient(create_app(ml_settings)) as first,
        TestClient(create_app(ml_settings)) as second,
    ):
        user = 7
        top = _ids(second, user)[0]
        first.post(f"/users/{user}/dismissals", json={"movie_id": top})
        deadline = time.monotonic() + 5
        while top in _ids(second, user):
            assert time.monotonic() < deadline, "the other worker never saw the dismissal"
            time.sleep(0.2)


@pytest.mark.parametrize("method", ["average", "least_misery"])
def test_a_group_list_names_who_it_suits_least_and_most(client: TestClient, method: str) -> None:
    members = [8, 9, 10]
    response = client.post(
        "/recommend/group", json={"user_ids": members, "k": 10, "method": method}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["user_ids"] == members
    assert len(answer["items"]) == 10
    scores = [item["score"] for item in answer["items"]]
    assert scores == sorted(scores, reverse=True)
    for item in answer["items"]:
        least, most = item["least_suited"], item["best_suited"]
        assert {least["user_id"], most["user_id"]} <= set(members)
        assert least["utility"] <= item["score"] <= most["utility"]
        if method == "least_misery":
            assert item["score"] == least["utility"]


def test_least_misery_leaves_nobody_out(client: TestClient) -> None:
    body = {"user_ids": [11, 12], "k": 10}
    average = client.post("/recommend/group", json={**body, "method": "average"}).json()
    misery = client.post("/recommend/group", json={**body, "method": "least_misery"}).json()
    worst = [min(i["least_suited"]["utility"] for i in a["items"]) for a in (average, misery)]
    assert worst[1] >= worst[0]


@pytest.mark.parametrize(
    ("method", "url", "payload", "status", "message"),
    [
        ("GET", "/users/1/recommendations?cursor=notacursor", None, 422, "cursor"),
        ("GET", "/users/1/recommendations?cursor=1--2", None, 422, "cursor"),
        ("POST", "/recommend", {"user_id": 1, "cursor": "x"}, 422, "cursor"),
        ("GET", "/users/1/recommendations?diversity=1.5", None, 422, "diversity"),
        ("GET", "/users/1/recommendations?diversity=nan", None, 422, "diversity"),
        ("GET", "/users/1/recommendations?exclude=abc", None, 422, "exclude"),
        ("POST", "/recommend", {"user_id": 1, "diversity": -0.1}, 422, "diversity"),
        ("POST", "/recommend", {"user_id": 1, "exclude": list(range(1001))}, 422, "exclude"),
        ("POST", "/users/1/dismissals", {"movie_id": 999_999_999}, 404, "not found"),
        ("POST", "/users/1/dismissals", {"movie_id": "x"}, 422, "movie_id"),
        ("POST", "/users/1/dismissals", {}, 422, "movie_id"),
        ("DELETE", "/users/1/dismissals/1", None, 404, "has not dismissed"),
        ("POST", "/recommend/group", {"user_ids": [1]}, 422, "user_ids"),
        ("POST", "/recommend/group", {"user_ids": [1, 1]}, 422, "named twice"),
        ("POST", "/recommend/group", {"user_ids": [1, 2], "method": "x"}, 422, "method"),
        ("POST", "/recommend/group", {"user_ids": [1, 2], "k": 51}, 422, "k must be"),
        ("POST", "/recommend/group", {"user_ids": list(range(21))}, 422, "user_ids"),
    ],
)
def test_bad_control_inputs_are_clear_4xx(
    client: TestClient, *, method: str, url: str, payload: Any, status: int, message: str
) -> None:
    response = client.request(method, url, json=payload)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert client.get("/users/1/dismissals").json()["items"] == []  # nothing half-made


@given(st.lists(st.integers(0, 10**18 - 1), unique=True, max_size=50))
def test_a_cursor_holds_the_movies_shown(movie_ids: list[int]) -> None:
    assert cursor.decode(cursor.encode(movie_ids)) == movie_ids
    assert cursor.decode("5-3-5") == [5, 3]  # a repeat counts once


@pytest.mark.network
def test_the_client_pages_dismisses_and_groups(ml_settings: Settings) -> None:
    with api_server(ml_settings) as url, MovierecClient(url) as api:
        first = api.recommend_user(13, 5, cursor="")
        assert first.page is not None
        second = api.recommend_user(13, 5, cursor=first.page.next_cursor, diversity=0.2)
        shown = {m.movie_id for m in first.items}
        assert not shown & {m.movie_id for m in second.items}
        top = first.items[0].movie_id
        assert api.dismiss(13, top).created is True
        assert top not in {m.movie_id for m in api.recommend_user(13, 10, exclude=[1]).items}
        assert [d.movie.movie_id for d in api.dismissals(13).items] == [top]
        assert api.undo_dismissal(13, top).movie.movie_id == top
        with pytest.raises(NotFoundError):
            api.undo_dismissal(13, top)
        group = api.recommend_group([13, 14], k=4, method="least_misery")
        assert len(group.items) == 4


def test_anonymous_visitors_page_and_exclude(client: TestClient) -> None:
    body: dict[str, Any] = {"liked": [1, 2, 3], "k": 5}
    ranking = [
        i["movie_id"]
        for i in client.post("/recommend/anonymous", json={**body, "k": 15}).json()["items"]
    ]
    excluded = client.post("/recommend/anonymous", json={**body, "exclude": ranking[:2]}).json()
    assert [i["movie_id"] for i in excluded["items"]] == ranking[2:7]
    first = client.post("/recommend/anonymous", json={**body, "cursor": ""}).json()
    second = client.post(
        "/recommend/anonymous", json={**body, "cursor": first["page"]["next_cursor"]}
    ).json()
    pages = [i["movie_id"] for page in (first, second) for i in page["items"]]
    assert pages == ranking[:10]
