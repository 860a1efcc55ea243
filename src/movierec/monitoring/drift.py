"""Data drift: the ratings that came after the champion's training snapshot, against that snapshot.

Reference: the ratings of the snapshot the served model was trained on, profiled once per content
hash (kept in this process). Current: the store's ratings newer than the snapshot's newest, or
those of a window ``[start, end)`` the caller gives. Seven features:

* ``rating``: the rating values (categorical: a scale has a few levels);
* ``user_activity``: for each rating by a known user, the rater's number of ratings in the
  reference: whether the people rating now are the heavy or the light raters the model learned;
  measured on the reference's counts, so it does not depend on the window's length;
* ``item_popularity``: ratings of known movies on the reference's top 1%, next 9% and other 90%
  of movies by rating count (categorical; the shares are reported);
* ``genre_mix``: each rating split evenly among its movie's genres (skipped when the data set
  lists no genres);
* ``new_users`` / ``new_movies``: the share of ratings from users, and on movies, the model
  never saw (those ratings are left out of the two features above, which would double-count);
* ``ratings_per_hour``: the number of ratings in each clock hour between a sample's first and
  last rating (empty hours count), so a flood or a stall of ratings shows.

Tests follow Evidently's DataDriftPreset defaults, so its HTML report and these figures agree:
distances for large samples (Jensen-Shannon for categorical features, Wasserstein normed by the
reference's standard deviation for numeric ones, drift at >= 0.1), p-values for small ones
(chi-squared, Kolmogorov-Smirnov, drift at p < 0.05). Evidently picks by the reference's size;
ours is always large, so the current sample's size decides here: distances between small
samples of one distribution stay well above 0 (a few hundred ratings give a Jensen-Shannon
distance near 0.1 by chance alone), whereas a test's p-value accounts for the sample size.

All work is vectorized (pandas' hash-based value counts, ``searchsorted`` look-ups): linear in the
ratings, never a Python loop over them; a 20M-rating reference is profiled in a few seconds.
"""

from __future__ import annotations

import dataclasses
import html
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from movierec.config import Settings
from movierec.data.snapshot import load_snapshot, read_snapshot_frames
from movierec.data.sources import NO_GENRES
from movierec.data.store import RatingsStore
from movierec.errors import MovierecError

__all__ = [
    "FEATURES",
    "DriftInputs",
    "DriftReport",
    "DriftUnavailableError",
    "FeatureDrift",
    "InvalidWindowError",
    "ReferenceProfile",
    "SkippedFeature",
    "Window",
    "check_drift",
    "compare",
    "drift_html",
    "drift_inputs",
    "reference_profile",
]

FEATURES = (
    "rating",
    "user_activity",
    "item_popularity",
    "genre_mix",
    "new_users",
    "new_movies",
    "ratings_per_hour",
)
# Evidently's sample size below which a statistical test replaces a distance.
SMALL_SAMPLE = 1_000
# Fewer current ratings than this judge nothing: chi-squared wants about five expected per
# category, and ratings have ten values (4 ratings gave "drift" on 4 of 7 features, seen).
MIN_CURRENT_RATINGS = 50
# Evidently's defaults. A Jensen-Shannon distance of 0.1 is, for instance, 3% of the ratings
# moving to levels the reference never had, or the top-1% share of ratings going from 25% to 33%;
# a normed Wasserstein distance of 0.1 is a shift of a tenth of the reference's spread.
DISTANCE_THRESHOLD = 0.1
P_VALUE_THRESHOLD = 0.05
# The reference holds no unseen user or movie, so any two-sample test flags the first one; what
# matters is how much of the traffic the model cannot place: from a tenth of the ratings on, the
# model misses enough of what happens to be worth retraining (new movies cannot be recommended
# at all until it is).
UNSEEN_SHARE_THRESHOLD = 0.1
TOP_SHARES = (0.01, 0.10)  # the item popularity tiers: top 1% and top 10% of movies
TIERS = ("top 1%", "top 1-10%", "other 90%")
HOUR = 3_600
# How finely the reference stands in for itself in a Kolmogorov-Smirnov test: its quantiles at
# this resolution (an ECDF error of 1e-4, far below what <= 1000 current values resolve).
REFERENCE_QUANTILES = 10_000
REPORT_SAMPLE = 100_000  # rows of each side the Evidently report renders
_PROFILES_KEPT = 2  # the champion's and the previous one's (a reload in progress)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Details = dict[str, float | int | str]


