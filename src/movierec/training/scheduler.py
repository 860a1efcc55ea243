"""Scheduled retraining: on a cron expression, retrain when new ratings have arrived.

Each tick compares the store with the snapshot the champion was trained on (rating count and
newest rating time: ratings posted to the API, or a fresh ingest, move one of them); when they
differ, it runs the pipeline on the store as it is, and the pipeline's promotion rule decides
whether the new model replaces the champion. A tick that fails is logged and the next one runs as
planned. The production alternative is the Airflow DAG in ``deploy/airflow/``, which runs the
same CLI stages.
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
from movierec.data.snapshot import load_snapshot
from movierec.data.store import RatingsStore
from movierec.errors import ConfigError, MovierecError
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


def new_ratings_reason(settings: Settings) -> str | None:
    """Why the store differs from the champion's training data, or None when it does not."""
    champion = tracking.version_by_alias(settings, tracking.CHAMPION)
    if champion is None:
        return "no champion yet"
    snapshot_hash = champion.snapshot_hash
    if not snapshot_hash:
        return f"champion v{champion.version} does not record its training data"
    folder = settings.snapshots_dir / snapshot_hash[:16]
    try:
        trained = load_snapshot(folder).manifest
    except MovierecError:
        return f"the champion's snapshot {snapshot_hash[:12]} is not on this machine"
    with RatingsStore.from_settings(settings) as store:
        now = store.stats()
    if now.n_ratings != trained["n_ratings"]:
        return f"{now.n_ratings - trained['n_ratings']:+,} ratings since the champion's data"
    if now.last_timestamp != trained["max_timestamp"]:
        return "ratings were updated since the champion's data"
    return None


def retrain_if_new_ratings(settings: Settings, config: PipelineConfig) -> TickOutcome:
    """One tick: retrain (on the store as it is, no ingest) when the data moved."""
    reason = new_ratings_reason(settings)
    if reason is None:
        return TickOutcome(False, "no new ratings since the champion's data")
    result = run_pipeline(settings, config, ingest=False)
    return TickOutcome(True, reason, result)


def _tick(settings: Settings, config_path: Path) -> None:
    try:
        outcome = retrain_if_new_ratings(settings, PipelineConfig.from_yaml(config_path))
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
    settings: Settings, config_path: Path, cron: str, *, blocking: bool = True
) -> BaseScheduler:
    """A scheduler with the retraining job; the config is re-read at every tick.

    One run at a time: a tick that comes while the previous run still trains is skipped, and
    missed ticks collapse into one.
    """
    PipelineConfig.from_yaml(config_path)  # a bad config fails now, not at the first tick
    trigger = parse_cron(cron)
    scheduler: BaseScheduler = BlockingScheduler() if blocking else BackgroundScheduler()
    scheduler.add_job(
        _tick,
        trigger,
        args=(settings, config_path),
        id=JOB_ID,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    return scheduler
