"""Online feedback: what people did with the lists they were shown.

Every list served to a known user is logged as an impression
(:mod:`movierec.monitoring.impressions`). When the user later rates a movie they were shown,
that is online feedback. Per model version:

* impressions: distinct (user, movie) pairs shown (a list served again counts its pairs once);
* hit rate: the share of those pairs the user rated between its first showing and ``horizon``
  days after its last one;
* positive rate: the share of the rated ones rated ``positive_rating`` or more;

each with a 95% Wilson interval. Pairs shown less than ``horizon`` days ago may still be rated:
they are counted (the rates are lower bounds until then) and reported as ``pending``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from movierec.monitoring.impressions import DAY, ImpressionStore, ShownLists


@dataclass(frozen=True)
class Rate:
    """A proportion with its 95% Wilson interval; None values when nothing was counted."""

    value: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, successes: int, trials: int) -> Rate:
        if trials == 0:
            return cls(None, None, None)
        interval = binomtest(successes, trials).proportion_ci(method="wilson")
        return cls(successes / trials, float(interval.low), float(interval.high))


@dataclass(frozen=True)
class VersionFeedback:
    model: str
    version: str
    lists: int
    users: int
    impressions: int
    rated: int
    positive: int
    pending: int
    hit_rate: Rate
    positive_rate: Rate


@dataclass(frozen=True)
class OnlineReport:
    since: int
    horizon_days: float
    positive_rating: float
    versions: list[VersionFeedback]


def online_feedback(
    store: ImpressionStore,
    *,
    horizon_days: float,
    positive_rating: float,
    since: int | None = None,
    now: float | None = None,
) -> OnlineReport:
    """The online figures of the lists shown since ``since`` (all that are kept when None),
    per model version."""
    now = time.time() if now is None else now
    since = 0 if since is None else since
    shown = store.shown_since(since)
    if not len(shown):
        return OnlineReport(since, horizon_days, positive_rating, [])
    joined = shown_and_rated(
        shown, store, horizon_days=horizon_days, positive_rating=positive_rating, now=now
    )
    lists = np.bincount(shown.codes, minlength=len(shown.versions))
    feedback = [
        _version_feedback(
            shown.versions[code], joined[joined["version_code"] == code], int(lists[code])
        )
        for code in np.unique(joined["version_code"].to_numpy()).tolist()
    ]
    feedback.sort(key=lambda entry: (entry.model, entry.version))
    return OnlineReport(since, horizon_days, positive_rating, feedback)


def shown_and_rated(
    shown: ShownLists,
    store: ImpressionStore,
    *,
    horizon_days: float,
    positive_rating: float,
    now: float,
) -> pd.DataFrame:
    """One row per (version code, user, movie) of ``shown`` (its ``first`` and ``last``
    showing), and whether the user rated it within the horizon of a showing (``hit``), at
    ``positive_rating`` or above (``positive``), and whether that horizon is still open
    (``pending``). ``shown`` must not be empty."""
    pairs = _pairs(shown)
    ratings = store.ratings_of(np.unique(shown.users), int(pairs["first"].min()))
    joined = pairs.merge(ratings, on=["user_id", "movie_id"], how="left")
    horizon = horizon_days * DAY
    joined["hit"] = (joined["timestamp"] >= joined["first"]) & (
        joined["timestamp"] <= joined["last"] + horizon
    )
    joined["positive"] = joined["hit"] & (joined["rating"] >= positive_rating)
    joined["pending"] = joined["last"] + horizon > now
    return joined


def _pairs(shown: ShownLists) -> pd.DataFrame:
    """One row per (version, user, movie) shown, with its first and last showing.

    numpy all the way (a million lists hold ten million ids; pandas' groupby of them took
    three times as long): the pairs are found by sorting one integer key.
    """
    user_codes, list_users = np.unique(shown.users, return_inverse=True)
    users = np.repeat(list_users, shown.lengths)
    shown_at = np.repeat(shown.shown_at, shown.lengths)
    versions = np.repeat(shown.codes, shown.lengths)
    movies = shown.movies
    # One integer per (version, user, movie); ids are dense enough that it fits in 63 bits.
    span = int(movies.max()) + 1
    if (int(versions.max()) + 1) * len(user_codes) * span >= 2**63:
        raise ValueError("movie ids too large to pair with users in one integer key")
    key = (versions * len(user_codes) + users) * span + movies
    order = np.argsort(key)
    key, shown_at = key[order], shown_at[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    first = order[starts]
    return pd.DataFrame(
        {
            "version_code": versions[first],
            "user_id": user_codes[users[first]],
            "movie_id": movies[first],
            "first": np.minimum.reduceat(shown_at, starts),
            "last": np.maximum.reduceat(shown_at, starts),
        }
    )


def _version_feedback(labels: Any, group: pd.DataFrame, lists: int) -> VersionFeedback:
    """The figures of one version's pairs; ``labels``: its (model, version)."""
    model, version = (str(label) for label in labels)
    impressions = len(group)
    rated = int(group["hit"].sum())
    positive = int(group["positive"].sum())
    return VersionFeedback(
        model=model,
        version=version,
        lists=lists,
        users=int(group["user_id"].nunique()),
        impressions=impressions,
        rated=rated,
        positive=positive,
        pending=int(group["pending"].sum()),
        hit_rate=Rate.of(rated, impressions),
        positive_rate=Rate.of(positive, rated),
    )