class DriftUnavailableError(MovierecError):
    """No reference to compare with: no model, or its training snapshot is not on this machine."""


class InvalidWindowError(MovierecError):
    """A window whose end is not after its start."""


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Window:
    """The current ratings' time range: ``start <= timestamp < end`` (epoch seconds; no end:
    up to now)."""

    start: int
    end: int | None = None


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison: the statistic, its value, the threshold and the outcome."""

    feature: str
    statistic: str
    test: str
    value: float
    threshold: float
    drifted: bool
    details: Details = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedFeature:
    """A feature that could not be compared, and why."""

    feature: str
    reason: str


@dataclass(frozen=True)
class DriftReport:
    """Every feature's comparison and the verdict.

    ``status`` is ``nothing_to_compare`` when the window holds fewer than
    :data:`MIN_CURRENT_RATINGS` ratings: no feature, share 0, no drift, and ``message`` says
    so.
    """

    status: Literal["compared", "nothing_to_compare"]
    message: str
    snapshot_hash: str
    window: Window
    reference_ratings: int
    current_ratings: int
    features: list[FeatureDrift]
    skipped: list[SkippedFeature]
    drift_share: float
    drift_share_threshold: float
    drift_detected: bool
    checked_at: float

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def verdict(self) -> str:
        if self.status == "nothing_to_compare":
            return "nothing to compare"
        return "drift" if self.drift_detected else "no drift"

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (no NaN: every figure is finite)."""
        return {**asdict(self), "verdict": self.verdict, "drifted_features": self.drifted_features}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        """The report ``to_dict`` wrote."""
        fields = {k: v for k, v in data.items() if k not in ("verdict", "drifted_features")}
        return cls(
            **{
                **fields,
                "window": Window(**data["window"]),
                "features": [FeatureDrift(**f) for f in data["features"]],
                "skipped": [SkippedFeature(**s) for s in data["skipped"]],
            }
        )


# ---------------------------------------------------------------- distributions


@dataclass(frozen=True)
class Distribution:
    """A sample as its distinct values (sorted) and their weights (counts, or shares of them)."""

    values: npt.NDArray[Any]
    weights: FloatArray

    @classmethod
    def of(cls, array: npt.ArrayLike) -> Distribution:
        """Value counts of ``array`` (hash-based: linear time, no sort of the whole array)."""
        counts = pd.Series(array).value_counts(sort=False).sort_index()
        return cls(counts.index.to_numpy(), np.asarray(counts.to_numpy(), dtype=np.float64))

    @property
    def total(self) -> float:
        return float(self.weights.sum())

    def mean(self) -> float:
        return float(np.average(self.values, weights=self.weights))

    def std(self) -> float:
        return math.sqrt(float(np.average((self.values - self.mean()) ** 2, weights=self.weights)))

    def aligned(self, labels: npt.NDArray[Any]) -> FloatArray:
        """The weights over ``labels`` (sorted, a superset of ``values``), 0 where absent."""
        out = np.zeros(len(labels))
        out[np.searchsorted(labels, self.values)] = self.weights
        return out

    def quantiles(self, n: int) -> npt.NDArray[Any]:
        """``n`` evenly spaced quantiles: a sample with the same distribution, to resolution 1/n."""
        cumulative = np.cumsum(self.weights)
        return self.values[np.searchsorted(cumulative, (np.arange(n) + 0.5) / n * cumulative[-1])]

    def expanded(self) -> npt.NDArray[Any]:
        """The sample itself (only for small samples: counts must be whole)."""
        return np.repeat(self.values, self.weights.astype(np.int64))


def _categorical(
    feature: str, reference: Distribution, current: Distribution, details: Details
) -> FeatureDrift:
    labels = np.union1d(reference.values, current.values)
    ref, cur = reference.aligned(labels), current.aligned(labels)
    if current.total <= SMALL_SAMPLE:
        table = np.vstack([ref, cur])
        table = table[:, table.sum(axis=0) > 0]
        # One level only (everyone rated 4): nothing can differ.
        p = 1.0 if table.shape[1] < 2 else float(chi2_contingency(table).pvalue)
        return _p_value(feature, "chi_squared_p_value", "chi-squared test", p, details)
    distance = float(jensenshannon(ref, cur))
    return _distance(
        feature, "jensen_shannon_distance", "Jensen-Shannon distance", distance, details
    )


