"""Splits: property tests on random small interactions, and the official ml-100k folds."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from movierec.data.interactions import Interactions
from movierec.data.split import (
    SPLITTERS,
    Split,
    held_out_users,
    kfold,
    leave_one_out,
    make_split,
    ml100k_official_folds,
    random_split,
    temporal_split,
    user_temporal_holdout,
)
from movierec.errors import ConfigError

PROPERTIES = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


@st.composite
def interactions(draw: st.DrawFn, min_size: int = 1) -> Interactions:
    """Random small ratings: few users and items (ids with gaps), zeros, many tied times."""
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, 7),
                st.integers(0, 9),
                st.sampled_from([0.0, 1.0, 2.5, 5.0]),
                st.integers(0, 6),
            ),
            min_size=min_size,
            max_size=60,
            unique_by=lambda row: (row[0], row[1]),
        )
    )
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    frame["user_id"] = frame["user_id"] * 7 + 3
    frame["item_id"] = frame["item_id"] * 11 + 100
    return Interactions.from_frames(frame, rating_scale=(0.0, 5.0))


def random_interactions(n_users: int = 60, n_items: int = 40, seed: int = 0) -> Interactions:
    """A fixed, larger data set where different seeds must give different splits."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < 0.3
    users, items = np.nonzero(mask)
    frame = pd.DataFrame(
        {
            "user_id": users + 1,
            "item_id": items + 1,
            "rating": rng.integers(1, 6, users.size).astype(np.float32),
            "timestamp": rng.integers(0, 50, users.size),
        }
    )
    return Interactions.from_frames(frame, rating_scale=(1.0, 5.0))


def keys(inter: Interactions) -> set[tuple[int, int]]:
    return set(zip(inter.entry_users().tolist(), inter.matrix.indices.tolist(), strict=True))


def assert_partition(inter: Interactions, split: Split) -> None:
    """Parts share the index space, are disjoint, and together are ``inter``, values included."""
    parts = [p for p in (split.train, split.test, split.fold_in) if p is not None]
    for part in parts:
        assert part.user_ids is inter.user_ids
        assert part.item_ids is inter.item_ids
        assert part.catalog is inter.catalog
        assert part.rating_scale == inter.rating_scale
    assert sum(p.nnz for p in parts) == inter.nnz
    union: set[tuple[int, int]] = set()
    for part in parts:
        union |= keys(part)
    assert union == keys(inter)
    together = pd.concat([p.to_frame() for p in parts]).sort_values(["user_id", "item_id"])
    pd.testing.assert_frame_equal(together.reset_index(drop=True), inter.to_frame())


def same(a: Split, b: Split) -> bool:
    return a.test.to_frame().equals(b.test.to_frame()) and (
        a.fold_in is None or b.fold_in is None or a.fold_in.to_frame().equals(b.fold_in.to_frame())
    )


def per_user(inter: Interactions) -> pd.DataFrame:
    return inter.to_frame().groupby("user_id")["timestamp"].agg(["min", "max", "size"])


# ---------------------------------------------------------------------- properties


@PROPERTIES
@given(interactions(), st.floats(0.05, 0.95), st.integers(0, 2**32 - 1))
def test_random_split(inter: Interactions, fraction: float, seed: int) -> None:
    split = random_split(inter, test_fraction=fraction, seed=seed)
    assert_partition(inter, split)
    assert split.test.nnz == round(fraction * inter.nnz)
    assert same(split, random_split(inter, test_fraction=fraction, seed=seed))


@PROPERTIES
@given(interactions(), st.floats(0.05, 0.95), st.none() | st.integers(0, 7))
def test_temporal_split_cuts_at_one_time(
    inter: Interactions, fraction: float, cutoff: int | None
) -> None:
    split = temporal_split(inter, cutoff=cutoff, test_fraction=fraction)
    assert_partition(inter, split)
    cut = split.params["cutoff"]
    if cutoff is None:
        assert split.test.nnz >= 1
    assert split.test.timestamps is not None
    assert split.train.timestamps is not None
    assert (split.test.timestamps.data >= cut).all()
    assert (split.train.timestamps.data < cut).all()


