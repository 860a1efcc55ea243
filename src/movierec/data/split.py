"""Train/test splits of :class:`~movierec.data.interactions.Interactions`.

Every split returns parts that share the full index space (same ``user_ids``, ``item_ids`` and
``catalog`` objects), so a model fitted on ``train`` scores ``test`` by index. Parts are
disjoint and together hold every rating, values and timestamps unchanged.

Each function works on the stored entries in CSR order (grouped by user): it builds a boolean
test mask with vectorized numpy (a per-user order is one argsort of a packed
``(user, key...)`` integer, cheap because entries are already grouped by user) and cuts the
interactions with :meth:`Interactions.subset`. Everything random takes a ``seed``: the same
seed gives the same split.

Splits are also available by name (:data:`SPLITTERS`, :func:`make_split`) for configs and
the CLI.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from movierec.data.interactions import BoolArray, IntArray, Interactions
from movierec.errors import ConfigError

_INT64_MAX = int(np.iinfo(np.int64).max)


@dataclass(frozen=True, eq=False, repr=False)
class Split:
    """A named train/test partition, with the held-out users' fold-in part where there is one.

    Attributes:
        name: What made it, e.g. ``"user_temporal"`` or ``"kfold-2of5"``.
        train: Ratings to fit on.
        test: Ratings to evaluate on.
        fold_in: For held-out users (strong generalization): the ratings a model may see
            at evaluation time, without training on them; None for other splits.
        params: The parameters that made it (logged with the run).
    """

    name: str
    train: Interactions
    test: Interactions
    fold_in: Interactions | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for part in (self.test, self.fold_in):
            if part is not None and not self.train.same_index_space(part):
                raise ValueError("split parts must share one index space")

    def __repr__(self) -> str:
        fold_in = "" if self.fold_in is None else f", fold_in {self.fold_in.nnz:,}"
        return (
            f"Split({self.name!r}: train {self.train.nnz:,}, test {self.test.nnz:,}{fold_in} "
            f"ratings; {self.train.n_users:,} users x {self.train.n_items:,} items)"
        )


# ---------------------------------------------------------------------- splitters


def random_split(inter: Interactions, *, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """A uniformly random ``test_fraction`` of all ratings (rounded) goes to test."""
    fraction = _fraction("test_fraction", test_fraction)
    rng = _rng(seed)
    n_test = round(fraction * _nonempty(inter, "random"))
    test = np.zeros(inter.nnz, dtype=bool)
    test[rng.choice(inter.nnz, size=n_test, replace=False)] = True
    return _partition(inter, "random", test, {"test_fraction": fraction, "seed": seed})


def temporal_split(
    inter: Interactions, *, cutoff: int | None = None, test_fraction: float = 0.2
) -> Split:
    """A global cut in time: every rating at or after ``cutoff`` goes to test.

    Args:
        inter: Interactions with timestamps.
        cutoff: Epoch seconds; when None, the time that leaves about ``test_fraction`` of
            the ratings at or after it (more when ratings tie at that second).
        test_fraction: Used only to choose the cutoff.
    """
    times = _timestamps(inter, "temporal")
    if cutoff is None:
        fraction = _fraction("test_fraction", test_fraction)
        n_test = min(max(round(fraction * times.size), 1), times.size)
        cutoff = int(np.partition(times, times.size - n_test)[times.size - n_test])
        params = {"cutoff": cutoff, "test_fraction": fraction}
    elif isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Integral):
        raise ConfigError(f"cutoff must be an integer time in epoch seconds, got {cutoff!r}")
    else:
        params = {"cutoff": int(cutoff), "test_fraction": None}
    return _partition(inter, "temporal", times >= cutoff, params)


def user_temporal_holdout(
    inter: Interactions,
    *,
    test_fraction: float = 0.2,
    last_n: int | None = None,
    min_ratings: int = 5,
    seed: int = 0,
) -> Split:
    """Per user, the latest ratings go to test: a ``test_fraction`` share or the last ``last_n``.

    A user keeps at least one training rating; users with fewer than ``min_ratings``
    ratings stay wholly in train. Ratings at the same second are ordered by a seeded random
    ranking of the items, so the split is deterministic and unbiased towards any item.

    Args:
        inter: Interactions with timestamps.
        test_fraction: Share of each user's ratings to hold out (rounded, at least one);
            ignored when ``last_n`` is given.
        last_n: Hold out exactly this many (capped so one rating stays in train).
        min_ratings: Users with fewer ratings are not held out at all.
        seed: Seed of the tie-breaking item ranking.
    """
    min_ratings = _integer("min_ratings", min_ratings, minimum=1)
    params: dict[str, Any] = {"min_ratings": min_ratings, "seed": seed}
    if last_n is None:
        share = params["test_fraction"] = _fraction("test_fraction", test_fraction)
        test = _latest_per_user(
            inter, "user_temporal", lambda sizes: np.floor(share * sizes + 0.5), min_ratings, seed
        )
    else:
        count = params["last_n"] = _integer("last_n", last_n, minimum=1)
        test = _latest_per_user(
            inter, "user_temporal", lambda sizes: np.full(sizes.shape, count), min_ratings, seed
        )
    return _partition(inter, "user_temporal", test, params)


def leave_one_out(inter: Interactions, *, seed: int = 0) -> Split:
    """Each user's latest rating goes to test; users with fewer than two ratings stay in train."""
    test = _latest_per_user(inter, "leave_one_out", np.ones_like, 2, seed)
    return _partition(inter, "leave_one_out", test, {"seed": seed})


