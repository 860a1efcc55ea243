"""Online experiments between registry versions: start, read, stop, promote the winner."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, status

from movierec.experiments.outcomes import ArmOutcome, outcome
from movierec.experiments.promotion import promote_winner
from movierec.experiments.stats import Interval
from movierec.experiments.store import Experiment, ExperimentConflictError, ExperimentSpec
from movierec.monitoring.online import Rate
from movierec.serving.deps import (
    AdminDep,
    ExperimentDep,
    ExperimentsDep,
    ServiceDep,
    SettingsDep,
    errors,
)
from movierec.serving.experiment_schemas import (
    ArmFigures,
    ExperimentDetails,
    ExperimentRequest,
    ExperimentResponse,
    ExperimentsResponse,
    PromotionResponse,
    TestFigures,
)
from movierec.serving.loading import VersionNotFoundError
from movierec.serving.routes.common import model_info
from movierec.serving.schemas import RateFigure

router = APIRouter(tags=["experiments"])


@router.post(
    "/admin/experiments",
    status_code=status.HTTP_201_CREATED,
    dependencies=[AdminDep],
    responses=errors(401, 403, 404, 409, 413, 422, 503),
)
def start_experiment(
    body: ExperimentRequest,
    experiments: ExperimentsDep,
    service: ServiceDep,
    settings: SettingsDep,
) -> ExperimentResponse:
    """Start an experiment; the arms' models are loaded before it is stored, so a version the
    registry lacks is a 404 and nothing is created. One runs at a time (409), and the
    control defaults to the served champion (409 when the served model is not a registry
    version)."""
    control = body.control_version or _champion(service)
    running = experiments.store.running()
    if running is not None:
        raise ExperimentConflictError(
            f"experiment {running.id} ({running.name!r}) is running: stop it first"
        )
    try:
        arms = experiments.load_arms(control, body.treatment_version)
    except VersionNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    if control == body.treatment_version:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"control and treatment are both version {control}: compare two versions",
        )
    spec = ExperimentSpec(
        name=body.name.strip(),
        design=body.design,
        control_version=control,
        treatment_version=body.treatment_version,
        treatment_share=body.treatment_share if body.design == "ab" else 1.0,
        planned_users=body.planned_users,
        alpha=body.alpha,
        horizon_days=body.horizon_days or settings.online_horizon_days,
        positive_rating=(
            settings.positive_rating if body.positive_rating is None else body.positive_rating
        ),
    )
    experiment = experiments.store.create(spec)
    experiments.activate(experiment, arms)
    return _experiment(experiment)


@router.get("/experiments")
def list_experiments(experiments: ExperimentsDep) -> ExperimentsResponse:
    """Every experiment, newest first."""
    return ExperimentsResponse(experiments=[_experiment(e) for e in experiments.store.all()])


@router.get("/experiments/{experiment_id}", responses=errors(404))
def experiment_details(experiment: ExperimentDep, experiments: ExperimentsDep) -> ExperimentDetails:
    """An experiment with its outcome so far: per arm the counts, rates and intervals, and the
    fixed-horizon test (final once the planned users are reached and nothing is pending)."""
    experiments.log.flush()
    result = outcome(experiments.log.store, experiment)
    verdict = result.verdict
    return ExperimentDetails(
        **_experiment(experiment).model_dump(),
        users=result.users,
        ties=result.ties,
        arms=[_arm(arm) for arm in result.arms],
        result=TestFigures(
            test=verdict.test,
            alpha=verdict.alpha,
            statistic=verdict.statistic,
            p_value=verdict.p_value,
            effect=_figure(verdict.effect),
            winner=verdict.winner,
            final=result.final,
        ),
    )


@router.post(
    "/admin/experiments/{experiment_id}/stop",
    dependencies=[AdminDep],
    responses=errors(401, 403, 404, 409),
)
def stop_experiment(experiment: ExperimentDep, experiments: ExperimentsDep) -> ExperimentResponse:
    """Stop a running experiment: every user gets the served model again (other workers
    within seconds). Its outcome stays readable; 409 when it is not running."""
    stopped = experiments.store.finish(experiment.id, "stopped", from_status="running")
    experiments.sync()
    return _experiment(stopped)


@router.post(
    "/admin/experiments/{experiment_id}/promote",
    dependencies=[AdminDep],
    responses=errors(401, 403, 404, 409, 503),
)
def promote_experiment(
    experiment: ExperimentDep,
    experiments: ExperimentsDep,
    service: ServiceDep,
    settings: SettingsDep,
) -> PromotionResponse:
    """Make the treatment the champion when the final test says it won (409 otherwise),
    through the registry's promotion (the old champion kept for rollback); the experiment
    ends and the new champion is loaded (other workers follow)."""
    experiments.log.flush()
    promoted = promote_winner(settings, experiments.store, experiments.log.store, experiment)
    experiments.sync()
    _, current = service.load(fall_back_on_error=False)
    return PromotionResponse(
        experiment=_experiment(promoted),
        promoted_version=promoted.treatment_version,
        model=model_info(current),
    )


def _champion(service: ServiceDep) -> int:
    info = service.state.info
    if info is None or info.source != "registry" or info.version is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "the served model is not a registry version: name control_version",
        )
    return info.version


def _experiment(experiment: Experiment) -> ExperimentResponse:
    values = dict(experiment.__dict__)
    values.pop("salt")
    values["created_at"] = _time(experiment.created_at)
    values["stopped_at"] = None if experiment.stopped_at is None else _time(experiment.stopped_at)
    return ExperimentResponse.model_validate(values)


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _arm(arm: ArmOutcome) -> ArmFigures:
    figures = arm.feedback
    return ArmFigures(
        arm=arm.arm,  # type: ignore[arg-type]
        version=arm.version,
        users=figures.users,
        impressions=figures.impressions,
        rated=figures.rated,
        positive=figures.positive,
        pending=figures.pending,
        hit_rate=_figure(figures.hit_rate),
        positive_rate=_figure(figures.positive_rate),
        user_hit_rate=_figure(arm.user_hit_rate),
        preferred_by=arm.preferred_by,
    )


def _figure(value: Rate | Interval) -> RateFigure:
    return RateFigure(value=value.value, low=value.low, high=value.high)