def _numeric(
    feature: str, reference: Distribution, current: Distribution, details: Details
) -> FeatureDrift:
    if current.total <= SMALL_SAMPLE:
        result = ks_2samp(reference.quantiles(REFERENCE_QUANTILES), current.expanded())
        p = float(result.pvalue)
        return _p_value(feature, "ks_p_value", "Kolmogorov-Smirnov test", p, details)
    norm = max(reference.std(), 0.001)  # Evidently's floor: a constant reference
    distance = wasserstein_distance(
        reference.values, current.values, reference.weights, current.weights
    )
    return _distance(
        feature, "wasserstein_distance_norm", "Wasserstein distance (normed)", distance / norm,
        details,
    )  # fmt: skip


def _p_value(feature: str, statistic: str, test: str, p: float, details: Details) -> FeatureDrift:
    drifted = bool(p < P_VALUE_THRESHOLD)
    return FeatureDrift(feature, statistic, test, float(p), P_VALUE_THRESHOLD, drifted, details)


def _distance(
    feature: str, statistic: str, test: str, value: float, details: Details
) -> FeatureDrift:
    drifted = bool(value >= DISTANCE_THRESHOLD)
    return FeatureDrift(
        feature, statistic, test, float(value), DISTANCE_THRESHOLD, drifted, details
    )


# ---------------------------------------------------------------- the reference


@dataclass(frozen=True)
class ReferenceProfile:
    """What drift needs of a snapshot's ratings: a few MB, whatever their number.

    ``user_ids`` and ``item_ids`` are sorted; ``user_counts``, ``item_tiers`` (0: top 1%, 1: top
    1-10%, 2: the rest) and ``item_percentiles`` (100: the most rated) are aligned with them.
    ``sample`` is a per-rating frame of at most ``REPORT_SAMPLE`` rows for the HTML report.
    """

    snapshot_hash: str
    n_ratings: int
    max_timestamp: int
    user_ids: IntArray
    user_counts: FloatArray
    item_ids: IntArray
    item_tiers: IntArray
    item_percentiles: FloatArray
    rating: Distribution
    user_activity: Distribution
    item_popularity: Distribution
    genre_mix: Distribution | None
    ratings_per_hour: Distribution
    sample: pd.DataFrame

    @classmethod
    def from_frames(
        cls, snapshot_hash: str, ratings: pd.DataFrame, movies: pd.DataFrame
    ) -> ReferenceProfile:
        """Profile a snapshot's (ratings, movies); ``ratings`` must not be empty."""
        users = Distribution.of(ratings["user_id"].to_numpy())
        items = Distribution.of(ratings["item_id"].to_numpy())
        tiers, percentiles = _popularity_tiers(items.weights)
        activity = Distribution.of(users.weights)
        genres = _genre_mix(items, movies)
        profile = cls(
            snapshot_hash=snapshot_hash,
            n_ratings=len(ratings),
            max_timestamp=int(ratings["timestamp"].max()),
            user_ids=users.values.astype(np.int64),
            user_counts=users.weights,
            item_ids=items.values.astype(np.int64),
            item_tiers=tiers,
            item_percentiles=percentiles,
            rating=Distribution.of(ratings["rating"].to_numpy()),
            # Per rating: a user with n ratings stands for n of them.
            user_activity=Distribution(activity.values, activity.weights * activity.values),
            item_popularity=_tier_distribution(tiers, items.weights),
            genre_mix=genres if np.any(genres.values != NO_GENRES) else None,
            ratings_per_hour=_hourly(ratings["timestamp"].to_numpy()),
            sample=pd.DataFrame(),
        )
        sample = _rating_frame(profile, ratings.iloc[_sample_rows(len(ratings))], movies)
        return dataclasses.replace(profile, sample=sample)

    def window(self, start: int | None = None, end: int | None = None) -> Window:
        """The window ``[start, end)``; by default everything newer than the snapshot.

        Raises:
            InvalidWindowError: ``end`` is not after the start.
        """
        window = Window(self.max_timestamp + 1 if start is None else start, end)
        if window.end is not None and window.end <= window.start:
            raise InvalidWindowError(
                f"the window's end ({window.end}) must come after its start ({window.start})"
            )
        return window


def _lookup(sorted_ids: npt.NDArray[Any], ids: npt.NDArray[Any]) -> tuple[BoolArray, IntArray]:
    """Whether each of ``ids`` is in ``sorted_ids`` (not empty), and where."""
    positions = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return sorted_ids[positions] == ids, positions


