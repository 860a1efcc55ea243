"""A person's controls beyond the recommendation query: dismissals, and group lists."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Response, status

from movierec.serving.catalog import MovieRow
from movierec.serving.control_schemas import (
    DismissalRequest,
    DismissalResponse,
    DismissalsResponse,
    GroupMember,
    GroupRecommendation,
    GroupRequest,
    GroupResponse,
)
from movierec.serving.controls.dismissals import Dismissal
from movierec.serving.controls.group import GroupPick, recommend_group
from movierec.serving.controls.ranking import Controlled, Controls
from movierec.serving.deps import DismissalsDep, ServiceDep, SettingsDep, checked_k, errors
from movierec.serving.routes.common import movie
from movierec.serving.routes.movies import MovieIdPath
from movierec.serving.routes.recommend import UserIdPath, _filter
from movierec.serving.schemas import ModelRef
from movierec.serving.service import Answer, NotFoundError, RecommenderService

router = APIRouter(tags=["controls"])


@router.post(
    "/users/{user_id}/dismissals",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": DismissalResponse}, **errors(404, 413, 422)},
)
def dismiss(
    user_id: UserIdPath,
    body: DismissalRequest,
    response: Response,
    service: ServiceDep,
    dismissals: DismissalsDep,
) -> DismissalResponse:
    """Never recommend this movie to this user again (until undone); the movies most like it
    move down their lists. Holds from the user's next request; 200 when already dismissed."""
    _catalog_movie(service, body.movie_id)
    dismissal, created = dismissals.add(user_id, body.movie_id)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _dismissal(service, dismissal, created)


@router.delete("/users/{user_id}/dismissals/{movie_id}", responses=errors(404, 422))
def undo_dismissal(
    user_id: UserIdPath, movie_id: MovieIdPath, service: ServiceDep, dismissals: DismissalsDep
) -> DismissalResponse:
    """Undo a dismissal: the movie may be recommended again. 404 when there was none."""
    found = dismissals.store.get(user_id, movie_id)
    if found is None or not dismissals.remove(user_id, movie_id):
        raise NotFoundError(f"user {user_id} has not dismissed movie {movie_id}")
    return _dismissal(service, found, False)


@router.get("/users/{user_id}/dismissals", responses=errors(422))
def list_dismissals(
    user_id: UserIdPath, service: ServiceDep, dismissals: DismissalsDep
) -> DismissalsResponse:
    """The user's dismissals, newest first."""
    found = dismissals.store.of_user(user_id)
    return DismissalsResponse(user_id=user_id, items=[_dismissal(service, d, False) for d in found])


@router.post("/recommend/group", responses=errors(404, 413, 422, 503))
def recommend_for_a_group(
    body: GroupRequest,
    service: ServiceDep,
    settings: SettingsDep,
    dismissals: DismissalsDep,
) -> GroupResponse:
    """One list for several users watching together: ``average`` (their mean utility) or
    ``least_misery`` (their minimum), each movie with the member it suits least and most
    (see :mod:`movierec.serving.controls.group`). Each member's dismissals hold."""
    k = checked_k(body.k, settings)
    if len(set(body.user_ids)) != len(body.user_ids):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "user_ids: a member is named twice"
        )
    filters = _filter(body.filters)

    def ranking(user: int, depth: int) -> Answer:
        controlled = Controlled(Controls.of(None, None, 0.0, dismissals.movies(user)), depth)
        return controlled.ask(lambda deep: service.recommend_user(user, deep, filters))

    group = recommend_group(body.user_ids, k, body.method, ranking)
    info = group.answers[0].info
    return GroupResponse(
        user_ids=body.user_ids,
        method=body.method,
        model=ModelRef(name=info.name, version=info.version, source=info.source),
        items=[_group_item(service, body.user_ids, pick) for pick in group.picks],
    )


def _group_item(
    service: RecommenderService, members: list[int], pick: GroupPick
) -> GroupRecommendation:
    row = _catalog_movie(service, pick.movie_id)
    least = min(range(len(members)), key=lambda i: (pick.utilities[i], i))
    most = max(range(len(members)), key=lambda i: (pick.utilities[i], -i))
    return GroupRecommendation(
        **movie(row).model_dump(),
        score=pick.score,
        least_suited=GroupMember(user_id=members[least], utility=pick.utilities[least]),
        best_suited=GroupMember(user_id=members[most], utility=pick.utilities[most]),
    )


def _catalog_movie(service: RecommenderService, movie_id: int) -> MovieRow:
    catalog = service.state.catalog
    position = catalog.position(movie_id)
    if position is None:
        raise NotFoundError(f"movie {movie_id} not found")
    return catalog.row(position)


def _dismissal(service: RecommenderService, found: Dismissal, created: bool) -> DismissalResponse:
    return DismissalResponse(
        user_id=found.user_id,
        movie=movie(_catalog_movie(service, found.movie_id)),
        dismissed_at=datetime.fromtimestamp(found.dismissed_at, UTC),
        created=created,
    )
