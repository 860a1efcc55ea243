"""The two canonical tables every source produces and every consumer reads.

Ratings: one row per (user, item) event.

====================  ===========  ==============================================
column                dtype        meaning
====================  ===========  ==============================================
``user_id``           int64        external user id
``item_id``           int64        external movie id
``rating``            float32      the rating, on the source's own scale
``timestamp``         int64        seconds since the epoch (UTC)
====================  ===========  ==============================================

Movies: one row per movie.

====================  ===========  ==============================================
``item_id``           int64        external movie id (unique)
``title``             str          title without the trailing "(year)"
``year``              Int64        release year parsed from the title, or <NA>
``genres``            object       list[str]; [] when the source lists none
``imdb_id``           str | None   "tt0114709" form, where the source has links
``tmdb_id``           Int64        TMDB id, or <NA>
====================  ===========  ==============================================
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from movierec.errors import ParseError

RATING_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
RATING_DTYPES = {
    "user_id": np.int64,
    "item_id": np.int64,
    "rating": np.float32,
    "timestamp": np.int64,
}
MOVIE_COLUMNS = ("item_id", "title", "year", "genres", "imdb_id", "tmdb_id")

# "Toy Story (1995)", "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
# and the odd "Babylon 5 (1994-1998)": the last parenthesised 4-digit year wins.
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:[-–]\d{0,4})?\)\s*$")


def split_title_year(raw: str) -> tuple[str, int | None]:
    """Split ``"Heat (1995)"`` into ``("Heat", 1995)``; a title without a year keeps None."""
    text = raw.strip()
    match = _TITLE_YEAR.match(text)
    if match is None:
        return text, None
    return match["title"], int(match["year"])


def empty_ratings() -> pd.DataFrame:
    """A ratings table with no rows and the canonical dtypes."""
    return pd.DataFrame({c: np.empty(0, dtype=t) for c, t in RATING_DTYPES.items()})


def empty_movies() -> pd.DataFrame:
    """A movies table with no rows and the canonical dtypes."""
    return pd.DataFrame(
        {
            "item_id": np.empty(0, dtype=np.int64),
            "title": pd.Series([], dtype=object),
            "year": pd.Series([], dtype="Int64"),
            "genres": pd.Series([], dtype=object),
            "imdb_id": pd.Series([], dtype=object),
            "tmdb_id": pd.Series([], dtype="Int64"),
        }
    )


def as_canonical_ratings(frame: pd.DataFrame) -> pd.DataFrame:
    """Check ``frame`` has the rating columns and cast them to the canonical dtypes.

    Raises:
        ParseError: a column is missing or holds values that do not fit its dtype.
    """
    missing = [c for c in RATING_COLUMNS if c not in frame.columns]
    if missing:
        raise ParseError(f"ratings table lacks column(s) {', '.join(missing)}")
    try:
        out = frame.loc[:, list(RATING_COLUMNS)].astype(RATING_DTYPES)
    except (TypeError, ValueError) as exc:
        raise ParseError(f"ratings table has values of the wrong type: {exc}") from exc
    return out.reset_index(drop=True)


def as_canonical_movies(frame: pd.DataFrame) -> pd.DataFrame:
    """Check ``frame`` has the movie columns (missing optional ones filled) and fix dtypes."""
    if "item_id" not in frame.columns or "title" not in frame.columns:
        raise ParseError("movies table needs at least item_id and title")
    out = frame.copy()
    for column in ("year", "imdb_id", "tmdb_id"):
        if column not in out.columns:
            out[column] = None
    if "genres" not in out.columns:
        out["genres"] = [[] for _ in range(len(out))]
    out = out.loc[:, list(MOVIE_COLUMNS)]
    out["item_id"] = out["item_id"].astype(np.int64)
    out["title"] = out["title"].astype(object)
    out["year"] = out["year"].astype("Int64")
    out["tmdb_id"] = out["tmdb_id"].astype("Int64")
    out["imdb_id"] = out["imdb_id"].astype(object).where(out["imdb_id"].notna(), None)
    if out["item_id"].duplicated().any():
        dupes = out.loc[out["item_id"].duplicated(), "item_id"].head(5).tolist()
        raise ParseError(f"movies table repeats item_id(s) {dupes}")
    return out.reset_index(drop=True)
