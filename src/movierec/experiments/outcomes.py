"""An experiment's outcomes: its exposures joined with the ratings that came later.

The same online feedback as :mod:`movierec.monitoring.online` (its pairing of shown movies and
its 95% Wilson intervals, reused): a (user, movie) pair shown by an arm is *rated* when the
user rated the movie between its first showing and ``horizon_days`` after its last one, and
*positive* when that rating is ``positive_rating`` or more. Pairs whose horizon has not ended
are ``pending`` (the rates are lower bounds until then), and a fixed-horizon test is only
``final`` once none is pending and the planned users were reached (see
:mod:`movierec.experiments.stats`). Only known users count: an anonymous session's later
ratings cannot be told apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from movierec.experiments.interleaving import CONTROL_TEAM, TREATMENT_TEAM, preferences
from movierec.experiments.stats import (
    Interval,
    Verdict,
    ab_verdict,
    interleaving_verdict,
    mean_interval,
)
from movierec.experiments.store import ARM_CODES, Experiment, ExposureStore
from movierec.monitoring.online import VersionFeedback, _version_feedback, shown_and_rated


@dataclass(frozen=True)
class ArmOutcome:
    """One arm (A/B) or team (interleaving): the monitor's figures of its pairs (counts and
    pooled rates; its ``model`` label is the arm, no ``lists`` are counted) and the per-user
    mean the A/B test compares."""

    arm: str
    version: int
    feedback: VersionFeedback
    user_hit_rate: Interval  # mean over users of their own hit rate, 95% t interval
    preferred_by: int | None  # interleaving: users who rated more of this team's movies


@dataclass(frozen=True)
class Outcome:
    users: int
    ties: int | None  # interleaving: users who rated as many movies of each team
    arms: list[ArmOutcome]
    verdict: Verdict
    final: bool


def outcome(store: ExposureStore, experiment: Experiment, now: float | None = None) -> Outcome:
    """The outcome of ``experiment`` from what its exposures and the store hold now."""
    now = time.time() if now is None else now
    joined = _joined(store, experiment, now)
    per_user = (
        joined.groupby(["version_code", "user_id"])
        .agg(impressions=("hit", "size"), rated=("hit", "sum"))
        .reset_index()
    )
    users = int(joined["user_id"].nunique())
    preferred: list[int | None] = [None, None]
    ties = None
    if experiment.design == "ab":
        rates = [_user_rates(per_user, code) for code in range(len(ARM_CODES))]
        verdict = ab_verdict(rates[0], rates[1], experiment.alpha)
    else:
        control_wins, treatment_wins, ties = _preferences(per_user)
        verdict = interleaving_verdict(control_wins, treatment_wins, experiment.alpha)
        preferred = [control_wins, treatment_wins]
    arms = [
        _arm(experiment, code, joined[joined["version_code"] == code], per_user, preferred[code])
        for code in range(len(ARM_CODES))
    ]
    pending = int(joined["pending"].sum())
    final = users >= experiment.planned_users and pending == 0
    return Outcome(users, ties, arms, verdict, final)


def _joined(store: ExposureStore, experiment: Experiment, now: float) -> pd.DataFrame:
    """One row per (arm, user, movie) shown, with whether it was rated (positively) in time."""
    shown = store.exposures(experiment.id)
    columns = ["version_code", "user_id", "movie_id", "hit", "positive", "pending"]
    if not len(shown):
        return pd.DataFrame({name: pd.Series(dtype="int64") for name in columns})
    joined = shown_and_rated(
        shown,
        store,
        horizon_days=experiment.horizon_days,
        positive_rating=experiment.positive_rating,
        now=now,
    )
    return joined[columns]


def _user_rates(per_user: pd.DataFrame, code: int) -> npt.NDArray[np.float64]:
    arm = per_user[per_user["version_code"] == code]
    return (arm["rated"] / arm["impressions"]).to_numpy(dtype=float)


def _preferences(per_user: pd.DataFrame) -> tuple[int, int, int]:
    hits = per_user.pivot_table(
        index="user_id", columns="version_code", values="rated", fill_value=0
    ).reindex(columns=[CONTROL_TEAM, TREATMENT_TEAM], fill_value=0)
    return preferences(
        hits[CONTROL_TEAM].to_numpy(dtype=np.int64), hits[TREATMENT_TEAM].to_numpy(dtype=np.int64)
    )


def _arm(
    experiment: Experiment,
    code: int,
    pairs: pd.DataFrame,
    per_user: pd.DataFrame,
    preferred_by: int | None,
) -> ArmOutcome:
    version = experiment.control_version if code == 0 else experiment.treatment_version
    return ArmOutcome(
        arm=ARM_CODES[code],
        version=version,
        feedback=_version_feedback((ARM_CODES[code], version), pairs, lists=0),
        user_hit_rate=mean_interval(_user_rates(per_user, code)),
        preferred_by=preferred_by,
    )
