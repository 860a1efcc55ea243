"""The ``movierec`` command line: every stage is a command; the logic lives in the library.

Every command exits 0 on success and non-zero with a one-line ``error: ...`` on failure, and
offers ``--json`` where a script would read its output.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from movierec.config import Settings
from movierec.data import ingest as ingest_ops
from movierec.data.snapshot import create_snapshot
from movierec.data.sources import VARIANTS, CsvSpec
from movierec.data.store import RatingsStore
from movierec.errors import MovierecError
from movierec.evaluation.protocol import EvaluationConfig, Report
from movierec.models import model_class
from movierec.models.base import Recommender
from movierec.monitoring.cli import monitor_app
from movierec.training import experiments

# The MLOps and serving commands import MLflow, Optuna, APScheduler and FastAPI inside their own
# bodies: at module level those cost every command (ingest, data, --help) about 2 seconds.
if TYPE_CHECKING:
    from movierec.training.tuning import TuningResult

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
pipeline_app = typer.Typer(help="The training pipeline (also run by DVC).", no_args_is_help=True)
models_app = typer.Typer(help="The model registry: versions, champion.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(data_app, name="data")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(models_app, name="models")
app.add_typer(monitor_app, name="monitor")

# Piped output (make run, CI logs) has no terminal width; 80 columns would cut tables short.
console = Console() if Console().is_terminal else Console(width=120)
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
            # Escaped: a message's own brackets (e.g. 'movierec[spark]') are not markup.
            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
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


ModelOption = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model family; default MOVIEREC_MODEL."),
]
ParamOption = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="Model parameter KEY=VALUE; repeat for more."),
]
DatasetOption = Annotated[
    str | None,
    typer.Option(help="A MovieLens data set; default: what the store holds (via a snapshot)."),
]
ProtocolOption = Annotated[
    str,
    typer.Option(
        help="Split protocol: user_temporal, random, temporal, leave_one_out, kfold, "
        "held_out_users, ml100k_official."
    ),
]
SplitParamOption = Annotated[
    list[str] | None,
    typer.Option("--split-param", help="Split parameter KEY=VALUE, e.g. test_fraction=0.2."),
]
KsOption = Annotated[str, typer.Option("--ks", help="Cut-offs for ranking metrics.")]
RelevanceOption = Annotated[
    float | None,
    typer.Option(help="A test rating at least this high is relevant; omit it for implicit data."),
]


def _parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``["n_factors=64", "kind=count"]`` -> ``{"n_factors": 64, "kind": "count"}``."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        try:
            params[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            params[key.strip()] = text
    return params


def _eval_config(ks: str, relevance: float | None) -> EvaluationConfig:
    try:
        cutoffs = tuple(int(k) for k in ks.split(","))
        return EvaluationConfig(ks=cutoffs, relevance_threshold=relevance)
    except ValueError as exc:
        raise typer.BadParameter(f"--ks: {exc}") from exc


_LEADERBOARD_COLUMNS = ("ndcg@10", "precision@10", "recall@10", "mrr@10", "coverage@10", "rmse")


def _print_leaderboard(reports: list[Report], title: str) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("model", style="bold")
    shown = [c for c in _LEADERBOARD_COLUMNS if any(c in r.metrics for r in reports)]
    for column in (*shown, "fit s", "eval s"):
        table.add_column(column, justify="right")
    for report in reports:
        values = [f"{report.metrics[c]:.4f}" if c in report.metrics else "-" for c in shown]
        timings = (f"{report.fit_seconds:.2f}", f"{report.eval_seconds:.2f}")
        table.add_row(report.model, *values, *timings)
    console.print(table)


@app.command("evaluate")
@fails_cleanly
def evaluate_command(
    model: ModelOption = None,
    param: ParamOption = None,
    dataset: DatasetOption = None,
    protocol: ProtocolOption = experiments.DEFAULT_PROTOCOL,
    split_param: SplitParamOption = None,
    ks: KsOption = "5,10,20",
    relevance: RelevanceOption = 4.0,
    as_json: JsonOption = False,
) -> None:
    """Fit a model on a split's train part and report every metric on its test part."""
    settings = Settings()
    params, split_params = _parse_params(param), _parse_params(split_param)
    config = _eval_config(ks, relevance)
    experiment = experiments.prepare(settings, dataset, protocol, **split_params)
    report = experiments.evaluate_model(experiment, model or settings.model, params, config)
    if as_json:
        _print_json(report.to_dict())
        return
    _print_pairs(
        f"{report.model} on {experiment.dataset}, {report.split}",
        {**report.metrics, "fit seconds": report.fit_seconds, "users": report.n_users_ranked},
    )


