"""Content-hashed parquet snapshots of the ratings store.

A snapshot is a folder ``<snapshots_dir>/<content_hash[:16]>/`` holding

* ``ratings.parquet``: user_id int64, item_id int64, rating float32, timestamp int64, sorted by
  user_id then item_id;
* ``movies.parquet``: item_id, title, year, genres (list<string>), imdb_id, tmdb_id;
* ``users.parquet``: user_id, name (only when the store names users);
* ``manifest.json``: content hash, creation time, dataset, rating scale, counts, time range.

The hash covers the canonical arrays and the catalog, not the parquet bytes (which vary with
writer versions), so the same data always gives the same folder, whichever database it came
from. Training records the hash, so a model run says exactly which data it saw.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from movierec import __version__
from movierec.data.schema import RATING_COLUMNS, RATING_DTYPES
from movierec.data.store import RatingsStore, StoreContents, newest_per_pair_order
from movierec.errors import StoreError

__all__ = [
    "Snapshot",
    "create_snapshot",
    "latest_snapshot",
    "load_snapshot",
    "read_snapshot_frames",
]

MANIFEST = "manifest.json"
RATINGS_FILE = "ratings.parquet"
MOVIES_FILE = "movies.parquet"
USERS_FILE = "users.parquet"
_FORMAT_VERSION = 1

_MOVIES_SCHEMA = pa.schema(
    [
        ("item_id", pa.int64()),
        ("title", pa.string()),
        ("year", pa.int64()),
        ("genres", pa.list_(pa.string())),
        ("imdb_id", pa.string()),
        ("tmdb_id", pa.int64()),
    ]
)
_USERS_SCHEMA = pa.schema([("user_id", pa.int64()), ("name", pa.string())])
_RATINGS_SCHEMA = pa.schema(
    [(c, pa.from_numpy_dtype(np.dtype(RATING_DTYPES[c]))) for c in RATING_COLUMNS]
)


@dataclass(frozen=True)
class Snapshot:
    """A snapshot folder and its manifest."""

    path: Path
    content_hash: str
    manifest: dict[str, Any]

    @property
    def ratings_path(self) -> Path:
        """The ratings parquet file."""
        return self.path / RATINGS_FILE

    @property
    def movies_path(self) -> Path:
        """The movies parquet file."""
        return self.path / MOVIES_FILE


def create_snapshot(store: RatingsStore, snapshots_dir: Path | str) -> Snapshot:
    """Export the store to a content-hashed snapshot, or reuse the one with the same content.

    The folder is written under a temporary name and renamed into place, so a reader never
    sees a half-written snapshot.

    Raises:
        StoreError: the store holds no ratings.
    """
    contents = store.read_all()
    if contents.ratings.empty:
        raise StoreError("the store holds no ratings: ingest a dataset before taking a snapshot")
    ratings = _sorted_ratings(contents.ratings)
    content_hash = _content_hash(contents, ratings)
    root = Path(snapshots_dir)
    final = root / content_hash[:16]
    if (final / MANIFEST).exists():
        return load_snapshot(final)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        manifest = _write_files(staging, contents, ratings, content_hash)
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / MANIFEST).exists():
                raise
            return load_snapshot(final)  # another process wrote the same snapshot first
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Snapshot(final, content_hash, manifest)


def load_snapshot(path: Path | str) -> Snapshot:
    """The snapshot in folder ``path``.

    Raises:
        StoreError: the folder has no readable manifest.
    """
    folder = Path(path)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{folder} is not a snapshot: {exc}") from exc
    return Snapshot(folder, manifest["content_hash"], manifest)


def latest_snapshot(snapshots_dir: Path | str) -> Snapshot | None:
    """The most recently created snapshot under ``snapshots_dir``, or None."""
    root = Path(snapshots_dir)
    if not root.is_dir():
        return None
    snapshots = [
        load_snapshot(folder)
        for folder in root.iterdir()
        if not folder.name.startswith(".") and (folder / MANIFEST).is_file()
    ]
    if not snapshots:
        return None
    return max(snapshots, key=lambda s: (s.manifest["created_at"], s.path.name))


def read_snapshot_frames(snapshot: Snapshot | Path | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The snapshot's (ratings, movies) with the canonical dtypes (genres as lists)."""
    snap = snapshot if isinstance(snapshot, Snapshot) else load_snapshot(snapshot)
    table = pq.read_table(snap.ratings_path)
    ratings = pd.DataFrame(
        {c: table.column(c).to_numpy().astype(RATING_DTYPES[c], copy=False) for c in RATING_COLUMNS}
    )
    return ratings, _movies_from_arrow(pq.read_table(snap.movies_path))


