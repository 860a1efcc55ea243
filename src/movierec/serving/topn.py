"""Known users' top-N lists computed in batch when a model is loaded, as production systems such
as Gorse serve offline recommendations.

Scoring a user with the pipeline's default champion (a blend of several models) took ~4 ms a
request on ml-latest-small; the whole user base in one batch call takes ~0.6 s. A thread fills
the lists in chunks after the model is swapped in, so the server is ready at once and the lists
are used as they are filled. Only a user the served model was trained on, not *fresh* (no
rating since), asking for seen movies excluded and at most :attr:`TopN.depth` movies is answered
from them; a filter keeps the list's allowed movies and falls back to scoring when fewer than
``k`` are left of a full list. Then, for a model whose similar movies are scored per request,
every movie's most similar movies are kept the same way (:meth:`Recommender.keep_similar_items`).
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import numpy.typing as npt

from movierec.serving.catalog import IntArray, ModelView

logger = logging.getLogger(__name__)

CHUNK_USERS = 256  # users scored per batch call: the GIL changes hands between chunks
MAX_BYTES = 512 * 1024**2  # the lists' memory per worker at most (items and scores)
FloatArray = npt.NDArray[np.float32]


class TopN:
    """Each known user's best ``depth`` unseen items, best first (-1 pads a shorter list)."""

    def __init__(self, view: ModelView, depth: int) -> None:
        self.view = view
        n_users = view.model.n_users
        self.depth = min(depth, max(MAX_BYTES // max(8 * n_users, 1), 0), view.model.n_items)
        self.items = np.full((n_users, self.depth), -1, dtype=np.int32)
        self.scores = np.zeros((n_users, self.depth), dtype=np.float32)
        self.filled = 0  # users [0, filled) have their list (grows, never shrinks)

    def start(self) -> threading.Thread:
        """Fill the lists in a daemon thread."""
        thread = threading.Thread(target=self._fill, name="movierec-topn", daemon=True)
        thread.start()
        return thread

    @property
    def share_filled(self) -> float:
        """The share of known users whose list is ready (1.0 once the thread is through)."""
        n_users = self.view.model.n_users
        return self.filled / n_users if n_users and self.depth else 1.0

    def row(self, user: int) -> tuple[IntArray, FloatArray] | None:
        """The user's list (items without the padding), None until it is filled."""
        if user >= self.filled or not self.depth:
            return None
        items = self.items[user]
        valid = items >= 0
        return items[valid].astype(np.int64), self.scores[user][valid]

    def _fill(self) -> None:
        model = self.view.model
        try:
            for start in range(0, model.n_users, CHUNK_USERS):
                users = np.arange(start, min(start + CHUNK_USERS, model.n_users))
                items, scores = model.recommend(users, k=self.depth, exclude_seen=True)
                self.items[users] = items
                self.scores[users] = scores
                self.filled = int(users[-1]) + 1
        except Exception:  # a model that cannot score in batch: every request scores itself
            logger.exception("the top-%d lists could not be computed", self.depth)
        try:
            model.keep_similar_items(self.depth)
        except Exception:  # a model without item similarity: the route says so per request
            logger.info("no similar-items table for %s", model.name, exc_info=True)
