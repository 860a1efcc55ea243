"""Tests of the evaluation metrics.

Every vectorized metric is checked two ways: against numbers worked out by hand on a tiny
example, and, with Hypothesis, against a deliberately naive reference written below with plain
Python loops over users and ranks, sharing no code with the module under test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.evaluation import metrics as m

RANKING_NAMES = ("precision", "recall", "recall_capped", "ndcg", "map", "mrr", "hit_rate")
RANKING_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "precision": m.precision_at_k,
    "recall": m.recall_at_k,
    "recall_capped": m.recall_capped_at_k,
    "ndcg": m.ndcg_at_k,
    "map": m.map_at_k,
    "mrr": m.mrr_at_k,
    "hit_rate": m.hit_rate_at_k,
}


def close(expected: float) -> object:
    """Equality up to floating-point rounding."""
    return pytest.approx(expected, rel=1e-9, abs=1e-12)


def relevance_matrix(relevant: Sequence[set[int]], n_items: int) -> sp.csr_array:
    rows = [u for u, items in enumerate(relevant) for _ in items]
    cols = [i for items in relevant for i in items]
    return sp.csr_array(
        (np.ones(len(rows)), (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64))),
        shape=(len(relevant), n_items),
    )


# ------------------------------------------------------------------ naive reference metrics


def naive_ranking(name: str, row: Sequence[int], relevant: set[int], k: int) -> float:
    """One user's metric, straight from the textbook definition (``row`` may be shorter than k)."""
    top = [row[r] if r < len(row) else -1 for r in range(k)]
    hit = [1 if item != -1 and item in relevant else 0 for item in top]
    n_hits = sum(hit)
    most_hits = min(k, len(relevant))
    if name == "precision":
        return n_hits / k
    if name == "recall":
        return n_hits / len(relevant)
    if name == "recall_capped":
        return n_hits / most_hits
    if name == "ndcg":
        dcg = sum(hit[r] / math.log2(r + 2) for r in range(k))
        ideal = sum(1 / math.log2(r + 2) for r in range(most_hits))
        return dcg / ideal
    if name == "map":
        total = 0.0
        for r in range(k):
            if hit[r]:
                total += sum(hit[: r + 1]) / (r + 1)
        return total / most_hits
    if name == "mrr":
        for r in range(k):
            if hit[r]:
                return 1 / (r + 1)
        return 0.0
    if name == "hit_rate":
        return 1.0 if n_hits else 0.0
    raise AssertionError(name)


def naive_items(row: Sequence[int]) -> list[int]:
    return [item for item in row if item != -1]


def naive_ild(row: Sequence[int], features: np.ndarray, distance: str) -> float:
    items = naive_items(row)
    distances = []
    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            x, y = features[items[a]], features[items[b]]
            if distance == "cosine":
                norm = math.sqrt(sum(v * v for v in x)) * math.sqrt(sum(v * v for v in y))
                similarity = sum(p * q for p, q in zip(x, y, strict=True)) / norm if norm else 0.0
            else:
                set_x = {f for f, v in enumerate(x) if v != 0}
                set_y = {f for f, v in enumerate(y) if v != 0}
                union = set_x | set_y
                similarity = len(set_x & set_y) / len(union) if union else 0.0
            distances.append(1 - similarity)
    return sum(distances) / len(distances) if distances else math.nan


def naive_list_mean(row: Sequence[int], value: Callable[[int], float]) -> float:
    items = naive_items(row)
    return sum(value(i) for i in items) / len(items) if items else math.nan


def naive_tail(popularity: Sequence[float], head_share: float) -> set[int]:
    order = sorted(range(len(popularity)), key=lambda i: -popularity[i])
    total = 0.0
    for i in order:
        total += popularity[i]
    running = 0.0
    threshold = popularity[order[-1]]
    for i in order:
        running += popularity[i]
        if running / total >= head_share:
            threshold = popularity[i]
            break
    return {i for i, p in enumerate(popularity) if p < threshold}


def naive_gini(counts: Sequence[int]) -> float:
    # The mean-absolute-difference form, a different formula from the module's sorted form.
    n = len(counts)
    spread = sum(abs(a - b) for a in counts for b in counts)
    return spread / (2 * n * sum(counts))


