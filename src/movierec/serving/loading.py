"""Find the model to serve: the registry's ``champion``, else the saved model folder.

The registry is read through MLflow itself (serving never imports ``movierec.training``): the
champion's logged pyfunc model carries the project's own save format (npz + json) as an artifact
folder, named in its ``MLmodel`` file; only that folder is downloaded (once per version, into
``served_models_dir``) and handed to ``Recommender.load``. Nothing is unpickled.

Models are memory-mapped, not read (``mmap_mode=True``): every worker of a server maps the same
file, so a model's arrays are in memory, and in the CPU's shared cache, once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from movierec.config import Settings
from movierec.errors import MovierecError
from movierec.models import model_class
from movierec.models.base import Recommender

logger = logging.getLogger(__name__)

CHAMPION = "champion"
MODEL_ARTIFACT = "recommender"  # the pyfunc artifact key movierec logs its model folder under
SNAPSHOT_TAG = "movierec.snapshot_hash"
KEEP_SERVED_VERSIONS = 3  # downloaded registry versions kept in served_models_dir


class ModelUnavailableError(MovierecError):
    """No model can be served: none in the registry or on disk, or the registry failed."""


class VersionNotFoundError(ModelUnavailableError):
    """The registry was read and lacks the version asked for."""


@dataclass(frozen=True)
class ModelInfo:
    """Where the served model came from and when it was loaded."""

    name: str
    version: int | None
    source: Literal["registry", "local"]
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    snapshot_hash: str | None = None
    trained_at: datetime | None = None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    load_seconds: float = 0.0
    n_users: int = 0
    n_items: int = 0


@dataclass(frozen=True)
class LoadedModel:
    model: Recommender
    info: ModelInfo


def load_model_folder(folder: Path) -> Recommender:
    """The recommender saved in ``folder`` (its family is read from ``config.json``)."""
    try:
        family = json.loads((folder / "config.json").read_text())["model"]
    except (OSError, ValueError, KeyError) as exc:
        raise ModelUnavailableError(f"no readable model in {folder}: {exc}") from exc
    # Mapped, not read: the workers of a server share the file's pages (models/arrays.py).
    return model_class(family).load(folder, mmap_mode=True)


def load_current_model(settings: Settings, *, fall_back_on_error: bool) -> LoadedModel:
    """The registry's champion, or the saved folder ``models_dir/model`` when there is none.

    Args:
        settings: Registry URI and name, the models folder.
        fall_back_on_error: Whether a registry that cannot be read falls back to the saved
            folder (start-up: better serve something) or raises (reload: keep the model in
            service rather than swap in an older one silently).

    Raises:
        ModelUnavailableError: nothing to serve.
    """
    started = time.perf_counter()
    registry_error: ModelUnavailableError | None = None
    try:
        loaded = _load_champion(settings)
    except ModelUnavailableError as exc:
        if not fall_back_on_error:
            raise
        logger.warning("the registry cannot be read; trying the saved model", exc_info=True)
        loaded, registry_error = None, exc
    if loaded is None:
        loaded = _load_local(settings, registry_error)
    info = dataclasses.replace(
        loaded.info,
        loaded_at=datetime.now(UTC),
        load_seconds=time.perf_counter() - started,
        n_users=loaded.model.n_users,
        n_items=loaded.model.n_items,
    )
    return LoadedModel(loaded.model, info)


def _load_local(
    settings: Settings, registry_error: ModelUnavailableError | None = None
) -> LoadedModel:
    folder = settings.models_dir / settings.model
    if not (folder / "config.json").exists():
        # The registry's own failure (server or artifact store unreachable) is the news, not
        # a champion it was never asked about.
        registry = (
            f"the registry has no '{CHAMPION}' for {settings.registered_model!r}"
            if registry_error is None
            else str(registry_error)
        )
        raise ModelUnavailableError(
            f"no model to serve: {registry}, and {folder} holds no saved model "
            "(run `movierec train`)"
        )
    model = load_model_folder(folder)
    report = _read_json(folder / "report.json")
    return LoadedModel(
        model,
        ModelInfo(
            name=model.name,
            version=None,
            source="local",
            run_id=None,
            metrics=metric_names(report.get("metrics", {})),
            snapshot_hash=_snapshot(report.get("data", {}).get("snapshot_hash")),
            trained_at=datetime.fromtimestamp((folder / "config.json").stat().st_mtime, UTC),
        ),
    )


def registry_absent(settings: Settings) -> bool:
    """Whether the registry is an embedded one whose file does not exist: it has no versions,
    and opening it would create it (and run MLflow's migrations) for nothing."""
    uri = settings.tracking_uri
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()


def _load_champion(settings: Settings) -> LoadedModel | None:
    """The champion version's model, None without one; registry failures raise."""
    if registry_absent(settings):
        return None
    with _registry_errors(settings, "the champion") as client:
        version = _champion_version(client, settings.registered_model)
        return None if version is None else _load_version(settings, client, version)


def champion_version(settings: Settings) -> int | None:
    """The number of the registry's champion version, None without one (a few registry
    queries, no download); registry failures raise :class:`ModelUnavailableError`."""
    if registry_absent(settings):
        return None
    with _registry_errors(settings, "the champion") as client:
        version = _champion_version(client, settings.registered_model)
    return None if version is None else int(version.version)


def load_registry_version(settings: Settings, number: int) -> LoadedModel:
    """Version ``number`` of the registered model (an experiment's arm); raises
    :class:`ModelUnavailableError` when the registry lacks it or cannot be read."""
    if registry_absent(settings):
        raise VersionNotFoundError(f"the registry has no version {number}: it has none yet")
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    with _registry_errors(settings, f"version {number}") as client:
        try:
            version = client.get_model_version(settings.registered_model, str(number))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise VersionNotFoundError(
                    f"the registry has no version {number} of {settings.registered_model!r}"
                ) from None
            raise
        loaded = _load_version(settings, client, version)
    return LoadedModel(
        loaded.model,
        dataclasses.replace(
            loaded.info, n_users=loaded.model.n_users, n_items=loaded.model.n_items
        ),
    )


@contextlib.contextmanager
def _registry_errors(settings: Settings, what: str) -> Iterator[Any]:
    """An MLflow client; its failures become :class:`ModelUnavailableError`."""
    from mlflow import MlflowClient  # noqa: PLC0415 (mlflow takes a second to import)
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    try:
        yield MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    except (MlflowException, OSError, ValueError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailableError(
            f"cannot load {what} from the registry at {settings.tracking_uri}: {text[:300]}"
        ) from exc


def _load_version(settings: Settings, client: Any, version: Any) -> LoadedModel:
    """A registry version's model (downloaded once, then mapped) and its description."""
    download_uri = client.get_model_version_download_uri(
        settings.registered_model, str(version.version)
    )
    run = client.get_run(version.run_id) if version.run_id else None
    key = f"{settings.registered_model}-v{version.version}-{version.run_id or 'none'}"
    model = _download_and_load(settings, download_uri, key)
    metrics = metric_names(run.data.metrics) if run is not None else {}
    tags = dict(run.data.tags) if run is not None else {}
    return LoadedModel(
        model,
        ModelInfo(
            name=model.name,
            version=int(version.version),
            source="registry",
            run_id=version.run_id,
            metrics=metrics,
            snapshot_hash=_snapshot(tags.get(SNAPSHOT_TAG)),
            # When the version was registered: a champion's age is the alert's question.
            trained_at=datetime.fromtimestamp(version.creation_timestamp / 1000, UTC),
        ),
    )


def _champion_version(client: Any, name: str) -> Any:
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def _download_and_load(settings: Settings, download_uri: str, key: str) -> Recommender:
    """Download a version's model folder once into ``served_models_dir/key``, then map it.

    Every worker of a server (and every later start) maps that one copy, so the arrays are in
    memory once. A download goes to a scratch folder renamed into place when complete: a folder
    under its final name is always whole, and two workers downloading at once both end with it.
    """
    parent = settings.served_models_dir
    folder = parent / key
    if not (folder / "config.json").exists():
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{key}-", dir=parent) as scratch:
            downloaded = _download(settings, download_uri, Path(scratch))
            with contextlib.suppress(OSError):  # another worker's rename came first
                downloaded.rename(folder)
        _forget_old_versions(parent, keep=folder)
    return load_model_folder(folder)


def _download(settings: Settings, download_uri: str, scratch: Path) -> Path:
    """The logged model's folder of arrays and config, downloaded under ``scratch``."""
    import mlflow.artifacts  # noqa: PLC0415

    # A server's log is no place for download progress bars.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    root = download_uri.rstrip("/")
    mlmodel = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{root}/MLmodel", dst_path=str(scratch), tracking_uri=settings.tracking_uri
    )
    relative = _artifact_path(Path(mlmodel))
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"{root}/{relative}",
            dst_path=str(scratch),
            tracking_uri=settings.tracking_uri,
        )
    )


