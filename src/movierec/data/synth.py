"""Synthetic ratings at any scale, shaped like MovieLens, for load, scale and unit tests.

The generator is fully vectorized numpy and deterministic for a seed. It produces:

* **Power-law activity.** Per-user rating counts are lognormal above a floor (``min_ratings``,
  20 as in MovieLens), so most users rate a few dozen movies and a few rate thousands; item
  popularity is lognormal too, so a short head of blockbusters and a long tail of obscure films.
* **Distinct pairs, exact count.** Exactly ``n_ratings`` rows, no (user, item) pair twice. Items are
  drawn by popularity with an alias table; duplicates are rejected and the shortfall redrawn in
  vectorized rounds; users who need most of the catalogue get an exact weighted sample without
  replacement (Efraimidis-Spirakis keys) instead.
* **Learnable ratings.** A global mean, user and item biases (popular films are rated higher),
  a low-rank user x item term whose item side depends on the genres, and noise; rounded to half
  stars by some users and to whole stars by the others, as in MovieLens (mean about 3.5).
* **Plausible time.** Ratings fall in 1996..2024; each user is active over a window whose length
  grows with their activity; no item is rated before the first of January of its release year.

ML-20M's shape (138,493 users, 27,278 items, 20 million ratings) takes about 7 s and under 1 GB
of peak memory on a 2-core machine.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from movierec.data.genres import GENRE_COUNTS, GENRES
from movierec.data.schema import as_canonical_movies
from movierec.data.sources import LoadedData, ParseReport

# Bump when the generated data changes for the same parameters: it is part of the checksum.
GENERATOR_VERSION = 1

RATING_SCALE = (0.5, 5.0)
# ML-20M movie counts as sampling weights: Drama and Comedy dominate, Film-Noir and IMAX are rare.
_GENRE_WEIGHTS = np.array(list(GENRE_COUNTS.values()), dtype=np.float64)
_GENRES_PER_MOVIE_P = np.array([0.45, 0.35, 0.20])  # 1, 2 or 3 genres

FIRST_YEAR, LAST_YEAR = 1920, 2024
_YEAR_AGE_SCALE = 18.0  # release ages decay exponentially: most films are recent
RATINGS_START = 820_454_400  # 1996-01-01T00:00:00Z
RATINGS_END = 1_735_689_599  # 2024-12-31T23:59:59Z
_DAY = 86_400
_RELEASE_LAG = 180 * _DAY  # an item's first ratings come within months of January 1 of its year

_USER_SIGMA = 1.4  # lognormal spread of user activity (ML-20M: median 68, mean 144, max ~9k)
_MAX_USER_SHARE = 0.35
_ITEM_SIGMA = 2.2
_WINDOW_MEDIAN = 60 * _DAY  # median activity window of a user with min_ratings ratings
_WINDOW_SIGMA = 1.5

_GLOBAL_MEAN = 3.6
_USER_BIAS_SD = 0.45
_ITEM_BIAS_SD = 0.30
_POPULARITY_BIAS = 0.25  # item bias per standard deviation of log popularity
_INTERACTION_SD = 0.7
_HALF_STAR_USERS = 0.4  # share of users who use half stars; the others rate in whole stars

_MAX_REJECTION_ROUNDS = 8
_OVERSAMPLE = 1.25
_CHUNK = 1 << 21  # rows per block when computing ratings and timestamps (bounds temporaries)
_EXACT_BLOCK = 1 << 22  # cells (users x items) per block of the exact sampler


def generate(
    n_users: int,
    n_items: int,
    n_ratings: int,
    seed: int = 0,
    *,
    min_ratings: int = 20,
    rank: int = 8,
    noise: float = 0.5,
) -> LoadedData:
    """Generate a MovieLens-like data set with exactly ``n_ratings`` distinct (user, item) pairs.

    The result is a :class:`~movierec.data.sources.LoadedData` like any parsed source, so it
    goes through the same ingest path: ``name`` is ``synth-<users>x<items>x<ratings>-s<seed>``,
    ratings are sorted by (user_id, item_id) with ids from 1, ``movies`` lists every item (rated
    or not) as "Synthetic Movie <id>", ``users`` is None, ``rating_scale`` is (0.5, 5.0) and
    ``checksum`` is the SHA-256 of the generation parameters and the generator version.

    Args:
        n_users: Users, ids ``1..n_users``; every one gets at least ``min_ratings`` ratings.
        n_items: Movies, ids ``1..n_items``; the long tail may leave some unrated.
        n_ratings: Exact number of rating rows.
        seed: Seed of ``numpy.random.default_rng``; the same arguments give the same data.
        min_ratings: Floor of ratings per user (MovieLens uses 20).
        rank: Rank of the latent user x item term.
        noise: Standard deviation of the rating noise, in stars, before rounding.

    Raises:
        ValueError: A size is not positive, or the request is impossible: more ratings than
            ``n_users * n_items`` pairs, or fewer than ``n_users * min_ratings``.
    """
    _check_request(n_users, n_items, n_ratings, min_ratings=min_ratings, rank=rank, noise=noise)
    params = {
        "n_users": n_users,
        "n_items": n_items,
        "n_ratings": n_ratings,
        "seed": seed,
        "min_ratings": min_ratings,
        "rank": rank,
        "noise": noise,
        "version": GENERATOR_VERSION,
    }
    rng = np.random.default_rng(seed)
    counts = _user_counts(rng, n_users, n_items, n_ratings, min_ratings)
    popularity = rng.lognormal(0.0, _ITEM_SIGMA, n_items)
    keys = _sample_pairs(rng, counts, popularity / popularity.sum())
    genres_hot = _genres(rng, n_items)
    years = _release_years(rng, n_items)
    users, items = np.divmod(keys, n_items)
    del keys
    ratings = _ratings(
        rng,
        users,
        items,
        counts=counts,
        model=_item_model(rng, popularity, genres_hot, rank),
        years=years,
        rank=rank,
        noise=noise,
    )
    return LoadedData(
        name=f"synth-{n_users}x{n_items}x{n_ratings}-s{seed}",
        ratings=ratings,
        movies=_movies(genres_hot, years),
        users=None,
        rating_scale=RATING_SCALE,
        checksum=hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest(),
        report=ParseReport(rows_read=n_ratings, rows_accepted=n_ratings),
    )


def write_csv(data: LoadedData, directory: Path) -> tuple[Path, Path]:
    """Write ``ratings.csv`` and ``movies.csv`` in the MovieLens "latest" format.

    Titles get their year back ("Synthetic Movie 7 (1994)") and genres are ``|``-joined, so the
    files read like a real MovieLens archive; 20 million rows take a few seconds (pyarrow writer).

    Returns:
        The paths of ``ratings.csv`` and ``movies.csv``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ratings_path, movies_path = directory / "ratings.csv", directory / "movies.csv"
    frame = data.ratings
    # Half-star grid as text, so 4.0 reads "4.0" as in MovieLens rather than pyarrow's "4".
    stars = pa.DictionaryArray.from_arrays(
        pa.array(np.rint(frame["rating"].to_numpy() * 2).astype(np.int8) - 1),
        pa.array([f"{half / 2:.1f}" for half in range(1, 11)]),
    )
    table = pa.table(
        {
            "userId": frame["user_id"].to_numpy(),
            "movieId": frame["item_id"].to_numpy(),
            "rating": stars.cast(pa.string()),
            "timestamp": frame["timestamp"].to_numpy(),
        }
    )
    # pyarrow quotes header names whatever the quoting style, so the header is written by hand.
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    with ratings_path.open("wb") as out:
        out.write(b"userId,movieId,rating,timestamp\n")
        pa_csv.write_csv(table, out, write_options=options)
    movies = data.movies
    titles = [f"{t} ({y})" for t, y in zip(movies["title"], movies["year"], strict=True)]
    genres = ["|".join(g) if g else "(no genres listed)" for g in movies["genres"]]
    pd.DataFrame({"movieId": movies["item_id"], "title": titles, "genres": genres}).to_csv(
        movies_path, index=False
    )
    return ratings_path, movies_path


