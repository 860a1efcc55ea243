"""The Monitoring page's views of served quality, online feedback and data drift: tables and
charts built from the API's monitoring answers (pure functions of the answers, so the tests
check what a person sees without a browser)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from movierec.serving.schemas import (
    DriftResponse,
    OnlineResponse,
    ServedHistoryResponse,
    ServedStatsResponse,
    ServedWindow,
)

WINDOW_LABELS: dict[str, ServedWindow] = {
    "Last hour": "1h",
    "Last day": "1d",
    "Since the API started": "start",
}
QUALITY_SERIES = {  # column of the history frame: its chart's title
    "lists": "Lists served per interval",
    "novelty_bits": "Novelty (bits: higher is less mainstream)",
    "diversity": "Intra-list diversity (genres)",
    "popularity_percentile": "Popularity percentile (1 = the most rated)",
    "fallback_share": "Share of popular fallbacks",
}
SHARE_TITLE = "share (whiskers: 95% interval)"  # the same on both layers: one axis title
ONLINE_FORMATS = {"hit rate %": "%.1f%%", "positive rate %": "%.1f%%"}
SERVED_FORMATS = {  # column of the served table: its number format
    "coverage %": "%.1f%%",
    "diversity": "%.3f",
    "novelty (bits)": "%.2f",
    "popularity pct": "%.3f",
    "personalization": "%.3f",
    "personalized %": "%.0f%%",
    "folded in %": "%.0f%%",
    "popular fallback %": "%.0f%%",
}


def version_label(model: str, version: str) -> str:
    return f"{model} (local)" if version == "none" else f"{model} v{version}"


def served_table(stats: ServedStatsResponse, window: ServedWindow) -> pd.DataFrame:
    """One row per model version: the window's figures, shares as percentages."""
    rows = []
    for entry in stats.versions:
        figures = entry.windows[window]
        lists = max(figures.lists, 1)
        rows.append(
            {
                "model": version_label(entry.model, entry.version),
                "lists": figures.lists,
                "coverage %": 100 * figures.coverage,
                "movies served": figures.distinct_movies,
                "diversity": figures.diversity,
                "novelty (bits)": figures.novelty_bits,
                "popularity pct": figures.popularity_percentile,
                "personalization": figures.personalization,
                "personalized %": 100 * figures.strategy_counts["personalized"] / lists,
                "folded in %": 100 * figures.strategy_counts["folded_in"] / lists,
                "popular fallback %": 100 * figures.strategy_counts["popular_fallback"] / lists,
                "short lists": figures.short_lists,
                "empty lists": figures.empty_lists,
            }
        )
    return pd.DataFrame(rows)


def served_history_frame(history: ServedHistoryResponse) -> pd.DataFrame:
    """Long format: one row per (interval, version) with lists served, the quality figures and
    the share of popular fallbacks (intervals without lists have no figures)."""
    rows = []
    for series in history.series:
        label = version_label(series.model, series.version)
        for point in series.points:
            fallback = point.strategy_counts.get("popular_fallback", 0)
            rows.append(
                {
                    "time": point.at,
                    "model": label,
                    "lists": point.lists,
                    "novelty_bits": point.novelty_bits,
                    "diversity": point.diversity,
                    "popularity_percentile": point.popularity_percentile,
                    "fallback_share": fallback / point.lists if point.lists else None,
                }
            )
    return pd.DataFrame(rows)


def history_chart(history: pd.DataFrame, column: str) -> alt.Chart:
    """One figure of the history, by model version, from the first interval with lists on
    (points joined where intervals follow each other)."""
    active = history[history["lists"] > 0]
    start = active["time"].min() if not active.empty else history["time"].min()
    shown = history[history["time"] >= start]
    return (
        alt.Chart(shown)
        .mark_line(point=True)
        .encode(
            x=alt.X("time:T", title=None),
            y=alt.Y(f"{column}:Q", title=None),
            color=alt.Color("model:N", title=None),
            tooltip=["time:T", "model:N", alt.Tooltip(f"{column}:Q", format=".3f")],
        )
        .properties(height=200)
    )


