"""Browse: search and filter the catalogue with pagination and links; popular by genre."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from movierec.client import MovierecClient
from tests.ui.conftest import card_ids, on_page


def test_search_filters_and_pages_match_the_api(ui: AppTest, api_url: str) -> None:
    on_page(ui, "browse")
    ui.text_input(key="browse_title").input("star").run()
    ui.selectbox(key="browse_genre").select("Sci-Fi").run()
    with MovierecClient(api_url) as api:
        first = api.search_movies("star", genre="Sci-Fi", limit=12)
        second = api.search_movies("star", genre="Sci-Fi", limit=12, offset=12)
    assert first.total > 12  # enough for a second page
    assert card_ids(ui)[:12] == [m.movie_id for m in first.items]
    ui.number_input(key="browse_page").set_value(2).run()
    assert card_ids(ui)[:12] == [m.movie_id for m in second.items]
    ui.text_input(key="browse_title").input("star wars").run()
    assert ui.number_input(key="browse_page").value == 1  # a new search starts at page 1


def test_each_movie_links_out_where_the_data_set_has_ids(ui: AppTest) -> None:
    on_page(ui, "browse")
    ui.text_input(key="browse_title").input("toy story").run()
    table = ui.dataframe[0].value
    assert {"MovieLens", "IMDb", "TMDb"} <= set(table.columns)
    toy = table[table["title"] == "Toy Story"].iloc[0]
    assert toy["IMDb"] == "https://www.imdb.com/title/tt0114709/"
    assert toy["TMDb"] == "https://www.themoviedb.org/movie/862"
    assert toy["MovieLens"] == "https://movielens.org/movies/1"


def test_popular_by_genre(ui: AppTest, api_url: str) -> None:
    on_page(ui, "browse")
    ui.selectbox(key="popular_genre").select("Horror").run()
    with MovierecClient(api_url) as api:
        expected = api.popular(12, genre="Horror")
    # The popular tab's cards follow the catalogue's.
    assert card_ids(ui)[-12:] == [m.movie_id for m in expected.items]