def kfold(inter: Interactions, *, k: int = 5, seed: int = 0) -> list[Split]:
    """``k`` splits over the ratings: each rating is in exactly one test fold (sizes within 1)."""
    k = _integer("k", k, minimum=2)
    nnz = _nonempty(inter, "kfold")
    if k > nnz:
        raise ConfigError(f"kfold needs k <= the number of ratings ({nnz}), got k={k}")
    fold = np.empty(nnz, dtype=np.int64)
    fold[_rng(seed).permutation(nnz)] = np.arange(nnz) % k
    return [
        _partition(inter, f"kfold-{f + 1}of{k}", fold == f, {"k": k, "fold": f, "seed": seed})
        for f in range(k)
    ]


def held_out_users(
    inter: Interactions,
    *,
    n_test_users: int | None = None,
    test_fraction: float | None = None,
    fold_in_fraction: float = 0.8,
    min_ratings: int = 2,
    seed: int = 0,
) -> Split:
    """Strong generalization (Liang et al. 2018, Mult-VAE): test users never appear in train.

    Test users are drawn among users with at least ``min_ratings`` ratings. Each test user's
    ratings are shuffled: ``fold_in_fraction`` of them (rounded, leaving at least one on each
    side) go to ``fold_in``, the model's view of that user at evaluation, the rest to ``test``.

    Args:
        inter: The interactions.
        n_test_users: How many users to hold out; give this or ``test_fraction``.
        test_fraction: Share of the eligible users to hold out (0.2 when neither is given).
        fold_in_fraction: Share of a test user's ratings shown to the model.
        min_ratings: Fewest ratings a user needs to be drawn (at least 2).
        seed: Seed of the user draw and the fold-in shuffle.
    """
    if n_test_users is not None and test_fraction is not None:
        raise ConfigError("give n_test_users or test_fraction, not both")
    fold_in_share = _fraction("fold_in_fraction", fold_in_fraction)
    min_ratings = _integer("min_ratings", min_ratings, minimum=2)
    eligible = np.flatnonzero(np.diff(inter.matrix.indptr) >= min_ratings)
    if eligible.size == 0:
        raise ConfigError(f"held_out_users: no user has {min_ratings} or more ratings")
    if n_test_users is None:
        user_share = _fraction("test_fraction", 0.2 if test_fraction is None else test_fraction)
        n_users = max(round(user_share * eligible.size), 1)
    else:
        n_users = _integer("n_test_users", n_test_users, minimum=1)
        if n_users > eligible.size:
            raise ConfigError(
                f"n_test_users={n_users} but only {eligible.size} users have "
                f"{min_ratings} or more ratings"
            )
    rng = _rng(seed)
    is_test_user = np.zeros(inter.n_users, dtype=bool)
    is_test_user[rng.choice(eligible, size=n_users, replace=False)] = True
    rows = inter.entry_users()
    held = is_test_user[rows]
    held_rows = rows[held]
    shuffle = rng.permutation(held_rows.size)
    ranks, sizes = _ranks_within_users(held_rows, [(shuffle, held_rows.size)])
    n_fold_in = np.clip(np.floor(fold_in_share * sizes + 0.5), 1, sizes - 1)
    fold_in = np.zeros(inter.nnz, dtype=bool)
    fold_in[held] = ranks < n_fold_in
    params = {
        "n_test_users": n_users,
        "test_fraction": test_fraction,
        "fold_in_fraction": fold_in_share,
        "min_ratings": min_ratings,
        "seed": seed,
    }
    return _partition(inter, "held_out_users", held & ~fold_in, params, fold_in=fold_in)


