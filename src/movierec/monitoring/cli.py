"""``movierec monitor ...``: the monitoring commands (registered by :mod:`movierec.cli`).

Like every command, a failure is one ``error: ...`` line and exit status 1; scipy, MLflow and
Evidently are imported by the command that needs them, not by every ``movierec`` command.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from movierec.config import Settings
from movierec.data.store import RatingsStore
from movierec.errors import MovierecError

if TYPE_CHECKING:
    from movierec.monitoring.drift import DriftReport

monitor_app = typer.Typer(help="Monitoring: data drift.", no_args_is_help=True)
# Piped output has no terminal width; 80 columns would cut the table short (as in movierec.cli).
console = Console() if Console().is_terminal else Console(width=120)
err_console = Console(stderr=True)

TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


@monitor_app.command("drift")
def drift_command(
    start: Annotated[
        datetime | None,
        typer.Option(
            "--start",
            "--since",
            formats=TIME_FORMATS,
            help="Window start (UTC); default: just after the champion's training data.",
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(
            formats=TIME_FORMATS,
            help="Window end (UTC), excluded; default: now.",
        ),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(min=1, help="The last N days (before --end, or now) instead of --start."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write Evidently's HTML report there.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Data drift of the ratings since the champion's training snapshot (or of a window)."""
    if start is not None and days is not None:
        raise typer.BadParameter("give --start or --days, not both", param_hint="--days")
    if days is not None:
        start = (end or datetime.now(UTC)) - timedelta(days=days)
    settings = Settings()
    try:
        report = _drift(settings, _epoch(start), _epoch(end), html)
    except MovierecError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        _print_report(report)
    if html is not None:
        err_console.print(f"HTML report written to {html}")


def _drift(
    settings: Settings, start: int | None, end: int | None, html: Path | None
) -> DriftReport:
    from movierec.monitoring.drift import compare, drift_html, drift_inputs

    snapshot_hash = _champion_snapshot_hash(settings)
    with RatingsStore.from_settings(settings) as store:
        inputs = drift_inputs(settings, store, snapshot_hash, start, end)
    report = compare(inputs, drift_share=settings.drift_share)
    if html is not None:
        try:
            html.write_text(drift_html(inputs, drift_share=settings.drift_share), "utf-8")
        except OSError as exc:
            raise MovierecError(f"cannot write the HTML report to {html}: {exc}") from exc
    return report


def _champion_snapshot_hash(settings: Settings) -> str:
    from movierec.monitoring.drift import DriftUnavailableError
    from movierec.training.scheduler import champion_snapshot

    snapshot = champion_snapshot(settings)
    if isinstance(snapshot, str):
        raise DriftUnavailableError(
            f"{snapshot}: drift compares the ratings with the champion's training snapshot "
            "(train one with `movierec pipeline run`)"
        )
    return snapshot.content_hash


def _epoch(moment: datetime | None) -> int | None:
    """Seconds since the epoch; a time without a zone is UTC."""
    if moment is None:
        return None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _print_report(report: DriftReport) -> None:
    window = report.window
    until = _date(window.end) if window.end is not None else "now"
    console.print(
        f"Reference: snapshot {report.snapshot_hash[:12]}, {report.reference_ratings:,} ratings. "
        f"Current: {report.current_ratings:,} ratings from {_date(window.start)} to {until}."
    )
    if report.features:
        table = Table(title="Data drift", title_justify="left")
        for column in ("feature", "test", "value", "threshold", "drifted", "details"):
            numeric = column in ("value", "threshold")
            table.add_column(column, justify="right" if numeric else "left")
        for f in report.features:
            details = ", ".join(f"{k} {_figure(v)}" for k, v in f.details.items())
            drifted = "[bold red]yes[/]" if f.drifted else "no"
            table.add_row(
                f.feature, f.test, _figure(f.value), _figure(f.threshold), drifted, details
            )
        console.print(table)
    for skipped in report.skipped if report.features else []:
        console.print(f"[yellow]skipped[/] {skipped.feature}: {skipped.reason}")
    colour = "red" if report.drift_detected else "green"
    console.print(f"[bold {colour}]{report.message}[/]", highlight=False)


def _date(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _figure(value: float | int | str) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