# The families worth comparing on any data set, the blends (usually the best) included: about
# 15 s on ml-100k on a 2-core machine, the blends a third of it.
COMPARED_BY_DEFAULT = "popularity,item_knn,ease,als,bpr,svd,blend,rating_blend"


@app.command("compare")
@fails_cleanly
def compare_command(
    models: Annotated[
        str, typer.Option(help="Comma-separated model families.")
    ] = COMPARED_BY_DEFAULT,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="MODEL.KEY=VALUE, e.g. als.factors=128."),
    ] = None,
    dataset: DatasetOption = None,
    protocol: ProtocolOption = experiments.DEFAULT_PROTOCOL,
    split_param: SplitParamOption = None,
    rank_by: Annotated[str, typer.Option(help="Metric that orders the board.")] = "ndcg@10",
    ks: KsOption = "5,10,20",
    relevance: RelevanceOption = 4.0,
    as_json: JsonOption = False,
) -> None:
    """Run several models on the same split and print a leaderboard."""
    names = [name.strip() for name in models.split(",") if name.strip()]
    for name in names:
        model_class(name)  # an unknown name fails before any work
    per_model: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in _parse_params(param).items():
        name, _, field = key.partition(".")
        if name not in per_model or not field:
            raise typer.BadParameter(f"--param {key}: expected MODEL.KEY with MODEL in --models")
        per_model[name][field] = value
    settings, split_params = Settings(), _parse_params(split_param)
    config = _eval_config(ks, relevance)
    experiment = experiments.prepare(settings, dataset, protocol, **split_params)
    reports = experiments.leaderboard(experiment, per_model, config, rank_by=rank_by)
    if as_json:
        _print_json([report.to_dict() for report in reports])
        return
    _print_leaderboard(reports, f"{experiment.dataset}, {experiment.protocol}, by {rank_by}")


@app.command("train")
@fails_cleanly
def train_command(
    model: ModelOption = None,
    param: ParamOption = None,
    dataset: DatasetOption = None,
    output: Annotated[
        Path | None, typer.Option(help="Folder to save into; default DATA_DIR/models/NAME.")
    ] = None,
    engine: Annotated[
        experiments.Engine,
        typer.Option(help="Where to train: local, or spark (als; needs the spark extra)."),
    ] = "local",
    master: Annotated[
        str | None,
        typer.Option(help="Spark master URL (spark://host:7077); default local[2]."),
    ] = None,
    spark_source: Annotated[
        experiments.SparkSource,
        typer.Option(help="Where Spark reads the ratings: driver, snapshot (parquet) or jdbc."),
    ] = "driver",
    as_json: JsonOption = False,
) -> None:
    """Fit a model on all the data and save it (npz + JSON, no pickle)."""
    settings = Settings()
    name = model or settings.model
    params = _parse_params(param)
    if engine == "spark":
        from movierec.distributed.spark_als import require_pyspark

        require_pyspark()  # before any data is read: one line on how to install it
        params |= {} if master is None else {"master": master}
    elif master is not None:
        raise typer.BadParameter("--master needs --engine spark")
    fitted, folder, seconds = experiments.train_model(
        settings, name, params, dataset, output, engine=engine, spark_source=spark_source
    )
    summary = {
        "model": name,
        "path": str(folder),
        "fit_seconds": seconds,
        "n_users": fitted.n_users,
        "n_items": fitted.n_items,
        "params": fitted.config.model_dump(mode="json"),
    }
    if as_json:
        _print_json(summary)
    else:
        _print_pairs(f"Trained {name}", {k: v for k, v in summary.items() if k != "params"})


def _load_model(settings: Settings, name: str | None, path: Path | None) -> Recommender:
    """The model named by a folder or family; with neither, the registry's champion if any."""
    if name is None and path is None and _has_champion(settings):
        from movierec.training import tracking

        return tracking.load_version_model(settings, tracking.CHAMPION)
    family = name or settings.model
    folder = path or settings.models_dir / family
    if not (folder / "config.json").exists():
        raise MovierecError(f"no saved {family} model in {folder}: run `movierec train` first")
    meta = json.loads((folder / "config.json").read_text())
    return model_class(meta.get("model", family)).load(folder)


def _has_champion(settings: Settings) -> bool:
    if settings.mlflow_tracking_uri is None and not (settings.data_dir / "mlflow.db").exists():
        return False  # no embedded registry yet: do not create one just to look
    from movierec.training import tracking

    return tracking.version_by_alias(settings, tracking.CHAMPION) is not None


