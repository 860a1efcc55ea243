"""The API's Prometheus exposition, read for people: totals, rates, latency percentiles.

Percentiles are estimated from the latency histogram's buckets by linear interpolation inside
the bucket that holds the rank, as PromQL's ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "movierec_http_requests_total"
LATENCY_BUCKET = "movierec_http_request_duration_seconds_bucket"
RECOMMENDATIONS = "movierec_recommendations_total"
RATINGS = "movierec_ratings_ingested_total"
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    """One reading of ``/metrics`` at ``at`` (seconds since the epoch)."""

    at: float
    samples: list[Sample] = field(default_factory=list)

    def _sum(self, name: str, **match: str) -> float:
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
        )

    def total_requests(self) -> float:
        return self._sum(REQUESTS)

    def error_requests(self) -> float:
        """Requests answered with a 5xx status."""
        return sum(
            s.value
            for s in self.samples
            if s.name == REQUESTS and s.labels.get("status", "").startswith("5")
        )

    def ratings_ingested(self) -> float:
        return self._sum(RATINGS)

    def rate_since(self, earlier: Scrape) -> float:
        """Requests per second between ``earlier`` and this reading (0 across a restart)."""
        seconds = self.at - earlier.at
        done = self.total_requests() - earlier.total_requests()
        return max(done, 0.0) / seconds if seconds > 0 else 0.0

    def recommendations_by_strategy(self) -> dict[str, float]:
        counts: dict[str, float] = defaultdict(float)
        for s in self.samples:
            if s.name == RECOMMENDATIONS:
                counts[s.labels.get("strategy", "?")] += s.value
        return dict(counts)

    def latency_by_route(self) -> list[dict[str, object]]:
        """Per route (all methods): requests and the p50/p95/p99 latency in milliseconds."""
        buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
        for s in self.samples:
            if s.name == LATENCY_BUCKET:
                route = f"{s.labels.get('method', '')} {s.labels.get('route', '')}".strip()
                buckets[route][float(s.labels["le"])] += s.value
        rows = []
        for route, cumulative in sorted(buckets.items()):
            ordered = sorted(cumulative.items())
            count = ordered[-1][1] if ordered else 0.0
            if count <= 0:
                continue
            row: dict[str, object] = {"route": route, "requests": int(count)}
            for q in QUANTILES:
                row[f"p{round(q * 100)} ms"] = round(quantile(q, ordered) * 1000, 2)
            rows.append(row)
        return rows


def quantile(q: float, cumulative: list[tuple[float, float]]) -> float:
    """The ``q`` quantile of a histogram given as sorted ``(upper bound, cumulative count)``.

    Within the bucket holding the rank the value is interpolated linearly; a rank in the
    ``+Inf`` bucket answers the largest finite bound (nothing more is known).
    """
    total = cumulative[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            inside = count - lower_count
            share = (rank - lower_count) / inside if inside > 0 else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def parse_metrics(text: str, at: float) -> Scrape:
    """A reading of the exposition ``text`` taken at ``at``."""
    samples = [
        Sample(s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]
    return Scrape(at, samples)
