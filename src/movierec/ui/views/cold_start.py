"""Start from movies you like: a new visitor picks a few movies and gets recommendations at
once (folded into the model, no retraining); "save as my profile" makes them a user."""

from __future__ import annotations

import random

import streamlit as st

from movierec.client import NotFoundError
from movierec.serving.schemas import Movie, NewRating
from movierec.ui.api import call, client
from movierec.ui.components import recommendation_cards
from movierec.ui.pickers import movie_label, search, title_search

PICKED = "cold_start_picked"  # the picked movies (a plain session value: kept across pages)
UNRATED = 5.0  # a pick without stars counts as a top rating, when other picks have stars
NEW_USER_IDS = (1_000_000, 2**31 - 1)
# The API personalizes a new user's own recommendations from their third known movie on (an
# anonymous answer folds in any number): a profile saved with fewer would get popular movies.
PROFILE_MIN_PICKS = 3

st.title("Start from movies you like")
st.caption(
    "Pick a few movies you liked, rate them if you wish: recommendations come at once, "
    "without retraining (the model folds your picks in)."
)
picked: dict[int, Movie] = st.session_state.setdefault(PICKED, {})
query = title_search("cold_search", "Search titles", "Start typing, e.g. matrix")
if query:
    found = [m for m in call(lambda: search(query), "Searching") if m.movie_id not in picked]
    if not found:
        st.caption(f"No other title contains “{query}”.")
    columns = st.columns(3)
    for i, movie in enumerate(found):
        if columns[i % 3].button(
            movie_label(movie), key=f"add_{movie.movie_id}", icon=":material/add:"
        ):
            picked[movie.movie_id] = movie
            st.rerun()

if not picked:
    st.info("Search and add a few movies to begin.", icon=":material/touch_app:")
    st.stop()
st.subheader("Your picks")
ratings: dict[int, float] = {}
for movie_id, movie in list(picked.items()):
    name, stars, remove = st.columns([4, 2, 1], vertical_alignment="center")
    name.markdown(f"**{movie_label(movie)}**  \n{' · '.join(movie.genres)}")
    with stars:
        given = st.feedback("stars", key=f"stars_{movie_id}")
    if given is not None:
        ratings[movie_id] = given + 1.0
    if remove.button("Remove", key=f"remove_{movie_id}", icon=":material/close:"):
        del picked[movie_id]
        st.rerun()
history = {m: ratings.get(m, UNRATED) for m in picked} if ratings else None
if ratings:
    st.caption("Picks without stars count as 5 stars.")

answer = call(
    lambda: client().recommend_anonymous(ratings=history, liked=None if history else list(picked)),
    "Recommending",
)
st.subheader("Recommended for you")
recommendation_cards(answer)


def free_user_id() -> int:
    """A user id nobody has yet (drawn at random, checked against the API)."""
    while True:
        candidate = random.randint(*NEW_USER_IDS)
        try:
            client().user(candidate)
        except NotFoundError:
            return candidate


too_few = len(picked) < PROFILE_MIN_PICKS
if st.button(
    "Save as my profile",
    type="primary",
    icon=":material/save:",
    key="save_profile",
    disabled=too_few,
    help=f"Pick at least {PROFILE_MIN_PICKS} movies to save a profile." if too_few else None,
):
    user_id = call(free_user_id, "Finding a free user id")
    rated = history or dict.fromkeys(picked, UNRATED)
    call(
        lambda: client().add_ratings(
            NewRating(user_id=user_id, movie_id=m, rating=r) for m, r in rated.items()
        ),
        "Saving your ratings",
    )
    st.session_state[PICKED] = {}
    st.switch_page("views/for_you.py", query_params={"user": str(user_id)})