def _sorted_ratings(ratings: pd.DataFrame) -> dict[str, np.ndarray]:
    cols = {c: ratings[c].to_numpy(dtype=RATING_DTYPES[c]) for c in RATING_COLUMNS}
    # The store holds one rating per pair, so this is a pure sort; None (already sorted) is
    # the usual answer: SQLite scans its clustered key in order, a fresh PostgreSQL load too.
    order = newest_per_pair_order(cols["user_id"], cols["item_id"], cols["timestamp"])
    return cols if order is None else {c: v[order] for c, v in cols.items()}


def _content_hash(contents: StoreContents, ratings: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    header = {
        "format": _FORMAT_VERSION,
        "dataset": contents.dataset,
        "scale": contents.rating_scale,
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for column in RATING_COLUMNS:
        # Explicit little-endian so the hash does not depend on the machine.
        array = np.ascontiguousarray(
            ratings[column], dtype=np.dtype(RATING_DTYPES[column]).newbyteorder("<")
        )
        digest.update(column.encode())
        digest.update(array.view(np.uint8).data)
    digest.update(_records_json(contents.movies.sort_values("item_id")).encode())
    digest.update(_records_json(contents.users.sort_values("user_id")).encode())
    return digest.hexdigest()


def _records_json(frame: pd.DataFrame) -> str:
    """A canonical text form of a small frame: one JSON array per row, NA as null."""
    columns = [
        [
            None if _is_na(v) else (list(v) if isinstance(v, list | np.ndarray) else v)
            for v in frame[c]
        ]
        for c in frame.columns
    ]
    rows = zip(*columns, strict=True)
    return json.dumps([list(frame.columns), *rows], default=int)


def _is_na(value: Any) -> bool:
    return not isinstance(value, list | np.ndarray) and bool(pd.isna(value))


def _write_files(
    folder: Path, contents: StoreContents, ratings: dict[str, np.ndarray], content_hash: str
) -> dict[str, Any]:
    ratings_table = pa.Table.from_arrays(
        [pa.array(ratings[c]) for c in RATING_COLUMNS], schema=_RATINGS_SCHEMA
    )
    pq.write_table(ratings_table, folder / RATINGS_FILE)
    pq.write_table(_movies_to_arrow(contents.movies), folder / MOVIES_FILE)
    if not contents.users.empty:
        users = pa.Table.from_pandas(contents.users, schema=_USERS_SCHEMA, preserve_index=False)
        pq.write_table(users, folder / USERS_FILE)
    timestamps = ratings["timestamp"]
    manifest = {
        "content_hash": content_hash,
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "dataset": contents.dataset,
        "rating_scale": list(contents.rating_scale) if contents.rating_scale else None,
        "n_ratings": len(timestamps),
        "n_users": len(np.unique(ratings["user_id"])),
        "n_items": len(pd.unique(ratings["item_id"])),
        "n_movies": len(contents.movies),
        "min_timestamp": int(timestamps.min()),
        "max_timestamp": int(timestamps.max()),
        "files": [*sorted(p.name for p in folder.iterdir()), MANIFEST],
        "format_version": _FORMAT_VERSION,
        "movierec_version": __version__,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def _movies_to_arrow(movies: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pydict(
        {
            "item_id": movies["item_id"].to_numpy(dtype=np.int64),
            "title": movies["title"].tolist(),
            "year": pa.array(movies["year"], type=pa.int64(), from_pandas=True),
            "genres": [list(g) for g in movies["genres"]],
            "imdb_id": movies["imdb_id"].tolist(),
            "tmdb_id": pa.array(movies["tmdb_id"], type=pa.int64(), from_pandas=True),
        },
        schema=_MOVIES_SCHEMA,
    )


def _movies_from_arrow(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": table.column("item_id").to_numpy().astype(np.int64),
            "title": pd.Series(table.column("title").to_pylist(), dtype=object),
            "year": pd.array(table.column("year").to_pylist(), dtype="Int64"),
            "genres": pd.Series(table.column("genres").to_pylist(), dtype=object),
            "imdb_id": pd.Series(table.column("imdb_id").to_pylist(), dtype=object),
            "tmdb_id": pd.array(table.column("tmdb_id").to_pylist(), dtype="Int64"),
        }
    )