def _check_request(
    n_users: int, n_items: int, n_ratings: int, *, min_ratings: int, rank: int, noise: float
) -> None:
    if n_users < 1 or n_items < 1 or min_ratings < 1 or rank < 1:
        raise ValueError("n_users, n_items, min_ratings and rank must all be at least 1")
    if noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise}")
    if n_ratings > n_users * n_items:
        raise ValueError(
            f"n_ratings={n_ratings} exceeds the {n_users * n_items} distinct (user, item) pairs"
            f" of {n_users} users x {n_items} items"
        )
    if min_ratings > n_items:
        raise ValueError(
            f"min_ratings={min_ratings} exceeds n_items={n_items}: a user rates each item once"
        )
    if n_ratings < n_users * min_ratings:
        raise ValueError(
            f"n_ratings={n_ratings} is below n_users * min_ratings = {n_users * min_ratings};"
            " lower min_ratings or ask for more ratings"
        )


def _user_counts(
    rng: np.random.Generator, n_users: int, n_items: int, n_ratings: int, min_ratings: int
) -> np.ndarray:
    """Ratings per user: ``min_ratings`` plus a lognormal share of the rest, summing exactly."""
    # MovieLens' most active users rate about a third of the catalogue; the cap rises only when
    # the request is so dense that it could not be met otherwise.
    cap = min(n_items, max(int(_MAX_USER_SHARE * n_items), -(-n_ratings // n_users)))
    activity = rng.lognormal(0.0, _USER_SIGMA, n_users)
    return min_ratings + _water_fill(activity, n_ratings - n_users * min_ratings, cap - min_ratings)


def _water_fill(weights: np.ndarray, budget: int, cap: int) -> np.ndarray:
    """Integers proportional to ``weights``, each at most ``cap``, summing exactly to ``budget``.

    Shares above the cap are clipped and their excess spread over the others, repeatedly; the
    integer rounding hands the last units to the largest fractional parts (largest remainders).
    """
    quota = np.zeros(len(weights))
    free = np.ones(len(weights), dtype=bool)
    remaining = float(budget)
    while free.any():
        share = np.where(free, weights, 0.0) * (remaining / weights[free].sum())
        over = share > cap
        if not over.any():
            quota[free] = share[free]
            break
        quota[over] = cap
        free &= ~over
        remaining -= cap * int(over.sum())
    counts = np.floor(quota).astype(np.int64)
    fraction = np.where(counts < cap, quota - counts, -1.0)
    counts[np.argsort(-fraction, kind="stable")[: budget - int(counts.sum())]] += 1
    return counts


class _AliasTable:
    """Walker's alias method: O(1) weighted draws, four times faster than inverse-CDF search."""

    def __init__(self, p: np.ndarray) -> None:
        n = len(p)
        prob = (p * n).tolist()
        alias = list(range(n))
        small = [i for i, q in enumerate(prob) if q < 1.0]
        large = [i for i, q in enumerate(prob) if q >= 1.0]
        while small and large:
            s, g = small.pop(), large[-1]
            alias[s] = g
            prob[g] -= 1.0 - prob[s]
            if prob[g] < 1.0:
                small.append(large.pop())
        self._prob = np.array(prob, dtype=np.float32)
        self._alias = np.array(alias, dtype=np.int64)
        self.size = n

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        column = rng.integers(0, self.size, size, dtype=np.int64)
        keep = rng.random(size, dtype=np.float32) < self._prob[column]
        return np.where(keep, column, self._alias[column])


def _sample_pairs(rng: np.random.Generator, counts: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Distinct (user, item) pairs, ``counts[u]`` per user, items weighted by ``p``.

    Returns:
        Sorted pair keys ``user * n_items + item``.
    """
    n_users, n_items = len(counts), len(p)
    table = _AliasTable(p)
    first = np.repeat(np.arange(n_users, dtype=np.int64) * n_items, counts)
    first += table.draw(rng, len(first))
    first.sort()
    chunks = [_drop_repeats(first)]
    del first
    have = _per_user(chunks[0], n_users, n_items)
    starts = np.concatenate(([0], np.cumsum(have)[:-1]))  # every user has at least one pair
    covered = np.add.reduceat(p[chunks[0] % n_items], starts)
    for round_ in range(_MAX_REJECTION_ROUNDS + 1):
        need = counts - have
        active = np.flatnonzero(need)
        if len(active) == 0:
            break
        draws = np.ceil(need[active] * _OVERSAMPLE / np.maximum(1.0 - covered[active], 1e-12))
        draws = draws.astype(np.int64) + 2
        # Rejection wastes more draws than an exact sample costs when most of a user's
        # remaining mass is gone, and after the last round everyone left is sampled exactly.
        exact = draws > n_items if round_ < _MAX_REJECTION_ROUNDS else np.ones(len(active), bool)
        new = [
            _redraw(rng, table, chunks, users=active[~exact], draws=draws[~exact], need=need),
            _exact_sample(rng, chunks, active[exact], need, p),
        ]
        for block in new:
            if len(block):
                users, items = np.divmod(block, n_items)
                have += np.bincount(users, minlength=n_users)
                covered += np.bincount(users, weights=p[items], minlength=n_users)
                chunks.append(block)
    keys = np.concatenate(chunks)
    keys.sort()
    return keys


def _drop_repeats(sorted_keys: np.ndarray) -> np.ndarray:
    keep = np.empty(len(sorted_keys), dtype=bool)
    keep[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=keep[1:])
    return sorted_keys[keep]


def _per_user(sorted_keys: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
    bounds = np.searchsorted(sorted_keys, np.arange(n_users + 1, dtype=np.int64) * n_items)
    return np.diff(bounds)


def _taken(keys: np.ndarray, chunks: list[np.ndarray]) -> np.ndarray:
    """Which ``keys`` already appear in one of the sorted ``chunks``."""
    hit = np.zeros(len(keys), dtype=bool)
    for chunk in chunks:
        if len(chunk):
            pos = np.minimum(np.searchsorted(chunk, keys), len(chunk) - 1)
            hit |= chunk[pos] == keys
    return hit


def _redraw(
    rng: np.random.Generator,
    table: _AliasTable,
    chunks: list[np.ndarray],
    *,
    users: np.ndarray,
    draws: np.ndarray,
    need: np.ndarray,
) -> np.ndarray:
    """One rejection round: ``draws[j]`` fresh items for ``users[j]``, keeping ``need`` new ones.

    Draws stay in draw order, grouped by user, so keeping each user's first new distinct items
    is a sequential weighted sample without replacement.
    """
    n_items = table.size
    cand = np.repeat(users * n_items, draws) + table.draw(rng, int(draws.sum()))
    # Deduplicate first: the sorted unique keys make the look-ups into the chunks cache-friendly.
    distinct, first = np.unique(cand, return_index=True)
    first = first[~_taken(distinct, chunks)]
    first.sort()
    cand = cand[first]
    owner = cand // n_items
    rank = np.arange(len(cand)) - np.searchsorted(owner, owner)
    picked = cand[rank < need[owner]]
    picked.sort()
    return picked


def _exact_sample(
    rng: np.random.Generator,
    chunks: list[np.ndarray],
    users: np.ndarray,
    need: np.ndarray,
    p: np.ndarray,
) -> np.ndarray:
    """``need[u]`` more items for each of ``users`` by Efraimidis-Spirakis weighted keys.

    Each item gets the key ``log(U) / p``; the largest keys among the items a user has not
    rated yet form a weighted sample without replacement. Blocks of users bound the memory.
    """
    n_items = len(p)
    picked = []
    block = max(1, _EXACT_BLOCK // n_items)
    for start in range(0, len(users), block):
        rows = users[start : start + block]
        keys = np.log1p(-rng.random((len(rows), n_items))) / p
        for chunk in chunks:
            lo = np.searchsorted(chunk, rows * n_items)
            hi = np.searchsorted(chunk, (rows + 1) * n_items)
            which = np.repeat(np.arange(len(rows)), hi - lo)
            keys[which, chunk[_ranges(lo, hi)] % n_items] = -np.inf
        order = np.argsort(-keys, axis=1)
        take = np.arange(n_items) < need[rows][:, None]
        picked.append(rows[np.nonzero(take)[0]] * n_items + order[take])
    out = np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)
    out.sort()
    return out


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``concatenate([arange(a, b) for a, b in zip(lo, hi)])`` without the Python loop."""
    lengths = hi - lo
    offsets = np.repeat(lo - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return offsets + np.arange(int(lengths.sum()))


def _genres(rng: np.random.Generator, n_items: int) -> np.ndarray:
    """A boolean items x genres matrix: 1 to 3 distinct genres per item, by genre frequency."""
    how_many = rng.choice(len(_GENRES_PER_MOVIE_P), size=n_items, p=_GENRES_PER_MOVIE_P) + 1
    gumbel = np.log(_GENRE_WEIGHTS) - np.log(-np.log1p(-rng.random((n_items, len(GENRES)))))
    rank = np.argsort(np.argsort(-gumbel, axis=1), axis=1)
    return rank < how_many[:, None]


def _release_years(rng: np.random.Generator, n_items: int) -> np.ndarray:
    """Release years in FIRST_YEAR..LAST_YEAR, exponentially more recent (truncated exponential)."""
    span = LAST_YEAR - FIRST_YEAR + 1
    mass = 1.0 - np.exp(-span / _YEAR_AGE_SCALE)
    age = -_YEAR_AGE_SCALE * np.log1p(-rng.random(n_items) * mass)
    return LAST_YEAR - np.minimum(age.astype(np.int64), span - 1)


def _year_start(years: np.ndarray) -> np.ndarray:
    """Epoch seconds of January 1 of each year."""
    return (years - 1970).astype("datetime64[Y]").astype("datetime64[s]").astype(np.int64)


def _ratings(
    rng: np.random.Generator,
    users: np.ndarray,
    items: np.ndarray,
    *,
    counts: np.ndarray,
    model: tuple[np.ndarray, np.ndarray],
    years: np.ndarray,
    rank: int,
    noise: float,
) -> pd.DataFrame:
    """Rating and timestamp of every pair, in blocks; ``users``/``items`` become the id columns.

    ``model`` holds the item biases and factors; the user side is drawn here.
    """
    item_base, item_factors = model
    user_base, user_factors, half_stars = _user_model(rng, len(counts), rank)
    start, length = _activity_windows(rng, counts)
    release = _year_start(years)
    rating = np.empty(len(users), dtype=np.float32)
    timestamp = np.empty(len(users), dtype=np.int64)
    for lo in range(0, len(users), _CHUNK):
        u, i = users[lo : lo + _CHUNK], items[lo : lo + _CHUNK]
        score = np.einsum("ij,ij->i", user_factors[u], item_factors[i])
        score += user_base[u] + item_base[i]
        score += rng.standard_normal(len(u), dtype=np.float32) * np.float32(noise)
        rating[lo : lo + len(u)] = _round_stars(score, half_stars[u])
        seen = start[u] + (rng.random(len(u)) * length[u]).astype(np.int64)
        released = release[i] + (rng.random(len(u)) * _RELEASE_LAG).astype(np.int64)
        timestamp[lo : lo + len(u)] = np.minimum(np.maximum(seen, released), RATINGS_END)
    users += 1
    items += 1
    return pd.DataFrame(
        {"user_id": users, "item_id": items, "rating": rating, "timestamp": timestamp},
        copy=False,
    )


def _user_model(
    rng: np.random.Generator, n_users: int, rank: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base = (_GLOBAL_MEAN + rng.normal(0.0, _USER_BIAS_SD, n_users)).astype(np.float32)
    factors = rng.standard_normal((n_users, rank), dtype=np.float32)
    factors *= np.float32(_INTERACTION_SD / np.sqrt(rank))
    half_stars = rng.random(n_users) < _HALF_STAR_USERS
    return base, factors, half_stars


def _item_model(
    rng: np.random.Generator, popularity: np.ndarray, genres_hot: np.ndarray, rank: int
) -> tuple[np.ndarray, np.ndarray]:
    """Item biases that rise with popularity, and unit-variance factors half set by genre.

    The biases are centred on the popularity-weighted mean, the mean a rating sees, so that the
    mean rating stays near the global mean however skewed the popularity.
    """
    log_pop = np.log(popularity)
    z = (log_pop - log_pop.mean()) / max(float(log_pop.std()), 1e-12)
    base = _POPULARITY_BIAS * z + rng.normal(0.0, _ITEM_BIAS_SD, len(popularity))
    base -= np.average(base, weights=popularity)
    genre_axes = rng.standard_normal((genres_hot.shape[1], rank))
    by_genre = genres_hot @ genre_axes / np.sqrt(genres_hot.sum(axis=1, keepdims=True))
    factors = np.sqrt(0.5) * by_genre + np.sqrt(0.5) * rng.standard_normal(by_genre.shape)
    return base.astype(np.float32), factors.astype(np.float32)


def _activity_windows(
    rng: np.random.Generator, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's first active second and window length; heavy users stay active longer."""
    span = RATINGS_END - RATINGS_START
    length = rng.lognormal(np.log(_WINDOW_MEDIAN), _WINDOW_SIGMA, len(counts))
    length = np.minimum(length * np.sqrt(counts / counts.min()), span)
    start = RATINGS_START + rng.random(len(counts)) * (span - length)
    return start.astype(np.int64), length


def _round_stars(score: np.ndarray, half_stars: np.ndarray) -> np.ndarray:
    halves = np.clip(np.rint(score * 2) / 2, 0.5, 5.0)
    wholes = np.clip(np.rint(score), 1.0, 5.0)
    return np.where(half_stars, halves, wholes).astype(np.float32)


def _movies(genres_hot: np.ndarray, years: np.ndarray) -> pd.DataFrame:
    n_items = len(years)
    names = np.array(GENRES, dtype=object)
    item_ids = np.arange(1, n_items + 1, dtype=np.int64)
    frame = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": [f"Synthetic Movie {i}" for i in item_ids.tolist()],
            "year": pd.array(years, dtype="Int64"),
            "genres": [names[row].tolist() for row in genres_hot],
            "imdb_id": None,
            "tmdb_id": pd.array([None] * n_items, dtype="Int64"),
        }
    )
    return as_canonical_movies(frame)
