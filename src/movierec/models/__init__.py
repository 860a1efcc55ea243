"""Model families behind one :class:`~movierec.models.base.Recommender` interface.

The registry maps a model's name to its class, so configs and the CLI name models as text.
"""

from __future__ import annotations

from typing import Any

from movierec.errors import ConfigError
from movierec.models.als import ALS, BPR
from movierec.models.base import ModelConfig, ModelError, Recommender
from movierec.models.baseline import BaselineOnly, NormalPredictor
from movierec.models.ease import EASE
from movierec.models.graph import RP3beta
from movierec.models.hybrid import Blend, GenreHybrid
from movierec.models.knn import ItemKNN
from movierec.models.knn_rating import KNNBaseline
from movierec.models.mf import BiasedMF
from movierec.models.popularity import Popularity
from movierec.models.stacking import RatingBlend
from movierec.models.svdpp import SVDpp

MODELS: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (
        Popularity,
        NormalPredictor,
        BaselineOnly,
        BiasedMF,
        ItemKNN,
        EASE,
        ALS,
        BPR,
        RP3beta,
        GenreHybrid,
        Blend,
        KNNBaseline,
        SVDpp,
        RatingBlend,
    )
}


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``; an unknown name lists the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ConfigError(f"unknown model {name!r}; known models: {known}") from None


def create_model(name: str, **params: Any) -> Recommender:
    """A new, unfitted model of family ``name`` configured by ``params``."""
    return model_class(name)(**params)


__all__ = ["MODELS", "ModelConfig", "ModelError", "Recommender", "create_model", "model_class"]
