"""The Experiments page's views of one experiment: its verdict, its progress to the planned
horizon, its arms' figures as a table and as a chart of rates with their intervals (pure
functions of the API's answer, so the tests check what a person sees without a browser)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import altair as alt
import pandas as pd

from movierec.serving.experiment_schemas import ArmFigures, ExperimentDetails
from movierec.serving.schemas import RateFigure
from movierec.ui.monitoring import percent_interval

DESIGNS = {"ab": "A/B (each user sees one arm)", "interleaving": "Team-draft interleaving"}
TESTS = {  # the API's test: how the page names it
    "welch_t": "Welch's t-test of the users' hit rates",
    "sign_test": "sign test of the users' preferences",
}
RATES = ("user hit rate", "hit rate", "positive rate")  # the chart's rows, top to bottom
RATE_TITLE = "rate (whiskers: 95% interval)"
ARM_COLORS = ["#4c78a8", "#f58518"]  # control, treatment


@dataclass(frozen=True)
class Verdict:
    """What the page says of the test: the alert's ``kind``, a ``headline`` and the why."""

    kind: Literal["success", "warning", "info"]
    headline: str
    text: str


def arm_label(arm: ArmFigures) -> str:
    return f"{arm.arm.capitalize()} · v{arm.version}"


def percent(value: float | None) -> str:
    return "none yet" if value is None else f"{value:.1%}"


def interval(figure: RateFigure, confidence: str = "95%") -> str:
    """``figure``'s interval in percent, e.g. ``95% CI 8.9–15.6%``."""
    bounds = percent_interval(figure.low, figure.high)
    return "no interval yet" if bounds is None else f"{confidence} CI {bounds}"


def duration(days: float) -> str:
    """A horizon in the unit a person reads it in: ``7 days``, ``12 hours``, ``5 s``."""
    seconds = days * 86_400
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7_200:
        return f"{seconds / 60:.0f} min"
    if days < 2:
        return f"{seconds / 3_600:.0f} hours"
    return f"{days:g} days"


def share(details: ExperimentDetails, arm: ArmFigures) -> str:
    """The share of users the arm was planned to get, and the share it has."""
    if details.design == "interleaving":
        return "half of every list (team draft)"
    planned = details.treatment_share if arm.arm == "treatment" else 1 - details.treatment_share
    has = f", has {arm.users / details.users:.0%}" if details.users else ""
    return f"{planned:.0%} of users planned{has}"


def verdict(details: ExperimentDetails) -> Verdict:
    """The test's verdict once final; before, why there is none yet and the interim figures
    (labelled as such: reading a fixed-horizon test early is peeking)."""
    result = details.result
    test = f"fixed-horizon {TESTS.get(result.test, result.test)}"
    p_value = "no p-value yet" if result.p_value is None else f"p = {result.p_value:.2g}"
    figures = f"{_effect(details)}; {p_value} (α = {result.alpha:g})"
    if not result.final:
        pending = sum(arm.pending for arm in details.arms)
        missing = []
        if details.users < details.planned_users:
            missing.append(f"{details.users:,} of {details.planned_users:,} planned users")
        if pending:
            missing.append(
                f"{pending:,} shown movies may still be rated (horizon: "
                f"{duration(details.horizon_days)})"
            )
        return Verdict(
            "info",
            "No verdict yet",
            f"The {test} is read once, at the plan: {' and '.join(missing)}. "
            f"Interim figures, not a result (stopping on them is peeking): {figures}.",
        )
    arms = {arm.arm: arm for arm in details.arms}
    if result.winner is None:
        return Verdict(
            "warning",
            "No significant difference",
            f"Test: {test}. {_capital(figures)}, not below α.",
        )
    winner = arm_label(arms[result.winner])
    kind: Literal["success", "warning"] = "success" if result.winner == "treatment" else "warning"
    return Verdict(kind, f"{winner} wins", f"Test: {test}. {_capital(figures)}.")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _effect(details: ExperimentDetails) -> str:
    effect = details.result.effect
    confidence = f"{1 - details.result.alpha:.0%}"
    what = (
        "user hit rate, treatment − control"
        if details.design == "ab"
        else "treatment's share of preferences − 50%"
    )
    if effect.value is None:
        return f"{what}: not measured yet"
    bounds = (
        ""
        if effect.low is None or effect.high is None
        else f" ({confidence} CI {100 * effect.low:+.1f} to {100 * effect.high:+.1f} pp)"
    )
    return f"{what}: {100 * effect.value:+.1f} pp{bounds}"


