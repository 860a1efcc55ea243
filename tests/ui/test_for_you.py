"""For you: a user's recommendations, beside their history, with strategy and model shown."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from movierec.client import MovierecClient
from tests.ui.conftest import app_for, card_ids, on_page, texts


def test_deep_link_shows_the_apis_top_10_in_its_order(ui: AppTest, api_url: str) -> None:
    on_page(ui, "for_you", user="1")
    with MovierecClient(api_url) as api:
        expected = api.recommend_user(1, 10)
        profile = api.user(1)
    assert card_ids(ui) == [m.movie_id for m in expected.items]
    shown = texts(ui)
    assert "Personalized" in shown
    assert f"v{expected.model.version}" in shown  # the model's version is not hidden
    assert profile.recent_ratings[0].title.split(",")[0] in shown
    assert f"{profile.n_ratings} ratings" in shown


def test_filters_reach_the_api(ui: AppTest, api_url: str) -> None:
    on_page(ui, "for_you", user="1")
    ui.multiselect(key="for_you_genres").set_value(["Comedy"]).run()
    ui.slider(key="for_you_k").set_value(5).run()
    with MovierecClient(api_url) as api:
        expected = api.recommend_user(1, 5, genres=["Comedy"])
    assert card_ids(ui) == [m.movie_id for m in expected.items]
    assert all("Comedy" in m.genres for m in expected.items)


def test_an_unknown_user_sees_the_popular_fallback_labelled(ui: AppTest) -> None:
    on_page(ui, "for_you", user="99999999")
    shown = texts(ui)
    assert "Popular fallback" in shown
    assert "no ratings yet" in shown
    assert len(card_ids(ui)) == 10


def test_a_suggested_user_can_be_picked(ui: AppTest) -> None:
    on_page(ui, "for_you")
    assert "Type a user id" in texts(ui)
    pills = ui.button_group(key="user_suggested")
    first = int(pills.options[0].split()[0])  # "19 (703 ratings)"
    pills.set_value(first).run()
    assert ui.number_input(key="user").value == first
    assert len(card_ids(ui)) == 10


def test_api_down_shows_a_banner_with_the_address(
    dead_api_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_for(dead_api_url, monkeypatch)
    app.query_params["user"] = "1"
    app.run()
    assert not app.exception
    [banner] = app.error
    assert "not answering" in banner.value
    assert dead_api_url in banner.value
    assert app.button(key="retry_api")


def test_what_was_typed_survives_a_trip_to_another_page(ui: AppTest) -> None:
    on_page(ui, "for_you", user="1")
    ui.multiselect(key="for_you_genres").set_value(["Comedy"]).run()
    ui.slider(key="for_you_k").set_value(15).run()
    ui.switch_page("views/browse.py").run()
    ui.switch_page("views/for_you.py").run()
    assert not ui.exception
    assert ui.multiselect(key="for_you_genres").value == ["Comedy"]
    assert ui.slider(key="for_you_k").value == 15
    assert len(card_ids(ui)) == 15
