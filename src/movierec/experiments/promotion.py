"""Promotion of an experiment's winner through the registry's own promotion path.

The rule: an experiment promotes its treatment only when its fixed-horizon test is final (the
planned users reached, no feedback pending) and significant in the treatment's favour. The
promotion itself is the registry's (:func:`movierec.training.tracking.promote`): the old
champion becomes ``previous-champion`` and stays available for ``movierec models rollback``;
the version is tagged with the experiment and its p-value. The registry is changed first and
the experiment marked after, so a registry that fails leaves the experiment as it was.
"""

from __future__ import annotations

from movierec.config import Settings
from movierec.experiments.outcomes import outcome
from movierec.experiments.store import (
    Experiment,
    ExperimentConflictError,
    ExperimentStore,
    ExposureStore,
)


def promote_winner(
    settings: Settings, store: ExperimentStore, exposures: ExposureStore, experiment: Experiment
) -> Experiment:
    """Make the treatment of ``experiment`` the champion; :class:`ExperimentConflictError`
    when the rule does not allow it."""
    if experiment.status == "promoted":
        raise ExperimentConflictError(f"experiment {experiment.id} was promoted already")
    result = outcome(exposures, experiment)
    verdict = result.verdict
    if not result.final:
        pending = sum(arm.feedback.pending for arm in result.arms)
        raise ExperimentConflictError(
            f"experiment {experiment.id} is not final: {result.users} of "
            f"{experiment.planned_users} planned users, {pending} showings still within the "
            f"{experiment.horizon_days:g}-day horizon"
        )
    if verdict.winner != "treatment":
        p_value = "none" if verdict.p_value is None else f"{verdict.p_value:.4g}"
        raise ExperimentConflictError(
            f"the treatment (v{experiment.treatment_version}) did not win significantly "
            f"(winner: {verdict.winner or 'none'}, p = {p_value}, alpha = {experiment.alpha:g})"
        )
    from movierec.training import tracking  # noqa: PLC0415 (mlflow: a second to import)

    version = experiment.treatment_version
    tracking.promote(settings, version)
    tracking.tag_version(
        settings,
        version,
        {
            "promotion.decision": "experiment",
            "promotion.experiment": str(experiment.id),
            "promotion.p_value": f"{verdict.p_value:.6g}",
        },
    )
    return store.finish(experiment.id, "promoted", from_status=experiment.status)
