"""movierec's Grafana dashboards as code (grafana-foundation-sdk), written as JSON to
``deploy/grafana/dashboards/`` for Grafana's file provisioning.

    python deploy/grafana/dashboards.py          # write the JSON files
    python deploy/grafana/dashboards.py --check  # exit 1 when a committed file is out of date

Four dashboards: API (traffic, latency by route, errors), Recommendations (strategy mix, the
quality of what is served, online feedback by model version), Data (ratings, drift) and
Training (jobs, the champion's offline metrics and age). Panels read the recording rules of
``deploy/prometheus/recording_rules.yml`` where one exists, so a panel and the alert on it show
the same figure. Every panel has a ``$datasource`` and a ``$job`` variable (all jobs by
default); tests/deploy evaluates every panel's query against a real Prometheus.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common, dashboard

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = dashboard.DataSourceRef(type_val="prometheus", uid="${datasource}")
# The recommendation routes' p99 objective; deploy/prometheus/alerts.yml alerts above it.
LATENCY_SLO_SECONDS = 0.020
VERSION_LEGEND = "{{model}} v{{version}}"
WINDOW_LEGEND = "{{model}} v{{version}} ({{window}})"


def m(metric: str, *matchers: str) -> str:
    """``metric`` of the jobs the ``$job`` variable picks, with more label ``matchers``."""
    return metric + "{" + ", ".join(['job=~"$job"', *matchers]) + "}"


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and the legend of its series."""

    expr: str
    legend: str = ""


def _target(query: Query, ref_id: str) -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(query.expr).ref_id(ref_id).datasource(DATASOURCE)
    return target.legend_format(query.legend) if query.legend else target


Panel = TypeVar("Panel", timeseries.Panel, stat.Panel)


def _with_targets(panel: Panel, queries: Sequence[Query]) -> Panel:
    for index, query in enumerate(queries):
        panel = panel.with_target(_target(query, chr(ord("A") + index)))
    return panel


def graph(
    title: str,
    description: str,
    *queries: Query,
    unit: str = "short",
    width: int = 12,
    stacked: bool = False,
    slo: float | None = None,
) -> timeseries.Panel:
    """A time series panel; ``slo`` draws a red threshold line at that value."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .height(8)
        .span(width)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )
    if stacked:
        panel = panel.stacking(
            common_builders.StackingConfig().mode(common.StackingMode.NORMAL)
        ).fill_opacity(30)
    if slo is not None:
        panel = panel.thresholds(_thresholds(slo)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)
        )
    return _with_targets(panel, queries)


def single(
    title: str,
    description: str,
    *queries: Query,
    unit: str = "short",
    width: int = 6,
    red_above: float | None = None,
) -> stat.Panel:
    """A stat panel of the latest value; ``red_above`` turns it red from that value on."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(5)
        .span(width)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if red_above is not None:
        panel = panel.thresholds(_thresholds(red_above))
    return _with_targets(panel, queries)


def _thresholds(red_from: float) -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(dashboard.ThresholdsMode.ABSOLUTE)
        .steps(
            [
                dashboard.Threshold(value=None, color="green"),
                dashboard.Threshold(value=red_from, color="red"),
            ]
        )
    )


def base(uid: str, title: str, description: str) -> dashboard_builders.Dashboard:
    """A dashboard with the shared settings and the ``datasource`` and ``job`` variables."""
    return (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["movierec"])
        .editable()
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .with_variable(
            dashboard_builders.DatasourceVariable("datasource")
            .label("Data source")
            .type("prometheus")
        )
        .with_variable(
            dashboard_builders.QueryVariable("job")
            .label("Job")
            .datasource(DATASOURCE)
            .query("label_values(movierec_http_requests_total, job)")
            .refresh(dashboard.VariableRefresh.ON_DASHBOARD_LOAD)
            .multi(True)
            .include_all(True)
            .all_value(".+")
            .current(dashboard.VariableOption(selected=True, text="All", value="$__all"))
        )
    )


def latency(quantile: str) -> timeseries.Panel:
    rule = f"movierec:http_request_duration_seconds:{quantile}_5m"
    return graph(
        f"{quantile} latency by route",
        f"The {quantile} of request latency over 5 minutes, by route (recording rule {rule}). "
        "The red line is the recommendation routes' 20 ms p99 objective.",
        Query(m(rule), "{{route}}"),
        unit="s",
        width=8,
        slo=LATENCY_SLO_SECONDS,
    )


