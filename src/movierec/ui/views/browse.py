"""Browse: search and filter the catalogue, page by page; popular movies by genre."""

from __future__ import annotations

import math
from typing import Literal

import pandas as pd
import streamlit as st

from movierec.serving.schemas import MovieDetails, MoviePage
from movierec.ui.api import call, client
from movierec.ui.components import movie_cards
from movierec.ui.links import movie_urls
from movierec.ui.pickers import YEARS, genre_choice, title_search

PAGE_SIZES = (12, 24, 48)

st.title("Browse")
catalogue, popular = st.tabs(["Catalogue", "Popular by genre"])


@st.cache_data(ttl=300, show_spinner=False)
def details(movie_id: int) -> MovieDetails:
    return client().movie(movie_id)


with catalogue:
    title_col, genre_col, year_col, size_col = st.columns([3, 2, 3, 1])
    with title_col:
        title = title_search("browse_title", "Title contains")
    genre = genre_choice("browse_genre", genre_col)
    low, high = year_col.slider(
        "Years", *YEARS, value=YEARS, key="browse_years", persist_state="session"
    )
    size = size_col.selectbox("Per page", PAGE_SIZES, key="browse_size", persist_state="session")
    year_min = None if low == YEARS[0] else low
    year_max = None if high == YEARS[1] else high

    def matches(limit: int, offset: int = 0) -> MoviePage:
        return client().search_movies(
            title or None,
            genre=genre,
            year_min=year_min,
            year_max=year_max,
            limit=limit,
            offset=offset,
        )

    # A new search starts at its first page.
    searched = (title, genre, year_min, year_max, size)
    if st.session_state.get("browse_searched") != searched:
        st.session_state["browse_searched"] = searched
        st.session_state["browse_page"] = 1
    first = call(lambda: matches(1), "Searching")
    pages = max(1, math.ceil(first.total / size))
    page = st.number_input(
        f"Page (of {pages})", 1, pages, key="browse_page", persist_state="session"
    )
    found = call(
        lambda: matches(size, (page - 1) * size),
        "Searching",
    )
    st.caption(f"{found.total} movies match; showing {len(found.items)} from #{found.offset + 1}.")
    movie_cards(found.items, ranked=False)  # a catalogue page, not a ranking
    if found.items:
        rows = call(lambda: [details(m.movie_id) for m in found.items], "Reading links")
        table = pd.DataFrame(
            [
                {
                    "title": m.title,
                    "year": m.year,
                    "ratings": m.rating_count,
                    "mean": m.rating_mean,
                    **movie_urls(m),
                }
                for m in rows
            ]
        )
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                site: st.column_config.LinkColumn(site, display_text="open ↗")
                for site in ("MovieLens", "IMDb", "TMDb")
                if site in table
            },
        )

with popular:
    genre_col, by_col = st.columns([3, 2])
    chosen = genre_choice("popular_genre", genre_col)
    by: Literal["count", "rating"] = by_col.radio(
        "Most",
        ["count", "rating"],
        horizontal=True,
        key="popular_by",
        format_func={"count": "rated", "rating": "liked (mean, shrunk)"}.get,
        persist_state="session",
    )
    answer = call(lambda: client().popular(12, genre=chosen, by=by), "Finding popular movies")
    movie_cards(
        answer.items,
        scores=[m.score for m in answer.items],
        score_label="ratings" if by == "count" else "mean",
    )
