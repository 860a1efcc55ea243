"""Rate and watch it learn: rate movies as a user and see the recommendations before and after
(each rating is stored and folded into the user's next answer, no retraining)."""

from __future__ import annotations

import streamlit as st

from movierec.client import ClientError
from movierec.serving.schemas import Movie, Recommendation, RecommendationResponse
from movierec.ui.api import call, client, user_profile
from movierec.ui.components import movie_cards, rating_list, strategy_badge
from movierec.ui.pickers import movie_label, search, title_search, user_picker

BEFORE = "rate_before"  # user id -> the answer before this session's ratings
K = 10

st.title("Rate and watch it learn")
st.caption(
    "Rate movies as a user: each rating is stored at once and folded into the user's next "
    "recommendations. Before and after, side by side."
)
user_id = user_picker("rate_user")
if user_id is None:
    st.info("Type a user id or pick a suggested user.", icon=":material/touch_app:")
    st.stop()
user: int = user_id  # narrowed for the closures below

now = call(lambda: client().recommend_user(user, K), "Recommending")
before: dict[int, RecommendationResponse] = st.session_state.setdefault(BEFORE, {})
if user not in before:
    before[user] = now


def rate(movie_id: int, label: str) -> None:
    key = f"rate_{user}_{movie_id}"
    stars = st.session_state.get(key)
    if stars is None:
        return
    try:
        client().rate(user, movie_id, stars + 1.0)
    except ClientError as exc:
        # Not saved: the stars go back to empty rather than show a rating the store lacks.
        st.session_state[key] = None
        st.toast(f"Not saved: {exc}", icon=":material/error:")
        return
    st.toast(f"Saved: {stars + 1} ★ for {label}", icon=":material/check_circle:")


def rating_row(movie: Movie) -> None:
    name, stars = st.columns([3, 2], vertical_alignment="center")
    label = movie_label(movie)
    name.markdown(f"**{label}**")
    with stars:
        st.feedback(
            "stars",
            key=f"rate_{user}_{movie.movie_id}",
            on_change=rate,
            args=(movie.movie_id, label),
        )


rate_col, history_col = st.columns([3, 2], gap="large")
with rate_col:
    st.subheader("Rate")
    st.caption("Rate what the model suggested first, or search any movie.")
    # The suggestions of "before": rows that stay put while the answer changes under them.
    for item in before[user].items[:5]:
        rating_row(item)
    query = title_search("rate_search", "Search a movie to rate")
    if query:
        for movie in call(lambda: search(query, 6), "Searching"):
            rating_row(movie)
with history_col:
    st.subheader("Latest ratings")
    details = call(lambda: user_profile(user), "Reading the user's ratings")
    rating_list(details.recent_ratings if details else [], "No ratings yet.")


def cards(items: list[Recommendation], other: list[Recommendation], test_id: str) -> None:
    new = {m.movie_id for m in items} - {m.movie_id for m in other}
    movie_cards(
        items,
        scores=[m.score for m in items],
        reasons=[("new · " if m.movie_id in new else "") + (m.reason or "") for m in items],
        test_id=test_id,
    )


then = before[user]
st.divider()
left, right = st.columns(2, gap="large")
with left:
    st.subheader("Before")
    strategy_badge(then)
    cards(then.items, now.items, "mr-before")
with right:
    st.subheader("After")
    strategy_badge(now)
    cards(now.items, then.items, "mr-after")
if st.button("Start over from the current recommendations"):
    before[user] = now
    st.rerun()
