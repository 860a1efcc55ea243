"""Ingestion: read a source (MovieLens, a ratings CSV, synthetic data) and load it into the store.

The CLI and, later, the pipeline and the API call these functions; they hold the only glue
between :mod:`movierec.data.sources` and :mod:`movierec.data.store`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from movierec.config import Settings
from movierec.data.sources import CsvSpec, LoadedData, load_movielens, read_ratings_csv
from movierec.data.store import IngestResult, RatingsStore
from movierec.data.synth import generate


@dataclass(frozen=True)
class IngestOutcome:
    """What reading a source and loading it into the store did."""

    source: str
    rows_read: int
    rows_rejected: int
    duplicates_dropped: int
    rejected_samples: list[dict[str, Any]]
    notes: list[str]
    store: IngestResult

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


def _load(settings: Settings, data: LoadedData, *, replace: bool) -> IngestOutcome:
    report = data.report
    with RatingsStore.from_settings(settings) as store:
        result = store.ingest(data, replace=replace)
    return IngestOutcome(
        source=data.name,
        rows_read=report.rows_read,
        rows_rejected=report.rows_rejected,
        duplicates_dropped=report.duplicates_dropped,
        rejected_samples=[asdict(row) for row in report.rejected[:20]],
        notes=list(getattr(report, "notes", [])),
        store=result,
    )


def ingest_movielens(
    settings: Settings,
    name: str | None = None,
    *,
    strict: bool = False,
    replace: bool = False,
    progress: bool = True,
) -> IngestOutcome:
    """Find (or download) a MovieLens archive, parse it and load it into the store."""
    data = load_movielens(
        name or settings.dataset,
        settings,
        strict=strict,
        progress=progress,
        base_url=settings.movielens_base_url,
    )
    return _load(settings, data, replace=replace)


def ingest_csv(
    settings: Settings,
    path: Path,
    spec: CsvSpec,
    *,
    movies_path: Path | None = None,
    strict: bool = False,
    replace: bool = False,
) -> IngestOutcome:
    """Parse any ratings CSV (and optionally a movies CSV) and load it into the store."""
    data = read_ratings_csv(path, spec, strict=strict, movies_path=movies_path)
    return _load(settings, data, replace=replace)


def ingest_synthetic(
    settings: Settings,
    *,
    n_users: int,
    n_items: int,
    n_ratings: int,
    seed: int = 0,
    replace: bool = False,
) -> IngestOutcome:
    """Generate synthetic ratings and load them into the store (scale and load tests only)."""
    data = generate(n_users, n_items, n_ratings, seed=seed)
    return _load(settings, data, replace=replace)