@PROPERTIES
@given(
    interactions(),
    st.floats(0.05, 0.95),
    st.none() | st.integers(1, 4),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
)
def test_user_temporal_holdout(
    inter: Interactions, fraction: float, last_n: int | None, min_ratings: int, seed: int
) -> None:
    split = user_temporal_holdout(
        inter, test_fraction=fraction, last_n=last_n, min_ratings=min_ratings, seed=seed
    )
    assert_partition(inter, split)
    train, test, everyone = per_user(split.train), per_user(split.test), per_user(inter)
    # Every held-out rating of a user is at or after every rating they keep in train.
    both = test.join(train, how="inner", lsuffix="_test", rsuffix="_train")
    assert (both["min_test"] >= both["max_train"]).all()
    sizes = everyone["size"]
    assert set(test.index) == set(sizes[(sizes >= max(min_ratings, 2))].index)
    n = sizes.loc[test.index]
    wanted = np.floor(fraction * n + 0.5) if last_n is None else pd.Series(last_n, n.index)
    np.testing.assert_array_equal(test["size"], np.clip(wanted, 1, n - 1))
    again = user_temporal_holdout(
        inter, test_fraction=fraction, last_n=last_n, min_ratings=min_ratings, seed=seed
    )
    assert same(split, again)


@PROPERTIES
@given(interactions(), st.integers(0, 2**32 - 1))
def test_leave_one_out(inter: Interactions, seed: int) -> None:
    split = leave_one_out(inter, seed=seed)
    assert_partition(inter, split)
    test, everyone = per_user(split.test), per_user(inter)
    assert set(test.index) == set(everyone.index[everyone["size"] >= 2])
    assert (test["size"] == 1).all()
    assert (test["max"] == everyone.loc[test.index, "max"]).all()


@PROPERTIES
@given(interactions(min_size=2), st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_kfold_puts_each_rating_in_one_test_fold(inter: Interactions, k: int, seed: int) -> None:
    assume(k <= inter.nnz)
    splits = kfold(inter, k=k, seed=seed)
    assert len(splits) == k
    for split in splits:
        assert_partition(inter, split)
    test_keys = [keys(s.test) for s in splits]
    assert sum(len(t) for t in test_keys) == inter.nnz
    assert set().union(*test_keys) == keys(inter)
    assert max(map(len, test_keys)) - min(map(len, test_keys)) <= 1
    assert [s.name for s in splits] == [f"kfold-{f}of{k}" for f in range(1, k + 1)]


@PROPERTIES
@given(
    interactions(),
    st.floats(0.1, 0.9),
    st.floats(0.1, 0.9),
    st.integers(2, 4),
    st.integers(0, 2**32 - 1),
)
def test_held_out_users(
    inter: Interactions, user_share: float, fold_in_share: float, min_ratings: int, seed: int
) -> None:
    sizes = per_user(inter)["size"]
    assume((sizes >= min_ratings).any())
    split = held_out_users(
        inter,
        test_fraction=user_share,
        fold_in_fraction=fold_in_share,
        min_ratings=min_ratings,
        seed=seed,
    )
    assert split.fold_in is not None
    assert_partition(inter, split)
    test_users = set(per_user(split.test).index)
    assert test_users == set(per_user(split.fold_in).index)
    assert not test_users & set(per_user(split.train).index)
    assert (sizes.loc[list(test_users)] >= min_ratings).all()
    eligible = int((sizes >= min_ratings).sum())
    assert len(test_users) == split.params["n_test_users"] == max(round(user_share * eligible), 1)
    again = held_out_users(
        inter,
        test_fraction=user_share,
        fold_in_fraction=fold_in_share,
        min_ratings=min_ratings,
        seed=seed,
    )
    assert same(split, again)


# ---------------------------------------------------------------------- seeds and exact counts


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("random", {}),
        ("user_temporal", {}),
        ("leave_one_out", {}),
        ("kfold", {"k": 3}),
        ("held_out_users", {"n_test_users": 10}),
    ],
)
def test_different_seeds_give_different_splits(name: str, params: dict[str, int]) -> None:
    inter = random_interactions()
    first = make_split(name, inter, seed=1, **params)
    again = make_split(name, inter, seed=1, **params)
    assert all(same(a, b) for a, b in zip(first, again, strict=True))
    second = make_split(name, inter, seed=2, **params)
    assert not all(same(a, b) for a, b in zip(first, second, strict=True))


def test_held_out_users_exact_counts() -> None:
    inter = random_interactions()
    split = held_out_users(inter, n_test_users=10, fold_in_fraction=0.8, seed=0)
    assert split.fold_in is not None
    fold_in, test = per_user(split.fold_in), per_user(split.test)
    assert len(fold_in) == len(test) == 10
    total = fold_in["size"] + test["size"]
    np.testing.assert_array_equal(fold_in["size"], np.floor(0.8 * total + 0.5))
    assert "fold_in" in repr(split)


def test_user_temporal_holdout_takes_the_latest() -> None:
    frame = pd.DataFrame(
        {
            "user_id": [1] * 6 + [2] * 3,
            "item_id": [10, 20, 30, 40, 50, 60, 10, 20, 30],
            "rating": [1.0] * 9,
            "timestamp": [6, 1, 5, 2, 4, 3, 1, 2, 3],
        }
    )
    inter = Interactions.from_frames(frame)
    split = user_temporal_holdout(inter, test_fraction=0.5, min_ratings=4)
    assert split.test.to_frame()["item_id"].tolist() == [10, 30, 50]
    split = user_temporal_holdout(inter, last_n=2, min_ratings=3)
    assert split.test.to_frame()["item_id"].tolist() == [10, 30, 20, 30]