def ml100k_official_folds(
    inter: Interactions, folds: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]]
) -> dict[str, Split]:
    """The official MovieLens 100K splits (u1..u5, ua, ub) over ``inter`` (built from u.data).

    Args:
        inter: The full ml-100k interactions.
        folds: Fold name -> (base, test) canonical ratings tables.

    Raises:
        ConfigError: A fold rates a (user, item) pair ``inter`` does not hold, or its base and
            test overlap.
    """
    splits = {}
    for name, (base, test) in folds.items():
        train_mask = _entry_mask_of(inter, base, f"fold {name} base")
        test_mask = _entry_mask_of(inter, test, f"fold {name} test")
        if (train_mask & test_mask).any():
            raise ConfigError(f"fold {name}: base and test share ratings")
        splits[name] = Split(
            name=f"ml100k-{name}",
            train=inter.subset(train_mask),
            test=inter.subset(test_mask),
            params={"fold": name},
        )
    return splits


# ---------------------------------------------------------------------- registry

Splitter = Callable[..., Split | list[Split] | dict[str, Split]]

SPLITTERS: dict[str, Splitter] = {
    "random": random_split,
    "temporal": temporal_split,
    "user_temporal": user_temporal_holdout,
    "leave_one_out": leave_one_out,
    "kfold": kfold,
    "held_out_users": held_out_users,
    "ml100k_official": ml100k_official_folds,
}


def make_split(name: str, inter: Interactions, **params: Any) -> list[Split]:
    """Run the splitter called ``name``; always a list (one element for single splits).

    Raises:
        ConfigError: Unknown splitter, unknown or missing parameter, or an invalid value.
    """
    try:
        splitter = SPLITTERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown split {name!r}; known splits: {', '.join(sorted(SPLITTERS))}"
        ) from None
    try:
        inspect.signature(splitter).bind(inter, **params)
    except TypeError as exc:
        accepted = list(inspect.signature(splitter).parameters)[1:]
        raise ConfigError(f"split {name!r}: {exc}; it takes {', '.join(accepted)}") from None
    result = splitter(inter, **params)
    if isinstance(result, Split):
        return [result]
    if isinstance(result, dict):
        return list(result.values())
    return result


# ---------------------------------------------------------------------- helpers


def _partition(
    inter: Interactions,
    name: str,
    test: BoolArray,
    params: dict[str, Any],
    *,
    fold_in: BoolArray | None = None,
) -> Split:
    train = ~test if fold_in is None else ~(test | fold_in)
    return Split(
        name=name,
        train=inter.subset(train),
        test=inter.subset(test),
        fold_in=None if fold_in is None else inter.subset(fold_in),
        params=params,
    )


