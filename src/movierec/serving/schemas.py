"""Request and response bodies of the HTTP API (pydantic); requests and responses are distinct.

``k`` is bounded here by the largest value settings may allow; the server's own ``max_k`` is
checked by the route (422 with the limit in the message), since it is configuration, not schema.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    model_validator,
)

from movierec.data.genres import FAVOURED_WEIGHT, GENRES

MAX_K_CEILING = 10_000  # Settings.max_k's own upper bound
Strategy = Literal["personalized", "folded_in", "popular_fallback"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]


def _not_a_boolean(value: object) -> object:
    """Refuse JSON ``true``/``false`` where a number is due (pydantic would read 1 and 0)."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    return value


# After the type's Field in ``Annotated``: before it, pydantic would not write the Field's
# bounds into the JSON schema as minimum and maximum.
NotBool = BeforeValidator(_not_a_boolean)


def _int64(value: int) -> int:
    if value >= 2**63:
        raise ValueError(f"Input should be less than {2**63} (a 64-bit id)")
    return value


# Ids are int64 (names hash to 63 bits). The schema says so with OpenAPI's ``int64`` format
# rather than a maximum: FastAPI writes bounds as JSON floats, where 2**63 - 1 reads 2**63.
Int64Id = Annotated[
    int, Field(ge=0, json_schema_extra={"format": "int64"}), NotBool, AfterValidator(_int64)
]
MovieId = Annotated[Int64Id, Field(description="A movie id of the catalog.")]
UserId = Annotated[Int64Id, Field(description="A user id.")]
K = Annotated[
    int,
    Field(ge=1, le=MAX_K_CEILING, description="How many movies; at most the server's max_k."),
    NotBool,
]
Year = Annotated[int, Field(ge=0, le=9999), NotBool]
# The last second of the year 9999: a date any client and datetime can hold, and a bound far
# below 2**53, where JSON numbers (floats to many clients) still tell every integer apart.
MAX_TIMESTAMP = 253_402_300_799
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


def _rfc3339(value: object) -> object:
    """An RFC 3339 date-time as the schema's ``date-time`` format says; pydantic alone would
    also take a number of seconds, a date or a time without its offset."""
    text = value.upper() if isinstance(value, str) else value
    if not (isinstance(text, str) and _RFC3339.fullmatch(text)):
        raise ValueError("expected an RFC 3339 date-time, e.g. 2024-01-31T12:00:00Z")
    return text


DateTimeText = Annotated[datetime, BeforeValidator(_rfc3339)]


class Request(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    """Base of response bodies."""


# ---------------------------------------------------------------- errors and health


class ErrorResponse(Response):
    """Every error: one clear message."""

    detail: str


class HealthResponse(Response):
    status: Literal["ok"] = "ok"


class ReplicaFeedState(Response):
    feed: Literal["postgres", "redis"]
    connected: bool = Field(
        description="Whether this worker hears the other replicas now. While it does not, it "
        "serves on (its own ratings and model are intact) and catches up from the store when "
        "the channel returns."
    )
    down_since: datetime | None = Field(description="Since when it is down; null while up.")


class ReadyResponse(Response):
    status: Literal["ready"] = "ready"
    model_version: int | None
    model_source: str
    top_n_ready: float = Field(
        description="Share of the model's known users whose top-N list is computed (they are "
        "answered from it); lists are filled in the background after each load, 0 when off."
    )
    replica_feed: ReplicaFeedState | None = Field(
        default=None,
        description="The channel to the other API replicas (MOVIEREC_REPLICA_FEED); null with "
        "none. A channel that is down leaves the replica ready (see the deploy guide).",
    )


# ---------------------------------------------------------------- movies


class Movie(Response):
    movie_id: int
    title: str
    year: int | None
    genres: list[str]


class MovieDetails(Movie):
    imdb_id: str | None
    tmdb_id: int | None
    rating_count: int = Field(description="Ratings of this movie the serving model learned from.")
    rating_mean: float | None = Field(description="Their mean, None without ratings.")
    in_model: bool = Field(description="Whether the serving model can recommend this movie.")


class MoviePage(Response):
    items: list[Movie]
    total: int
    limit: int
    offset: int


class ScoredMovie(Movie):
    score: float


class PopularResponse(Response):
    genre: str | None
    by: Literal["count", "rating"]
    items: list[ScoredMovie]


class GenreCount(Response):
    genre: str
    movies: int


class GenresResponse(Response):
    genres: list[GenreCount]


# ---------------------------------------------------------------- users


class UserSummary(Response):
    user_id: int
    n_ratings: int


class UserPage(Response):
    items: list[UserSummary]
    limit: int
    offset: int


class GenreShare(Response):
    genre: str
    ratings: int
    share: float = Field(description="Fraction of the user's ratings in this genre.")


class UserRating(Response):
    movie_id: int
    title: str
    rating: float
    timestamp: int


class UserDetails(Response):
    user_id: int
    n_ratings: int
    mean_rating: float | None
    known_to_model: bool
    favourite_genres: list[GenreShare]
    recent_ratings: list[UserRating] = Field(description="The latest ratings, newest first.")
    top_ratings: list[UserRating] = Field(
        description="The highest ratings, newest first among equals."
    )


# ---------------------------------------------------------------- recommendations


class Filters(Request):
    """Which movies may be recommended: any of ``genres``, released within the year range
    (a range whose ``year_min`` is above its ``year_max`` holds no year: no movie passes)."""

    genres: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=100
    )
    year_min: Year | None = None
    year_max: Year | None = None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("rating must be a finite number")
    return value


