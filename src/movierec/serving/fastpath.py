"""A lean path for the three hot recommendation routes, in front of FastAPI's whole stack.

FastAPI's routing, parameter and dependency handling and response validation cost about as
much CPU per request as the recommendation itself (~0.5 ms on the benchmark's 2-core machine,
measured). For a *clean* request to one of

* ``GET /users/{user_id}/recommendations`` (query ``k``, ``genres``, ``year_min``,
  ``year_max``, ``exclude_seen``),
* ``POST /recommend/anonymous`` (a JSON body),
* ``GET /movies/{movie_id}/similar`` (query ``k``),
* ``POST /ratings`` (a JSON body: live ratings, thousands a second),

this layer, in front of all the others (see :class:`movierec.serving.app.API`), parses the
parameters itself, calls the very route function FastAPI would call (so the behaviour is the
route's), sends the JSON bytes the route returns (the bytes FastAPI sends) and counts the
request in the metrics under its route template, as the metrics middleware counts the others.
Anything unusual (an unknown or repeated query parameter, a number not written plainly, another
content type, a body over the limit, any error the route raises) goes through the app's whole
stack unchanged, which answers it as always: every error (422, 404, 413, 503, 500) keeps coming
from the app's middleware and handlers, and ``/docs`` and the OpenAPI schema still describe the
routes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from movierec.serving.deps import checked_k
from movierec.serving.limits import replay
from movierec.serving.routes import movies, ratings, recommend
from movierec.serving.routes.movies import similar_movies
from movierec.serving.routes.ratings import post_ratings
from movierec.serving.routes.recommend import recommend_anonymous, user_recommendations
from movierec.serving.schemas import MAX_K_CEILING, AnonymousRequest, NewRating, RatingBatch

MAX_ID = 2**63 - 1  # the routes' ``le`` bound on user and movie ids
MAX_YEAR = 9999  # schemas.Year
MAX_GENRES = 100  # the ``genres`` query's max_length (values, and characters per value)
DEFAULT_K = 10
BOOLEANS = {"true": True, "false": False}  # other spellings pydantic accepts fall back


class UnusualRequestError(Exception):
    """The request is not one the lean path answers: FastAPI's route does."""


Handler = Callable[[Any, str, Mapping[str, list[str]], bytes], Awaitable[Response]]