def horizon(details: ExperimentDetails) -> list[tuple[float, str]]:
    """The two bars of progress to the plan: users, and shown movies whose horizon ended."""
    users = min(details.users / details.planned_users, 1.0)
    shown = sum(arm.impressions for arm in details.arms)
    closed = shown - sum(arm.pending for arm in details.arms)
    return [
        (users, f"Users: {details.users:,} of {details.planned_users:,} planned"),
        (
            closed / shown if shown else 0.0,
            f"Feedback windows closed (horizon: {duration(details.horizon_days)}): "
            f"{closed:,} of {shown:,} shown movies",
        ),
    ]


def arms_table(details: ExperimentDetails) -> pd.DataFrame:
    """The arms side by side: one column per arm, one row per figure (rates with their
    intervals)."""
    positive = f"rated ≥ {details.positive_rating:g}★"
    rows: dict[str, list[str]] = {
        "share": [share(details, arm) for arm in details.arms],
        "users": [f"{arm.users:,}" for arm in details.arms],
        "movies shown": [f"{arm.impressions:,}" for arm in details.arms],
        "rated": [f"{arm.rated:,}" for arm in details.arms],
        positive: [f"{arm.positive:,}" for arm in details.arms],
        "still open": [f"{arm.pending:,}" for arm in details.arms],
    }
    for name in RATES:
        rows[name] = [
            f"{percent(_rate(arm, name).value)} ({interval(_rate(arm, name))})"
            for arm in details.arms
        ]
    if details.design == "interleaving":
        rows["preferred by"] = [f"{arm.preferred_by or 0:,} users" for arm in details.arms]
    columns = [arm_label(arm) for arm in details.arms]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def rates_chart(details: ExperimentDetails) -> alt.LayerChart:
    """Each rate of each arm as a point with its 95% interval, the arms side by side."""
    rows = [
        {"rate": name, "arm": arm_label(arm), "value": figure.value, "low": figure.low,
         "high": figure.high, "interval": interval(figure)}
        for name in RATES
        for arm in details.arms
        if (figure := _rate(arm, name)).value is not None
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["rate", "arm", "value", "low", "high", "interval"])
    color = alt.Color(
        "arm:N",
        title=None,
        scale=alt.Scale(domain=[arm_label(arm) for arm in details.arms], range=ARM_COLORS),
        legend=alt.Legend(orient="top"),
    )
    base = alt.Chart(frame).encode(
        y=alt.Y("rate:N", title=None, sort=list(RATES)),
        yOffset=alt.YOffset("arm:N", sort=[arm_label(arm) for arm in details.arms]),
        color=color,
    )
    whiskers = base.mark_errorbar(thickness=2, ticks=True).encode(
        x=alt.X("low:Q", title=RATE_TITLE, axis=alt.Axis(format="%")), x2="high:Q"
    )
    points = base.mark_point(filled=True, size=90, opacity=1).encode(
        x=alt.X("value:Q", title=RATE_TITLE),
        tooltip=["arm:N", "rate:N", alt.Tooltip("value:Q", format=".1%"), "interval:N"],
    )
    return (whiskers + points).properties(height=80 * len(RATES) + 40)


def _rate(arm: ArmFigures, name: str) -> RateFigure:
    figure: RateFigure = getattr(arm, name.replace(" ", "_"))
    return figure
