"""The quality of what is served: coverage, diversity, novelty, popularity bias, personalization,
strategy mix and short answers, per model version, over the last hour, the last day and since the
server started.

Every list served is counted, off the request path: a request only appends its list to the
monitor's queue (:mod:`movierec.monitoring.recorder`), and the worker's event loop adds each
batch here with a few vectorized numpy operations. The figures live in per-minute buckets (a
ring of a day), in memory-mapped ``.npy`` files: the workers of one server each write their own
folder under the server's shared folder, and whichever worker is asked (``/monitoring/stats`` or
a Prometheus scrape) adds all the folders up, so the figures are the whole server's.

Definitions (per list, then averaged over the non-empty lists of the window):

* novelty: the mean self-information ``-log2(n_raters(i) / n_users)`` of its movies, in bits
  (Zhou et al. 2010): 0 for a movie everyone rated, high for rare ones;
* popularity percentile: the mean percentile of its movies by rating count (1 = the most rated);
* intra-list diversity: 1 - the mean cosine similarity of its movies' genre vectors (0 when all
  share the same genres; lists of two movies or more);
* coverage: distinct movies served in the window / the movies the model can recommend;
* personalization: 1 - the mean cosine similarity between the lists of different users, over a
  sample of the window's lists (up to 16 a minute; since the start, a reservoir of 1,024).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.stats import rankdata

from movierec.monitoring.batch import STRATEGIES, ServedColumns
from movierec.serving.catalog import ModelView

MINUTES = 24 * 60  # the ring: the longest rolling window
WINDOWS = {"1h": 60, "1d": MINUTES, "start": None}  # minutes; None: since the server started
SAMPLES_PER_MINUTE = 16
RESERVOIR = 1_024
SAMPLE_ITEMS = 20  # personalization compares the first 20 movies of each list
MAX_PAIRWISE = 500  # lists compared pairwise for personalization (a 500 x 500 product)

# The columns of a bucket: sums over the lists of a minute.
LISTS, ITEMS, SHORT, EMPTY, NOVELTY, POPULARITY, DIVERSITY, DIVERSE_LISTS = range(8)
FIRST_STRATEGY = 8  # then one column per strategy, in the order of STRATEGIES
STRATEGY_COLUMN = {name: FIRST_STRATEGY + i for i, name in enumerate(STRATEGIES)}
FIELDS = FIRST_STRATEGY + len(STRATEGIES)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ItemFeatures:
    """What the figures need of each model item, one extra row (all zero) for the padding."""

    self_information: npt.NDArray[np.float32]
    popularity_percentile: npt.NDArray[np.float32]
    genre_units: npt.NDArray[np.float32] | None  # unit genre vectors; None without genres
    has_genres: npt.NDArray[np.float32]  # 1 where an item has a genre (|its unit vector|^2)
    n_items: int

    @classmethod
    def of(cls, view: ModelView) -> ItemFeatures:
        counts = view.rating_counts.astype(np.float64)
        n = len(counts)
        users = max(view.model.n_users, 1)
        information = -np.log2(np.maximum(counts, 1.0) / users)
        percentile = (rankdata(counts) - 1) / max(n - 1, 1)
        units = _genre_units(view, n)
        has_genres = np.zeros(n + 1, dtype=bool) if units is None else units.any(axis=1)
        return cls(
            self_information=_padded(information),
            popularity_percentile=_padded(percentile),
            genre_units=units,
            has_genres=np.asarray(has_genres, dtype=np.float32),
            n_items=n,
        )


def _padded(values: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    return np.append(values, 0.0).astype(np.float32)


def _genre_units(view: ModelView, n: int) -> npt.NDArray[np.float32] | None:
    if not view.genre_masks:
        return None
    vectors = np.zeros((n + 1, len(view.genre_masks)), dtype=np.float32)
    for column, mask in enumerate(view.genre_masks.values()):
        vectors[:-1, column] = mask
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


class VersionFiles:
    """One worker's figures for one model version: memory-mapped arrays in one folder."""

    def __init__(
        self, folder: Path, n_items: int | None = None, labels: dict[str, str] | None = None
    ):
        self.folder = folder
        creating = n_items is not None
        if creating:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "labels.json").write_text(json.dumps({**(labels or {}), "n_items": n_items}))
        meta = json.loads((folder / "labels.json").read_text())
        self.labels: dict[str, str] = {k: v for k, v in meta.items() if k != "n_items"}
        self.n_items = int(meta["n_items"])
        mode = "w+" if creating else "r"
        shapes: dict[str, tuple[tuple[int, ...], type]] = {
            "buckets": ((MINUTES, FIELDS), np.float64),
            "stamps": ((MINUTES,), np.int64),  # the minute each bucket holds
            "totals": ((FIELDS,), np.float64),
            "last_served": ((self.n_items,), np.int64),  # minute each item was last served
            "samples": ((MINUTES, SAMPLES_PER_MINUTE, SAMPLE_ITEMS), np.int32),
            "sample_users": ((MINUTES, SAMPLES_PER_MINUTE), np.int64),
            "sample_counts": ((MINUTES,), np.int64),
            "reservoir": ((RESERVOIR, SAMPLE_ITEMS), np.int32),
            "reservoir_users": ((RESERVOIR,), np.int64),
        }
        self.arrays: dict[str, np.memmap[Any, Any]] = {
            name: np.lib.format.open_memmap(
                folder / f"{name}.npy", mode=mode, dtype=dtype, shape=shape if creating else None
            )
            for name, (shape, dtype) in shapes.items()
        }
        if creating:
            self.arrays["samples"][:] = -1
            self.arrays["reservoir"][:] = -1


