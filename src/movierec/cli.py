"""The ``movierec`` command line: every stage is a command; the logic lives in the library.

Every command exits 0 on success and non-zero with a one-line ``error: ...`` on failure, and
offers ``--json`` where a script would read its output.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from movierec.config import Settings
from movierec.data import ingest as ingest_ops
from movierec.data.snapshot import create_snapshot
from movierec.data.sources import VARIANTS, CsvSpec
from movierec.data.store import RatingsStore
from movierec.errors import MovierecError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="movierec",
    help="movierec: a production-grade movie recommender system.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ingest_app = typer.Typer(help="Load ratings into the store.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect and generate data.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Stop at the first malformed row instead of skipping it.")
]
ReplaceOption = Annotated[
    bool,
    typer.Option("--replace", help="Replace a store that holds a different data set."),
]


def fails_cleanly(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a :class:`MovierecError` into one line on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except MovierecError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc

    return wrapper


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=_jsonable, indent=2) + "\n")


def _print_pairs(title: str, pairs: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in pairs.items():
        table.add_row(key.replace("_", " "), _human(key, value))
    console.print(table)


def _human(key: str, value: Any) -> str:
    """A value as a person reads it: thousands separators, dates, four significant digits."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int) and key.endswith("timestamp"):
        return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _report_ingest(outcome: ingest_ops.IngestOutcome, as_json: bool) -> None:
    if as_json:
        _print_json(outcome.to_dict())
        return
    result = outcome.store
    _print_pairs(
        f"Ingested {outcome.source}",
        {
            "rows read": outcome.rows_read,
            "rows rejected": outcome.rows_rejected,
            "duplicates dropped": outcome.duplicates_dropped,
            "inserted": result.inserted,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "seconds": f"{result.seconds:.2f}",
        },
    )
    if result.skipped_reason:
        console.print(f"[yellow]skipped:[/] {result.skipped_reason}")
    for note in outcome.notes:
        console.print(f"[yellow]note:[/] {note}")
    for row in outcome.rejected_samples[:10]:
        console.print(f"[yellow]rejected line {row['line']}:[/] {row['reason']}")