def _popularity_tiers(counts: FloatArray) -> tuple[IntArray, FloatArray]:
    """Each movie's tier (by rating count; ties by id) and popularity percentile."""
    n = len(counts)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(n)
    top1, top10 = (max(1, math.ceil(share * n)) for share in TOP_SHARES)
    tiers = np.where(rank < top1, 0, np.where(rank < top10, 1, 2)).astype(np.int64)
    return tiers, 100.0 * (1.0 - rank / n)


def _tier_distribution(tiers: IntArray, weights: FloatArray | None = None) -> Distribution:
    counts = np.bincount(tiers, weights=weights, minlength=len(TIERS)).astype(np.float64)
    return Distribution(np.arange(len(TIERS)), counts)


def _genre_mix(items: Distribution, movies: pd.DataFrame) -> Distribution:
    """Ratings by genre, each split evenly among its movie's genres; ratings of movies with
    none (or missing from the catalog) under ``NO_GENRES``."""
    pairs = movies[["item_id", "genres"]].explode("genres").dropna(subset=["genres"])
    pair_items = pairs["item_id"].to_numpy(dtype=np.int64)
    found, positions = _lookup(items.values, pair_items)
    per_movie = pairs.groupby("item_id")["genres"].transform("size").to_numpy()
    shares = items.weights[positions[found]] / per_movie[found]
    mix = pd.Series(shares).groupby(pairs["genres"].to_numpy()[found]).sum()
    unlisted = items.weights[~np.isin(items.values, pair_items)].sum()
    if unlisted > 0:
        mix[NO_GENRES] = unlisted
    mix = mix.sort_index()
    return Distribution(mix.index.to_numpy(dtype=object), mix.to_numpy(dtype=np.float64))


def _hourly(timestamps: IntArray) -> Distribution:
    """How many ratings each clock hour between the first and the last one got (0 included)."""
    hours = timestamps // HOUR
    per_hour = Distribution.of(hours)
    counts = Distribution.of(per_hour.weights)
    empty = int(hours.max() - hours.min() + 1) - len(per_hour.values)
    if empty == 0:
        return counts
    return Distribution(
        np.concatenate([[0], counts.values]), np.concatenate([[float(empty)], counts.weights])
    )


def _sample_rows(n: int) -> IntArray:
    """At most ``REPORT_SAMPLE`` row numbers of ``n``, the same for the same ``n``."""
    rows = np.random.default_rng(0).choice(n, size=min(n, REPORT_SAMPLE), replace=False)
    return np.sort(rows)


