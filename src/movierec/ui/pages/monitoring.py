"""Monitoring: the API's request rate, latency percentiles and errors, read from ``/metrics``.

The counters are totals since each worker started; the page samples them every few seconds
and draws the rates between samples, kept in this session.
"""

from __future__ import annotations

import time
from itertools import pairwise

import pandas as pd
import streamlit as st

from movierec.ui.api import call, client
from movierec.ui.metrics import Scrape, parse_metrics

SAMPLES = "monitoring_samples"
KEPT_SAMPLES = 120

st.title("Monitoring")
st.caption("Live from the API's Prometheus metrics (`/metrics`), refreshed every 5 seconds.")


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


live()
st.info(
    "Data drift and the quality of served recommendations (coverage, diversity, novelty) are "
    "not available from this API yet.",
    icon=":material/info:",
)