def mean_defined(values: Sequence[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined)


def assert_per_user(actual: np.ndarray, expected: Sequence[float]) -> None:
    assert actual.shape == (len(expected),)
    for got, want in zip(actual, expected, strict=True):
        if math.isnan(want):
            assert math.isnan(got)
        else:
            assert got == close(want)


# --------------------------------------------------------------------------------- strategies


@st.composite
def ranking_cases(draw: st.DrawFn) -> tuple[np.ndarray, list[set[int]], int, list[int]]:
    """Random lists (distinct items, -1 padded at the end), relevance sets and cutoffs."""
    n_items = draw(st.integers(1, 12))
    n_users = draw(st.integers(1, 6))
    width = draw(st.integers(0, 8))
    rows = []
    for _ in range(n_users):
        length = draw(st.integers(0, min(width, n_items)))
        items = draw(st.permutations(range(n_items)))[:length]
        rows.append(list(items) + [-1] * (width - length))
    relevant = [draw(st.sets(st.integers(0, n_items - 1), max_size=n_items)) for _ in rows]
    ks = draw(st.lists(st.integers(1, 10), min_size=1, max_size=3))
    recommended = np.array(rows, dtype=np.int64).reshape(n_users, width)
    return recommended, relevant, n_items, ks


@st.composite
def lists_and_counts(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Random padded lists and per-item interaction counts out of 20 users."""
    recommended, _, n_items, _ = draw(ranking_cases())
    counts = np.array(draw(st.lists(st.integers(0, 20), min_size=n_items, max_size=n_items)))
    return recommended, counts


# ------------------------------------------------------------------- hand-computed example

# Three users, six items, k = 3.
# user 0: hits at ranks 1 and 3, |R| = 2.
# user 1: a short list (padded), one hit at rank 2, |R| = 4 (> k, so recall and capped differ).
# user 2: no hit in the top 3, |R| = 1.
EXAMPLE_REC = np.array([[0, 1, 2, 3], [4, 5, -1, -1], [3, 1, 0, 2]])
EXAMPLE_REL = [{0, 2}, {0, 1, 3, 5}, {5}]
L3 = math.log2(3)
EXAMPLE_EXPECTED = {
    "precision": [2 / 3, 1 / 3, 0.0],
    "recall": [1.0, 1 / 4, 0.0],
    "recall_capped": [1.0, 1 / 3, 0.0],
    "ndcg": [(1 + 1 / math.log2(4)) / (1 + 1 / L3), (1 / L3) / (1 + 1 / L3 + 1 / 2), 0.0],
    "map": [(1 / 1 + 2 / 3) / 2, (1 / 2) / 3, 0.0],
    "mrr": [1.0, 1 / 2, 0.0],
    "hit_rate": [1.0, 1.0, 0.0],
}


@pytest.mark.parametrize("name", RANKING_NAMES)
def test_hand_computed_example(name: str) -> None:
    relevant = relevance_matrix(EXAMPLE_REL, 6)
    expected = EXAMPLE_EXPECTED[name]
    function = RANKING_FUNCTIONS[name]
    assert function(EXAMPLE_REC, relevant, 3) == close(sum(expected) / 3)
    assert_per_user(function(EXAMPLE_REC, relevant, 3, per_user=True), expected)
    assert m.ranking_metrics(EXAMPLE_REC, relevant, ks=(3,))[f"{name}@3"] == close(
        sum(expected) / 3
    )


def test_users_without_relevant_items_are_left_out_of_the_mean() -> None:
    rec = np.vstack([EXAMPLE_REC, [[0, 1, 2, 3]]])
    relevant = relevance_matrix([*EXAMPLE_REL, set()], 6)
    per_user = m.ndcg_at_k(rec, relevant, 3, per_user=True)
    assert math.isnan(per_user[3])
    assert m.ndcg_at_k(rec, relevant, 3) == pytest.approx(sum(EXAMPLE_EXPECTED["ndcg"]) / 3)


def test_ranking_metrics_keys() -> None:
    result = m.ranking_metrics(EXAMPLE_REC, relevance_matrix(EXAMPLE_REL, 6), ks=(1, 3))
    assert set(result) == {f"{name}@{k}" for name in RANKING_NAMES for k in (1, 3)}
    assert all(isinstance(value, float) for value in result.values())


def test_only_the_structure_of_relevant_counts() -> None:
    # Ratings as values, a duplicate entry, and an explicit zero (which is not relevant).
    relevant = sp.csr_array(
        (np.array([4.5, 2.0, 1.0, 0.0]), (np.array([0, 0, 0, 0]), np.array([0, 2, 2, 1]))),
        shape=(1, 6),
    )
    before = relevant.copy()
    assert m.precision_at_k(EXAMPLE_REC[:1], relevant, 3) == pytest.approx(2 / 3)
    assert m.recall_at_k(EXAMPLE_REC[:1], relevant, 3) == pytest.approx(1.0)
    assert (relevant != before).nnz == 0  # the caller's matrix is untouched


def test_k_beyond_the_list_counts_missing_slots_as_empty() -> None:
    relevant = relevance_matrix([{0, 1}], 6)
    assert m.precision_at_k(np.array([[0, 1]]), relevant, 4) == pytest.approx(2 / 4)
    assert m.ndcg_at_k(np.array([[0, 1]]), relevant, 4) == pytest.approx(1.0)


def test_padding_is_never_a_hit_even_for_the_last_item() -> None:
    # User 1's -1 shares a flat key with user 0's last item (5); it must not match it.
    relevant = relevance_matrix([{5}, {5}], 6)
    rec = np.array([[5, -1], [-1, -1]])
    assert_per_user(m.hit_rate_at_k(rec, relevant, 2, per_user=True), [1.0, 0.0])


# ------------------------------------------------------------------------ property tests


@settings(max_examples=200)
@given(ranking_cases())
def test_ranking_metrics_match_the_naive_reference(
    case: tuple[np.ndarray, list[set[int]], int, list[int]],
) -> None:
    recommended, relevant_sets, n_items, ks = case
    relevant = relevance_matrix(relevant_sets, n_items)
    per_user = m.ranking_metrics(recommended, relevant, ks, per_user=True)
    for k in ks:
        for name in RANKING_NAMES:
            expected = [
                naive_ranking(name, list(row), rel, k) if rel else math.nan
                for row, rel in zip(recommended, relevant_sets, strict=True)
            ]
            assert_per_user(per_user[f"{name}@{k}"], expected)
            if not any(relevant_sets):
                continue
            mean = mean_defined(expected)
            assert RANKING_FUNCTIONS[name](recommended, relevant, k) == close(mean)
            assert 0.0 <= mean <= 1.0


@settings(max_examples=100)
@given(ranking_cases())
def test_perfect_and_empty_rankings(
    case: tuple[np.ndarray, list[set[int]], int, list[int]],
) -> None:
    _, relevant_sets, n_items, ks = case
    relevant_sets = [rel or {0} for rel in relevant_sets]
    relevant = relevance_matrix(relevant_sets, n_items)
    k = max(ks)
    perfect = np.full((len(relevant_sets), k), -1)
    for u, rel in enumerate(relevant_sets):
        ordered = sorted(rel)[:k]
        perfect[u, : len(ordered)] = ordered
    per_user = m.ranking_metrics(perfect, relevant, [k], per_user=True)
    for name in ("ndcg", "map", "recall_capped", "mrr", "hit_rate"):
        np.testing.assert_allclose(per_user[f"{name}@{k}"], 1.0)
    full = np.array([len(rel) >= k for rel in relevant_sets])
    np.testing.assert_allclose(per_user[f"precision@{k}"][full], 1.0)
    empty = m.ranking_metrics(np.full_like(perfect, -1), relevant, [k])
    assert all(value == 0.0 for value in empty.values())


# -------------------------------------------------------------------------- rating metrics

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def test_rating_metrics_hand_computed() -> None:
    y_true, y_pred = [4.0, 3.0, 5.0, 1.0], [3.0, 3.0, 5.0, 3.0]
    assert m.mae(y_true, y_pred) == pytest.approx((1 + 0 + 0 + 2) / 4)
    assert m.rmse(y_true, y_pred) == pytest.approx(math.sqrt((1 + 0 + 0 + 4) / 4))


@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=50))
def test_rmse_at_least_mae_at_least_zero(pairs: list[tuple[float, float]]) -> None:
    y_true, y_pred = zip(*pairs, strict=True)
    rmse, mae = m.rmse(y_true, y_pred), m.mae(y_true, y_pred)
    # The slack covers rounding, and errors so small (1e-200) that their squares underflow to 0.
    assert rmse >= mae - 1e-9 * max(mae, 1e-3)
    assert mae >= 0.0


@given(st.lists(st.floats(0.5, 5.0), min_size=1, max_size=50), st.floats(-4.0, 4.0))
def test_rmse_equals_mae_for_constant_errors(y_true: list[float], error: float) -> None:
    y_pred = [y + error for y in y_true]
    assert m.rmse(y_true, y_pred) == pytest.approx(m.mae(y_true, y_pred), rel=1e-9, abs=1e-12)
    assert m.mae(y_true, y_pred) == pytest.approx(abs(error), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([1.0, 2.0], [1.0], "shape"),
        ([], [], "empty"),
        ([1.0, math.nan], [1.0, 2.0], "NaN"),
        ([1.0, 2.0], [1.0, math.inf], "infinite"),
    ],
)
@pytest.mark.parametrize("metric", [m.rmse, m.mae])
def test_rating_metrics_reject_bad_input(
    metric: Callable[..., float], y_true: list[float], y_pred: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        metric(y_true, y_pred)


# ------------------------------------------------------------------------- input validation


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_bad_k_is_refused(k: object) -> None:
    with pytest.raises(ValueError, match="k must be a positive integer"):
        m.ndcg_at_k(EXAMPLE_REC, relevance_matrix(EXAMPLE_REL, 6), k)  # type: ignore[call-overload]


def test_empty_ks_is_refused() -> None:
    with pytest.raises(ValueError, match="ks is empty"):
        m.ranking_metrics(EXAMPLE_REC, relevance_matrix(EXAMPLE_REL, 6), ks=())


@pytest.mark.parametrize(
    ("recommended", "message"),
    [
        (EXAMPLE_REC[:2], "rows"),
        (np.array([0, 1, 2]), "2-D"),
        (EXAMPLE_REC.astype(float), "integer"),
        (np.array([[0, 1], [2, -2], [3, 4]]), "padding"),
        (np.array([[0, 1], [2, 6], [3, 4]]), "6 items"),
        (np.array([[0, 1], [2, 2], [3, 4]]), "row 1 names the same item twice"),
    ],
)
def test_malformed_recommendations_are_refused(recommended: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        m.precision_at_k(recommended, relevance_matrix(EXAMPLE_REL, 6), 2)


def test_relevant_must_be_sparse() -> None:
    with pytest.raises(ValueError, match=r"scipy\.sparse"):
        m.precision_at_k(EXAMPLE_REC, np.ones((3, 6)), 2)


def test_no_relevant_item_anywhere_is_refused_for_the_mean() -> None:
    relevant = relevance_matrix([set(), set(), set()], 6)
    with pytest.raises(ValueError, match="no user has a relevant item"):
        m.recall_at_k(EXAMPLE_REC, relevant, 2)
    assert np.isnan(m.recall_at_k(EXAMPLE_REC, relevant, 2, per_user=True)).all()


def test_padding_only_duplicates_are_allowed() -> None:
    relevant = relevance_matrix([{0}], 6)
    assert m.precision_at_k(np.array([[0, -1, -1]]), relevant, 3) == pytest.approx(1 / 3)


# ------------------------------------------------------------------ beyond accuracy: catalog


def test_catalog_metrics_hand_computed() -> None:
    # Items 0..3 are recommended twice, items 4 and 5 once: 6 of 7 catalog items appear.
    assert m.catalog_coverage(EXAMPLE_REC, 7) == pytest.approx(6 / 7)
    # Sorted counts 1, 1, 2, 2, 2, 2 (sum 10), weights 2i - n - 1 = -5, -3, -1, 1, 3, 5.
    assert m.gini_index(EXAMPLE_REC, 6) == pytest.approx((-5 - 3 - 2 + 2 + 6 + 10) / (6 * 10))
    assert m.gini_index(np.array([[0], [0]]), 4) == pytest.approx(1 - 1 / 4)
    assert m.gini_index(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(0.0)


@given(st.integers(1, 30), st.integers(1, 5), st.randoms(use_true_random=False))
def test_coverage_is_one_when_every_item_is_recommended(
    n_items: int, width: int, random: object
) -> None:
    items = list(range(n_items))
    random.shuffle(items)  # type: ignore[attr-defined]
    n_rows = -(-n_items // width)
    padded = items + [-1] * (n_rows * width - n_items)
    assert m.catalog_coverage(np.array(padded).reshape(n_rows, width), n_items) == 1.0


@settings(max_examples=150)
@given(lists_and_counts())
def test_coverage_and_gini_match_the_naive_reference(case: tuple[np.ndarray, np.ndarray]) -> None:
    recommended, counts = case
    n_items = counts.size
    items = [i for row in recommended.tolist() for i in naive_items(row)]
    coverage = m.catalog_coverage(recommended, n_items)
    assert coverage == close(len(set(items)) / n_items)
    assert 0.0 <= coverage <= 1.0
    if not items:
        with pytest.raises(ValueError, match="no recommendation list holds an item"):
            m.gini_index(recommended, n_items)
        return
    rec_counts = [items.count(i) for i in range(n_items)]
    gini = m.gini_index(recommended, n_items)
    assert gini == close(naive_gini(rec_counts))
    assert 0.0 <= gini < 1.0


def test_catalog_metrics_reject_bad_n_items() -> None:
    with pytest.raises(ValueError, match="n_items must be a positive integer"):
        m.catalog_coverage(EXAMPLE_REC, 0)
    with pytest.raises(ValueError, match="but there are 3 items"):
        m.gini_index(EXAMPLE_REC, 3)


# ---------------------------------------------------------------- beyond accuracy: diversity

GENRES = np.array(
    [
        [1, 0, 0],  # item 0
        [1, 1, 0],  # item 1
        [0, 0, 1],  # item 2
        [1, 1, 1],  # item 3
        [0, 0, 0],  # item 4: no genres
        [1, 0, 0],  # item 5: same genres as item 0
    ]
)


def test_intra_list_diversity_hand_computed() -> None:
    rec = np.array([[0, 1, 2], [0, 5, -1], [4, -1, -1]])
    # Jaccard distances in list 0: (0,1) 1 - 1/2, (0,2) 1 - 0, (1,2) 1 - 0.
    jaccard = m.intra_list_diversity(rec, GENRES, distance="jaccard", per_user=True)
    assert_per_user(jaccard, [(0.5 + 1 + 1) / 3, 0.0, math.nan])
    # Cosine distances in list 0: (0,1) 1 - 1/sqrt(2), (0,2) 1, (1,2) 1.
    cosine = m.intra_list_diversity(rec, sp.csr_array(GENRES), per_user=True)
    assert_per_user(cosine, [(1 - 1 / math.sqrt(2) + 1 + 1) / 3, 0.0, math.nan])
    assert m.intra_list_diversity(rec, GENRES) == pytest.approx(
        ((1 - 1 / math.sqrt(2) + 2) / 3 + 0.0) / 2
    )
    # An item without genres is unlike everything.
    assert m.intra_list_diversity(np.array([[4, 0]]), GENRES) == pytest.approx(1.0)


@settings(max_examples=150)
@given(
    ranking_cases(),
    st.sampled_from(["cosine", "jaccard"]),
    st.data(),
)
def test_intra_list_diversity_matches_the_naive_reference(
    case: tuple[np.ndarray, list[set[int]], int, list[int]],
    distance: m.Distance,
    data: st.DataObject,
) -> None:
    recommended, _, n_items, _ = case
    n_genres = data.draw(st.integers(1, 5))
    features = np.array(
        data.draw(
            st.lists(
                st.lists(st.integers(0, 1), min_size=n_genres, max_size=n_genres),
                min_size=n_items,
                max_size=n_items,
            )
        )
    )
    expected = [naive_ild(row, features, distance) for row in recommended.tolist()]
    actual = m.intra_list_diversity(recommended, features, distance=distance, per_user=True)
    assert_per_user(actual, expected)
    defined = actual[~np.isnan(actual)]
    assert ((defined >= 0) & (defined <= 1)).all()


def test_intra_list_diversity_is_the_same_in_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    rec = np.array([rng.permutation(6)[:4] for _ in range(25)])
    whole = m.intra_list_diversity(rec, GENRES, per_user=True)
    monkeypatch.setattr(m, "_CHUNK_VALUES", 16)  # one list per chunk
    np.testing.assert_allclose(m.intra_list_diversity(rec, GENRES, per_user=True), whole)


def test_intra_list_diversity_rejects_an_unknown_distance() -> None:
    with pytest.raises(ValueError, match="distance must be"):
        m.intra_list_diversity(EXAMPLE_REC, GENRES, distance="euclid")  # type: ignore[call-overload]


# --------------------------------------------------------------- beyond accuracy: popularity


def test_item_popularity_floors_unrated_items_at_one_user() -> None:
    interactions = sp.csr_array(np.array([[5, 0, 3, 0], [4, 0, 0, 0]]))
    np.testing.assert_allclose(m.item_popularity(interactions), [1.0, 0.5, 0.5, 0.5])


def test_popularity_metrics_hand_computed() -> None:
    popularity = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625, 1 / 32])
    rec = np.array([[0, 1, -1], [2, 3, 5], [-1, -1, -1]])
    novelty = m.novelty(rec, popularity, per_user=True)
    assert_per_user(novelty, [(1 + 2) / 2, (3 + 4 + 5) / 3, math.nan])
    assert m.novelty(rec, popularity) == pytest.approx((1.5 + 4) / 2)
    arp = m.average_recommendation_popularity(rec, popularity, per_user=True)
    assert_per_user(arp, [0.375, (0.125 + 0.0625 + 1 / 32) / 3, math.nan])
    # Shares: item 0 alone holds 0.5 / 1.03125 > 20% of interactions, so it is the whole head.
    np.testing.assert_array_equal(m.long_tail_items(popularity), [False] + [True] * 5)
    assert_per_user(m.long_tail_share(rec, popularity, per_user=True), [0.5, 1.0, math.nan])
    bias = m.popularity_bias(rec, popularity)
    assert bias == pytest.approx({"arp": (0.375 + arp[1]) / 2, "long_tail_share": 0.75})


def test_long_tail_ties_join_the_head() -> None:
    popularity = np.array([0.3, 0.3, 0.3, 0.1])
    np.testing.assert_array_equal(m.long_tail_items(popularity), [False, False, False, True])


@settings(max_examples=150)
@given(lists_and_counts(), st.sampled_from([0.2, 0.5, 0.8]))
def test_popularity_metrics_match_the_naive_reference(
    case: tuple[np.ndarray, np.ndarray], head_share: float
) -> None:
    recommended, counts = case
    popularity = counts / 20
    rows = recommended.tolist()
    if popularity.sum() > 0:
        tail = naive_tail(popularity.tolist(), head_share)
        np.testing.assert_array_equal(
            m.long_tail_items(popularity, head_share), [i in tail for i in range(counts.size)]
        )
        expected = [naive_list_mean(row, lambda i: float(i in tail)) for row in rows]
        actual = m.long_tail_share(recommended, popularity, head_share=head_share, per_user=True)
        assert_per_user(actual, expected)
    arp = [naive_list_mean(row, lambda i: popularity[i]) for row in rows]
    assert_per_user(
        m.average_recommendation_popularity(recommended, popularity, per_user=True), arp
    )
    floored = np.maximum(counts, 1) / 20
    expected_novelty = [naive_list_mean(row, lambda i: -math.log2(floored[i])) for row in rows]
    actual_novelty = m.novelty(recommended, floored, per_user=True)
    assert_per_user(actual_novelty, expected_novelty)
    assert (actual_novelty[~np.isnan(actual_novelty)] >= 0).all()


def test_popularity_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="popularity 0"):
        m.novelty(np.array([[0, 1]]), np.array([0.5, 0.0]))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        m.average_recommendation_popularity(np.array([[0]]), np.array([2.0]))
    with pytest.raises(ValueError, match="head_share"):
        m.long_tail_items(np.array([0.5, 0.5]), head_share=1.0)
    with pytest.raises(ValueError, match="no recommendation list holds an item"):
        m.novelty(np.array([[-1, -1]]), np.array([0.5, 0.5]))