class FastPathMiddleware:
    """Answer clean requests to the hot routes without FastAPI's routing (see the module)."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        # The route objects, found by their endpoints: their templates label the metrics.
        self.routes = {
            route.endpoint: route
            for router in (recommend.router, movies.router, ratings.router)
            for route in router.routes
            if isinstance(route, APIRoute)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = self._match(scope) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route, handler, path_value = match
        state = self.api.state
        body: Message | bytes = b""
        if scope["method"] == "POST":
            body = await _read_body(receive, state.settings.max_body_bytes)
        if not isinstance(body, bytes):  # the stack answers (413) or sees the client leave
            await self.app(scope, replay([], body, receive), send)
            return
        try:
            query = _query(scope["query_string"])
            answer = await handler(state, path_value, query, body)
        except Exception:  # the route answers every error, with its handlers
            await self.app(scope, replay([body], None, receive), send)
            return
        await send_answer(send, answer)
        state.metrics.request_done(
            scope["method"], route.path, answer.status_code, time.perf_counter() - started
        )

    def _match(self, scope: Scope) -> tuple[APIRoute, Handler, str] | None:
        """The hot route a request names, its handler and path parameter, else None."""
        if scope.get("root_path"):
            return None
        method, path = scope["method"], scope["path"]
        handler: Handler
        endpoint: Callable[..., Any]
        if method == "GET" and path.startswith("/users/") and path.endswith("/recommendations"):
            endpoint, handler, value = user_recommendations, _user, path[7:-16]
        elif method == "GET" and path.startswith("/movies/") and path.endswith("/similar"):
            endpoint, handler, value = similar_movies, _similar, path[8:-8]
        elif method == "POST" and path == "/recommend/anonymous" and _is_json(scope["headers"]):
            endpoint, handler, value = recommend_anonymous, _anonymous, ""
        elif method == "POST" and path == "/ratings" and _is_json(scope["headers"]):
            endpoint, handler, value = post_ratings, _ratings, ""
        else:
            return None
        route = self.routes.get(endpoint)
        return None if route is None else (route, handler, value)


async def send_answer(send: Send, answer: Response) -> None:
    """``answer`` as FastAPI sends it (a route's answer is never streamed nor backgrounded)."""
    await send(
        {"type": "http.response.start", "status": answer.status_code, "headers": answer.raw_headers}
    )
    await send({"type": "http.response.body", "body": answer.body})


# ---------------------------------------------------------------- the routes


async def _user(state: Any, user_id: str, query: Mapping[str, list[str]], _: bytes) -> Response:
    _only(query, {"k", "genres", "year_min", "year_max", "exclude_seen"})
    genres = query.get("genres")
    if genres is not None and (
        len(genres) > MAX_GENRES or any(len(g) > MAX_GENRES for g in genres)
    ):
        raise UnusualRequestError
    exclude_seen = BOOLEANS[_single(query, "exclude_seen", "true")]
    return await user_recommendations(
        user_id=_number(user_id, 0, MAX_ID),
        k=_k(state, query),
        service=state.service,
        metrics=state.metrics,
        monitor=state.monitor,
        experiments=state.experiments,
        dismissals=state.dismissals,
        genres=genres,
        year_min=_optional_number(query, "year_min", 0, MAX_YEAR),
        year_max=_optional_number(query, "year_max", 0, MAX_YEAR),
        exclude_seen=exclude_seen,
    )


async def _similar(state: Any, movie_id: str, query: Mapping[str, list[str]], _: bytes) -> Response:
    _only(query, {"k"})
    return await similar_movies(
        _number(movie_id, 0, MAX_ID), _k(state, query), state.service, state.metrics
    )


async def _anonymous(state: Any, _: str, query: Mapping[str, list[str]], body: bytes) -> Response:
    if query:
        raise UnusualRequestError
    # pydantic parses the JSON itself: twice as fast as json.loads and a validation of the
    # Python objects, which FastAPI does. A body either way refuses falls back to the route,
    # whose error is FastAPI's; both accept the same clean bodies (tests/serving/test_fastpath).
    request = AnonymousRequest.model_validate_json(body)
    return await recommend_anonymous(
        request,
        service=state.service,
        settings=state.settings,
        metrics=state.metrics,
        monitor=state.monitor,
        experiments=state.experiments,
    )


_RATINGS_BODY: TypeAdapter[NewRating | RatingBatch] = TypeAdapter(NewRating | RatingBatch)


async def _ratings(state: Any, _: str, query: Mapping[str, list[str]], body: bytes) -> Response:
    if query:
        raise UnusualRequestError
    return await post_ratings(
        _RATINGS_BODY.validate_json(body),
        service=state.service,
        settings=state.settings,
        metrics=state.metrics,
    )


# ---------------------------------------------------------------- parameters


def _query(raw: bytes) -> dict[str, list[str]]:
    """The query's values by name, decoded as Starlette does."""
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        values.setdefault(name, []).append(value)
    return values


def _only(query: Mapping[str, list[str]], known: set[str]) -> None:
    if not known.issuperset(query):
        raise UnusualRequestError


def _single(query: Mapping[str, list[str]], name: str, default: str) -> str:
    values = query.get(name)
    if values is None:
        return default
    if len(values) != 1:
        raise UnusualRequestError
    return values[0]


def _number(text: str, low: int, high: int) -> int:
    """A plainly written integer within bounds (digits only, no sign, no leading zero)."""
    if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text[0] == "0"):
        raise UnusualRequestError
    number = int(text)
    if not low <= number <= high:
        raise UnusualRequestError
    return number


def _optional_number(query: Mapping[str, list[str]], name: str, low: int, high: int) -> int | None:
    return None if name not in query else _number(_single(query, name, ""), low, high)


def _k(state: Any, query: Mapping[str, list[str]]) -> int:
    k = _number(_single(query, "k", str(DEFAULT_K)), 1, MAX_K_CEILING)
    return checked_k(k, state.settings)


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"content-type" and value == b"application/json" for name, value in headers)


async def _read_body(receive: Receive, max_bytes: int) -> Message | bytes:
    """The whole body, or else a message for the stack to answer: the one that ended it early
    (the client went away), or the body so far once it outgrows ``max_bytes`` (a 413)."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return {"type": "http.request", "body": b"".join(chunks)}
        if not message.get("more_body", False):
            return b"".join(chunks)
