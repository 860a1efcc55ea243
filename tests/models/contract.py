"""The contract every model honours; each model's test class inherits :class:`RecommenderContract`.

The data is a checkerboard where the right answer is known: two groups of users, two groups of
movies; each user rated every movie of their own group but one, highly, and two movies of the
other group, poorly. A personalized model's best unseen movie for a user is the one movie of
their own group they have not rated.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.models.base import ModelError, NotARatingModelError, Recommender

N_USERS, N_ITEMS = 40, 20
HALF_USERS, HALF_ITEMS = N_USERS // 2, N_ITEMS // 2


def group_of_user(user: int) -> int:
    return user // HALF_USERS


def group_of_item(item: int) -> int:
    return item // HALF_ITEMS


def held_out_item(user: int) -> int:
    """The one movie of their own group a user has not rated."""
    return group_of_user(user) * HALF_ITEMS + user % HALF_ITEMS


def checkerboard() -> Interactions:
    """The checkerboard data set, with external ids that are not 0-based indices."""
    rng = np.random.default_rng(7)
    rows = []
    for user in range(N_USERS):
        group = group_of_user(user)
        own = [i for i in range(group * HALF_ITEMS, (group + 1) * HALF_ITEMS)]
        other = [i for i in range(N_ITEMS) if group_of_item(i) != group]
        rows += [(user, i, rng.choice([4.0, 4.5, 5.0])) for i in own if i != held_out_item(user)]
        rows += [(user, i, 1.0) for i in rng.choice(other, size=2, replace=False)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    frame["user_id"] += 100
    frame["item_id"] += 1_000
    frame["timestamp"] = np.arange(len(frame), dtype=np.int64) + 1_600_000_000
    return Interactions.from_frames(frame, rating_scale=(0.5, 5.0))


def tiny() -> Interactions:
    """Six users, five items, small enough to check a model against a hand computation."""
    rows = [
        (1, 10, 5.0), (1, 11, 4.0), (1, 12, 1.0),
        (2, 10, 4.0), (2, 11, 5.0),
        (3, 11, 3.0), (3, 12, 4.0), (3, 13, 2.0),
        (4, 12, 5.0), (4, 13, 4.0), (4, 14, 0.5),
        (5, 10, 2.0), (5, 14, 3.0),
        (6, 13, 5.0), (6, 14, 4.0), (6, 10, 1.0),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    return Interactions.from_frames(frame, rating_scale=(0.5, 5.0))


def low_rank_split(
    seed: int = 0, noise: float = 0.0, scale: tuple[float, float] = (1.0, 5.0)
) -> tuple[Interactions, Interactions]:
    """Ratings 3 + biases + a rank-3 product (+ Gaussian ``noise``), 40% of a 150 x 80 matrix
    observed; returns (train, held out 20%): a rating model should recover it."""
    rng = np.random.default_rng(seed)
    n_users, n_items, rank = 150, 80, 3
    truth = (
        3.0
        + rng.normal(0, 0.3, (n_users, 1))
        + rng.normal(0, 0.3, (1, n_items))
        + rng.normal(0, 0.6, (n_users, rank)) @ rng.normal(0, 0.6, (rank, n_items))
    )
    cells = rng.choice(n_users * n_items, size=int(0.4 * n_users * n_items), replace=False)
    users, items = np.divmod(cells, n_items)
    ratings = truth[users, items]
    if noise:
        ratings = ratings + rng.normal(0, noise, len(cells))
    frame = pd.DataFrame({"user_id": users, "item_id": items, "rating": ratings.clip(*scale)})
    data = Interactions.from_frames(frame, rating_scale=scale)
    held = rng.random(data.nnz) < 0.2
    return data.subset(~held), data.subset(held)


def rmse_on(model: Recommender, data: Interactions) -> float:
    """RMSE of ``model``'s predictions for every rating stored in ``data``."""
    predicted = model.predict(data.entry_users(), data.matrix.indices)
    return float(np.sqrt(np.mean((predicted - data.matrix.data) ** 2)))


_LOAD_AND_RECOMMEND = """
import json, sys
from movierec.models import model_class
model = model_class(sys.argv[1]).load(sys.argv[2])
items, scores = model.recommend(list(range(model.n_users)), k=5)
print(json.dumps({"items": items.tolist(), "scores": scores.tolist()}))
"""


