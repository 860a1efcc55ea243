"""Recommendations: for a user (GET and POST), and for an anonymous visitor's history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from movierec.experiments.runner import Tag
from movierec.serving.controls.ranking import PLAIN, Controlled, Controls, Page
from movierec.serving.deps import (
    DismissalsDep,
    ExperimentsDep,
    KQuery,
    MetricsDep,
    MonitorDep,
    ServiceDep,
    SettingsDep,
    checked_k,
    errors,
)
from movierec.serving.routes.common import JSONBytes, recommendations
from movierec.serving.schemas import (
    CURSOR_PATTERN,
    AnonymousRequest,
    ExperimentRef,
    Filters,
    PageRef,
    RecommendationResponse,
    RecommendRequest,
    Year,
)
from movierec.serving.service import Answer, Filter

router = APIRouter(tags=["recommendations"])

UserIdPath = Annotated[int, Path(ge=0, le=2**63 - 1, description="The user's id.")]


def _filter(filters: Filters | None) -> Filter:
    if filters is None:
        return Filter()
    return Filter(filters.genres, filters.year_min, filters.year_max)


Answered = tuple[Answer, Tag | None, Page | None]


def _for_user(
    service: ServiceDep,
    experiments: ExperimentsDep,
    controls: Controls,
    *,
    user_id: int,
    k: int,
    filters: Filter,
    exclude_seen: bool,
) -> Answered:
    """A known user's answer, through the running experiment and the request's controls."""
    if controls is PLAIN and experiments.active is None:
        # The usual request goes straight to the service: the detour through the experiment
        # and controls layers cost a quarter of a cached answer's route time (measured).
        return service.recommend_user(user_id, k, filters, exclude_seen=exclude_seen), None, None
    controlled = Controlled(controls, k)
    answer, tag = experiments.recommend_user(
        user_id,
        k,
        lambda model: controlled.ask(
            lambda depth: service.recommend_user(
                user_id, depth, filters, exclude_seen=exclude_seen, model=model
            )
        ),
    )
    return answer, tag, controlled.page(answer)


def _served(
    metrics: MetricsDep,
    monitor: MonitorDep,
    answered: Answered,
    user_id: int | None,
    k: int,
) -> JSONBytes:
    """The answer's response, counted in the metrics and handed to the serving monitor."""
    answer, tag, page = answered
    metrics.recommendation_served(answer.strategy)
    monitor.record(answer, user_id, k)
    return recommendations(
        user_id,
        answer,
        _experiment(tag),
        None
        if page is None
        else PageRef(next_cursor=page.next_cursor, ranking_changed=page.ranking_changed),
    )


def _experiment(tag: Tag | None) -> ExperimentRef | None:
    if tag is None:
        return None
    return ExperimentRef.model_validate(
        {"id": tag.experiment_id, "name": tag.name, "design": tag.design, "arm": tag.arm}
    )


@router.get(
    "/users/{user_id}/recommendations",
    response_model=RecommendationResponse,
    responses=errors(422, 503),
)
async def user_recommendations(
    *,
    user_id: UserIdPath,
    k: KQuery,
    service: ServiceDep,
    metrics: MetricsDep,
    monitor: MonitorDep,
    experiments: ExperimentsDep,
    dismissals: DismissalsDep,
    genres: Annotated[
        list[Annotated[str, Query(max_length=100)]] | None,
        Query(max_length=100, description="Allowed genres (repeat, or comma-separate)."),
    ] = None,
    year_min: Annotated[Year | None, Query()] = None,
    year_max: Annotated[Year | None, Query()] = None,
    exclude_seen: bool = True,
    exclude: Annotated[
        list[int] | None,
        Query(max_length=1000, description="Movies never to recommend here (repeat)."),
    ] = None,
    diversity: Annotated[
        float, Query(ge=0.0, le=1.0, description="0: the model's order; to 1: unlike genres.")
    ] = 0.0,
    cursor: Annotated[
        str | None,
        Query(
            max_length=4000,
            pattern=CURSOR_PATTERN,
            description="Pages: empty first, then page.next_cursor.",
        ),
    ] = None,
) -> JSONBytes:
    """Top-k movies for a user; a user the model cannot personalize for gets popular movies,
    flagged by ``strategy``. Never a movie the user dismissed; ``exclude``, ``diversity``
    and pages (``cursor``) as :mod:`movierec.serving.controls.ranking` says."""
    wanted = [g.strip() for text in genres or [] for g in text.split(",") if g.strip()]
    filters = Filter(wanted or None, year_min, year_max)
    controls = Controls.of(exclude, cursor, diversity, dismissals.movies(user_id))
    answered = _for_user(
        service, experiments, controls,
        user_id=user_id, k=k, filters=filters, exclude_seen=exclude_seen,
    )  # fmt: skip
    return _served(metrics, monitor, answered, user_id, k)


@router.post("/recommend", response_model=RecommendationResponse, responses=errors(413, 422, 503))
async def recommend(
    body: RecommendRequest,
    *,
    service: ServiceDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    monitor: MonitorDep,
    experiments: ExperimentsDep,
    dismissals: DismissalsDep,
) -> JSONBytes:
    """Top-k movies for ``user_id`` (the same answer as the GET route)."""
    k = checked_k(body.k, settings)
    filters = _filter(body.filters)
    controls = Controls.of(
        body.exclude, body.cursor, body.diversity, dismissals.movies(body.user_id)
    )
    answered = _for_user(
        service, experiments, controls,
        user_id=body.user_id, k=k, filters=filters, exclude_seen=body.exclude_seen,
    )  # fmt: skip
    return _served(metrics, monitor, answered, body.user_id, k)


@router.post(
    "/recommend/anonymous",
    response_model=RecommendationResponse,
    responses=errors(404, 413, 422, 503),
)
async def recommend_anonymous(
    body: AnonymousRequest,
    *,
    service: ServiceDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    monitor: MonitorDep,
    experiments: ExperimentsDep,
) -> JSONBytes:
    """Top-k movies for a visitor without an account, from their ratings or liked movies
    (folded into the model, no retraining). Movies the model does not know are listed in
    ``ignored_movie_ids``; a movie the catalog lacks is a 404."""
    k = checked_k(body.k, settings)
    if body.ratings is not None:
        movie_ids = [r.movie_id for r in body.ratings]
        ratings: list[float] | None = [r.rating for r in body.ratings]
    else:
        movie_ids, ratings = list(body.liked or []), None
    if len(movie_ids) > settings.max_batch:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a history holds at most {settings.max_batch} movies, got {len(movie_ids)}",
        )
    filters = _filter(body.filters)
    controlled = Controlled(Controls.of(body.exclude, body.cursor, body.diversity), k)
    answer, tag = experiments.recommend_session(
        body.session_id,
        k,
        lambda model: controlled.ask(
            lambda depth: service.recommend_history(movie_ids, ratings, depth, filters, model)
        ),
    )
    return _served(metrics, monitor, (answer, tag, controlled.page(answer)), None, k)