def _rating_frame(
    profile: ReferenceProfile, ratings: pd.DataFrame, movies: pd.DataFrame
) -> pd.DataFrame:
    """One row per rating, the features as Evidently's report shows them."""
    users = ratings["user_id"].to_numpy()
    items = ratings["item_id"].to_numpy()
    known_user, user_at = _lookup(profile.user_ids, users)
    known_item, item_at = _lookup(profile.item_ids, items)
    frame = pd.DataFrame(
        {
            "rating": ratings["rating"].to_numpy(dtype=np.float64),
            "user_activity": np.where(known_user, profile.user_counts[user_at], 0.0),
            "item_popularity": np.where(known_item, profile.item_percentiles[item_at], 0.0),
            "new_user": np.where(known_user, "no", "yes"),
            "new_movie": np.where(known_item, "no", "yes"),
            "hour_of_day": (ratings["timestamp"].to_numpy() // HOUR) % 24,
        }
    )
    if profile.genre_mix is not None:
        first_genre = movies.set_index("item_id")["genres"].str[0]
        frame["genre"] = first_genre.reindex(items).fillna(NO_GENRES).to_numpy(dtype=object)
    return frame


_profiles: dict[str, ReferenceProfile] = {}
_profiles_lock = threading.Lock()


def reference_profile(snapshots_dir: Path, snapshot_hash: str | None) -> ReferenceProfile:
    """The profile of the snapshot ``snapshot_hash``, computed once per process.

    One computation at a time: two callers asking at once (a scrape's refresh and a request)
    wait for one profile rather than hold two references in memory.

    Raises:
        DriftUnavailableError: no hash, or the snapshot is not under ``snapshots_dir``.
    """
    if not snapshot_hash:
        raise DriftUnavailableError(
            "the model does not record its training snapshot: drift has no reference"
        )
    with _profiles_lock:
        cached = _profiles.get(snapshot_hash)
        if cached is not None:
            return cached
        folder = snapshots_dir / snapshot_hash[:16]
        try:
            snapshot = load_snapshot(folder)
        except MovierecError as exc:
            raise DriftUnavailableError(
                f"the model's training snapshot {snapshot_hash[:12]} is not on this machine "
                f"({folder}): drift needs it as its reference"
            ) from exc
        ratings, movies = read_snapshot_frames(snapshot)
        profile = ReferenceProfile.from_frames(snapshot.content_hash, ratings, movies)
        while len(_profiles) >= _PROFILES_KEPT:
            _profiles.pop(next(iter(_profiles)))
        _profiles[snapshot_hash] = profile
        return profile


# ---------------------------------------------------------------- comparison


@dataclass(frozen=True)
class DriftInputs:
    """The reference's profile and the current ratings of a window, with the catalog."""

    profile: ReferenceProfile
    window: Window
    ratings: pd.DataFrame
    movies: pd.DataFrame


def drift_inputs(
    settings: Settings,
    store: RatingsStore,
    snapshot_hash: str | None,
    start: int | None = None,
    end: int | None = None,
) -> DriftInputs:
    """The reference of ``snapshot_hash`` and the store's ratings of the window.

    Raises:
        DriftUnavailableError: no reference.
        InvalidWindowError: a window that ends before it starts.
    """
    profile = reference_profile(settings.snapshots_dir, snapshot_hash)
    window = profile.window(start, end)
    ratings = store.ratings_frame(since=window.start)
    if window.end is not None:
        ratings = ratings[ratings["timestamp"].to_numpy() < window.end].reset_index(drop=True)
    return DriftInputs(profile, window, ratings, store.movies_frame())


def check_drift(
    settings: Settings,
    store: RatingsStore,
    snapshot_hash: str | None,
    start: int | None = None,
    end: int | None = None,
) -> DriftReport:
    """Drift between the snapshot ``snapshot_hash`` and the store's ratings of the window."""
    inputs = drift_inputs(settings, store, snapshot_hash, start, end)
    return compare(inputs, drift_share=settings.drift_share)


def compare(inputs: DriftInputs, *, drift_share: float) -> DriftReport:
    """Every feature of the current ratings against the reference, and the verdict: drift when
    at least ``drift_share`` of the compared features drifted (Evidently's rule)."""
    profile, ratings = inputs.profile, inputs.ratings
    checked_at = time.time()
    if len(ratings) < MIN_CURRENT_RATINGS:
        return _nothing_to_compare(inputs, drift_share, checked_at)
    users = ratings["user_id"].to_numpy()
    items = ratings["item_id"].to_numpy()
    known_user, user_at = _lookup(profile.user_ids, users)
    known_item, item_at = _lookup(profile.item_ids, items)
    outcomes = [
        _rating(profile, ratings["rating"].to_numpy()),
        _activity(profile, profile.user_counts[user_at[known_user]]),
        _popularity(profile, profile.item_tiers[item_at[known_item]]),
        _genres(profile, Distribution.of(items), inputs.movies),
        _unseen("new_users", users, known_user),
        _unseen("new_movies", items, known_item),
        _per_hour(profile, ratings["timestamp"].to_numpy()),
    ]
    features = [o for o in outcomes if isinstance(o, FeatureDrift)]
    skipped = [o for o in outcomes if isinstance(o, SkippedFeature)]
    drifted = [f.feature for f in features if f.drifted]
    share = len(drifted) / len(features)
    detected = share >= drift_share
    verdict = "drift" if detected else "no drift"
    message = (
        f"{verdict}: {len(drifted)} of {len(features)} features drifted "
        f"({', '.join(drifted) or 'none'}); the verdict's threshold is {drift_share:.0%}"
    )
    return DriftReport(
        status="compared",
        message=message,
        snapshot_hash=profile.snapshot_hash,
        window=inputs.window,
        reference_ratings=profile.n_ratings,
        current_ratings=len(ratings),
        features=features,
        skipped=skipped,
        drift_share=share,
        drift_share_threshold=drift_share,
        drift_detected=detected,
        checked_at=checked_at,
    )


def _nothing_to_compare(inputs: DriftInputs, drift_share: float, checked_at: float) -> DriftReport:
    window = inputs.window
    until = f"before {window.end}" if window.end is not None else "up to now"
    count = len(inputs.ratings)
    found = "no rating" if not count else f"only {count} rating{'s' * (count > 1)}"
    reason = f"{found} (drift is judged from {MIN_CURRENT_RATINGS})"
    return DriftReport(
        status="nothing_to_compare",
        message=f"nothing to compare: {reason} from {window.start} {until}",
        snapshot_hash=inputs.profile.snapshot_hash,
        window=window,
        reference_ratings=inputs.profile.n_ratings,
        current_ratings=count,
        features=[],
        skipped=[SkippedFeature(name, f"{found} in the window") for name in FEATURES],
        drift_share=0.0,
        drift_share_threshold=drift_share,
        drift_detected=False,
        checked_at=checked_at,
    )


def _means(reference: Distribution, current: Distribution) -> Details:
    return {"reference_mean": reference.mean(), "current_mean": current.mean()}


def _rating(profile: ReferenceProfile, ratings: FloatArray) -> FeatureDrift:
    current = Distribution.of(ratings)
    details = _means(profile.rating, current)
    return _categorical("rating", profile.rating, current, details)


def _activity(profile: ReferenceProfile, counts: FloatArray) -> FeatureDrift | SkippedFeature:
    if len(counts) == 0:
        return SkippedFeature("user_activity", "no rating of the window comes from a known user")
    current = Distribution.of(counts)
    details = _means(profile.user_activity, current)
    return _numeric("user_activity", profile.user_activity, current, details)


def _popularity(profile: ReferenceProfile, tiers: IntArray) -> FeatureDrift | SkippedFeature:
    if len(tiers) == 0:
        return SkippedFeature("item_popularity", "no rating of the window is on a known movie")
    current = _tier_distribution(tiers)
    ref_shares = profile.item_popularity.weights / profile.item_popularity.total
    cur_shares = current.weights / current.total
    details: Details = {
        "reference_top1_share": float(ref_shares[0]),
        "current_top1_share": float(cur_shares[0]),
        "reference_top10_share": float(ref_shares[:2].sum()),
        "current_top10_share": float(cur_shares[:2].sum()),
    }
    return _categorical("item_popularity", profile.item_popularity, current, details)


def _genres(
    profile: ReferenceProfile, items: Distribution, movies: pd.DataFrame
) -> FeatureDrift | SkippedFeature:
    if profile.genre_mix is None:
        return SkippedFeature("genre_mix", "the data set lists no genres")
    current = _genre_mix(items, movies)
    labels = np.union1d(profile.genre_mix.values, current.values)
    ref = profile.genre_mix.aligned(labels) / profile.genre_mix.total
    cur = current.aligned(labels) / current.total
    moved = int(np.argmax(np.abs(cur - ref)))
    details: Details = {
        "most_changed_genre": str(labels[moved]),
        "reference_share": float(ref[moved]),
        "current_share": float(cur[moved]),
    }
    return _categorical("genre_mix", profile.genre_mix, current, details)


def _unseen(feature: str, ids: IntArray, known: BoolArray) -> FeatureDrift:
    unseen = ~known
    share = float(unseen.mean())
    details: Details = {"ratings": int(unseen.sum()), "distinct": len(pd.unique(ids[unseen]))}
    return FeatureDrift(
        feature, "share_of_ratings", "share of ratings", share,
        UNSEEN_SHARE_THRESHOLD, share >= UNSEEN_SHARE_THRESHOLD, details,
    )  # fmt: skip


def _per_hour(profile: ReferenceProfile, timestamps: IntArray) -> FeatureDrift:
    current = _hourly(timestamps)
    details = _means(profile.ratings_per_hour, current)
    return _numeric("ratings_per_hour", profile.ratings_per_hour, current, details)


# ---------------------------------------------------------------- the HTML report


def drift_html(inputs: DriftInputs, *, drift_share: float) -> str:
    """Evidently's data drift report of per-rating samples (at most ``REPORT_SAMPLE`` rows of
    each side): the distributions drawn, Evidently's own tests; a short page when the window
    holds no rating."""
    if inputs.ratings.empty:
        report = compare(inputs, drift_share=drift_share)
        return f"<!doctype html><title>movierec drift</title><p>{html.escape(report.message)}</p>"
    # Evidently takes 3.5 s to import: only this report pays it.
    from evidently import DataDefinition, Dataset, Report  # noqa: PLC0415
    from evidently.presets import DataDriftPreset  # noqa: PLC0415

    reference = inputs.profile.sample
    rows = _sample_rows(len(inputs.ratings))
    current = _rating_frame(inputs.profile, inputs.ratings.iloc[rows], inputs.movies)
    categorical = ["new_user", "new_movie", *(["genre"] if "genre" in reference else [])]
    definition = DataDefinition(
        numerical_columns=[c for c in reference.columns if c not in categorical],
        categorical_columns=categorical,
    )
    snapshot = Report([DataDriftPreset(drift_share=drift_share)]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    return str(snapshot.get_html_str(as_iframe=False))
