"""The read routes against the real app: ml-latest-small in SQLite, a fitted ALS model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from movierec.config import Settings
from movierec.data.store import RatingsStore
from movierec.serving.loading import load_model_folder

TOY_STORY = 1  # ml-latest-small: "Toy Story" (1995), Adventure|Animation|Children|Comedy|Fantasy
UNKNOWN_MOVIE = 999_999_999


def test_health_ready_and_current_model(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["model_source"] == "local"
    assert ready.json()["top_n_ready"] == 1.0  # the fixture waited for the lists
    current = client.get("/models/current").json()
    assert current["name"] == "als"
    assert current["source"] == "local"
    assert current["version"] is None
    assert current["n_items"] > 9_000
    assert current["load_seconds"] >= 0


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        "/health", "/ready", "/movies", "/movies/{movie_id}", "/movies/popular", "/genres",
        "/users", "/users/{user_id}", "/users/{user_id}/recommendations", "/recommend",
        "/recommend/anonymous", "/movies/{movie_id}/similar", "/similar-items", "/ratings",
        "/training", "/training/{job_id}", "/training/status", "/tuning", "/admin/reload",
        "/models/current", "/stats",
    }  # fmt: skip
    assert expected <= set(paths)
    assert client.get("/docs").status_code == 200


def test_movie_search_filters_and_pages(client: TestClient) -> None:
    page = client.get("/movies", params={"title": "toy story", "limit": 2}).json()
    assert page["total"] >= 3
    assert len(page["items"]) == 2
    assert all("toy story" in m["title"].lower() for m in page["items"])
    second = client.get("/movies", params={"title": "toy story", "limit": 2, "offset": 2}).json()
    assert {m["movie_id"] for m in second["items"]}.isdisjoint(m["movie_id"] for m in page["items"])
    nineties = client.get(
        "/movies", params={"genre": "Horror", "year_min": 1990, "year_max": 1999, "limit": 500}
    ).json()
    assert nineties["total"] > 10
    assert all("Horror" in m["genres"] and 1990 <= m["year"] <= 1999 for m in nineties["items"])


def test_movie_details_and_unknown_movie(client: TestClient, ml_settings: Settings) -> None:
    movie = client.get(f"/movies/{TOY_STORY}").json()
    assert movie["title"] == "Toy Story"
    assert movie["year"] == 1995
    assert "Animation" in movie["genres"]
    with RatingsStore(ml_settings.store_url) as store:
        ratings = store.ratings_frame()
    toy = ratings[ratings["item_id"] == TOY_STORY]["rating"]
    assert movie["rating_count"] == len(toy)
    assert movie["rating_mean"] == pytest.approx(float(toy.mean()), abs=1e-5)
    missing = client.get(f"/movies/{UNKNOWN_MOVIE}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"movie {UNKNOWN_MOVIE} not found"}


def test_popular_by_count_and_genre(client: TestClient) -> None:
    top = client.get("/movies/popular", params={"k": 5}).json()["items"]
    counts = [m["score"] for m in top]
    assert counts == sorted(counts, reverse=True)
    assert top[0]["title"] == "Forrest Gump"  # the most rated movie of ml-latest-small
    horror = client.get("/movies/popular", params={"k": 5, "genre": "Horror"}).json()["items"]
    assert len(horror) == 5
    assert all("Horror" in m["genres"] for m in horror)
    best = client.get("/movies/popular", params={"k": 5, "by": "rating"}).json()["items"]
    assert all(m["score"] > 4.0 for m in best)


def test_genres(client: TestClient) -> None:
    genres = {g["genre"]: g["movies"] for g in client.get("/genres").json()["genres"]}
    assert genres["Drama"] > genres["Film-Noir"] > 0


def test_users_page_and_profile(client: TestClient) -> None:
    page = client.get("/users", params={"limit": 3}).json()["items"]
    assert [u["user_id"] for u in page] == [1, 2, 3]
    assert all(u["n_ratings"] >= 20 for u in page)
    user = client.get("/users/1").json()
    assert user["n_ratings"] == page[0]["n_ratings"]
    assert user["known_to_model"] is True
    assert 1 <= len(user["favourite_genres"]) <= 5
    shares = [g["share"] for g in user["favourite_genres"]]
    assert shares == sorted(shares, reverse=True)
    times = [r["timestamp"] for r in user["recent_ratings"]]
    assert times == sorted(times, reverse=True)
    top = [(r["rating"], r["timestamp"]) for r in user["top_ratings"]]
    assert len(top) == 10
    assert top == sorted(top, reverse=True)  # highest first, the newest first among equals
    assert top[0][0] == 5.0
    assert client.get("/users/99999999").status_code == 404


def test_docs_pages_and_their_assets_are_served_offline(client: TestClient) -> None:
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(page).text
        assert f"/docs-assets/{asset}" in html
        assert "cdn." not in html  # nothing from outside
        assert "googleapis" not in html
        script = client.get(f"/docs-assets/{asset}")
        assert script.status_code == 200
        assert len(script.content) > 500_000
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200


def test_recommendations_for_a_known_user(client: TestClient) -> None:
    answer = client.get("/users/1/recommendations", params={"k": 10}).json()
    assert answer["strategy"] == "personalized"
    assert answer["model"] == {"name": "als", "version": None, "source": "local"}
    items = answer["items"]
    assert len(items) == 10
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    seen = {r["movie_id"] for r in _all_ratings(client, 1)}
    assert seen.isdisjoint(i["movie_id"] for i in items)
    assert all(i["reason"].startswith("because you liked ") for i in items)
    posted = client.post("/recommend", json={"user_id": 1, "k": 10}).json()
    assert [i["movie_id"] for i in posted["items"]] == [i["movie_id"] for i in items]
    with_seen = client.get("/users/1/recommendations", params={"exclude_seen": False}).json()
    assert seen & {i["movie_id"] for i in with_seen["items"]}


def test_recommendation_filters(client: TestClient) -> None:
    answer = client.get(
        "/users/1/recommendations",
        params={"k": 20, "genres": "Comedy,Romance", "year_min": 2000, "year_max": 2010},
    ).json()
    assert len(answer["items"]) == 20
    for item in answer["items"]:
        assert {"Comedy", "Romance"} & set(item["genres"])
        assert 2000 <= item["year"] <= 2010
    posted = client.post(
        "/recommend",
        json={"user_id": 1, "k": 20, "filters": {"genres": ["Comedy", "Romance"],
                                                  "year_min": 2000, "year_max": 2010}},
    ).json()  # fmt: skip
    assert posted["items"] == answer["items"]
    nothing = client.get("/users/1/recommendations", params={"genres": "No Such Genre"}).json()
    assert nothing["items"] == []


def test_unknown_user_gets_popular_movies_flagged(client: TestClient) -> None:
    answer = client.get("/users/123456789/recommendations", params={"k": 3}).json()
    assert answer["strategy"] == "popular_fallback"
    assert answer["items"][0]["title"] == "Forrest Gump"
    assert answer["items"][0]["reason"] == "popular with everyone"


def test_anonymous_visitor_is_folded_in(client: TestClient) -> None:
    toy_like = [1, 3114, 2355, 4886, 6377]  # Toy Story 1 and 2, A Bug's Life, Monsters, Nemo
    liked = client.post("/recommend/anonymous", json={"liked": toy_like, "k": 10}).json()
    assert liked["strategy"] == "folded_in"
    assert liked["user_id"] is None
    ids = [i["movie_id"] for i in liked["items"]]
    assert set(ids).isdisjoint(toy_like)
    horror = [1258, 1387, 1997, 2710, 3081]  # The Shining, Jaws, The Exorcist, Blair Witch...
    scary = client.post("/recommend/anonymous", json={"liked": horror, "k": 10}).json()

    def family(answer: dict[str, list[dict[str, list[str]]]]) -> int:
        return sum(bool({"Animation", "Children"} & set(i["genres"])) for i in answer["items"])

    assert family(liked) > family(scary)
    assert all(i["reason"].startswith("because you liked ") for i in liked["items"])
    rated = client.post(
        "/recommend/anonymous",
        json={"ratings": [{"movie_id": m, "rating": 5.0} for m in toy_like], "k": 10},
    ).json()
    assert [i["movie_id"] for i in rated["items"]] == ids


def test_a_movie_given_twice_counts_once_with_its_last_rating(client: TestClient) -> None:
    def answer(ratings: list[tuple[int, float]]) -> list[int]:
        body = {"ratings": [{"movie_id": m, "rating": r} for m, r in ratings], "k": 10}
        response = client.post("/recommend/anonymous", json=body)
        assert response.status_code == 200
        return [i["movie_id"] for i in response.json()["items"]]

    once = answer([(1, 5.0), (1258, 1.0), (2355, 4.5)])
    assert answer([(1258, 5.0), (1, 5.0), (1258, 1.0), (2355, 4.5)]) == once
    assert answer([(1, 5.0), (1258, 5.0), (2355, 4.5)]) != once, "the rating matters"


def test_movies_the_model_never_saw_are_ignored_and_said(ml_model_dir: Path) -> None:
    """A movie added to the store after training: in the catalog, not in the model."""
    from movierec.serving.catalog import Catalog, ModelView

    model = load_model_folder(ml_model_dir)
    assert model.item_ids is not None
    new_movie = int(model.item_ids.max()) + 1
    ids = [*model.item_ids.tolist(), new_movie]
    frame = pd.DataFrame(
        {"item_id": ids, "title": "t", "year": 2000, "genres": [["Drama"]] * len(ids),
         "imdb_id": None, "tmdb_id": None}
    )  # fmt: skip
    view = ModelView.build(model, Catalog.from_frame(frame))
    wanted = np.array([1, new_movie, 2355], dtype=np.int64)
    items = np.array([view.item_of_movie[m] for m in wanted.tolist()])
    np.testing.assert_array_equal(items, view.item_indices(wanted))
    assert items[1] == -1
    assert (items[[0, 2]] >= 0).all()
    assert len(view.item_of_movie) == len(ids)


def test_anonymous_errors(client: TestClient, ml_settings: Settings) -> None:
    unknown = client.post("/recommend/anonymous", json={"liked": [1, UNKNOWN_MOVIE]})
    assert unknown.status_code == 404
    assert str(UNKNOWN_MOVIE) in unknown.json()["detail"]
    both = client.post("/recommend/anonymous", json={"liked": [1], "ratings": []})
    assert both.status_code == 422
    assert "exactly one" in both.json()["detail"]
    off_scale = client.post(
        "/recommend/anonymous", json={"ratings": [{"movie_id": 1, "rating": 9}]}
    )
    assert off_scale.status_code == 422
    assert "rating scale" in off_scale.json()["detail"]
    too_many = client.post(
        "/recommend/anonymous", json={"liked": [1] * (ml_settings.max_batch + 1)}
    )
    assert too_many.status_code == 413
    empty = client.post("/recommend/anonymous", json={"liked": []}).json()
    assert empty["strategy"] == "popular_fallback"


def test_similar_movies(client: TestClient, ml_model_dir: Path) -> None:
    similar = client.get(f"/movies/{TOY_STORY}/similar", params={"k": 10}).json()
    assert similar["movie"]["title"] == "Toy Story"
    model = load_model_folder(ml_model_dir)
    assert model.item_ids is not None
    expected, scores = model.similar_items(model.item_index_of(TOY_STORY) or 0, k=10)
    assert [i["movie_id"] for i in similar["items"]] == model.item_ids[expected].tolist()
    assert [i["score"] for i in similar["items"]] == pytest.approx(scores.tolist(), abs=1e-6)
    posted = client.post("/similar-items", json={"movie_id": TOY_STORY, "k": 10}).json()
    assert posted == similar
    assert client.get(f"/movies/{UNKNOWN_MOVIE}/similar").status_code == 404


def test_k_is_bounded_by_max_k(client: TestClient, ml_settings: Settings) -> None:
    over = ml_settings.max_k + 1
    for response in (
        client.get("/users/1/recommendations", params={"k": over}),
        client.post("/recommend", json={"user_id": 1, "k": over}),
        client.get(f"/movies/{TOY_STORY}/similar", params={"k": over}),
        client.get("/users/1/recommendations", params={"k": 0}),
    ):
        assert response.status_code == 422
        assert isinstance(response.json()["detail"], str)
    assert (
        f"between 1 and {ml_settings.max_k}"
        in client.post("/recommend", json={"user_id": 1, "k": over}).json()["detail"]
    )


def test_bad_input_is_a_json_422(client: TestClient) -> None:
    malformed = client.post(
        "/recommend", content=b'{"user_id": 1,', headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422
    assert malformed.json()["detail"].startswith("malformed JSON body")
    wrong_type = client.post("/recommend", json={"user_id": "me"})
    assert wrong_type.status_code == 422
    assert "user_id" in wrong_type.json()["detail"]
    extra = client.post("/recommend", json={"user_id": 1, "kk": 3})
    assert extra.status_code == 422
    not_json = client.post(
        "/training", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422  # FastAPI's own answer would be an undocumented 400
    assert not_json.json()["detail"].startswith("malformed JSON body")
    assert client.post("/recommend", json={"user_id": 1, "exclude_seen": 0}).status_code == 422
    assert client.post("/similar-items", json={"movie_id": True}).status_code == 422
    # A range that holds no year is valid (the schema cannot say otherwise): no movie passes.
    years = client.get("/users/1/recommendations", params={"year_min": 2000, "year_max": 1990})
    assert years.status_code == 200
    assert years.json()["items"] == []
    assert client.get("/no/such/route").json() == {"detail": "Not Found"}


def test_oversized_bodies_are_refused(client: TestClient, ml_settings: Settings) -> None:
    big = json.dumps({"liked": [1] * ml_settings.max_body_bytes}).encode()
    declared = client.post(
        "/recommend/anonymous", content=big, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413
    assert "too large" in declared.json()["detail"]

    def chunks() -> object:  # no Content-Length: the body is streamed (chunked)
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    streamed = client.post(
        "/recommend/anonymous", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_stats(client: TestClient) -> None:
    stats = client.get("/stats").json()
    assert stats["n_users"] == 610
    assert stats["n_ratings"] >= 100_836
    assert stats["n_movies"] >= 9_742
    assert stats["ratings_per_day"] > 0


def test_metrics_by_route_template(client: TestClient) -> None:
    client.get("/users/5/recommendations")
    client.get("/users/6/recommendations")
    client.get("/users/987654321/recommendations")
    text = client.get("/metrics").text
    template = 'route="/users/{user_id}/recommendations"'
    assert f'movierec_http_requests_total{{method="GET",{template},status="200"}}' in text
    assert "/users/5/recommendations" not in text
    assert (
        f'movierec_http_request_duration_seconds_bucket{{le="0.02",method="GET",{template}' in text
    )
    assert 'movierec_recommendations_total{strategy="personalized"}' in text
    assert 'movierec_recommendations_total{strategy="popular_fallback"}' in text
    assert 'movierec_model_info{name="als",source="local",version="none"} 1.0' in text
    assert "movierec_model_load_seconds" in text


def _all_ratings(client: TestClient, user_id: int) -> list[dict[str, object]]:
    # The profile lists the latest ten; the store has them all.
    from movierec.serving.users import ServingStore

    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    with ServingStore(settings.store_url) as store:
        rated = store.user_ratings(user_id)
    return [{"movie_id": int(m)} for m in rated.item_ids]


def test_a_wrong_method_names_every_method_of_the_path(client: TestClient) -> None:
    # GET and POST of /users/{id}/dismissals are two routes: the 405 names both.
    assert client.delete("/users/1/dismissals").headers["allow"] == "GET, POST"
    wrong = client.put("/ratings")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