class ServedQuality:
    """Adds batches of served lists to this worker's files; reads every worker's.

    Args:
        folder: The server's shared folder (every worker of a server names the same one).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._features: dict[int, tuple[ModelView, ItemFeatures]] = {}
        self._files: dict[tuple[str, str], VersionFiles] = {}
        self._rng = np.random.default_rng()

    # ---- writing (the worker's event loop) -------------------------------------------------------

    def add(self, batch: Sequence[ServedColumns]) -> None:
        """Count ``batch`` (lists in the order they were served)."""
        for lists in batch:
            self._add_group(lists)

    def _add_group(self, lists: ServedColumns) -> None:
        view, info = lists.view, lists.info
        features = self._item_features(view)
        key = (info.name, "none" if info.version is None else str(info.version))
        files = self._files.get(key)
        if files is None:
            folder = self.folder / f"{os.getpid()}-{uuid.uuid4().hex[:12]}-{info.name}"
            files = VersionFiles(folder, features.n_items, {"model": key[0], "version": key[1]})
            self._files[key] = files
        padded, users = lists.items, lists.users
        rows = _per_list(lists, features)
        minutes = lists.at.astype(np.int64) // 60
        arrays = files.arrays
        arrays["totals"][:] += rows.sum(axis=0)
        for minute in np.unique(minutes):
            self._add_minute(files, int(minute), rows[minutes == minute],
                             padded[minutes == minute], users[minutes == minute])  # fmt: skip
        served = padded < features.n_items
        arrays["last_served"][padded[served]] = np.broadcast_to(minutes[:, None], padded.shape)[
            served
        ]
        self._sample(files, padded, users)

    def _item_features(self, view: ModelView) -> ItemFeatures:
        cached = self._features.get(id(view))
        if cached is None or cached[0] is not view:
            if len(self._features) > 4:  # views of models no longer served
                self._features.clear()
            cached = self._features[id(view)] = (view, ItemFeatures.of(view))
        return cached[1]

    @staticmethod
    def _add_minute(
        files: VersionFiles, minute: int, rows: FloatArray, padded: IntArray, users: IntArray
    ) -> None:
        arrays = files.arrays
        slot = minute % MINUTES
        if arrays["stamps"][slot] != minute:  # the slot held a day-old minute: start it over
            arrays["buckets"][slot] = 0.0
            arrays["sample_counts"][slot] = 0
            arrays["stamps"][slot] = minute
        arrays["buckets"][slot] += rows.sum(axis=0)
        have = int(arrays["sample_counts"][slot])
        take = min(SAMPLES_PER_MINUTE - have, len(rows))
        if take > 0:
            arrays["samples"][slot, have : have + take] = _sample_items(padded[:take], files)
            arrays["sample_users"][slot, have : have + take] = users[:take]
            arrays["sample_counts"][slot] = have + take

    def _sample(self, files: VersionFiles, padded: IntArray, users: IntArray) -> None:
        """Algorithm R over every list since the start (the reservoir of personalization)."""
        arrays = files.arrays
        seen_before = int(arrays["totals"][LISTS]) - len(padded)
        index = seen_before + np.arange(len(padded))
        slot = np.where(index < RESERVOIR, index, self._rng.integers(0, index + 1))
        keep = slot < RESERVOIR
        arrays["reservoir"][slot[keep]] = _sample_items(padded[keep], files)
        arrays["reservoir_users"][slot[keep]] = users[keep]


def _per_list(lists: ServedColumns, features: ItemFeatures) -> FloatArray:
    """A bucket row of each list."""
    padded, lengths = lists.items, lists.lengths
    rows = np.zeros((len(lists), FIELDS), dtype=np.float64)
    nonempty = lengths > 0
    count = np.maximum(lengths, 1)
    rows[:, LISTS] = 1.0
    rows[:, ITEMS] = lengths
    rows[:, SHORT] = lengths < lists.asked
    rows[:, EMPTY] = ~nonempty
    rows[:, NOVELTY] = features.self_information[padded].sum(axis=1) / count
    rows[:, POPULARITY] = features.popularity_percentile[padded].sum(axis=1) / count
    if features.genre_units is not None:
        diverse = lengths >= 2
        # The sum of the pairwise similarities without the k x k matrix: |sum u|^2 - sum |u|^2.
        # Summed a list position at a time: gathering lists x width x genres at once and
        # reducing its middle axis took a third of the monitor's time (py-spy, under load).
        total = np.zeros((len(padded), features.genre_units.shape[1]), dtype=np.float32)
        for position in padded.T:
            total += features.genre_units[position]
        pairs = (total * total).sum(axis=1) - features.has_genres[padded].sum(axis=1)
        mean = pairs / np.maximum(lengths * (lengths - 1), 1)
        rows[:, DIVERSITY] = np.where(diverse, 1.0 - mean, 0.0)
        rows[:, DIVERSE_LISTS] = diverse
    known = lists.strategies < len(STRATEGIES)
    rows[np.flatnonzero(known), FIRST_STRATEGY + lists.strategies[known].astype(np.int64)] = 1.0
    return rows


def _sample_items(padded: IntArray, files: VersionFiles) -> npt.NDArray[np.int32]:
    head = padded[:, :SAMPLE_ITEMS]
    out = np.full((len(padded), SAMPLE_ITEMS), -1, dtype=np.int32)
    out[:, : head.shape[1]] = np.where(head < files.n_items, head, -1)
    return out


# ---- reading (any worker) ---------------------------------------------------------------------


@dataclass(frozen=True)
class WindowFigures:
    """The figures of one model version over one window."""

    lists: int
    items: int
    empty_lists: int
    short_lists: int
    distinct_movies: int
    coverage: float
    novelty_bits: float | None
    popularity_percentile: float | None
    diversity: float | None
    personalization: float | None
    personalization_sample: int
    strategy_counts: dict[str, int]


@dataclass(frozen=True)
class VersionFigures:
    model: str
    version: str
    catalogue_size: int
    windows: dict[str, WindowFigures]


@dataclass(frozen=True)
class SeriesPoint:
    """The lists served in one interval of the history and their mean figures."""

    at: int  # the interval's start, epoch seconds
    lists: int
    novelty_bits: float | None
    popularity_percentile: float | None
    diversity: float | None
    strategy_counts: dict[str, int]


def read_figures(folder: Path, now: float | None = None) -> list[VersionFigures]:
    """Every model version's figures, all the server's workers added up."""
    minute = int((time.time() if now is None else now) // 60)
    figures = []
    for (model, version), parts in _versions(folder).items():
        windows = {name: _window(parts, minute, span) for name, span in WINDOWS.items()}
        figures.append(VersionFigures(model, version, parts[0].n_items, windows))
    return figures


def read_series(
    folder: Path, hours: int, step_minutes: int, now: float | None = None
) -> dict[tuple[str, str], list[SeriesPoint]]:
    """Each version's lists and mean figures per ``step_minutes`` over the last ``hours``."""
    minute = int((time.time() if now is None else now) // 60)
    span = min(hours * 60, MINUTES)
    first = minute - span + 1
    series = {}
    for key, parts in _versions(folder).items():
        sums = np.zeros((span, FIELDS))
        for part in parts:
            stamps = np.asarray(part.arrays["stamps"])
            live = (stamps >= first) & (stamps <= minute)
            np.add.at(sums, stamps[live] - first, np.asarray(part.arrays["buckets"])[live])
        steps = sums[: span - span % step_minutes].reshape(-1, step_minutes, FIELDS).sum(axis=1)
        series[key] = [_point((first + i * step_minutes) * 60, row) for i, row in enumerate(steps)]
    return series


def _point(at: int, row: FloatArray) -> SeriesPoint:
    scored = row[LISTS] - row[EMPTY]
    return SeriesPoint(
        at=at,
        lists=int(row[LISTS]),
        novelty_bits=_mean(row[NOVELTY], scored),
        popularity_percentile=_mean(row[POPULARITY], scored),
        diversity=_mean(row[DIVERSITY], row[DIVERSE_LISTS]),
        strategy_counts={name: int(row[STRATEGY_COLUMN[name]]) for name in STRATEGIES},
    )


def _versions(folder: Path) -> dict[tuple[str, str], list[VersionFiles]]:
    versions: dict[tuple[str, str], list[VersionFiles]] = {}
    for labels in sorted(folder.glob("*/labels.json")):
        try:
            part = VersionFiles(labels.parent)
        except (OSError, ValueError):  # a worker creating its folder right now
            continue
        versions.setdefault((part.labels["model"], part.labels["version"]), []).append(part)
    return versions


def _window(parts: list[VersionFiles], minute: int, span: int | None) -> WindowFigures:
    sums = np.zeros(FIELDS)
    last_served = np.zeros(parts[0].n_items, dtype=np.int64)
    samples, users = [], []
    for part in parts:
        arrays = {name: np.asarray(array) for name, array in part.arrays.items()}
        if span is None:
            sums += arrays["totals"]
            samples.append(arrays["reservoir"])
            users.append(arrays["reservoir_users"])
            last_served = np.maximum(last_served, arrays["last_served"][: len(last_served)])
            continue
        live = (arrays["stamps"] > minute - span) & (arrays["stamps"] <= minute)
        sums += arrays["buckets"][live].sum(axis=0)
        counts = arrays["sample_counts"][live]
        kept = np.arange(SAMPLES_PER_MINUTE)[None, :] < counts[:, None]
        samples.append(arrays["samples"][live][kept])
        users.append(arrays["sample_users"][live][kept])
        recent = np.where(arrays["last_served"] > minute - span, arrays["last_served"], 0)
        last_served = np.maximum(last_served, recent[: len(last_served)])
    distinct = int(np.count_nonzero(last_served))
    scored = sums[LISTS] - sums[EMPTY]
    personalization, sampled = _personalization(
        np.concatenate(samples), np.concatenate(users), parts[0].n_items
    )
    return WindowFigures(
        lists=int(sums[LISTS]),
        items=int(sums[ITEMS]),
        empty_lists=int(sums[EMPTY]),
        short_lists=int(sums[SHORT]),
        distinct_movies=distinct,
        coverage=distinct / max(parts[0].n_items, 1),
        novelty_bits=_mean(sums[NOVELTY], scored),
        popularity_percentile=_mean(sums[POPULARITY], scored),
        diversity=_mean(sums[DIVERSITY], sums[DIVERSE_LISTS]),
        personalization=personalization,
        personalization_sample=sampled,
        strategy_counts={name: int(sums[STRATEGY_COLUMN[name]]) for name in STRATEGIES},
    )


def _personalization(
    samples: npt.NDArray[np.int32], users: IntArray, n_items: int
) -> tuple[float | None, int]:
    """1 - the mean cosine similarity of the sampled lists of different users."""
    filled = (samples >= 0).any(axis=1)
    samples, users = samples[filled], users[filled]
    if len(samples) > MAX_PAIRWISE:
        keep = np.linspace(0, len(samples) - 1, MAX_PAIRWISE).astype(np.int64)  # even in time
        samples, users = samples[keep], users[keep]
    rows, columns = np.nonzero(samples >= 0)
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float64), (rows, samples[rows, columns])),
        shape=(len(samples), n_items),
    )
    matrix.data[:] = 1.0  # a movie listed twice counts once
    sizes = np.sqrt(np.asarray(matrix.sum(axis=1)).ravel())
    overlap = (matrix @ matrix.T).toarray()
    cosine = overlap / np.maximum(np.outer(sizes, sizes), 1e-12)
    # Pairs of different users only (anonymous visitors, user -1, are all different).
    different = (users[:, None] != users[None, :]) | (users[:, None] < 0)
    pairs = np.triu(different, k=1)
    if not pairs.any():
        return None, len(samples)
    return float(1.0 - cosine[pairs].mean()), len(samples)


def _mean(total: float, count: float) -> float | None:
    return float(total / count) if count > 0 else None
