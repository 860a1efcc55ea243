"""Similar movies: search or deep link, the neighbours with shared genres, unknown ids."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from movierec.client import MovierecClient
from tests.ui.conftest import card_ids, on_page, texts


def test_deep_link_shows_the_movie_and_its_neighbours(ui: AppTest, api_url: str) -> None:
    on_page(ui, "similar", movie="1")
    with MovierecClient(api_url) as api:
        expected = api.similar(1, 10)
    assert card_ids(ui, "mr-selected") == [1]
    assert card_ids(ui) == [m.movie_id for m in expected.items]
    shown = texts(ui)
    assert "Toy Story (1995)" in shown
    assert "IMDb" in shown  # links.csv ids
    body = "".join(e.proto.body for e in ui.get("html"))
    assert 'mr-chip shared">Animation' in body  # a shared genre is highlighted


def test_the_root_address_with_a_movie_opens_similar_movies(ui: AppTest) -> None:
    ui.query_params["movie"] = "1"
    ui.run()  # the app's default page, as a shared link opens it
    assert not ui.exception
    assert card_ids(ui, "mr-selected") == [1]


def test_searching_a_title_picks_the_movie(ui: AppTest) -> None:
    on_page(ui, "similar")
    ui.text_input(key="similar_search").input("jumanji").run()
    matches = ui.selectbox(key="similar_pick")
    assert any("Jumanji" in str(option) for option in matches.options)
    matches.select_index(0).run()
    assert ui.number_input(key="movie").value == 2
    assert card_ids(ui, "mr-selected") == [2]


def test_an_unknown_movie_id_is_a_clear_message(ui: AppTest) -> None:
    on_page(ui, "similar", movie="987654321")
    [message] = ui.error
    assert "no movie with id 987654321" in message.value
