"""For you: a user's recommendations beside their history."""

from __future__ import annotations

import streamlit as st

from movierec.ui.api import call, client, user_profile
from movierec.ui.components import rating_list, recommendation_cards
from movierec.ui.pickers import filters, user_picker

st.title("For you")
st.caption("A user's top movies, why each was chosen, and what the user rated.")
user_id = user_picker("user")
wanted = filters("for_you")
if user_id is None:
    st.info("Type a user id or pick a suggested user.", icon=":material/touch_app:")
    st.stop()
user: int = user_id  # narrowed for the closures below


answer = call(
    lambda: client().recommend_user(
        user,
        wanted.k,
        genres=wanted.genres,
        year_min=wanted.year_min,
        year_max=wanted.year_max,
    ),
    "Recommending",
)
details = call(lambda: user_profile(user), "Reading the user's ratings")
main, side = st.columns([3, 1], gap="large")
with main:
    st.subheader(f"Recommended for user {user_id}")
    recommendation_cards(answer)
with side:
    if details is None:
        st.subheader("History")
        st.caption(f"User {user_id} has no ratings yet: the answer is popular movies.")
    else:
        st.subheader("History")
        mean = f", mean {details.mean_rating:.2f}" if details.mean_rating is not None else ""
        st.caption(f"{details.n_ratings} ratings{mean}")
        if details.favourite_genres:
            st.markdown(" ".join(f"`{g.genre} {g.share:.0%}`" for g in details.favourite_genres))
        st.markdown("**Recent**")
        rating_list(details.recent_ratings, "No ratings.")
        st.markdown("**Top rated**")
        rating_list(details.top_ratings, "No ratings.")