def api() -> dashboard_builders.Dashboard:
    requests = m("movierec:http_requests:rate5m")
    errors = m("movierec:http_requests:rate5m", 'status=~"[45].."')
    return (
        base("movierec-api", "movierec / API", "Traffic, latency and errors of the HTTP API.")
        .with_row(dashboard_builders.Row("Traffic"))
        .with_panel(
            single(
                "Instances up",
                "Instances Prometheus scrapes successfully (up == 1).",
                Query(f"sum({m('up')})"),
            )
        )
        .with_panel(single("Requests/s", "All routes.", Query(f"sum({requests})"), unit="reqps"))
        .with_panel(
            single(
                "5xx ratio",
                "Share of requests answered with a 5xx over 5 minutes; alert above 5%.",
                Query(f"max({m('movierec:http_5xx:ratio_rate5m')})"),
                unit="percentunit",
                red_above=0.05,
            )
        )
        .with_panel(
            single(
                "Served model",
                "The model version served, and how many instances (workers) serve it.",
                Query(
                    f"count by (name, version) ({m('movierec_model_info')} == 1)",
                    "{{name}} v{{version}}",
                ),
            ).text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        )
        .with_panel(
            graph(
                "Requests/s by route",
                "Requests per second by route template.",
                Query(f"sum by (route) ({requests})", "{{route}}"),
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Requests/s by status",
                "Requests per second by HTTP status.",
                Query(f"sum by (status) ({requests})", "{{status}}"),
                unit="reqps",
                stacked=True,
            )
        )
        .with_row(dashboard_builders.Row("Latency"))
        .with_panel(latency("p50"))
        .with_panel(latency("p95"))
        .with_panel(latency("p99"))
        .with_row(dashboard_builders.Row("Errors"))
        .with_panel(
            graph(
                "Errors/s by route and status",
                "4xx (the client's) and 5xx (the server's) answers per second.",
                Query(
                    f"sum by (route, status) ({errors})",
                    "{{route}} {{status}}",
                ),
                unit="reqps",
            )
        )
        .with_panel(
            graph(
                "5xx ratio",
                "Share of requests answered with a 5xx over 5 minutes, by job; alert above 5%.",
                Query(m("movierec:http_5xx:ratio_rate5m"), "{{job}}"),
                unit="percentunit",
                slo=0.05,
            )
        )
    )


def served(title: str, description: str, metric: str, unit: str = "short") -> timeseries.Panel:
    """A served-quality gauge by model version and window (replicas averaged)."""
    return graph(
        title,
        description,
        Query(f"avg by (model, version, window) ({m(metric)})", WINDOW_LEGEND),
        unit=unit,
        width=8,
    )


def rate(metric: str) -> str:
    """Per-second rate of a counter of the picked jobs, over Grafana's rate interval."""
    return f"rate({m(metric)}[$__rate_interval])"


