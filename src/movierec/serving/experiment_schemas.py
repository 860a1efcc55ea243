"""Request and response bodies of the experiment routes (see :mod:`movierec.experiments`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from movierec.serving.schemas import (
    FeedbackFigures,
    ModelInfoResponse,
    NotBool,
    RateFigure,
    Request,
    Response,
)

Version = Annotated[int, Field(ge=1, le=2**31 - 1, description="A registry version."), NotBool]
Share = Annotated[float, Field(gt=0.0, lt=1.0), NotBool]


class ExperimentRequest(Request):
    """An experiment to start between two versions of the registered model."""

    name: str = Field(min_length=1, max_length=100, pattern=r"\S")
    design: Literal["ab", "interleaving"] = Field(
        default="ab",
        description="'ab': each user sees one arm's lists; 'interleaving': each user sees "
        "one team-draft list of both (far fewer users needed).",
    )
    control_version: Version | None = Field(
        default=None, description="The control's version; the served champion when absent."
    )
    treatment_version: Version
    treatment_share: Share = Field(
        default=0.5, description="A/B only: the share of users in the treatment arm."
    )
    planned_users: Annotated[int, Field(ge=2, le=10**9), NotBool] = Field(
        default=400,
        description="Users (with feedback) the fixed-horizon test is read at; see "
        "benchmarks/README.md for the users each design needs.",
    )
    alpha: Annotated[float, Field(gt=0.0, le=0.5), NotBool] = 0.05
    horizon_days: Annotated[float, Field(gt=0.0, le=365.0), NotBool] | None = Field(
        default=None,
        description="How long after a showing a rating counts; the server's "
        "online horizon when absent.",
    )
    positive_rating: Annotated[float, NotBool] | None = Field(
        default=None,
        description="The rating from which feedback is positive; the server's when absent.",
    )


class ExperimentResponse(Response):
    id: int
    name: str
    design: Literal["ab", "interleaving"]
    status: Literal["running", "stopped", "promoted"]
    control_version: int
    treatment_version: int
    treatment_share: float
    planned_users: int
    alpha: float
    horizon_days: float
    positive_rating: float
    created_at: datetime
    stopped_at: datetime | None


class ExperimentsResponse(Response):
    experiments: list[ExperimentResponse]


class ArmFigures(FeedbackFigures):
    arm: Literal["control", "treatment"]
    version: int
    user_hit_rate: RateFigure = Field(
        description="The mean of the users' own hit rates, 95% t interval (what A/B tests)."
    )
    preferred_by: int | None = Field(
        description="Interleaving: users who rated more of this team's movies."
    )


class TestFigures(Response):
    method: Literal["fixed_horizon"] = "fixed_horizon"
    test: str = Field(description="'welch_t' (A/B) or 'sign_test' (interleaving).")
    alpha: float
    statistic: float | None
    p_value: float | None
    effect: RateFigure = Field(
        description="The treatment's gain (A/B: difference of mean user hit rates; "
        "interleaving: its share of preferences minus 0.5), 1 - alpha interval."
    )
    winner: Literal["control", "treatment"] | None = Field(
        description="The significant winner at alpha, None if none (yet)."
    )
    final: bool = Field(
        description="Whether the planned users are reached and no feedback is pending: the "
        "p-value of a fixed-horizon test is valid only then (reading it earlier is peeking)."
    )


class ExperimentDetails(ExperimentResponse):
    users: int = Field(description="Known users shown something by the experiment.")
    ties: int | None = Field(description="Interleaving: users who preferred neither team.")
    arms: list[ArmFigures]
    result: TestFigures


class PromotionResponse(Response):
    experiment: ExperimentResponse
    promoted_version: int
    model: ModelInfoResponse = Field(description="The model served now.")
