"""Choosing a user, a movie or filters: widgets several pages share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from movierec.serving.schemas import Movie
from movierec.ui.api import call, client
from movierec.ui.components import display_title

SUGGESTED_USERS = 8
SEARCH_RESULTS = 12
YEARS = (1900, 2030)


@st.cache_data(ttl=300, show_spinner=False)
def suggested_users() -> list[tuple[int, int]]:
    """A few users worth a look: the most active of the first ids, as (id, ratings)."""
    page = client().users(limit=200)
    ranked = sorted(page.items, key=lambda u: -u.n_ratings)[:SUGGESTED_USERS]
    return sorted((u.user_id, u.n_ratings) for u in ranked)


@st.cache_data(ttl=300, show_spinner=False)
def genre_names() -> list[str]:
    return [g.genre for g in client().genres().genres if g.genre != "(no genres listed)"]


@st.cache_data(ttl=60, show_spinner=False)
def search(title: str, limit: int = SEARCH_RESULTS) -> list[Movie]:
    return client().search_movies(title, limit=limit).items


def user_picker(key: str, label: str = "User id") -> int | None:
    """A user id: typed, or one of the suggested users. ``key`` is bound to the URL (``?key=``)
    and kept across pages."""
    typed = st.number_input(
        label,
        min_value=0,
        step=1,
        value=None,
        key=key,
        placeholder="e.g. 1",
        bind="query-params",
        persist_state="session",
    )
    users = dict(call(suggested_users, "Finding users"))

    def picked() -> None:
        choice = st.session_state.get(f"{key}_suggested")
        if choice is not None:
            st.session_state[key] = choice

    st.pills(
        "Suggested users",
        list(users),
        format_func=lambda u: f"{u} ({users[u]} ratings)",
        key=f"{key}_suggested",
        on_change=picked,
    )
    return None if typed is None else int(typed)


@dataclass(frozen=True)
class Filters:
    k: int
    genres: list[str]
    year_min: int | None
    year_max: int | None


def filters(key: str) -> Filters:
    """How many movies, which genres, which years: kept across pages under ``key``."""
    left, middle, right = st.columns([1, 2, 2])
    k = left.slider("How many", 5, 50, 10, step=5, key=f"{key}_k", persist_state="session")
    genres = middle.multiselect(
        "Genres (any of)",
        call(genre_names, "Reading genres"),
        key=f"{key}_genres",
        persist_state="session",
        placeholder="All genres",
    )
    low, high = right.slider(
        "Years", *YEARS, value=YEARS, key=f"{key}_years", persist_state="session"
    )
    return Filters(
        k=k,
        genres=genres,
        year_min=None if low == YEARS[0] else low,
        year_max=None if high == YEARS[1] else high,
    )


def title_search(key: str, label: str, placeholder: str | None = None) -> str:
    """A title search that answers as the person types (kept across pages under ``key``)."""
    query = st.text_input(
        label, key=key, live="300ms", persist_state="session", placeholder=placeholder
    )
    return query or ""


def genre_choice(key: str, container: Any = st) -> str | None:
    """One genre, or None for all of them (kept across pages under ``key``)."""
    choice: str | None = container.selectbox(
        "Genre",
        call(genre_names, "Reading genres"),
        index=None,
        key=key,
        persist_state="session",
        placeholder="All genres",
    )
    return choice


def movie_label(movie: Movie) -> str:
    title = display_title(movie.title)
    return f"{title} ({movie.year})" if movie.year else title