@ingest_app.command("movielens")
@fails_cleanly
def ingest_movielens(
    name: Annotated[
        str | None,
        typer.Argument(help=f"One of: {', '.join(VARIANTS)}. Default: the configured data set."),
    ] = None,
    strict: StrictOption = False,
    replace: ReplaceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Find a MovieLens archive (datasets dir, cache, else download), verify, parse and load it."""
    outcome = ingest_ops.ingest_movielens(
        Settings(), name, strict=strict, replace=replace, progress=not as_json
    )
    _report_ingest(outcome, as_json)


def _parse_scale(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError as exc:
        raise typer.BadParameter(f"expected LOW,HIGH such as 0,100; got {text!r}") from exc
    if not low < high:
        raise typer.BadParameter(f"the scale's low end must be below its high end; got {text!r}")
    return low, high


@ingest_app.command("csv")
@fails_cleanly
def ingest_csv(
    path: Annotated[
        Path, typer.Argument(help="The ratings CSV file.", exists=True, dir_okay=False)
    ],
    user_col: Annotated[str, typer.Option(help="Column with the user id or name.")] = "user_id",
    item_col: Annotated[str, typer.Option(help="Column with the movie id or name.")] = "item_id",
    rating_col: Annotated[str, typer.Option(help="Column with the rating or score.")] = "rating",
    timestamp_col: Annotated[
        str | None, typer.Option(help="Column with epoch seconds or ISO dates.")
    ] = None,
    rating_scale: Annotated[
        str | None, typer.Option(help="LOW,HIGH: rows outside are rejected, e.g. 0,100.")
    ] = None,
    user_name_col: Annotated[str | None, typer.Option(help="Column with user names.")] = None,
    item_name_col: Annotated[str | None, typer.Option(help="Column with movie titles.")] = None,
    delimiter: Annotated[str, typer.Option(help="Field separator.")] = ",",
    encoding: Annotated[str, typer.Option(help="Text encoding of the file.")] = "utf-8",
    movies: Annotated[
        Path | None,
        typer.Option(help="A movies CSV (item id, title, genres).", exists=True, dir_okay=False),
    ] = None,
    strict: StrictOption = False,
    replace: ReplaceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Load any ratings CSV, e.g. a 0-100 score per (user, film) pair."""
    spec = CsvSpec(
        user_col=user_col,
        item_col=item_col,
        rating_col=rating_col,
        timestamp_col=timestamp_col,
        rating_scale=_parse_scale(rating_scale),
        delimiter=delimiter,
        encoding=encoding,
        user_name_col=user_name_col,
        item_name_col=item_name_col,
    )
    outcome = ingest_ops.ingest_csv(
        Settings(), path, spec, movies_path=movies, strict=strict, replace=replace
    )
    _report_ingest(outcome, as_json)


@data_app.command("stats")
@fails_cleanly
def data_stats(as_json: JsonOption = False) -> None:
    """Counts and ranges of what the store holds."""
    with RatingsStore.from_settings(Settings()) as store:
        stats = store.stats()
    if as_json:
        _print_json(stats)
    else:
        _print_pairs("Ratings store", asdict(stats))


@data_app.command("log")
@fails_cleanly
def data_log(
    limit: Annotated[int, typer.Option(min=1, help="How many entries, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The ingestion log: what was loaded, when, and how many rows were accepted and rejected."""
    with RatingsStore.from_settings(Settings()) as store:
        entries = store.ingestion_log(limit=limit)
    if as_json:
        _print_json(entries)
        return
    table = Table(title="Ingestion log")
    columns = ("id", "source", "status", "finished_at", "rows_read", "rows_rejected")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for entry in entries:
        table.add_row(*(str(entry.get(column, "")) for column in columns))
    console.print(table)


@data_app.command("datasets")
@fails_cleanly
def data_datasets(as_json: JsonOption = False) -> None:
    """The MovieLens variants movierec knows, and whether a local copy is at hand."""
    settings = Settings()
    folders = [f for f in (settings.datasets_dir, settings.cache_dir) if f is not None]
    rows = []
    for variant in VARIANTS.values():
        copies = [f / variant.filename for f in folders if (f / variant.filename).exists()]
        rows.append((variant, str(copies[0]) if copies else None))
    if as_json:
        _print_json(
            [
                {"name": v.name, "size_bytes": v.size_bytes, "url": v.url, "local_copy": copy}
                for v, copy in rows
            ]
        )
        return
    table = Table(title="MovieLens data sets")
    for column in ("name", "size", "local copy"):
        table.add_column(column)
    for variant, copy in rows:
        size = f"{variant.size_bytes / 1e6:,.1f} MB" if variant.size_bytes else "changes"
        table.add_row(variant.name, size, copy or "download")
    console.print(table)


@data_app.command("synth")
@fails_cleanly
def data_synth(
    users: Annotated[int, typer.Option(min=1, help="Number of users.")] = 138_493,
    items: Annotated[int, typer.Option(min=1, help="Number of movies.")] = 27_278,
    ratings: Annotated[int, typer.Option(min=1, help="Number of ratings.")] = 20_000_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    replace: ReplaceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Generate synthetic ratings (power-law activity, latent factors) into the store."""
    outcome = ingest_ops.ingest_synthetic(
        Settings(), n_users=users, n_items=items, n_ratings=ratings, seed=seed, replace=replace
    )
    _report_ingest(outcome, as_json)


@app.command("snapshot")
@fails_cleanly
def snapshot(as_json: JsonOption = False) -> None:
    """Export the store to parquet, named by a content hash, for training."""
    settings = Settings()
    with RatingsStore.from_settings(settings) as store:
        snap = create_snapshot(store, settings.snapshots_dir)
    if as_json:
        _print_json({"path": snap.path, **snap.manifest})
    else:
        _print_pairs(f"Snapshot {snap.content_hash[:16]}", {"path": snap.path, **snap.manifest})


if __name__ == "__main__":  # pragma: no cover
    app()