# ---------------------------------------------------------------------- registry and errors


def test_make_split_by_name() -> None:
    inter = random_interactions()
    assert set(SPLITTERS) >= {"random", "temporal", "user_temporal", "kfold", "held_out_users"}
    (split,) = make_split("user_temporal", inter, test_fraction=0.3, min_ratings=3)
    assert split.name == "user_temporal"
    assert split.params["test_fraction"] == 0.3
    assert len(make_split("kfold", inter, k=4)) == 4


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("nope", {}, "unknown split 'nope'; known splits: held_out_users, kfold"),
        ("random", {"k": 3}, "random.*it takes test_fraction, seed"),
        ("random", {"test_fraction": 1.0}, "test_fraction must be a number strictly between"),
        ("random", {"test_fraction": "0.2"}, "test_fraction"),
        ("random", {"seed": -1}, "seed must be an integer >= 0"),
        ("temporal", {"cutoff": 1.5}, "cutoff must be an integer"),
        ("kfold", {"k": 1}, "k must be an integer >= 2"),
        ("kfold", {"k": 10**9}, "k <= the number of ratings"),
        ("user_temporal", {"last_n": 0}, "last_n must be an integer >= 1"),
        ("user_temporal", {"min_ratings": True}, "min_ratings"),
        ("held_out_users", {"n_test_users": 5, "test_fraction": 0.1}, "not both"),
        ("held_out_users", {"n_test_users": 10**6}, "only 60 users"),
        ("held_out_users", {"fold_in_fraction": 0.0}, "fold_in_fraction"),
        ("ml100k_official", {}, "folds"),
    ],
)
def test_bad_parameters_are_config_errors(
    name: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_split(name, random_interactions(), **params)


def test_splits_needing_times_refuse_interactions_without_them() -> None:
    frame = random_interactions().to_frame().drop(columns="timestamp")
    inter = Interactions.from_frames(frame)
    for splitter in (temporal_split, user_temporal_holdout, leave_one_out):
        with pytest.raises(ConfigError, match="needs timestamps"):
            splitter(inter)
    assert random_split(inter).test.timestamps is None


# ---------------------------------------------------------------------- ml-100k


def read_ml100k(archive: Path) -> tuple[Interactions, dict[str, tuple[pd.DataFrame, pd.DataFrame]]]:
    names = ["user_id", "item_id", "rating", "timestamp"]

    def read(zf: zipfile.ZipFile, member: str) -> pd.DataFrame:
        with zf.open(f"ml-100k/{member}") as handle:
            return pd.read_csv(handle, sep="\t", names=names)

    with zipfile.ZipFile(archive) as zf:
        inter = Interactions.from_frames(read(zf, "u.data"), rating_scale=(1.0, 5.0))
        folds = {
            name: (read(zf, f"{name}.base"), read(zf, f"{name}.test"))
            for name in ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
        }
    return inter, folds


def test_ml100k_official_folds(datasets_dir: Path) -> None:
    inter, folds = read_ml100k(datasets_dir / "ml-100k.zip")
    splits = ml100k_official_folds(inter, folds)
    assert list(splits) == ["u1", "u2", "u3", "u4", "u5", "ua", "ub"]
    for split in splits.values():
        assert_partition(inter, split)
    u1 = splits["u1"]
    assert (u1.train.nnz, u1.test.nnz, u1.name) == (80_000, 20_000, "ml100k-u1")
    ua = splits["ua"]
    assert ua.test.nnz == 9_430
    assert (np.diff(ua.test.matrix.indptr) == 10).all()
    by_name = make_split("ml100k_official", inter, folds={"ub": folds["ub"]})
    assert [s.name for s in by_name] == ["ml100k-ub"]


def test_official_folds_must_match_the_interactions(datasets_dir: Path) -> None:
    inter, folds = read_ml100k(datasets_dir / "ml-100k.zip")
    base, test = folds["u1"]
    with pytest.raises(ConfigError, match="base and test share"):
        ml100k_official_folds(inter, {"u1": (base, base.head(3))})
    rated = set(inter.user_items(0)[0].tolist())
    unrated = next(i for i in range(inter.n_items) if i not in rated)
    stranger = test.head(1).assign(user_id=inter.user_ids[0], item_id=inter.item_ids[unrated])
    with pytest.raises(ConfigError, match=r"1 rating\(s\) not in the interactions"):
        ml100k_official_folds(inter, {"u1": (base, stranger)})