def recommendations() -> dashboard_builders.Dashboard:
    by_version_strategy = "{{model}} v{{version}} {{strategy}}"
    last_hour_shares = m("movierec_served_strategy_share", 'window="1h"')
    return (
        base(
            "movierec-recommendations",
            "movierec / Recommendations",
            "What is served: how lists are made, their quality, and how people respond.",
        )
        .with_row(dashboard_builders.Row("Strategy mix"))
        .with_panel(
            graph(
                "Lists/s by strategy",
                "Recommendation and similar-movie lists per second, by how they were made.",
                Query(
                    f"sum by (strategy) ({m('movierec:recommendations:rate5m')})", "{{strategy}}"
                ),
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Popular-fallback share",
                "Share of recommendation lists that fell back to popular movies (the model "
                "could not personalize); alert above 50%.",
                Query(m("movierec:recommendations_popular_fallback:ratio_rate5m"), "{{job}}"),
                unit="percentunit",
                slo=0.5,
            )
        )
        .with_panel(
            graph(
                "Strategy share by model version (last hour)",
                "Share of each version's lists by strategy over the last hour.",
                Query(
                    f"avg by (model, version, strategy) ({last_hour_shares})",
                    by_version_strategy,
                ),
                unit="percentunit",
            )
        )
        .with_panel(
            graph(
                "Short and empty lists/s",
                "Lists shorter than the k asked for, and empty ones, by model version.",
                Query(
                    f"sum by (model, version) ({rate('movierec_served_short_lists_total')})",
                    f"short {VERSION_LEGEND}",
                ),
                Query(
                    f"sum by (model, version) ({rate('movierec_served_empty_lists_total')})",
                    f"empty {VERSION_LEGEND}",
                ),
                unit="reqps",
            )
        )
        .with_row(dashboard_builders.Row("Quality of what is served"))
        .with_panel(
            served(
                "Catalogue coverage",
                "Distinct movies served / movies the model can recommend.",
                "movierec_served_coverage_ratio",
                "percentunit",
            )
        )
        .with_panel(
            served(
                "Intra-list diversity",
                "Mean dissimilarity of the movies within a list (genres).",
                "movierec_served_diversity",
            )
        )
        .with_panel(
            served(
                "Novelty",
                "Mean self-information of the movies served, in bits (higher: rarer picks).",
                "movierec_served_novelty_bits",
            )
        )
        .with_panel(
            served(
                "Popularity percentile",
                "Mean popularity percentile of the movies served (popularity bias).",
                "movierec_served_popularity_percentile",
                "percentunit",
            )
        )
        .with_panel(
            served(
                "Personalization",
                "1 - mean similarity between different users' lists (sampled).",
                "movierec_served_personalization",
            )
        )
        .with_panel(
            graph(
                "Lists/s by model version",
                "Lists served per second by model version and strategy.",
                Query(
                    f"sum by (model, version, strategy) ({rate('movierec_served_lists_total')})",
                    by_version_strategy,
                ),
                unit="reqps",
                width=8,
            )
        )
        .with_row(dashboard_builders.Row("Online feedback"))
        .with_panel(
            graph(
                "Online hit rate by model version",
                "Share of impressions whose movie the user rated afterwards.",
                Query(f"avg by (model, version) ({m('movierec_online_hit_rate')})", VERSION_LEGEND),
                unit="percentunit",
                width=8,
            )
        )
        .with_panel(
            graph(
                "Online positive rate by model version",
                "Share of rated impressions rated 4 or more.",
                Query(
                    f"avg by (model, version) ({m('movierec_online_positive_rate')})",
                    VERSION_LEGEND,
                ),
                unit="percentunit",
                width=8,
            )
        )
        .with_panel(
            graph(
                "Impressions, rated, positive",
                "The counts the online rates are made of, by model version.",
                *(
                    Query(
                        f"max by (model, version) ({m(f'movierec_online_{name}')})",
                        f"{name} {VERSION_LEGEND}",
                    )
                    for name in ("impressions", "rated", "positive")
                ),
                width=8,
            )
        )
    )


def data() -> dashboard_builders.Dashboard:
    return (
        base(
            "movierec-data",
            "movierec / Data",
            "Ratings coming in, and how they drift from what the champion learned.",
        )
        .with_row(dashboard_builders.Row("Ratings"))
        .with_panel(
            graph(
                "Ratings ingested/s",
                "Ratings stored through POST /ratings, per second.",
                Query(f"sum({rate('movierec_ratings_ingested_total')})", "ratings/s"),
            )
        )
        .with_panel(
            graph(
                "Ratings ingested in the last hour",
                "Ratings stored through POST /ratings over the last hour; alert when none came "
                "in for 6 hours.",
                Query(m("movierec:ratings_ingested:increase1h"), "{{job}}"),
            )
        )
        .with_row(dashboard_builders.Row("Drift"))
        .with_panel(
            single(
                "Drift verdict",
                "1: the ratings since the champion's snapshot have drifted (alert after 15 min).",
                Query(f"max({m('movierec_drift_detected')})"),
                red_above=1,
            )
        )
        .with_panel(
            single(
                "Drifted share of features",
                "Share of the drift features whose statistic is over its threshold.",
                Query(f"max({m('movierec_drift_share')})"),
                unit="percentunit",
            )
        )
        .with_panel(
            single(
                "Current ratings compared",
                "Ratings in the current window the drift check compares to the reference.",
                Query(f"max({m('movierec_drift_current_ratings')})"),
            )
        )
        .with_panel(
            single(
                "Last drift check",
                "Time since the drift check last ran.",
                Query(f"time() - max({m('movierec_drift_checked_timestamp_seconds')})"),
                unit="s",
            )
        )
        .with_panel(
            graph(
                "Drift statistic by feature",
                "Each feature's drift statistic and its threshold ('threshold' in the legend).",
                Query(f"max by (feature) ({m('movierec_drift_feature_value')})", "{{feature}}"),
                Query(
                    f"max by (feature) ({m('movierec_drift_feature_threshold')})",
                    "{{feature}} threshold",
                ),
                width=16,
            )
        )
        .with_panel(
            graph(
                "Drifted features",
                "1 for each feature over its threshold.",
                Query(f"max by (feature) ({m('movierec_drift_feature_drifted')})", "{{feature}}"),
                width=8,
                stacked=True,
            )
        )
    )