# A rating's scale is the store's (checked by the service); here only NaN and infinities go.
Rating = Annotated[float, NotBool, AfterValidator(_finite)]


Exclude = Annotated[
    list[MovieId] | None,
    Field(max_length=1000, description="Movies never to recommend in this answer."),
]
Diversity = Annotated[
    float,
    Field(
        ge=0.0,
        le=1.0,
        description="0: the model's order; up to 1: re-ranked for unlike genres (MMR).",
    ),
    NotBool,
]
CURSOR_PATTERN = r"^(\d{1,18}(-\d{1,18})*)?$"  # the movies shown so far (controls/cursor.py)
Cursor = Annotated[
    str | None,
    Field(
        max_length=4000,
        pattern=CURSOR_PATTERN,
        description="Pages: empty for the first page, then the answer's page.next_cursor.",
    ),
]


class RecommendRequest(Request):
    user_id: UserId
    k: K = 10
    filters: Filters | None = None
    exclude_seen: StrictBool = True  # JSON true or false: 0, 1 and "yes" are errors
    exclude: Exclude = None
    diversity: Diversity = 0.0
    cursor: Cursor = None


class HistoryRating(Request):
    movie_id: MovieId
    rating: Rating


def _one_of(*names: str) -> dict[str, Any]:
    """JSON Schema: exactly one of the ``names`` properties is given, and not null."""
    return {
        "oneOf": [
            {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in names
        ]
    }


class AnonymousRequest(Request):
    """A visitor without an account: their ratings, or a plain list of liked movies."""

    model_config = ConfigDict(json_schema_extra=_one_of("ratings", "liked"))

    ratings: list[HistoryRating] | None = None
    liked: list[MovieId] | None = None
    k: K = 10
    filters: Filters | None = None
    exclude: Exclude = None
    diversity: Diversity = 0.0
    cursor: Cursor = None
    session_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The visitor's session: assigns them to a running experiment's arm, the "
        "same arm at every request (without one they are left out of experiments).",
    )

    @model_validator(mode="after")
    def _one_history(self) -> Self:
        if (self.ratings is None) == (self.liked is None):
            raise ValueError("give exactly one of 'ratings' or 'liked'")
        return self


class SimilarRequest(Request):
    movie_id: MovieId
    k: K = 10


class ModelRef(Response):
    """The model that answered."""

    name: str
    version: int | None
    source: str


class ExperimentRef(Response):
    """The experiment an answer was made in, and the arm it came from."""

    id: int
    name: str
    design: Literal["ab", "interleaving"]
    arm: Literal["control", "treatment", "interleaved"]


class PageRef(Response):
    """Where the next page starts; asked for with a cursor (empty for the first page)."""

    next_cursor: str = Field(description="Pass it as cursor for the next page.")
    ranking_changed: bool = Field(
        description="Whether the ranking changed since the pages before (a new model, new "
        "ratings, a dismissal): this page still repeats none of them."
    )


class Recommendation(ScoredMovie):
    reason: str | None = Field(description='Why, where the model can say ("because you liked X").')