def online_table(report: OnlineResponse) -> pd.DataFrame:
    """One row per model version: counts and rates with their 95% intervals, in percent."""
    rows = []
    for entry in report.versions:
        rows.append(
            {
                "model": version_label(entry.model, entry.version),
                "users": entry.users,
                "lists": entry.lists,
                "movies shown": entry.impressions,
                "rated": entry.rated,
                "rated ≥ positive": entry.positive,
                "still open": entry.pending,
                "hit rate %": _percent(entry.hit_rate.value),
                "hit rate 95% CI": percent_interval(entry.hit_rate.low, entry.hit_rate.high) or "—",
                "positive rate %": _percent(entry.positive_rate.value),
                "positive rate 95% CI": percent_interval(
                    entry.positive_rate.low, entry.positive_rate.high
                )
                or "—",
            }
        )
    return pd.DataFrame(rows)


def online_chart(report: OnlineResponse) -> alt.LayerChart:
    """Hit and positive rates by model version, as bars with their 95% intervals."""
    rows = [
        {"model": version_label(e.model, e.version), "rate": name, "value": rate.value,
         "low": rate.low, "high": rate.high}
        for e in report.versions
        for name, rate in (("hit rate", e.hit_rate), ("positive rate", e.positive_rate))
        if rate.value is not None
    ]  # fmt: skip
    base = alt.Chart(pd.DataFrame(rows)).encode(
        y=alt.Y("model:N", title=None), yOffset="rate:N", color=alt.Color("rate:N", title=None)
    )
    bars = base.mark_bar().encode(
        x=alt.X(
            "value:Q", title=SHARE_TITLE, axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
        )
    )
    whiskers = base.mark_errorbar(color="black").encode(
        x=alt.X("low:Q", title=SHARE_TITLE), x2="high:Q"
    )
    return bars + whiskers


def drift_table(report: DriftResponse) -> pd.DataFrame:
    """One row per compared feature: the test, its value against its threshold, the verdict."""
    return pd.DataFrame(
        [
            {
                "feature": f.feature.replace("_", " "),
                "test": f.test,
                "statistic": f.statistic.replace("_", " "),
                "value": f.value,
                "threshold": f.threshold,
                "drifted": f.drifted,
            }
            for f in report.features
        ]
    )


def drift_chart(report: DriftResponse) -> alt.LayerChart:
    """Each feature's statistic as a bar (red when it drifted) and its threshold as a tick,
    all one way round: a p-value is drawn as 1 - p, so a bar past its tick is drift."""
    frame = drift_table(report)
    p_values = frame["statistic"].str.endswith("p value")
    frame.loc[p_values, "value"] = 1 - frame.loc[p_values, "value"]
    frame.loc[p_values, "threshold"] = 1 - frame.loc[p_values, "threshold"]
    frame["verdict"] = frame["drifted"].map({True: "drifted", False: "stable"})
    base = alt.Chart(frame).encode(y=alt.Y("feature:N", title=None, sort=None))
    bars = base.mark_bar().encode(
        x=alt.X("value:Q", title="statistic, 1 - p for p-values (tick: its threshold)"),
        color=alt.Color(
            "verdict:N",
            title=None,
            scale=alt.Scale(domain=["stable", "drifted"], range=["#4c78a8", "#e45756"]),
        ),
        tooltip=["feature", "test", "statistic", "value", "threshold"],
    )
    ticks = base.mark_tick(color="black", thickness=2, size=18).encode(x="threshold:Q")
    return bars + ticks


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def percent_interval(low: float | None, high: float | None) -> str | None:
    """An interval in percent, e.g. ``8.9–15.6%``; None without both ends."""
    return None if low is None or high is None else f"{100 * low:.1f}–{100 * high:.1f}%"
