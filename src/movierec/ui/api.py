"""The UI's way to the API: one shared client per address, errors turned into what a person
should see (a banner with the address and a retry, never a traceback).

Read calls share one :class:`~movierec.client.MovierecClient` per API address (a resource:
its connection pool is reused by every session). Admin calls make a client of their own for
the call, holding the key the person typed into their session: the key never enters a cache
key, a URL or a log.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NoReturn, TypeVar

import streamlit as st

from movierec.client import (
    API_URL_ENV,
    DEFAULT_URL,
    APIError,
    APIUnavailableError,
    MovierecClient,
    NotFoundError,
    ServerError,
)
from movierec.serving.schemas import UserDetails

T = TypeVar("T")
ADMIN_KEY = "admin_key"  # the session-state key of the typed admin key
TIMEOUT_SECONDS = 10.0


def api_url() -> str:
    return (os.environ.get(API_URL_ENV) or DEFAULT_URL).rstrip("/")


@st.cache_resource(show_spinner=False)
def _shared_client(url: str) -> MovierecClient:
    return MovierecClient(url, timeout=TIMEOUT_SECONDS)


def client() -> MovierecClient:
    """The shared read client of the configured API."""
    return _shared_client(api_url())


def admin_client() -> MovierecClient:
    """A client holding this session's admin key; close it after the call (``with``)."""
    return MovierecClient(api_url(), api_key=st.session_state.get(ADMIN_KEY) or None)


def user_profile(user_id: int) -> UserDetails | None:
    """A user's profile, None for a user without ratings."""
    try:
        return client().user(user_id)
    except NotFoundError:
        return None


def call(action: Callable[[], T], what: str = "Asking movierec") -> T:
    """``action()`` under a spinner; if the API is down or fails, a banner and the page stops.

    API errors a page handles itself (404 for an unknown movie, say) are raised as they are.
    """
    try:
        with st.spinner(f"{what}…", show_time=True):
            return action()
    except APIUnavailableError as exc:
        unavailable(exc)
    except ServerError as exc:
        failed(exc)


def unavailable(exc: APIUnavailableError) -> NoReturn:
    st.error(
        f"**The movierec API is not answering** at `{exc.url}`.\n\n"
        f"It may be starting, restarting or stopped ({exc.reason}). Start it with "
        f"`movierec serve`, or point the UI elsewhere with `{API_URL_ENV}`.",
        icon=":material/cloud_off:",
    )
    st.button("Retry", key="retry_api", type="primary")
    st.stop()


def failed(exc: APIError) -> NoReturn:
    st.error(f"**The API could not answer** ({exc.status}): {exc.detail}", icon=":material/error:")
    st.button("Retry", key="retry_api", type="primary")
    st.stop()