class RecommendationResponse(Response):
    user_id: int | None
    strategy: Strategy
    model: ModelRef
    items: list[Recommendation]
    ignored_movie_ids: list[int] = Field(
        default_factory=list, description="History movies the model does not know (not used)."
    )
    experiment: ExperimentRef | None = Field(
        default=None, description="The running experiment this answer is part of, if any."
    )
    page: PageRef | None = Field(default=None, description="Set when pages were asked for.")


class SimilarResponse(Response):
    movie: Movie
    model: ModelRef
    items: list[ScoredMovie]


# ---------------------------------------------------------------- ratings


class NewRating(Request):
    user_id: UserId
    movie_id: MovieId
    rating: Rating
    timestamp: Annotated[int, Field(ge=0, le=MAX_TIMESTAMP), NotBool] | None = Field(
        default=None, description="Seconds since the epoch; now when absent."
    )


class RatingBatch(Request):
    ratings: list[NewRating] = Field(min_length=1)


class RatingsStored(Response):
    received: int = Field(description="Ratings in the request, all durable in the store.")
    changed: int = Field(
        description="Of those, ratings that were new or replaced a stored one (a repeat is not)."
    )
    user_ids: list[int]


# ---------------------------------------------------------------- jobs and models


class TrainingRequest(Request):
    config: str | None = Field(
        default=None, max_length=4096, description="A pipeline config file on the server."
    )


class TuningRequest(Request):
    model: str = Field(min_length=1, max_length=100)
    trials: Annotated[int, NotBool] = Field(default=20, ge=1, le=10_000)


class JobResponse(Response):
    job_id: str
    kind: Literal["training", "tuning"]
    command: list[str]
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    log_tail: list[str]


class JobsStatus(Response):
    running: JobResponse | None
    last: JobResponse | None


class ModelInfoResponse(Response):
    name: str
    version: int | None
    source: Literal["registry", "local"]
    run_id: str | None
    metrics: dict[str, float]
    snapshot_hash: str | None
    loaded_at: datetime
    load_seconds: float
    n_users: int
    n_items: int


class RegistryVersion(Response):
    version: int
    aliases: list[str] = Field(description="e.g. champion, challenger, previous-champion.")
    model: str | None = Field(description="The model family.")
    run_id: str | None
    created_at: datetime
    metrics: dict[str, float]
    params: dict[str, str]


class RegistryResponse(Response):
    registered_model: str
    versions: list[RegistryVersion] = Field(description="Newest first.")


class LeaderboardEntry(Response):
    model: str
    metrics: dict[str, float]
    params: dict[str, str]


class LeaderboardResponse(Response):
    """The models the latest pipeline run scored on one split, in the order it ran them."""

    run_id: str | None
    started_at: datetime | None
    entries: list[LeaderboardEntry]


class ReloadResponse(Response):
    changed: bool
    previous: ModelInfoResponse | None
    current: ModelInfoResponse


class StatsResponse(Response):
    dataset: str | None
    n_users: int
    n_movies: int
    n_rated_movies: int
    n_ratings: int
    ratings_per_day: float | None
    rating_scale: list[float] | None = Field(description="[lowest, highest] rating.")
    first_rating_at: int | None
    last_rating_at: int | None


# ---------------------------------------------------------------- monitoring: served, online

ServedWindow = Literal["1h", "1d", "start"]


class ServedWindowFigures(Response):
    """The quality of the lists one model version served in one window (None: no lists)."""

    lists: int
    items: int
    empty_lists: int
    short_lists: int = Field(description="Lists shorter than the k asked for.")
    distinct_movies: int
    coverage: float = Field(description="Distinct movies served / movies the model can rank.")
    novelty_bits: float | None = Field(description="Mean self-information of the movies.")
    popularity_percentile: float | None = Field(description="Mean popularity percentile (1: top).")
    diversity: float | None = Field(description="Mean intra-list diversity of genres.")
    personalization: float | None = Field(
        description="1 - mean cosine similarity between different users' lists (sampled)."
    )
    personalization_sample: int
    strategy_counts: dict[str, int]


class ServedVersionFigures(Response):
    model: str
    version: str
    catalogue_size: int
    windows: dict[ServedWindow, ServedWindowFigures]


