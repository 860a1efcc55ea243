"""Pieces the pages share: the page's style, movie cards, a history list, the answer's label."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape
from typing import Protocol

import streamlit as st

from movierec.serving.schemas import ModelRef, RecommendationResponse, UserRating
from movierec.ui.posters import poster_src

STYLE = """
<style>
.mr-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:14px}
.mr-card{background:var(--st-secondary-background-color,#f4f5f7);border-radius:10px;
  overflow:hidden;display:flex;flex-direction:column;box-shadow:0 1px 3px #0002}
.mr-card img{width:100%;aspect-ratio:2/3;object-fit:cover;display:block}
.mr-body{padding:8px 10px 10px;font-size:.82rem;line-height:1.3;display:flex;
  flex-direction:column;gap:3px;flex:1}
.mr-rank{font-size:.7rem;opacity:.6}
.mr-title{font-weight:600;font-size:.9rem}
.mr-title a{color:inherit;text-decoration:none}
.mr-title a:hover{text-decoration:underline}
.mr-meta{opacity:.75}
.mr-bar{height:5px;background:#0001;border-radius:3px;overflow:hidden;margin-top:2px}
.mr-bar span{display:block;height:100%;background:#ff4b4b}
.mr-reason{font-style:italic;opacity:.85;margin-top:auto}
.mr-chip{display:inline-block;border-radius:10px;padding:0 7px;margin:1px 2px 1px 0;
  font-size:.7rem;background:#ff4b4b22}
.mr-chip.shared{background:#ff4b4b;color:#fff}
</style>
"""
# "Godfather, The (a.k.a. ...)": the name, its trailing article, then anything in parentheses.
ARTICLE_LAST = re.compile(r"^(?P<name>.+?), (?P<article>The|A|An)(?P<rest>( \(.*\))?)$")
STRATEGY_LABELS = {
    "personalized": (
        "Personalized",
        "from this user's ratings, as the model learned them",
        ":material/person:",
    ),
    "folded_in": (
        "Folded in",
        "the model folded in ratings it never trained on",
        ":material/extension:",
    ),
    "popular_fallback": (
        "Popular fallback",
        "the model cannot personalize for this user: popular movies instead",
        ":material/trending_up:",
    ),
}


class MovieLike(Protocol):
    movie_id: int
    title: str
    year: int | None
    genres: list[str]


def style() -> None:
    """The cards' style, once per page run."""
    st.html(STYLE)


def movie_cards(
    movies: Sequence[MovieLike],
    *,
    scores: Sequence[float] | None = None,
    reasons: Sequence[str | None] | None = None,
    shared_genres: Iterable[str] = (),
    score_label: str = "score",
    test_id: str = "mr-card",
    ranked: bool = True,
) -> None:
    """Movies as a grid of poster cards, in the given order.

    ``scores`` draw a bar scaled to the largest; ``reasons`` are the API's "because you liked X";
    genres in ``shared_genres`` are highlighted. Each card links to the movie's similar movies.
    """
    if not movies:
        st.info("No movies to show.", icon=":material/movie:")
        return
    shared = set(shared_genres)
    top = max((s for s in scores or [] if s > 0), default=1.0)
    cards = [
        _card(
            rank,
            movie,
            None if scores is None else scores[rank],
            top,
            None if reasons is None else reasons[rank],
            shared,
            score_label,
            test_id,
            ranked,
        )
        for rank, movie in enumerate(movies)
    ]
    st.html(f'<div class="mr-grid">{"".join(cards)}</div>')


def _card(  # noqa: PLR0917 (one card's every part, in display order)
    rank: int,
    movie: MovieLike,
    score: float | None,
    top: float,
    reason: str | None,
    shared: set[str],
    score_label: str,
    test_id: str,
    ranked: bool,
) -> str:
    named = display_title(movie.title)
    poster = poster_src(movie.movie_id, named, movie.year, tuple(movie.genres))
    chips = "".join(
        f'<span class="mr-chip{" shared" if g in shared else ""}">{escape(g)}</span>'
        for g in movie.genres
        if g != "(no genres listed)"
    )
    bar = ""
    if score is not None:
        width = max(0.0, min(1.0, score / top)) * 100 if top > 0 else 0
        bar = (
            f'<div class="mr-meta">{score_label} {score:.3g}</div>'
            f'<div class="mr-bar"><span style="width:{width:.0f}%"></span></div>'
        )
    why = f'<div class="mr-reason">{escape(reason)}</div>' if reason else ""
    position = f'<div class="mr-rank">#{rank + 1}</div>' if ranked else ""
    title = escape(named)
    return (
        f'<div class="mr-card" data-testid="{test_id}" data-movie-id="{movie.movie_id}">'
        f'<img src="{poster}" alt="{title}">'
        f'<div class="mr-body">{position}'
        f'<div class="mr-title"><a href="similar?movie={movie.movie_id}" target="_self" '
        f'title="Similar movies">{title}</a></div>'
        f'<div class="mr-meta">{movie.year or "year unknown"}</div><div>{chips}</div>'
        f"{bar}{why}</div></div>"
    )


def recommendation_cards(answer: RecommendationResponse) -> None:
    """A recommendation answer: its strategy and model, then its cards with their reasons."""
    strategy_badge(answer)
    movie_cards(
        answer.items,
        scores=[m.score for m in answer.items],
        reasons=[m.reason for m in answer.items],
    )


def strategy_badge(answer: RecommendationResponse) -> None:
    """How the answer was made (personalized, folded in, popular fallback) and by which model."""
    label, meaning, icon = STRATEGY_LABELS[answer.strategy]
    text = f"**{label}**: {meaning}. Model: {model_label(answer.model)}."
    if answer.strategy == "popular_fallback":
        st.warning(text, icon=icon)
    else:
        st.info(text, icon=icon)
    if answer.ignored_movie_ids:
        ids = ", ".join(str(i) for i in answer.ignored_movie_ids)
        st.caption(f"The model does not know movies {ids}: they were not used.")


def model_label(model: ModelRef) -> str:
    """``als`` v3 (registry), or ``als`` (a local folder, not registered)."""
    if model.version is None:
        return f"`{model.name}` ({model.source}, not registered)"
    return f"`{model.name}` v{model.version} ({model.source})"


def display_title(title: str) -> str:
    """MovieLens' sorting form as people say it: "Godfather, The" -> "The Godfather"."""
    match = ARTICLE_LAST.match(title)
    return f"{match['article']} {match['name']}{match['rest']}" if match else title


def rating_list(ratings: Sequence[UserRating], empty: str) -> None:
    """A compact list of a user's ratings: stars, title (linking to similar movies)."""
    if not ratings:
        st.caption(empty)
        return
    lines = [
        f"{_stars(r.rating)} [{display_title(r.title)}](similar?movie={r.movie_id}) · {r.rating:g}"
        for r in ratings
    ]
    st.markdown("\n".join(f"- {line}" for line in lines))


def _stars(rating: float) -> str:
    full = min(5, max(0, round(rating)))
    return "★" * full + "☆" * (5 - full)
