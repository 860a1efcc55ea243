"""Monitoring: traffic (request rate, latency percentiles and errors, read from ``/metrics``),
the quality of what is served, online feedback and data drift.

The traffic counters are totals since each worker started; the page samples them every few
seconds and draws the rates between samples, kept in this session.
"""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

import pandas as pd
import streamlit as st

from movierec.client import RequestRejectedError
from movierec.ui.api import call, client
from movierec.ui.metrics import Scrape, parse_metrics
from movierec.ui.monitoring import (
    ONLINE_FORMATS,
    QUALITY_SERIES,
    SERVED_FORMATS,
    WINDOW_LABELS,
    drift_chart,
    drift_table,
    history_chart,
    online_chart,
    online_table,
    served_history_frame,
    served_table,
)

SAMPLES = "monitoring_samples"
KEPT_SAMPLES = 120

st.title("Monitoring")
traffic, quality, online, drift = st.tabs(
    ["Traffic", "Served quality", "Online feedback", "Data drift"]
)


@st.fragment(run_every="5s")
def live() -> None:
    scrape = call(lambda: parse_metrics(client().metrics_text(), time.time()), "Reading metrics")
    samples: list[Scrape] = st.session_state.setdefault(SAMPLES, [])
    samples.append(scrape)
    del samples[:-KEPT_SAMPLES]
    total, errors = scrape.total_requests(), scrape.error_requests()
    cols = st.columns(4)
    cols[0].metric("Requests", f"{total:,.0f}")
    cols[1].metric("Server errors (5xx)", f"{errors:,.0f}")
    rate = samples[-1].rate_since(samples[-2]) if len(samples) > 1 else None
    cols[2].metric(
        "Requests/s",
        "next reading" if rate is None else f"{rate:,.1f}",
        help="Between the last two readings, 5 s apart.",
    )
    cols[3].metric("Ratings stored", f"{scrape.ratings_ingested():,.0f}")
    if len(samples) > 1:
        st.markdown("**Request rate** (per second, between samples)")
        st.line_chart(
            pd.DataFrame(
                {
                    "time": [pd.Timestamp(b.at, unit="s") for b in samples[1:]],
                    "requests/s": [b.rate_since(a) for a, b in pairwise(samples)],
                }
            ),
            x="time",
        )
    routes = scrape.latency_by_route()
    if routes:
        st.markdown("**Latency by route** (since start, from the histogram's buckets)")
        st.dataframe(pd.DataFrame(routes), hide_index=True)
    strategies = scrape.recommendations_by_strategy()
    if strategies:
        st.markdown("**Recommendation lists served, by strategy**")
        st.bar_chart(pd.Series(strategies, name="lists"), horizontal=True)


def number_columns(formats: dict[str, str]) -> dict[str, Any]:
    """Streamlit's column settings printing each named column with its number format."""
    return {name: st.column_config.NumberColumn(format=form) for name, form in formats.items()}


def served_quality() -> None:
    st.caption(
        "Every list of recommendations the API served, per model version: how much of the "
        "catalogue it reaches, how varied and how mainstream the lists are, how personal."
    )
    stats = call(lambda: client().served_stats(), "Reading served quality")
    if not stats.versions:
        st.info("No recommendations served since the API started.", icon=":material/info:")
        return
    label = st.segmented_control(
        "Window", list(WINDOW_LABELS), default="Last day", key="served_window"
    )
    st.dataframe(
        served_table(stats, WINDOW_LABELS[label or "Last day"]),
        hide_index=True,
        column_config=number_columns(SERVED_FORMATS),
    )
    history = served_history_frame(call(lambda: client().served_history(), "Reading history"))
    if history.empty or not history["lists"].any():
        return
    st.markdown("**Over time** (the last 24 hours at most), by 10 minutes")
    left, right = st.columns(2)
    for place, (column, title) in zip(
        [left, right, left, right, left], QUALITY_SERIES.items(), strict=True
    ):
        place.markdown(title)
        place.altair_chart(history_chart(history, column), use_container_width=True)


def online_feedback() -> None:
    report = call(lambda: client().online(), "Reading online feedback")
    st.caption(
        f"Movies shown to known users, and whether they rated them within "
        f"{report.horizon_days:g} days of seeing them (positive: rated "
        f"{report.positive_rating:g} or more). 95% Wilson intervals."
    )
    if not report.versions:
        st.info(
            "No impressions yet: lists served to known users are logged, and their ratings "
            "of the movies shown then count here.",
            icon=":material/info:",
        )
        return
    st.altair_chart(online_chart(report), use_container_width=True)
    st.dataframe(
        online_table(report),
        hide_index=True,
        column_config=number_columns(ONLINE_FORMATS),
    )


def data_drift() -> None:
    st.caption(
        "The ratings that arrived since the served model's training data, compared with that "
        "data feature by feature (Evidently's tests: distances on large samples, p-values on "
        "small ones)."
    )
    try:
        report = call(lambda: client().drift(), "Comparing the data (seconds on a large store)")
    except RequestRejectedError as exc:  # a model without its training data: nothing to compare
        st.info(exc.detail, icon=":material/info:")
        return
    cols = st.columns(3)
    cols[0].metric("Verdict", report.verdict)
    compared = len(report.features)
    cols[1].metric("Features drifted", f"{len(report.drifted_features)} of {compared}")
    cols[2].metric("New ratings", f"{report.current_ratings:,}")
    st.caption(report.message)
    if report.status == "compared":
        st.altair_chart(drift_chart(report), use_container_width=True)
        st.dataframe(drift_table(report), hide_index=True)
    for skipped in report.skipped:
        st.caption(f"{skipped.feature.replace('_', ' ')}: {skipped.reason}")
    st.link_button(
        "Open Evidently's report", client().drift_report_url(), icon=":material/open_in_new:"
    )


with traffic:
    st.caption("Live from the API's Prometheus metrics (`/metrics`), refreshed every 5 seconds.")
    live()
with quality:
    served_quality()
with online:
    online_feedback()
with drift:
    data_drift()
