"""Per-arm figures and the significance tests of an experiment.

The unit of analysis is the user, not the impression: a user's impressions are not independent
(one user who rates a lot lifts many of them), so the tests compare users.

* A/B: each user's hit rate (the share of the movies shown to them that they rated later);
  Welch's t-test of the two arms' means (unequal variances and sizes allowed).
* Interleaving: each user prefers the team whose movies they rated more of; a two-sided sign
  test (exact binomial, ties left out) of the treatment's share of preferences against 1/2.

Both are **fixed-horizon** tests: the p-value holds when it is read once, at the number of
users planned before the start (``planned_users``). Reading it every day and stopping at the
first p < alpha inflates false wins (peeking); the experiment's answer therefore says whether
its plan is met (``final``), and promotion requires it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from movierec.experiments.assignment import CONTROL, TREATMENT, Arm

FloatArray = npt.NDArray[np.float64]
DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval; None values when nothing was measured."""

    value: float | None
    low: float | None
    high: float | None


NO_INTERVAL = Interval(None, None, None)


@dataclass(frozen=True)
class Verdict:
    """A test's result: ``effect`` is the treatment's gain over the control (A/B: difference of
    mean hit rates per user; interleaving: its share of preferences minus 1/2), with its
    ``1 - alpha`` interval; ``winner`` is None unless ``p_value < alpha``."""

    test: str
    alpha: float
    statistic: float | None
    p_value: float | None
    effect: Interval
    winner: Arm | None


def mean_interval(values: FloatArray, confidence: float = 0.95) -> Interval:
    """The mean of ``values`` with its t interval (None bounds for fewer than two values)."""
    if len(values) == 0:
        return NO_INTERVAL
    mean = float(np.mean(values))
    if len(values) < 2:
        return Interval(mean, None, None)
    sem = float(stats.sem(values))
    if sem == 0.0:
        return Interval(mean, mean, mean)
    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=sem)
    return Interval(mean, float(low), float(high))


def ab_verdict(control: FloatArray, treatment: FloatArray, alpha: float = DEFAULT_ALPHA) -> Verdict:
    """Welch's t-test of the per-user values of the two arms."""
    name = "welch_t"
    if len(control) < 2 or len(treatment) < 2:
        return Verdict(name, alpha, None, None, NO_INTERVAL, None)
    effect = float(np.mean(treatment) - np.mean(control))
    if np.var(control) == 0.0 and np.var(treatment) == 0.0:  # no variance: t is undefined
        return Verdict(name, alpha, None, None, Interval(effect, effect, effect), None)
    result = stats.ttest_ind(treatment, control, equal_var=False)
    interval = result.confidence_interval(1.0 - alpha)
    p_value = float(result.pvalue)
    return Verdict(
        name,
        alpha,
        float(result.statistic),
        p_value,
        Interval(effect, float(interval.low), float(interval.high)),
        _winner(p_value, effect, alpha),
    )


def interleaving_verdict(
    control_wins: int, treatment_wins: int, alpha: float = DEFAULT_ALPHA
) -> Verdict:
    """The sign test of the users' preferences (ties left out)."""
    name = "sign_test"
    decided = control_wins + treatment_wins
    if decided == 0:
        return Verdict(name, alpha, None, None, NO_INTERVAL, None)
    result = stats.binomtest(treatment_wins, decided, 0.5)
    interval = result.proportion_ci(1.0 - alpha, method="wilson")
    effect = treatment_wins / decided - 0.5
    p_value = float(result.pvalue)
    return Verdict(
        name,
        alpha,
        float(treatment_wins),
        p_value,
        Interval(effect, float(interval.low) - 0.5, float(interval.high) - 0.5),
        _winner(p_value, effect, alpha),
    )


def _winner(p_value: float, effect: float, alpha: float) -> Arm | None:
    if not np.isfinite(p_value) or p_value >= alpha or effect == 0.0:
        return None
    return TREATMENT if effect > 0 else CONTROL
