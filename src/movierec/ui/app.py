"""movierec's UI: ``movierec ui`` runs this script with Streamlit.

Pages (``views/``, one file each) talk to the API through :mod:`movierec.ui.api` only. Deep
links: ``?user=ID`` opens For you for that user, ``?movie=ID`` opens Similar movies.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from movierec.ui import components
from movierec.ui.api import api_url

PAGES = Path(__file__).parent / "views"

st.set_page_config(page_title="movierec", page_icon=":material/movie:", layout="wide")
for_you = st.Page(
    PAGES / "for_you.py",
    title="For you",
    icon=":material/recommend:",
    url_path="for_you",
    default=True,
)
similar = st.Page(
    PAGES / "similar.py", title="Similar movies", icon=":material/hub:", url_path="similar"
)
page = st.navigation(
    {
        "Recommendations": [
            for_you,
            st.Page(
                PAGES / "cold_start.py",
                title="Start from movies you like",
                icon=":material/auto_awesome:",
                url_path="start",
            ),
            similar,
            st.Page(
                PAGES / "browse.py", title="Browse", icon=":material/movie:", url_path="browse"
            ),
            st.Page(
                PAGES / "rate.py",
                title="Rate and watch it learn",
                icon=":material/star:",
                url_path="rate",
            ),
        ],
        "Operations": [
            st.Page(
                PAGES / "models.py", title="Models", icon=":material/science:", url_path="models"
            ),
            st.Page(
                PAGES / "monitoring.py",
                title="Monitoring",
                icon=":material/monitoring:",
                url_path="monitoring",
            ),
            st.Page(
                PAGES / "experiments.py",
                title="Experiments",
                icon=":material/compare_arrows:",
                url_path="experiments",
            ),
        ],
    }
)
# The app's own address with only ?movie=ID (a shared link to a movie) opens its similar movies.
if (
    page.url_path == for_you.url_path
    and "movie" in st.query_params
    and "user" not in st.query_params
):
    st.switch_page(similar, query_params={"movie": st.query_params["movie"]})
with st.sidebar:
    st.caption(f"API: `{api_url()}`")
components.style()
page.run()