def _forget_old_versions(parent: Path, keep: Path) -> None:
    """Delete downloaded versions beyond the newest few (a rollback finds its folder still
    there). A worker still serving a deleted one keeps its mapped pages until it reloads."""
    folders = sorted(
        (p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in folders[KEEP_SERVED_VERSIONS:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def _artifact_path(mlmodel: Path) -> str:
    """The model folder's path inside the logged model, as its ``MLmodel`` file names it."""
    meta = yaml.safe_load(mlmodel.read_text()) or {}
    artifacts = meta.get("flavors", {}).get("python_function", {}).get("artifacts", {})
    path = artifacts.get(MODEL_ARTIFACT, {}).get("path")
    if not isinstance(path, str) or not path or path.startswith("/") or ".." in path:
        raise ValueError(f"the logged model has no usable {MODEL_ARTIFACT!r} artifact path")
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def metric_names(values: Any) -> dict[str, float]:
    """Numeric metrics by movierec name: MLflow's keys (``ndcg_at_10``, it rejects ``@``)
    become ``ndcg@10``; anything but a mapping of numbers gives nothing."""
    if not isinstance(values, dict):
        return {}
    return {
        str(key).replace("_at_", "@"): float(value)
        for key, value in values.items()
        if isinstance(value, int | float)
    }


def _snapshot(value: Any) -> str | None:
    # Training records a missing hash as the text "None".
    return value if isinstance(value, str) and value and value != "None" else None
