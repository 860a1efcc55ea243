"""A typed Python client of movierec's HTTP API: one method per route, the API's own response
models, clear exceptions.

::

    from movierec.client import MovierecClient

    with MovierecClient("http://127.0.0.1:8000") as api:
        answer = api.recommend_user(1, k=10, genres=["Comedy"])
        for movie in answer.items:
            print(movie.title, movie.score, movie.reason)

Every answer is validated into the pydantic model the API documents
(:mod:`movierec.serving.schemas`, the only part of movierec this module imports). Errors:

* :class:`APIUnavailableError`: no answer (refused connection, DNS, timeout), with the address;
* :class:`NotFoundError` (404), :class:`AuthError` (401/403), :class:`RequestRejectedError`
  (any other 4xx) and :class:`ServerError` (5xx), each with the status and the API's message.

The admin key is sent only with the admin calls (training, tuning, jobs, reload), never with
the read routes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from movierec.serving.control_schemas import (
    DismissalRequest,
    DismissalResponse,
    DismissalsResponse,
    GroupRequest,
    GroupResponse,
)
from movierec.serving.experiment_schemas import (
    ExperimentDetails,
    ExperimentRequest,
    ExperimentResponse,
    ExperimentsResponse,
    PromotionResponse,
)
from movierec.serving.schemas import (
    AnonymousRequest,
    DriftResponse,
    Filters,
    GeneratedRatings,
    GenerateRatings,
    GenresResponse,
    HealthResponse,
    HistoryRating,
    JobResponse,
    JobsStatus,
    LeaderboardResponse,
    ModelInfoResponse,
    MovieDetails,
    MoviePage,
    NewRating,
    OnlineResponse,
    PopularResponse,
    RatingBatch,
    RatingsStored,
    ReadyResponse,
    RecommendationResponse,
    RegistryResponse,
    ReloadResponse,
    ServedHistoryResponse,
    ServedStatsResponse,
    SimilarResponse,
    StatsResponse,
    TrainingRequest,
    TuningRequest,
    UserDetails,
    UserPage,
)

DEFAULT_URL = "http://127.0.0.1:8000"
API_URL_ENV = "MOVIEREC_API_URL"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
Model = TypeVar("Model", bound=BaseModel)


class ClientError(Exception):
    """Base of the client's errors."""