def _latest_per_user(
    inter: Interactions,
    name: str,
    n_wanted: Callable[[IntArray], npt.NDArray[Any]],
    min_ratings: int,
    seed: int,
) -> BoolArray:
    """Mask of each eligible user's latest ratings.

    ``n_wanted`` maps each entry's user rating count to how many of that user's ratings to
    hold out; it is capped so that at least one stays in train.
    """
    times = _timestamps(inter, name)
    offsets = times - times.min()
    item_rank = _rng(seed).permutation(inter.n_items)[inter.matrix.indices]
    ranks, sizes = _ranks_within_users(
        inter.entry_users(), [(offsets, int(offsets.max()) + 1), (item_rank, inter.n_items)]
    )
    n_test = np.clip(n_wanted(sizes), 1, sizes - 1)
    return (sizes >= max(min_ratings, 2)) & (ranks >= sizes - n_test)


def _ranks_within_users(
    rows: IntArray, keys: Sequence[tuple[npt.NDArray[np.integer[Any]], int]]
) -> tuple[IntArray, IntArray]:
    """Rank (0-based) of each entry among its user's entries, and that user's entry count.

    Args:
        rows: User index of each entry, non-decreasing (CSR order).
        keys: ``(values, radix)`` pairs, most significant first, each value in
            ``0..radix-1``; together unique within a user, so no sort order is left to chance.
    """
    n = rows.size
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    capacity = int(rows[-1]) + 1
    for _, radix in keys:
        capacity *= radix
    if capacity <= _INT64_MAX:
        # One argsort of a packed key: the rows are already grouped, so it is nearly sorted
        # and runs far faster than lexsort over separate columns.
        packed = rows.astype(np.int64)
        for values, radix in keys:
            packed = packed * radix + values
        order = np.argsort(packed)
    else:
        order = np.lexsort((*(values for values, _ in reversed(keys)), rows))
    # Each user's entries occupy the same positions before and after the sort.
    starts = np.flatnonzero(np.append(True, rows[1:] != rows[:-1]))
    counts = np.diff(np.append(starts, n))
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n) - np.repeat(starts, counts)
    return ranks, np.repeat(counts, counts)


def _entry_mask_of(inter: Interactions, frame: pd.DataFrame, what: str) -> BoolArray:
    """Mask of the stored entries rated in ``frame`` (every one of its pairs must be stored)."""
    users = inter.user_index(frame["user_id"].to_numpy(np.int64), strict=True)
    items = inter.item_index(frame["item_id"].to_numpy(np.int64), strict=True)
    wanted = users * inter.n_items + items
    # Entry keys are ascending: CSR order is (row, column) order.
    stored = inter.entry_users() * inter.n_items + inter.matrix.indices
    positions = np.minimum(np.searchsorted(stored, wanted), max(stored.size - 1, 0))
    found = stored[positions] == wanted if stored.size else np.zeros(wanted.size, dtype=bool)
    if not found.all():
        raise ConfigError(f"{what}: {int((~found).sum())} rating(s) not in the interactions")
    mask = np.zeros(inter.nnz, dtype=bool)
    mask[positions] = True
    if np.count_nonzero(mask) != wanted.size:
        raise ConfigError(f"{what}: repeats (user, item) pairs")
    return mask


def _timestamps(inter: Interactions, name: str) -> IntArray:
    if inter.timestamps is None:
        raise ConfigError(f"the {name} split needs timestamps; these interactions have none")
    _nonempty(inter, name)
    return np.asarray(inter.timestamps.data)


def _nonempty(inter: Interactions, name: str) -> int:
    if inter.nnz == 0:
        raise ConfigError(f"the {name} split needs ratings; these interactions have none")
    return inter.nnz


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) < 1:
        raise ConfigError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _integer(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _rng(seed: Any) -> np.random.Generator:
    return np.random.default_rng(_integer("seed", seed, minimum=0))
