"""Scheduled retraining: on a cron expression, retrain when new ratings have arrived, or
(``on_drift``) when they have drifted from the champion's training data.

By default each tick compares the store with the snapshot the champion was trained on (rating
count and newest rating time: ratings posted to the API, or a fresh ingest, move one of them);
when they differ, it runs the pipeline on the store as it is, and the pipeline's promotion rule
decides whether the new model replaces the champion. With ``on_drift`` the trigger is the data
drift verdict of the ratings since that snapshot (:mod:`movierec.monitoring.drift`) instead:
new ratings that look like the old ones do not retrain, and no new rating means nothing to
compare, so no retraining either; every tick logs the verdict and the drifted features. Without
a champion, or without its snapshot on this machine, both rules retrain. A tick that fails is
logged and the next one runs as planned. The production alternative is the Airflow DAG in
``deploy/airflow/``, which runs the same CLI stages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from movierec.config import Settings
from movierec.data.snapshot import Snapshot, load_snapshot
from movierec.data.store import RatingsStore
from movierec.errors import ConfigError, MovierecError
from movierec.monitoring.drift import DriftReport, check_drift
from movierec.training import tracking
from movierec.training.pipeline import PipelineConfig, PipelineResult, run_pipeline

log = logging.getLogger(__name__)

CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
JOB_ID = "movierec-retrain"


@dataclass(frozen=True)
class TickOutcome:
    """What one scheduled tick did."""

    retrained: bool
    reason: str
    result: PipelineResult | None = None
    drift: DriftReport | None = None


def parse_cron(expression: str) -> CronTrigger:
    """A crontab expression (5 fields; 6 with leading seconds) as a UTC trigger."""
    fields = expression.split()
    names = CRON_FIELDS if len(fields) == len(CRON_FIELDS) else ("second", *CRON_FIELDS)
    if len(fields) != len(names):
        raise ConfigError(
            f"cron expression {expression!r} needs 5 fields (minute hour day month weekday), "
            "or 6 with seconds first"
        )
    try:
        return CronTrigger(timezone="UTC", **dict(zip(names, fields, strict=True)))
    except ValueError as exc:
        raise ConfigError(f"invalid cron expression {expression!r}: {exc}") from exc


def champion_snapshot(settings: Settings) -> Snapshot | str:
    """The snapshot the champion was trained on, or why there is none to compare with."""
    champion = tracking.version_by_alias(settings, tracking.CHAMPION)
    if champion is None:
        return "no champion yet"
    snapshot_hash = champion.snapshot_hash
    if not snapshot_hash:
        return f"champion v{champion.version} does not record its training data"
    folder = settings.snapshots_dir / snapshot_hash[:16]
    try:
        return load_snapshot(folder)
    except MovierecError:
        return f"the champion's snapshot {snapshot_hash[:12]} is not on this machine"


def new_ratings_reason(settings: Settings) -> str | None:
    """Why the store differs from the champion's training data, or None when it does not."""
    snapshot = champion_snapshot(settings)
    if isinstance(snapshot, str):
        return snapshot
    trained = snapshot.manifest
    with RatingsStore.from_settings(settings) as store:
        now = store.stats()
    if now.n_ratings != trained["n_ratings"]:
        return f"{now.n_ratings - trained['n_ratings']:+,} ratings since the champion's data"
    if now.last_timestamp != trained["max_timestamp"]:
        return "ratings were updated since the champion's data"
    return None


def drift_reason(settings: Settings) -> tuple[str | None, DriftReport | None]:
    """Why to retrain by the drift verdict (None: no drift), and the drift report if one was
    computed (not without a champion or its snapshot: those retrain)."""
    snapshot = champion_snapshot(settings)
    if isinstance(snapshot, str):
        return snapshot, None
    with RatingsStore.from_settings(settings) as store:
        report = check_drift(settings, store, snapshot.content_hash)
    log.info("drift check: %s", report.message)
    if not report.drift_detected:
        return None, report
    drifted = ", ".join(report.drifted_features)
    return f"data drift in {report.drift_share:.0%} of the features ({drifted})", report


def retrain_if_new_ratings(settings: Settings, config: PipelineConfig) -> TickOutcome:
    """One tick: retrain (on the store as it is, no ingest) when the data moved."""
    reason = new_ratings_reason(settings)
    if reason is None:
        return TickOutcome(False, "no new ratings since the champion's data")
    result = run_pipeline(settings, config, ingest=False)
    return TickOutcome(True, reason, result)


def retrain_on_drift(settings: Settings, config: PipelineConfig) -> TickOutcome:
    """One tick: retrain (on the store as it is, no ingest) when the data drifted."""
    reason, report = drift_reason(settings)
    if reason is None:
        message = report.message if report is not None else "no drift"
        return TickOutcome(False, message, drift=report)
    result = run_pipeline(settings, config, ingest=False)
    return TickOutcome(True, reason, result, drift=report)


def _tick(settings: Settings, config_path: Path, on_drift: bool) -> None:
    retrain = retrain_on_drift if on_drift else retrain_if_new_ratings
    try:
        outcome = retrain(settings, PipelineConfig.from_yaml(config_path))
    except MovierecError as exc:  # the next tick runs as planned
        log.error("scheduled retraining failed: %s", exc)
        return
    if outcome.result is None or outcome.result.decision is None:
        log.info("scheduled retraining: %s", outcome.reason)
        return
    decision = outcome.result.decision
    log.info(
        "retrained (%s): version %s is %s (%s)",
        outcome.reason,
        decision.version,
        decision.decision,
        decision.reason,
    )


def build_scheduler(
    settings: Settings,
    config_path: Path,
    cron: str,
    *,
    blocking: bool = True,
    on_drift: bool = False,
) -> BaseScheduler:
    """A scheduler with the retraining job (on new ratings, or ``on_drift`` on the drift
    verdict); the config is re-read at every tick.

    One run at a time: a tick that comes while the previous run still trains is skipped, and
    missed ticks collapse into one.
    """
    PipelineConfig.from_yaml(config_path)  # a bad config fails now, not at the first tick
    trigger = parse_cron(cron)
    scheduler: BaseScheduler = BlockingScheduler() if blocking else BackgroundScheduler()
    scheduler.add_job(
        _tick,
        trigger,
        args=(settings, config_path, on_drift),
        id=JOB_ID,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    return scheduler