class RecommenderContract:
    """Shared tests; a subclass sets ``model_name`` and implements :meth:`make_model`."""

    personalized: ClassVar[bool] = True
    rating_model: ClassVar[bool] = False
    explains: ClassVar[bool] = True  # item_affinity: False for models with no item-item notion

    def make_model(self) -> Recommender:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> Interactions:
        return checkerboard()

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, data: Interactions) -> Recommender:
        return cls().make_model().fit(data)

    def test_batch_recommend_shapes_and_single_user(self, model: Recommender) -> None:
        items, scores = model.recommend(np.arange(N_USERS), k=5)
        assert items.shape == scores.shape == (N_USERS, 5)
        one_items, one_scores = model.recommend(3, k=5)
        assert one_items.shape == (5,)
        np.testing.assert_array_equal(one_items, items[3])
        np.testing.assert_allclose(one_scores, scores[3], rtol=1e-5)
        assert (np.diff(scores, axis=1) <= 1e-6).all(), "scores must come best first"

    def test_seen_items_are_excluded(self, model: Recommender, data: Interactions) -> None:
        items, _ = model.recommend(np.arange(N_USERS), k=N_ITEMS)
        for user in range(N_USERS):
            seen = set(data.matrix.indices[data.matrix.indptr[user] : data.matrix.indptr[user + 1]])
            shown = [i for i in items[user] if i >= 0]
            assert not seen & set(shown)
            assert len(shown) == len(set(shown)) == N_ITEMS - len(seen)
            assert (items[user][len(shown) :] == -1).all(), "padding comes last"

    def test_seen_items_can_be_included(self, model: Recommender) -> None:
        items, _ = model.recommend(0, k=N_ITEMS, exclude_seen=False)
        assert sorted(items.tolist()) == list(range(N_ITEMS))

    def test_candidates_restrict_the_answer(self, model: Recommender) -> None:
        allowed = [15, 16, 17]
        items, _ = model.recommend(np.arange(N_USERS), k=3, candidates=allowed)
        assert set(items[items >= 0].ravel()) <= set(allowed)

    def test_the_right_answer_on_the_checkerboard(self, model: Recommender) -> None:
        if not self.personalized:
            pytest.skip("a non-personalized model gives everyone the same list")
        items, _ = model.recommend(np.arange(N_USERS), k=1)
        right = sum(items[u, 0] == held_out_item(u) for u in range(N_USERS))
        assert right >= 0.9 * N_USERS

    def test_fold_in_a_new_user(self, model: Recommender) -> None:
        history = [0, 1, 2, 3, 4, 5, 6, 7]
        items, scores = model.recommend_for_history(history, [5.0] * 8, k=4)
        assert not set(items.tolist()) & set(history)
        assert np.isfinite(scores[items >= 0]).all()
        if self.personalized:
            assert {8, 9} <= set(items[:2].tolist()) | set(items.tolist())
            assert group_of_item(int(items[0])) == 0
        liked, _ = model.recommend_for_history(history, k=4)
        assert liked.shape == (4,)

    def test_fold_in_with_no_history_still_answers(self, model: Recommender) -> None:
        items, _ = model.recommend_for_history([], k=3)
        assert (items >= 0).all()

    def test_similar_items(self, model: Recommender) -> None:
        items, scores = model.similar_items(0, k=5)
        assert 0 not in items.tolist()
        assert sum(group_of_item(int(i)) == 0 for i in items) >= 4
        assert (np.diff(scores) <= 1e-6).all()

    def test_item_affinity_ties_each_group_together(self, model: Recommender) -> None:
        """The liked movie that explains a recommendation is one of the same group."""
        sources = np.array([0, 1, 2, 12, 13, 14])
        targets = np.array([5, 9, 15, 19])
        affinity = model.item_affinity(sources, targets)
        if not self.explains:
            assert affinity is None
            return
        assert affinity is not None
        assert affinity.shape == (6, 4)
        assert affinity.dtype == np.float32
        assert np.isfinite(affinity).all()
        closest = sources[affinity.argmax(axis=0)]
        assert [group_of_item(int(i)) for i in closest] == [0, 0, 1, 1]
        assert affinity.max(axis=0).min() > 0
        empty = model.item_affinity([], [3])
        assert empty is not None
        assert empty.shape == (0, 1)

    def test_predict(self, model: Recommender) -> None:
        users, items = np.array([0, 0, 25]), np.array([held_out_item(0), 15, 3])
        if not self.rating_model:
            with pytest.raises(NotARatingModelError):
                model.predict(users, items)
            return
        predicted = model.predict(users, items)
        assert predicted.shape == (3,)
        assert np.isfinite(predicted).all()
        assert predicted[0] > predicted[1], "an own-group movie beats an other-group one"

    def test_bad_arguments_are_clear_errors(self, model: Recommender) -> None:
        for k in (0, -3):
            with pytest.raises(ModelError, match="k must be"):
                model.recommend(0, k=k)
        for user in (N_USERS, -1):
            with pytest.raises(ModelError, match="user indices"):
                model.recommend(user, k=3)
        for items in ([N_ITEMS + 5], [1, -2]):
            with pytest.raises(ModelError, match="item indices"):
                model.recommend_for_history(items, k=3)
            with pytest.raises(ModelError, match="candidate item indices"):
                model.recommend(0, k=3, candidates=items)
        with pytest.raises(ModelError, match="finite"):
            model.recommend_for_history([1, 2], [5.0, float("nan")], k=3)
        with pytest.raises(ModelError, match="item index"):
            model.similar_items(-1)
        for sources, targets in (([N_ITEMS], [0]), ([0], [-1])):
            with pytest.raises(ModelError, match="item indices"):
                model.item_affinity(sources, targets)
        items, _ = model.recommend(0, k=10_000)
        assert items.shape == (N_ITEMS,)

    def test_external_ids_map_to_indices(self, model: Recommender) -> None:
        assert model.user_index_of(100) == 0  # the checkerboard's ids start at 100 and 1000
        assert model.item_index_of(1_000 + N_ITEMS - 1) == N_ITEMS - 1
        assert model.user_index_of(99) is None
        assert model.item_index_of(10**12) is None

    def test_unfitted_model_says_so(self) -> None:
        with pytest.raises(ModelError, match="not fitted"):
            self.make_model().recommend(0, k=3)

    def test_same_seed_same_answer(self, model: Recommender, data: Interactions) -> None:
        again = self.make_model().fit(data)
        np.testing.assert_array_equal(
            model.recommend(np.arange(N_USERS), k=5)[0], again.recommend(np.arange(N_USERS), k=5)[0]
        )

    def test_save_and_load_in_a_fresh_process(self, model: Recommender, tmp_path: Path) -> None:
        folder = model.save(tmp_path / "model")
        done = subprocess.run(
            [sys.executable, "-c", _LOAD_AND_RECOMMEND, model.name, str(folder)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        loaded = json.loads(done.stdout)
        items, scores = model.recommend(list(range(N_USERS)), k=5)
        assert loaded["items"] == items.tolist()
        np.testing.assert_allclose(loaded["scores"], scores, rtol=1e-5)
        np.testing.assert_array_equal(type(model).load(folder).user_ids, model.user_ids)

    def test_a_mapped_model_answers_as_a_read_one(self, model: Recommender, tmp_path: Path) -> None:
        """Served models are mapped read-only (movierec.models.arrays): no answer may write
        into a loaded array, and every answer is the one a model read into memory gives."""
        folder = model.save(tmp_path / "model")
        read, mapped = type(model).load(folder), type(model).load(folder, mmap_mode=True)
        assert mapped.user_items is not None
        assert not mapped.user_items.indices.flags.writeable
        history, ratings = [0, 1, 2, 3, 4, 5, 6, 7], [5.0, 4.0, 4.5, 5.0, 3.0, 4.0, 5.0, 4.0]
        answers = [
            lambda m: m.recommend(np.arange(N_USERS), k=5),
            lambda m: m.recommend(3, k=5, candidates=np.arange(20)),
            lambda m: m.recommend_for_history(history, ratings, k=5),
            lambda m: m.similar_items(0, k=5),
            lambda m: m.popular_items(k=5),
            lambda m: [a for a in [m.item_affinity([0, 1, 12], [5, 15])] if a is not None],
        ]
        if self.rating_model:
            answers.append(lambda m: (m.predict([0, 25], [held_out_item(0), 3]),))
        for answer in answers:
            for expected, got in zip(answer(read), answer(mapped), strict=True):
                np.testing.assert_array_equal(got, expected)

    def test_similar_items_are_the_same_after_a_save(
        self, model: Recommender, tmp_path: Path
    ) -> None:
        """A saved model may answer similar items from a table (a large catalogue's)."""
        before = [model.similar_items(item, k=4) for item in range(6)]
        loaded = type(model).load(model.save(tmp_path / "model"), mmap_mode=True)
        for item, (items, scores) in enumerate(before):
            got_items, got_scores = loaded.similar_items(item, k=4)
            np.testing.assert_array_equal(got_items, items)
            np.testing.assert_array_equal(got_scores, scores)

    def test_warm_up_changes_no_answer(self, model: Recommender) -> None:
        before = model.recommend(3, k=5), model.similar_items(1, k=5)
        model.warm_up()
        after = model.recommend(3, k=5), model.similar_items(1, k=5)
        for expected, got in zip(before, after, strict=True):
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])

    def test_broken_model_files_are_clear_errors(self, model: Recommender, tmp_path: Path) -> None:
        folder = model.save(tmp_path / "model")
        arrays = folder / "arrays.npz"
        arrays.write_bytes(arrays.read_bytes()[: arrays.stat().st_size // 2])
        with pytest.raises(ModelError, match="cannot load"):
            type(model).load(folder)
        with pytest.raises(ModelError, match="cannot load"):
            type(model).load(folder, mmap_mode=True)
        meta = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**meta, "format_version": 99}))
        with pytest.raises(ModelError, match="format"):
            type(model).load(folder)
        with pytest.raises(ModelError, match="no readable model"):
            type(model).load(tmp_path / "nowhere")
