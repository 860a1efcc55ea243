"""Request and response bodies of dismissals and group recommendations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from movierec.serving.schemas import (
    Filters,
    K,
    ModelRef,
    Movie,
    MovieId,
    Request,
    Response,
    ScoredMovie,
    UserId,
)


class DismissalRequest(Request):
    movie_id: MovieId


class DismissalResponse(Response):
    user_id: int
    movie: Movie
    dismissed_at: datetime
    created: bool = Field(description="False when the movie was dismissed already.")


class DismissalsResponse(Response):
    user_id: int
    items: list[DismissalResponse] = Field(description="Newest first.")


class GroupRequest(Request):
    user_ids: Annotated[
        list[UserId],
        Field(
            min_length=2,
            max_length=20,
            json_schema_extra={"uniqueItems": True},  # checked by the route (422)
            description="The members, each once.",
        ),
    ]
    k: K = 10
    method: Literal["average", "least_misery"] = Field(
        default="average",
        description="'average': the members' mean utility; 'least_misery': their minimum.",
    )
    filters: Filters | None = None


class GroupMember(Response):
    user_id: int
    utility: float = Field(description="1 - rank / 100 in the member's own list, 0 outside it.")


class GroupRecommendation(ScoredMovie):
    least_suited: GroupMember
    best_suited: GroupMember


class GroupResponse(Response):
    user_ids: list[int]
    method: Literal["average", "least_misery"]
    model: ModelRef
    items: list[GroupRecommendation]
