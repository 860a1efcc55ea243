"""What the registry holds, for people: every version with its aliases and metrics, and the
leaderboard of the latest pipeline run (its models scored on one split).

Read through MLflow's client, as :mod:`movierec.serving.loading` reads the champion (serving
never imports ``movierec.training``); each call is a few registry queries, run in the thread
pool by the routes, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from movierec.config import Settings
from movierec.serving.loading import ModelUnavailableError, metric_names, registry_absent

PIPELINE_STAGE_TAG = "movierec.stage"
PARENT_RUN_TAG = "mlflow.parentRunId"


@dataclass(frozen=True)
class RegistryVersion:
    version: int
    aliases: list[str]
    model: str | None
    run_id: str | None
    created_at_ms: int
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LeaderboardEntry:
    model: str
    metrics: dict[str, float]
    params: dict[str, str]


@dataclass(frozen=True)
class Leaderboard:
    run_id: str | None
    started_at_ms: int | None
    entries: list[LeaderboardEntry]


def list_versions(settings: Settings) -> list[RegistryVersion]:
    """Every version of the served registered model, newest first (empty without a registry)."""
    if registry_absent(settings):
        return []
    with _registry_errors(settings, "list the registry's versions") as client:
        name = settings.registered_model
        found = client.search_model_versions(f"name = '{name}'")
        # Search results leave the aliases out: read each version itself.
        versions = [client.get_model_version(name, v.version) for v in found]
        described = [_version(client, v) for v in versions]
    return sorted(described, key=lambda v: v.version, reverse=True)


def latest_leaderboard(settings: Settings) -> Leaderboard:
    """The models the newest pipeline run evaluated, in the order it logged them."""
    if registry_absent(settings):
        return Leaderboard(None, None, [])
    with _registry_errors(settings, "read the latest pipeline run") as client:
        experiment = client.get_experiment_by_name(settings.mlflow_experiment)
        if experiment is None:
            return Leaderboard(None, None, [])
        ids = [experiment.experiment_id]
        newest = client.search_runs(
            ids,
            filter_string=f"tags.`{PIPELINE_STAGE_TAG}` = 'pipeline'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not newest:
            return Leaderboard(None, None, [])
        parent = newest[0]
        children = client.search_runs(
            ids,
            filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent.info.run_id}'",
            order_by=["attributes.start_time ASC"],
            max_results=1000,
        )
    entries = [
        LeaderboardEntry(
            model=run.data.params.get("model", run.info.run_name or "?"),
            metrics=metric_names(run.data.metrics),
            params=dict(run.data.params),
        )
        for run in children
    ]
    return Leaderboard(parent.info.run_id, parent.info.start_time, entries)


def _version(client: Any, version: Any) -> RegistryVersion:
    run = client.get_run(version.run_id) if version.run_id else None
    params = dict(run.data.params) if run is not None else {}
    return RegistryVersion(
        version=int(version.version),
        aliases=sorted(version.aliases),
        model=params.get("model"),
        run_id=version.run_id,
        created_at_ms=int(version.creation_timestamp or 0),
        metrics=metric_names(run.data.metrics) if run is not None else {},
        params=params,
    )


@contextmanager
def _registry_errors(settings: Settings, action: str) -> Iterator[Any]:
    """An MLflow client for ``settings``; registry failures become :class:`ModelUnavailableError`
    (503), with the registry's address and its first line of explanation."""
    from mlflow import MlflowClient  # noqa: PLC0415 (mlflow takes a second to import)
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    uri = settings.tracking_uri
    try:
        yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    except (MlflowException, OSError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailableError(f"cannot {action} at {uri}: {text[:300]}") from exc