class APIUnavailableError(ClientError):
    """The API did not answer: down, restarting, unreachable or too slow."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"the movierec API at {url} did not answer: {reason}")
        self.url = url
        self.reason = reason


class APIError(ClientError):
    """The API answered with an error status; ``detail`` is its message."""

    def __init__(self, status: int, detail: str, method: str, path: str) -> None:
        super().__init__(f"{method} {path} failed ({status}): {detail}")
        self.status = status
        self.detail = detail


class NotFoundError(APIError):
    """404: the user, movie or job does not exist."""


class AuthError(APIError):
    """401 or 403: a missing or wrong admin key, or admin routes disabled on the server."""


class RequestRejectedError(APIError):
    """Another 4xx: the request was invalid (the message says why) or refused (409, 413)."""


class ServerError(APIError):
    """5xx: the server failed or is not ready (503: no model loaded, store unreachable)."""


def _error_class(status: int) -> type[APIError]:
    if status == 404:
        return NotFoundError
    if status in {401, 403}:
        return AuthError
    return ServerError if status >= 500 else RequestRejectedError


class MovierecClient:
    """A client of one movierec API server.

    Args:
        base_url: The server's address; ``MOVIEREC_API_URL`` or ``http://127.0.0.1:8000``
            when None.
        api_key: The admin key, sent (as ``X-API-Key``) only by the admin methods.
        timeout: Seconds per request (or an ``httpx.Timeout``).
        transport: An ``httpx`` transport (e.g. to reuse connections differently).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get(API_URL_ENV) or DEFAULT_URL).rstrip("/")
        self._api_key = api_key
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------ health and models

    def health(self) -> HealthResponse:
        """Whether the process answers."""
        return self._get("/health", HealthResponse)

    def ready(self) -> ReadyResponse:
        """Whether a model is loaded and the store answers (:class:`ServerError` if not)."""
        return self._get("/ready", ReadyResponse)

    def current_model(self) -> ModelInfoResponse:
        """The served model: name, version, metrics, snapshot, load time."""
        return self._get("/models/current", ModelInfoResponse)

    def registry(self) -> RegistryResponse:
        """Every registered version, newest first, with aliases and metrics."""
        return self._get("/models", RegistryResponse)

    def leaderboard(self) -> LeaderboardResponse:
        """The models the latest pipeline run scored."""
        return self._get("/models/leaderboard", LeaderboardResponse)

    def stats(self) -> StatsResponse:
        """Counts of users, movies and ratings in the store."""
        return self._get("/stats", StatsResponse)

    def metrics_text(self) -> str:
        """The Prometheus exposition of ``/metrics``."""
        return self._send("GET", "/metrics").text

    # ------------------------------------------------------------ monitoring

    def served_stats(self) -> ServedStatsResponse:
        """Served quality per model version: the last hour, the last day, since the start."""
        return self._get("/monitoring/stats", ServedStatsResponse)

    def served_history(self, hours: int = 24, step_minutes: int = 10) -> ServedHistoryResponse:
        """Served quality per interval over the last ``hours``, per model version."""
        params = {"hours": hours, "step_minutes": step_minutes}
        return self._get("/monitoring/stats/history", ServedHistoryResponse, params)

    def online(self, days: float | None = None) -> OnlineResponse:
        """Online hit and positive rates per model version (horizon ``days``: the server's)."""
        return self._get("/monitoring/online", OnlineResponse, {"days": days})

    def drift(self, start: int | None = None, end: int | None = None) -> DriftResponse:
        """Data drift of the ratings in ``[start, end)`` (epoch seconds; default: all since the
        served model's training data) from that data; 409 when the model records none."""
        return self._get("/monitoring/drift", DriftResponse, {"start": start, "end": end})

    def drift_report_url(self) -> str:
        """The address of the Evidently HTML report of the default window."""
        return f"{self.base_url}/monitoring/drift/report"

    # ------------------------------------------------------------ movies

    def search_movies(
        self,
        title: str | None = None,
        *,
        genre: str | None = None,
        year_min: int | None = None,
        year_max: int | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> MoviePage:
        """Movies whose title contains ``title`` (any case), of ``genre``, within the years."""
        params = {"title": title, "genre": genre, "year_min": year_min, "year_max": year_max}
        return self._get("/movies", MoviePage, {**params, "limit": limit, "offset": offset})

    def movie(self, movie_id: int) -> MovieDetails:
        """One movie with its links and rating figures (:class:`NotFoundError` if unknown)."""
        return self._get(f"/movies/{movie_id}", MovieDetails)

    def popular(
        self, k: int = 10, *, genre: str | None = None, by: Literal["count", "rating"] = "count"
    ) -> PopularResponse:
        """The most rated (or best rated) movies, overall or in one genre."""
        return self._get("/movies/popular", PopularResponse, {"k": k, "genre": genre, "by": by})

    def genres(self) -> GenresResponse:
        """Every genre with its number of movies."""
        return self._get("/genres", GenresResponse)

    def similar(self, movie_id: int, k: int = 10) -> SimilarResponse:
        """The movies most like ``movie_id``."""
        return self._get(f"/movies/{movie_id}/similar", SimilarResponse, {"k": k})

    # ------------------------------------------------------------ users and recommendations

    def users(self, limit: int = 20, offset: int = 0) -> UserPage:
        """Users with ratings, by id."""
        return self._get("/users", UserPage, {"limit": limit, "offset": offset})

    def user(self, user_id: int) -> UserDetails:
        """A user's profile: counts, favourite genres, latest and highest ratings."""
        return self._get(f"/users/{user_id}", UserDetails)

    def recommend_user(
        self,
        user_id: int,
        k: int = 10,
        *,
        genres: Iterable[str] | None = None,
        year_min: int | None = None,
        year_max: int | None = None,
        exclude_seen: bool = True,
        exclude: Iterable[int] | None = None,
        diversity: float | None = None,
        cursor: str | None = None,
    ) -> RecommendationResponse:
        """Top-``k`` movies for a user; an unknown user gets popular ones (``strategy`` says).
        ``cursor``: ``""`` for a first page, then the answer's ``page.next_cursor``."""
        params = {
            "k": k,
            "genres": list(genres) if genres else None,
            "year_min": year_min,
            "year_max": year_max,
            "exclude_seen": exclude_seen,
            "exclude": list(exclude) if exclude else None,
            "diversity": diversity,
            "cursor": cursor,
        }
        return self._get(f"/users/{user_id}/recommendations", RecommendationResponse, params)

    def recommend_anonymous(
        self,
        *,
        ratings: Mapping[int, float] | None = None,
        liked: Iterable[int] | None = None,
        k: int = 10,
        filters: Filters | None = None,
        session_id: str | None = None,
    ) -> RecommendationResponse:
        """Top-``k`` movies for a visitor from their ratings (movie id -> rating) or a list of
        liked movies: exactly one of the two. ``session_id`` puts the visitor in a running
        experiment (the same arm for the same session)."""
        body = AnonymousRequest(
            ratings=None
            if ratings is None
            else [HistoryRating(movie_id=m, rating=r) for m, r in ratings.items()],
            liked=None if liked is None else list(liked),
            k=k,
            filters=filters,
            session_id=session_id,
        )
        return self._post("/recommend/anonymous", body, RecommendationResponse)

    def recommend_group(
        self, user_ids: Iterable[int], k: int = 10, method: str = "average"
    ) -> GroupResponse:
        """One list for a group (``average`` or ``least_misery``)."""
        body = GroupRequest.model_validate({"user_ids": list(user_ids), "k": k, "method": method})
        return self._post("/recommend/group", body, GroupResponse)

    def dismiss(self, user_id: int, movie_id: int) -> DismissalResponse:
        """Never recommend ``movie_id`` to ``user_id`` again (until undone)."""
        body = DismissalRequest(movie_id=movie_id)
        return self._post(f"/users/{user_id}/dismissals", body, DismissalResponse)

    def undo_dismissal(self, user_id: int, movie_id: int) -> DismissalResponse:
        """Undo a dismissal (:class:`NotFoundError` when there was none)."""
        path = f"/users/{user_id}/dismissals/{movie_id}"
        return _parsed(self._send("DELETE", path), DismissalResponse)

    def dismissals(self, user_id: int) -> DismissalsResponse:
        """A user's dismissals, newest first."""
        return self._get(f"/users/{user_id}/dismissals", DismissalsResponse)

    def add_ratings(self, ratings: Iterable[NewRating]) -> RatingsStored:
        """Store ratings (durable when this returns); the next recommendations use them."""
        return self._post("/ratings", RatingBatch(ratings=list(ratings)), RatingsStored)

    def rate(self, user_id: int, movie_id: int, rating: float) -> RatingsStored:
        """Store one rating, timestamped now by the server."""
        body = NewRating(user_id=user_id, movie_id=movie_id, rating=rating)
        return self._post("/ratings", body, RatingsStored)

    # ------------------------------------------------------------ admin

    def start_training(self, config: str | None = None) -> JobResponse:
        """Start the training pipeline (admin); :class:`RequestRejectedError` 409 while a job
        runs."""
        body = TrainingRequest(config=config)
        return self._post("/training", body, JobResponse, admin=True)

    def start_tuning(self, model: str, trials: int = 20) -> JobResponse:
        """Start a hyper-parameter study of ``model`` (admin)."""
        body = TuningRequest(model=model, trials=trials)
        return self._post("/tuning", body, JobResponse, admin=True)

    def job(self, job_id: str) -> JobResponse:
        """One training or tuning job: status, exit code, the tail of its log (admin)."""
        return self._get(f"/training/{job_id}", JobResponse, admin=True)

    def jobs(self) -> JobsStatus:
        """The running job and the latest one (admin)."""
        return self._get("/training/status", JobsStatus, admin=True)

    def generate_ratings(self, request: GenerateRatings | None = None) -> GeneratedRatings:
        """Synthetic ratings by known and new users (admin): demos, load and drift tests."""
        return self._post(
            "/admin/generate-ratings", request or GenerateRatings(), GeneratedRatings, admin=True
        )

    def reload(self) -> ReloadResponse:
        """Load the registry's champion and swap it in (admin)."""
        return self._post("/admin/reload", None, ReloadResponse, admin=True)

    # ------------------------------------------------------------ experiments

    def experiments(self) -> ExperimentsResponse:
        """Every experiment, newest first."""
        return self._get("/experiments", ExperimentsResponse)

    def experiment(self, experiment_id: int) -> ExperimentDetails:
        """An experiment with its outcome so far (per-arm figures and the test)."""
        return self._get(f"/experiments/{experiment_id}", ExperimentDetails)

    def start_experiment(self, request: ExperimentRequest) -> ExperimentResponse:
        """Start an experiment (admin); :class:`RequestRejectedError` 409 while one runs."""
        return self._post("/admin/experiments", request, ExperimentResponse, admin=True)

    def stop_experiment(self, experiment_id: int) -> ExperimentResponse:
        """Stop a running experiment (admin)."""
        path = f"/admin/experiments/{experiment_id}/stop"
        return self._post(path, None, ExperimentResponse, admin=True)

    def promote_experiment(self, experiment_id: int) -> PromotionResponse:
        """Make the treatment champion once the final test says it won (admin; 409 else)."""
        path = f"/admin/experiments/{experiment_id}/promote"
        return self._post(path, None, PromotionResponse, admin=True)

    # ------------------------------------------------------------ transport

    def _get(
        self,
        path: str,
        model: type[Model],
        params: Mapping[str, Any] | None = None,
        *,
        admin: bool = False,
    ) -> Model:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        return _parsed(self._send("GET", path, params=query, admin=admin), model)

    def _post(
        self, path: str, body: BaseModel | None, model: type[Model], *, admin: bool = False
    ) -> Model:
        content = body.model_dump_json(exclude_none=True) if body is not None else None
        response = self._send("POST", path, content=content, admin=admin)
        return _parsed(response, model)

    def _send(
        self, method: str, path: str, *, admin: bool = False, **kwargs: Any
    ) -> httpx.Response:
        headers = {"content-type": "application/json"} if kwargs.get("content") else {}
        if admin:
            if not self._api_key:
                raise AuthError(401, "this call needs the admin API key", method, path)
            headers["X-API-Key"] = self._api_key
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise APIUnavailableError(self.base_url, f"no answer in time ({exc})") from exc
        except httpx.TransportError as exc:
            raise APIUnavailableError(self.base_url, str(exc) or type(exc).__name__) from exc
        if response.status_code >= 400:
            detail = _detail(response)
            raise _error_class(response.status_code)(response.status_code, detail, method, path)
        return response


def _detail(response: httpx.Response) -> str:
    """The API's ``{"detail": ...}`` message, or the start of whatever else came back."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    return str(body)[:200]


def _parsed(response: httpx.Response, model: type[Model]) -> Model:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ServerError(
            response.status_code,
            f"the answer is not a valid {model.__name__}: {exc.errors()[0]['msg']}",
            response.request.method,
            response.request.url.path,
        ) from exc
