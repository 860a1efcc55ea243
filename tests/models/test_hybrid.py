"""GenreHybrid and Blend: the contract, genre preference, weights validation, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.models import create_model
from movierec.models.base import ModelError
from movierec.models.hybrid import Blend, GenreHybrid, profile_weights
from tests.models.contract import (
    HALF_ITEMS,
    N_ITEMS,
    RecommenderContract,
    checkerboard,
)


def checkerboard_with_genres() -> Interactions:
    """The contract's checkerboard, each group of movies carrying its own genre."""
    base = checkerboard()
    movies = pd.DataFrame(
        {
            "item_id": base.item_ids,
            "title": [f"movie {i}" for i in range(N_ITEMS)],
            "genres": [["Drama"] if i < HALF_ITEMS else ["Comedy"] for i in range(N_ITEMS)],
        }
    )
    return Interactions.from_frames(base.to_frame(), movies, rating_scale=(0.5, 5.0))


class TestGenreHybridContract(RecommenderContract):
    """Defaults (item-kNN included): personalized, on a checkerboard whose groups are genres."""

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> Interactions:
        return checkerboard_with_genres()

    def make_model(self) -> GenreHybrid:
        return GenreHybrid()


class TestContentOnlyHybridContract(RecommenderContract):
    """The reference 0.6 x popularity + 0.4 x genre match: taste from genres alone.

    Not personalized in the contract's sense: its best unseen movie is the most popular
    movie of the user's genre, not the one movie of their group they have not rated.
    """

    personalized = False

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> Interactions:
        return checkerboard_with_genres()

    def make_model(self) -> GenreHybrid:
        return GenreHybrid(popularity_weight=0.6, genre_weight=0.4, cf_weight=0.0)


class TestBlendContract(RecommenderContract):
    def make_model(self) -> Blend:
        return Blend(ease={"regularization": 10.0}, als={"factors": 8, "regularization": 0.1})


def _equal_popularity(unrated_drama: bool = False) -> Interactions:
    """Movies 1-2 are dramas, 3-4 comedies, each rated by two users; user 1 loves dramas.

    With ``unrated_drama``, the catalogue also lists drama 5, which nobody rated.
    """
    rows = [
        (1, 1, 5.0), (1, 3, 2.0),
        (2, 2, 4.0), (2, 4, 4.0), (2, 1, 3.0),
        (3, 2, 3.0), (3, 3, 3.0), (3, 4, 3.0),
    ]  # fmt: skip
    movies = pd.DataFrame(
        {
            "item_id": [1, 2, 3, 4, 5],
            "title": ["a", "b", "c", "d", "e"],
            "genres": [["Drama"], ["Drama"], ["Comedy"], ["Comedy"], ["Drama"]],
        }
    )
    if not unrated_drama:
        movies = movies.iloc[:4]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    return Interactions.from_frames(frame, movies, rating_scale=(0.5, 5.0))


def test_favourite_genre_wins_among_equally_popular_movies() -> None:
    data = _equal_popularity()
    model = GenreHybrid(popularity_weight=0.6, genre_weight=0.4, cf_weight=0.0).fit(data)
    items, _ = model.recommend(0, k=2)
    assert data.item_ids[items[0]] == 2, "the unseen drama before the unseen comedy"
    drama, comedy = data.item_index([2, 4])
    liked, _ = model.recommend_for_history([data.item_index([1])[0]], k=3)
    assert liked.tolist().index(drama) < liked.tolist().index(comedy)


def test_an_unrated_catalogue_movie_can_be_recommended_by_genre() -> None:
    data = _equal_popularity(unrated_drama=True)
    model = GenreHybrid(popularity_weight=0.1, genre_weight=0.9, cf_weight=0.0).fit(data)
    items, _ = model.recommend_for_history(data.item_index([1]), [5.0], k=2)
    assert data.item_index([5])[0] in items.tolist()


def test_profile_weights() -> None:
    data = _equal_popularity()
    centered = profile_weights(data.matrix, "centered").toarray()
    np.testing.assert_allclose(centered[0, data.item_index([1, 3])], [1.5, -1.5])
    assert (profile_weights(data.matrix, "centered").data[-3:] == 1.0).all(), "flat user: all 1"
    liked = profile_weights(data.matrix, "liked").toarray()
    np.testing.assert_array_equal(liked[0, data.item_index([1, 3])], [1.0, 0.0])


@pytest.mark.parametrize(
    "params",
    [
        {"popularity_weight": -0.1},
        {"popularity_weight": 0.0, "genre_weight": 0.0, "cf_weight": 0.0},
        {"profile": "mood"},
        {"similar_genre_share": 1.5},
    ],
)
def test_invalid_hybrid_weights_are_clear_errors(params: dict[str, object]) -> None:
    with pytest.raises(ModelError, match="invalid hybrid parameters"):
        GenreHybrid(**params)


def test_invalid_blend_weights_are_clear_errors() -> None:
    with pytest.raises(ModelError, match="invalid blend parameters"):
        Blend(ease_weight=0.0, als_weight=0.0, rp3beta_weight=0.0)
    with pytest.raises(ModelError, match="invalid blend parameters"):
        Blend(als_weight=-1.0)
    assert isinstance(create_model("hybrid", genre_weight=1.0), GenreHybrid)
    assert isinstance(create_model("blend", als_weight=0.0), Blend)


def test_a_zero_weight_component_is_not_fitted() -> None:
    model = Blend(
        ease_weight=1.0, als_weight=0.0, rp3beta_weight=0.0, ease={"regularization": 10.0}
    )
    assert set(model.components) == {"ease"}
    model.fit(checkerboard())
    assert all(key.startswith("ease.") for key in model._state())