def offline_metric(name: str, description: str) -> stat.Panel:
    """A stat of one offline metric of the served champion (which one: the Served model
    panel of the API dashboard)."""
    metric = m("movierec_model_offline_metric", f'metric="{name}"')
    return single(f"Champion {name.upper()}", description, Query(f"max({metric})"), unit="none")


def training() -> dashboard_builders.Dashboard:
    return (
        base(
            "movierec-training",
            "movierec / Training",
            "Training and tuning jobs, and the champion the API serves.",
        )
        .with_row(dashboard_builders.Row("Champion"))
        .with_panel(
            offline_metric("ndcg@10", "The served champion's offline NDCG@10 on its test split.")
        )
        .with_panel(
            offline_metric("rmse", "The served champion's offline RMSE (rating predictors only).")
        )
        .with_panel(
            single(
                "Champion age",
                "Time since the served champion was trained; alert after 7 days.",
                Query(f"max({m('movierec:model_age_seconds')})"),
                unit="s",
                red_above=7 * 86400,
            )
        )
        .with_panel(
            single(
                "Model loaded",
                "Time since the served model was last loaded (by any worker).",
                Query(f"time() - max({m('movierec_model_loaded_timestamp_seconds')})"),
                unit="s",
            )
        )
        .with_panel(
            graph(
                "Champion offline metrics",
                "Every offline metric the served champion was registered with.",
                Query(f"max by (metric) ({m('movierec_model_offline_metric')})", "{{metric}}"),
                width=24,
            )
        )
        .with_row(dashboard_builders.Row("Jobs"))
        .with_panel(
            graph(
                "Jobs since the server started",
                "Training and tuning jobs started, succeeded and failed (a step per job: jobs "
                "are rare, and a counter's first increment is invisible to increase()).",
                Query(f"sum by (kind, status) ({m('movierec_jobs_total')})", "{{kind}} {{status}}"),
            )
        )
        .with_panel(
            graph(
                "Mean job duration",
                "Mean duration of the jobs finished since the server started, by kind and "
                "outcome (jobs are rare: a rate over minutes would mostly be empty).",
                Query(
                    f"sum by (kind, status) ({m('movierec_job_duration_seconds_sum')}) "
                    f"/ sum by (kind, status) ({m('movierec_job_duration_seconds_count')})",
                    "{{kind}} {{status}}",
                ),
                unit="s",
            )
        )
    )


DASHBOARDS: dict[str, Callable[[], dashboard_builders.Dashboard]] = {
    "api": api,
    "recommendations": recommendations,
    "data": data,
    "training": training,
}


def render(builder: dashboard_builders.Dashboard) -> str:
    """The dashboard's JSON as committed: panels numbered in order, keys sorted."""
    model = builder.build()
    for number, panel in enumerate(model.panels or [], start=1):
        panel.id_val = number
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def rendered() -> dict[Path, str]:
    """Every dashboard's file and its JSON."""
    return {OUT / f"{name}.json": render(build()) for name, build in DASHBOARDS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    stale = [
        path for path, text in rendered().items() if not path.exists() or path.read_text() != text
    ]
    if args.check:
        for path in stale:
            print(f"out of date: {path} (run python {Path(__file__).name})", file=sys.stderr)
        return 1 if stale else 0
    OUT.mkdir(exist_ok=True)
    for path, text in rendered().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