def _movie_rows(
    settings: Settings, model: Recommender, items: np.ndarray, scores: np.ndarray
) -> list[dict[str, Any]]:
    """Recommended item indices as movies with their catalogue details, from the store."""
    assert model.item_ids is not None
    valid = items >= 0
    movie_ids = model.item_ids[items[valid]]
    with RatingsStore.from_settings(settings) as store:
        movies = store.movies_frame().set_index("item_id").reindex(movie_ids)
    rows = []
    for movie_id, title, year, genres, score in zip(
        movie_ids.tolist(),
        movies["title"].tolist(),
        movies["year"].tolist(),
        movies["genres"].tolist(),
        scores[valid].tolist(),
        strict=True,
    ):
        rows.append(
            {
                "movie_id": movie_id,
                "title": title if isinstance(title, str) else f"Item {movie_id}",
                "year": None if pd.isna(year) else int(year),
                "genres": list(genres) if isinstance(genres, list | np.ndarray) else [],
                "score": round(float(score), 4),
            }
        )
    return rows


def _print_movies(title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("#", "movie", "title", "year", "genres", "score"):
        table.add_column(column)
    for rank, row in enumerate(rows, 1):
        table.add_row(
            str(rank),
            str(row["movie_id"]),
            row["title"],
            str(row["year"] or ""),
            "|".join(row["genres"]),
            f"{row['score']:.4g}",
        )
    console.print(table)


def _answer_movies(
    settings: Settings,
    model: Recommender,
    found: tuple[np.ndarray, np.ndarray],
    about: dict[str, Any],
    title: str,
    as_json: bool,
) -> None:
    """Print recommended movies as JSON (``about`` + model + items) or as a table."""
    rows = _movie_rows(settings, model, *found)
    if as_json:
        _print_json({**about, "model": model.name, "items": rows})
    else:
        _print_movies(title, rows)


KOption = Annotated[int, typer.Option("-k", min=1, max=1000, help="How many movies.")]
ModelDirOption = Annotated[
    Path | None,
    typer.Option(
        "--model-dir", help="A saved model's folder; default: the registry's champion, if any."
    ),
]


@app.command("recommend")
@fails_cleanly
def recommend_command(
    user: Annotated[int, typer.Option(help="The user's id.")],
    k: KOption = 10,
    model: ModelOption = None,
    model_dir: ModelDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Top-k movies for a user from a saved model; an unknown user gets popular movies."""
    settings = Settings()
    fitted = _load_model(settings, model, model_dir)
    index = fitted.user_index_of(user)
    known = index is not None
    items, scores = fitted.popular_items(k) if index is None else fitted.recommend(index, k=k)
    strategy = "personalized" if known else "popular_fallback"
    if not known and not as_json:
        console.print(f"[yellow]user {user} is unknown to the model: showing popular movies[/]")
    _answer_movies(
        settings,
        fitted,
        (items, scores),
        {"user_id": user, "strategy": strategy},
        f"{fitted.name} for user {user} ({strategy})",
        as_json,
    )


@app.command("similar")
@fails_cleanly
def similar_command(
    movie: Annotated[int, typer.Option(help="The movie's id.")],
    k: KOption = 10,
    model: ModelOption = None,
    model_dir: ModelDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Movies most similar to a movie, from a saved model."""
    settings = Settings()
    fitted = _load_model(settings, model, model_dir)
    index = fitted.item_index_of(movie)
    if index is None:
        raise MovierecError(f"movie {movie} is unknown to the model")
    items, scores = fitted.similar_items(index, k=k)
    _answer_movies(
        settings,
        fitted,
        (items, scores),
        {"movie_id": movie},
        f"{fitted.name}: movies like {movie}",
        as_json,
    )


# ---------------------------------------------------------------- pipeline and registry

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Pipeline config: data set, protocol, models.")
]


@pipeline_app.command("run")
@fails_cleanly
def pipeline_run(
    config: ConfigOption = Path("params.yaml"),
    skip_ingest: Annotated[
        bool, typer.Option("--skip-ingest", help="Train on the store as it is.")
    ] = False,
    metrics_file: Annotated[
        Path | None,
        typer.Option("--metrics-file", help="Also write the leaderboard's metrics here (DVC)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest, snapshot, split, train and evaluate every model, log, register, promote.

    Re-running on unchanged data and parameters changes nothing.
    """
    from movierec.training.pipeline import PipelineConfig, run_pipeline

    settings = Settings()
    pipeline_config = PipelineConfig.from_yaml(config)
    say = None if as_json else (lambda message: err_console.print(f"[dim]{message}[/]"))
    result = run_pipeline(settings, pipeline_config, ingest=not skip_ingest, progress=say)
    summary = result.to_dict()
    if metrics_file is not None:
        metrics_file.parent.mkdir(parents=True, exist_ok=True)
        board = {r["model"]: r["metrics"] for r in summary["leaderboard"]}
        metrics_file.write_text(json.dumps({"version": result.version, **board}, indent=2))
    if as_json:
        _print_json(summary)
        return
    if result.leaderboard:
        _print_leaderboard(result.leaderboard, f"pipeline {result.fingerprint[:12]}")
    decision = result.decision
    _print_pairs(
        "Pipeline",
        {
            "snapshot": result.snapshot_hash[:16],
            "unchanged": result.skipped,
            "winner": result.winner or "-",
            "version": result.version if result.version is not None else "-",
            "decision": decision.decision if decision else "-",
            "reason": decision.reason if decision else "-",
            "seconds": sum(result.stage_seconds.values()),
        },
    )


_VERSION_COLUMNS = ("ndcg@10", "precision@10", "recall@10", "rmse")


@models_app.command("list")
@fails_cleanly
def models_list(as_json: JsonOption = False) -> None:
    """Every registered version, newest first, with aliases and headline metrics."""
    from movierec.training import tracking

    versions = tracking.list_versions(Settings())
    if as_json:
        _print_json(versions)
        return
    table = Table(title="Registered versions", title_justify="left")
    for column in ("version", "aliases", "model", "decision", *_VERSION_COLUMNS):
        table.add_column(column)
    for info in versions:
        figures = [f"{info.metrics[c]:.4f}" if c in info.metrics else "-" for c in _VERSION_COLUMNS]
        decision = info.tags.get("promotion.decision", "-")
        table.add_row(
            str(info.version), ",".join(info.aliases), info.model or "-", decision, *figures
        )
    console.print(table)


VersionArgument = Annotated[int, typer.Argument(min=1, help="A registered version number.")]


@models_app.command("show")
@fails_cleanly
def models_show(version: VersionArgument, as_json: JsonOption = False) -> None:
    """One version: aliases, metrics, parameters, promotion decision."""
    from movierec.training import tracking

    info = tracking.show_version(Settings(), version)
    if as_json:
        _print_json(info)
        return
    _print_pairs(
        f"Version {info.version}",
        {
            "model": info.model,
            "aliases": ",".join(info.aliases) or "-",
            "run": info.run_id,
            **{key: value for key, value in info.tags.items() if key.startswith("promotion.")},
            **info.metrics,
        },
    )


@models_app.command("promote")
@fails_cleanly
def models_promote(version: VersionArgument) -> None:
    """Make a version the champion by hand (the current one stays available for rollback)."""
    from movierec.training import tracking

    tracking.promote(Settings(), version)
    console.print(f"version {version} is now the champion")


@models_app.command("rollback")
@fails_cleanly
def models_rollback() -> None:
    """Give the champion alias back to the previous champion."""
    from movierec.training import tracking

    restored = tracking.rollback(Settings())
    console.print(f"version {restored} is the champion again")


@app.command("schedule")
@fails_cleanly
def schedule_command(
    cron: Annotated[
        str, typer.Option(help="When to check for new ratings (crontab, UTC).")
    ] = "0 3 * * *",
    config: ConfigOption = Path("params.yaml"),
    once: Annotated[
        bool, typer.Option("--once", help="Check and retrain once, now, then exit.")
    ] = False,
    on_drift: Annotated[
        bool,
        typer.Option(
            "--on-drift", help="Retrain when the data drift verdict is drift, not on any rating."
        ),
    ] = False,
) -> None:
    """Retrain on a schedule when new ratings have arrived (or drifted); promote by the usual
    rule."""
    from movierec.training.pipeline import PipelineConfig
    from movierec.training.scheduler import (
        build_scheduler,
        retrain_if_new_ratings,
        retrain_on_drift,
    )

    settings = Settings()
    if once:
        retrain = retrain_on_drift if on_drift else retrain_if_new_ratings
        outcome = retrain(settings, PipelineConfig.from_yaml(config))
        decision = outcome.result.decision if outcome.result else None
        verdict = f": version {decision.version} is {decision.decision}" if decision else ""
        console.print(f"{outcome.reason}{verdict}")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    scheduler = build_scheduler(settings, config, cron, on_drift=on_drift)
    trigger = "the ratings drift" if on_drift else "new ratings arrive"
    err_console.print(f"retraining on '{cron}' (UTC) when {trigger}; Ctrl+C stops")
    try:
        scheduler.start()
    except KeyboardInterrupt:
        scheduler.shutdown(wait=False)


@app.command("tune")
@fails_cleanly
def tune_command(
    model: ModelOption = None,
    trials: Annotated[
        int | None, typer.Option(min=1, help="More trials to run (grid: the unvisited points).")
    ] = None,
    metric: Annotated[str, typer.Option(help="Validation metric; rmse/mae are minimized.")] = (
        "ndcg@10"
    ),
    timeout: Annotated[
        float | None, typer.Option(min=1, help="Start no new trial after this many seconds.")
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", help="Grid search: KEY=V1,V2,...; repeat for more keys."),
    ] = None,
    param: ParamOption = None,
    dataset: DatasetOption = None,
    protocol: ProtocolOption = experiments.DEFAULT_PROTOCOL,
    split_param: SplitParamOption = None,
    ks: KsOption = "5,10,20",
    relevance: RelevanceOption = 4.0,
    study: Annotated[str | None, typer.Option(help="Study name; default from the setup.")] = None,
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL; default DATA_DIR/optuna.db.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Sampler seed.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Tune a model on validation splits carved from the training data (Optuna or a grid).

    Each trial is an MLflow child run; re-running the same command resumes the study. The best
    parameters are scored once on the held-out test part.
    """
    import optuna

    from movierec.training.tuning import parse_grid, tune

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result = tune(
        Settings(),
        model or Settings().model,
        trials=trials,
        metric=metric,
        timeout=timeout,
        dataset=dataset,
        protocol=protocol,
        split_params=_parse_params(split_param),
        eval_config=_eval_config(ks, relevance),
        grid=parse_grid(grid) if grid else None,
        study_name=study,
        storage=storage,
        seed=seed,
        fixed_params=_parse_params(param),
    )
    if as_json:
        _print_json({k: v for k, v in vars(result).items() if k != "test_report"})
        return
    _print_tuning(result)


def _print_tuning(result: TuningResult) -> None:
    total = result.n_complete + result.n_pruned + result.n_failed
    console.print(
        f"study [bold]{result.study_name}[/] ({result.storage}): ran {result.n_trials_run} "
        f"trials; {total} in all ({result.n_complete} complete, {result.n_pruned} pruned, "
        f"{result.n_failed} failed)"
    )
    params = " ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in result.best_params.items()
    )
    console.print(
        f"best trial #{result.best_trial}: validation {result.metric} {result.best_value:.4f}"
        f"  {params}"
    )
    console.print(
        f"test {result.metric} {result.test_value:.4f} (best parameters refitted on the train "
        "part, scored once on the test part)"
    )
    console.print(f"MLflow run {result.parent_run_id}")


WorkersOption = Annotated[
    int | None, typer.Option(min=1, help="API worker processes (default: one per CPU core).")
]


def _cores() -> int:
    """The API's default worker count: the machine's cores (a worker serves on one core)."""
    return max(os.cpu_count() or 1, 1)


@app.command("serve")
@fails_cleanly
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: WorkersOption = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Serve the API (FastAPI under uvicorn): the champion's recommendations, docs at /docs."""
    from movierec.serving import app as serving_app

    settings = Settings()
    err_console.print(
        f"movierec API on http://{host}:{port} (docs: /docs); try:\n"
        f"  curl 'http://{host}:{port}/users/1/recommendations?k=5'"
    )
    serving_app.serve(settings, host, port, workers or _cores(), access_log=access_log)


@app.command("ui")
@fails_cleanly
def ui_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8501,
    api_url: Annotated[
        str | None,
        typer.Option(help="The API's address (default: MOVIEREC_API_URL or :8000)."),
    ] = None,
) -> None:
    """Serve the web UI (Streamlit); it talks to the API over HTTP only."""
    from movierec.ui.launch import run_ui

    err_console.print(f"movierec UI on http://{host}:{port}")
    run_ui(host, port, api_url)


@app.command("up")
@fails_cleanly
def up_command(
    host: Annotated[str, typer.Option(help="Interface both servers listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The API's port.")] = 8000,
    ui_port: Annotated[int, typer.Option(min=1, max=65535, help="The UI's port.")] = 8501,
    workers: WorkersOption = None,
) -> None:
    """Serve the API and the UI together; Ctrl-C stops both."""
    from movierec.ui.launch import run_stack

    if port == ui_port:
        raise typer.BadParameter("the API and the UI need two different ports")
    raise typer.Exit(run_stack(host, port, host, ui_port, workers or _cores()))


if __name__ == "__main__":  # pragma: no cover
    app()
