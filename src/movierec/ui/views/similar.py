"""Similar movies: a movie's nearest neighbours by the served model, with shared genres."""

from __future__ import annotations

import streamlit as st

from movierec.client import NotFoundError
from movierec.serving.schemas import MovieDetails, SimilarResponse
from movierec.ui.api import call, client
from movierec.ui.components import model_label, movie_cards
from movierec.ui.links import movie_links
from movierec.ui.pickers import movie_label, search, title_search

st.title("Similar movies")
st.caption("Movies the served model ties closest to one you choose.")
query = title_search("similar_search", "Search a movie", "Start typing, e.g. toy story")
if query:
    found = call(lambda: search(query), "Searching")
    if not found:
        st.caption(f"No title contains “{query}”.")
    else:

        def chosen() -> None:
            picked = st.session_state.get("similar_pick")
            if picked is not None:
                st.session_state["movie"] = picked.movie_id

        st.selectbox(
            "Matches",
            found,
            format_func=movie_label,
            index=None,
            key="similar_pick",
            on_change=chosen,
            placeholder=f"{len(found)} matches: pick one",
        )
left, right = st.columns([1, 3])
movie_id = left.number_input(
    "Movie id",
    min_value=0,
    step=1,
    value=None,
    key="movie",
    bind="query-params",
    persist_state="session",
)
k = right.slider("How many", 5, 50, 10, step=5, key="similar_k", persist_state="session")
if movie_id is None:
    st.info("Search a movie or type its id.", icon=":material/touch_app:")
    st.stop()
chosen_id = int(movie_id)


def neighbours() -> tuple[MovieDetails, SimilarResponse] | None:
    try:
        return client().movie(chosen_id), client().similar(chosen_id, k)
    except NotFoundError:
        return None


found_movie = call(neighbours, "Finding similar movies")
if found_movie is None:
    st.error(f"There is no movie with id {movie_id} in the catalog.", icon=":material/search_off:")
    st.stop()
details, answer = found_movie
poster, about = st.columns([1, 4], gap="large")
with poster:
    movie_cards([details], test_id="mr-selected", ranked=False)
with about:
    st.subheader(movie_label(details))
    st.markdown(" · ".join(details.genres))
    mean = f", mean {details.rating_mean:.2f}" if details.rating_mean is not None else ""
    st.caption(f"{details.rating_count} ratings{mean} in the model's data")
    st.markdown(" · ".join(movie_links(details)))
    if not details.in_model:
        st.warning("The served model never saw this movie: its neighbours are a guess.")
st.subheader(f"Most like {details.title}")
st.caption(
    f"Model {model_label(answer.model)}; the bar is the similarity, "
    "highlighted genres are shared with the chosen movie."
)
movie_cards(
    answer.items,
    scores=[m.score for m in answer.items],
    shared_genres=details.genres,
    score_label="similarity",
)