class ServedStatsResponse(Response):
    """Served quality per model version over the last hour, the last day and since the start."""

    generated_at: datetime
    versions: list[ServedVersionFigures]


class ServedPoint(Response):
    at: datetime
    lists: int
    novelty_bits: float | None
    popularity_percentile: float | None
    diversity: float | None
    strategy_counts: dict[str, int]


class ServedSeries(Response):
    model: str
    version: str
    points: list[ServedPoint]


class ServedHistoryResponse(Response):
    """Served quality per interval, oldest first (intervals without lists included)."""

    step_minutes: int
    series: list[ServedSeries]


class RateFigure(Response):
    value: float | None
    low: float | None = Field(description="95% Wilson interval, lower end.")
    high: float | None


class FeedbackFigures(Response):
    """Online feedback on what was shown (a model version, or an experiment's arm)."""

    users: int
    impressions: int = Field(description="Distinct (user, movie) pairs shown.")
    rated: int = Field(description="Pairs the user rated within the horizon.")
    positive: int
    pending: int = Field(description="Pairs shown less than the horizon ago (may be rated yet).")
    hit_rate: RateFigure = Field(description="rated / impressions, 95% Wilson interval.")
    positive_rate: RateFigure


class OnlineVersionFigures(FeedbackFigures):
    model: str
    version: str
    lists: int


class OnlineResponse(Response):
    """Online feedback on the lists shown since ``since``, per model version."""

    since: datetime
    horizon_days: float
    positive_rating: float
    versions: list[OnlineVersionFigures]


# ---------------------------------------------------------------- monitoring: data drift


class FeatureDriftModel(Response):
    """One feature's comparison."""

    feature: str = Field(description="rating, user_activity, item_popularity, genre_mix, ...")
    statistic: str = Field(description="e.g. jensen_shannon_distance, ks_p_value")
    test: str
    value: float
    threshold: float
    drifted: bool
    details: dict[str, float | int | str] = Field(
        description="Small figures behind the statistic, e.g. reference and current shares."
    )


class SkippedFeatureModel(Response):
    feature: str
    reason: str


class DriftWindow(Response):
    start: int = Field(description="Epoch seconds, included.")
    end: int | None = Field(description="Epoch seconds, excluded; null: up to now.")


class DriftResponse(Response):
    """Every feature's comparison and the verdict."""

    status: Literal["compared", "nothing_to_compare"]
    verdict: str = Field(description="drift, no drift, or nothing to compare")
    message: str
    snapshot_hash: str
    window: DriftWindow
    reference_ratings: int
    current_ratings: int
    drift_share: float = Field(description="Share of the compared features that drifted.")
    drift_share_threshold: float
    drift_detected: bool
    drifted_features: list[str]
    features: list[FeatureDriftModel]
    skipped: list[SkippedFeatureModel]
    checked_at: float = Field(description="Epoch seconds.")


# ---------------------------------------------------------------- synthetic activity


class GenerateRatings(Request):
    """Synthetic ratings by known and new users (see :mod:`movierec.data.activity`)."""

    ratings: Annotated[int, Field(ge=1, le=100_000), NotBool] = Field(
        default=1_000, description="Ratings to generate."
    )
    users: Annotated[int, Field(ge=1, le=10_000), NotBool] = Field(
        default=60, description="Raters (with fewer ratings, some rate none)."
    )
    new_user_share: Annotated[float, Field(ge=0.0, le=1.0), NotBool] = Field(
        default=0.2,
        description="Share of the raters who are new (ids above every stored one); the others "
        "are users of the served model.",
    )
    seed: Annotated[int, Field(ge=0, le=2**32 - 1), NotBool] | None = Field(
        default=None, description="The same seed, the same ratings."
    )
    rating_shift: Annotated[float, Field(ge=-4.5, le=4.5), NotBool] = Field(
        default=0.0, description="Stars added to every score (drift on purpose)."
    )
    favoured_genres: list[Literal[GENRES]] = Field(  # type: ignore[valid-type]
        default_factory=list,
        max_length=len(GENRES),
        description=f"Genres whose movies are drawn {FAVOURED_WEIGHT:g} times as often (drift "
        "on purpose).",
    )


class GeneratedRatings(RatingsStored):
    seed: int = Field(description="The seed used: pass it again for the same ratings.")
    new_user_ids: list[int] = Field(description="The new users who rated, in id order.")
