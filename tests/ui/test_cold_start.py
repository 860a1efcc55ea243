"""Start from movies you like: search, pick, rate, get recommendations, save as a profile."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from movierec.client import MovierecClient
from tests.ui.conftest import card_ids, on_page, texts


def _pick(app: AppTest, query: str, movie_id: int) -> None:
    app.text_input(key="cold_search").input(query).run()
    app.button(key=f"add_{movie_id}").click().run()
    assert not app.exception


def test_three_picked_movies_become_recommendations(ui: AppTest, api_url: str) -> None:
    on_page(ui, "cold_start")
    for query, movie_id in (("toy story", 1), ("jumanji", 2), ("heat", 6)):
        _pick(ui, query, movie_id)
    with MovierecClient(api_url) as api:
        expected = api.recommend_anonymous(liked=[1, 2, 6])
    assert card_ids(ui) == [m.movie_id for m in expected.items]
    assert "Folded in" in texts(ui)


def test_stars_turn_the_picks_into_ratings(ui: AppTest, api_url: str) -> None:
    on_page(ui, "cold_start")
    _pick(ui, "toy story", 1)
    _pick(ui, "jumanji", 2)
    ui.feedback(key="stars_2").set_value(1).run()  # two stars
    with MovierecClient(api_url) as api:
        expected = api.recommend_anonymous(ratings={1: 5.0, 2: 2.0})
    assert card_ids(ui) == [m.movie_id for m in expected.items]


def test_saving_makes_a_user_whose_ratings_are_stored(ui: AppTest, api_url: str) -> None:
    on_page(ui, "cold_start")
    _pick(ui, "toy story", 1)
    _pick(ui, "jumanji", 2)
    assert ui.button(key="save_profile").disabled  # a profile needs three movies
    _pick(ui, "heat", 6)
    ui.button(key="save_profile").click().run()
    assert not ui.exception
    user_id = ui.number_input(key="user").value  # For you opened for the new user
    assert user_id is not None
    assert user_id >= 1_000_000
    with MovierecClient(api_url) as api:
        profile = api.user(user_id)
    assert sorted(r.movie_id for r in profile.recent_ratings) == [1, 2, 6]
    assert "Folded in" in texts(ui)  # ratings the model never trained on
