"""Where ratings come from: every MovieLens release, and any ratings CSV.

Three steps, each usable on its own:

1. :func:`locate_archive` finds a MovieLens archive (``datasets_dir``, then the download cache)
   or downloads it, and verifies it (:func:`verify_local_archive`).
2. :func:`read_movielens_archive` parses each release's own format into the canonical tables of
   :mod:`movierec.data.schema`; :func:`load_movielens` does 1 and 2 by name.
3. :func:`read_ratings_csv` reads a ratings CSV that is not MovieLens (any columns, string ids,
   any rating scale, ISO or epoch timestamps).

Parsing is vectorized (pyarrow's multi-threaded CSV reader, then array checks): tens of millions
of rows take seconds. Only when that fast path meets malformed lines does a slower, single-threaded
pass run to find their line numbers. Bad rows are skipped and reported (lenient, the default) or
raise :class:`ParseError` naming the first one (``strict``).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from pydantic import BaseModel, ConfigDict, field_validator

from movierec.config import Settings
from movierec.data.download import (
    Expected,
    download_file,
    file_digests,
    mismatch,
    read_sha256sums,
)
from movierec.data.schema import as_canonical_movies, as_canonical_ratings, split_title_year
from movierec.errors import ChecksumError, ConfigError, DataSourceError, ParseError

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_REJECTED_SAMPLES",
    "ML100K_FOLDS",
    "VARIANTS",
    "CsvSpec",
    "LoadedData",
    "MovieLensVariant",
    "MoviesCsvSpec",
    "ParseReport",
    "RejectedRow",
    "get_variant",
    "load_movielens",
    "locate_archive",
    "read_ml100k_folds",
    "read_movielens_archive",
    "read_ratings_csv",
    "stable_id",
    "verify_local_archive",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens"
MAX_REJECTED_SAMPLES = 1000
NO_GENRES = "(no genres listed)"

ArchiveFormat = Literal["csv", "dat", "100k"]

# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MovieLensVariant:
    """One MovieLens release as GroupLens publishes it.

    Attributes:
        name: The release name, also the archive's stem (``ml-100k``).
        url: The official download URL.
        size_bytes: Size of the official archive; None where it changes or is unknown.
        md5: MD5 of the official archive (GroupLens publishes ``<name>.zip.md5``), or None.
        sha256: SHA-256 of the official archive, or None where no trustworthy value is known.
        format: ``csv`` (ratings.csv, movies.csv, links.csv), ``dat`` (``::``-separated
            ratings.dat and movies.dat) or ``100k`` (u.data, u.item, u.genre).
        rating_scale: Lowest and highest rating the release allows.
        description: One line for listings.
        member_sha256: Official SHA-256 of files inside the archive, as (path in the archive,
            hash) pairs: a rebuilt archive holding the same files verifies by them.
    """

    name: str
    url: str
    size_bytes: int | None
    md5: str | None
    sha256: str | None
    format: ArchiveFormat
    rating_scale: tuple[float, float]
    description: str
    member_sha256: tuple[tuple[str, str], ...] = ()

    @property
    def filename(self) -> str:
        """The archive's file name (``ml-100k.zip``)."""
        return f"{self.name}.zip"

    def url_at(self, base_url: str) -> str:
        """The archive's URL under another base (a mirror, or a test server)."""
        return f"{base_url.rstrip('/')}/{self.filename}"

    @property
    def expected(self) -> Expected:
        """The official archive's size and checksums."""
        return Expected(size_bytes=self.size_bytes, md5=self.md5, sha256=self.sha256)

    @property
    def has_checksum(self) -> bool:
        """Whether anything published lets an archive of this release be verified."""
        return bool(self.md5 or self.sha256 or self.member_sha256)


def _official_url(name: str) -> str:
    return f"{DEFAULT_BASE_URL}/{name}.zip"


# Sources of the values below (checked 2025):
# - sizes and SHA-256 of ml-latest-small, ml-100k, ml-1m, ml-20m, ml-25m: TensorFlow Datasets'
#   url_checksums/movielens.txt (downloaded from GroupLens);
# - MD5s: GroupLens' <name>.zip.md5 files, as quoted by several independent projects;
# - ml-10m size: two independent scripts that check it; ml-32m size: two projects that pin it;
# - member-file SHA-256s: values several parties published for the files inside the official
#   archives (see ../shared/datasets/README.md).
# Not confirmed, so left None: the MD5 of ml-latest-small, the SHA-256 of ml-10m and ml-32m
# (one unconfirmed third-party value for ml-32m was not used). ml-latest is regenerated by
# GroupLens from time to time: it has no fixed size or checksum.
_REGISTRY = (
    MovieLensVariant(
        name="ml-latest-small",
        url=_official_url("ml-latest-small"),
        size_bytes=978_202,
        md5=None,
        sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        format="csv",
        rating_scale=(0.5, 5.0),
        description="100,836 ratings by 610 users on 9,742 movies (2018 snapshot of ml-latest)",
        member_sha256=(
            (
                "ml-latest-small/ratings.csv",
                "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
            ),
            (
                "ml-latest-small/movies.csv",
                "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
            ),
            (
                "ml-latest-small/links.csv",
                "97ad18e4e56a09363c65676b6cb3482ce3e2cea2372a24620c1599c843325f31",
            ),
        ),
    ),
    MovieLensVariant(
        name="ml-latest",
        url=_official_url("ml-latest"),
        size_bytes=None,
        md5=None,
        sha256=None,
        format="csv",
        rating_scale=(0.5, 5.0),
        description="all current MovieLens ratings (over 33M); changes over time",
    ),
    MovieLensVariant(
        name="ml-100k",
        url=_official_url("ml-100k"),
        size_bytes=4_924_029,
        md5="0e33842e24a9c977be4e0107933c0723",
        sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        format="100k",
        rating_scale=(1.0, 5.0),
        description="100,000 ratings by 943 users on 1,682 movies (1998), with official folds",
        member_sha256=(
            ("ml-100k/u.data", "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
            ("ml-100k/u.item", "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701"),
        ),
    ),
    MovieLensVariant(
        name="ml-1m",
        url=_official_url("ml-1m"),
        size_bytes=5_917_549,
        md5="c4d9eecfca2ab87c1945afe126590906",
        sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        format="dat",
        rating_scale=(1.0, 5.0),
        description="1,000,209 ratings by 6,040 users on 3,900 movies (2003)",
    ),
    MovieLensVariant(
        name="ml-10m",
        url=_official_url("ml-10m"),
        size_bytes=65_566_137,
        md5="ce571fd55effeba0271552578f2648bd",
        sha256=None,
        format="dat",
        rating_scale=(0.5, 5.0),
        description="10,000,054 ratings by 71,567 users on 10,681 movies (2009)",
    ),
    MovieLensVariant(
        name="ml-20m",
        url=_official_url("ml-20m"),
        size_bytes=198_702_078,
        md5="cd245b17a1ae2cc31bb14903e1204af3",
        sha256="96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
        format="csv",
        rating_scale=(0.5, 5.0),
        description="20,000,263 ratings by 138,493 users on 27,278 movies (2015)",
    ),
    MovieLensVariant(
        name="ml-25m",
        url=_official_url("ml-25m"),
        size_bytes=261_978_986,
        md5="6b51fb2759a8657d3bfcbfc42b592ada",
        sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
        format="csv",
        rating_scale=(0.5, 5.0),
        description="25,000,095 ratings by 162,541 users on 62,423 movies (2019)",
    ),
    MovieLensVariant(
        name="ml-32m",
        url=_official_url("ml-32m"),
        size_bytes=238_950_008,
        md5="d472be332d4daa821edc399621853b57",
        sha256=None,
        format="csv",
        rating_scale=(0.5, 5.0),
        description="32,000,204 ratings by 200,948 users on 87,585 movies (2023)",
    ),
)

VARIANTS: MappingProxyType[str, MovieLensVariant] = MappingProxyType(
    {variant.name: variant for variant in _REGISTRY}
)


def get_variant(name: str) -> MovieLensVariant:
    """The registered MovieLens release called ``name``.

    Raises:
        ConfigError: No release has that name (the message lists the known ones).
    """
    try:
        return VARIANTS[name]
    except KeyError:
        known = ", ".join(VARIANTS)
        raise ConfigError(f"unknown MovieLens dataset {name!r}; known: {known}") from None


# ---------------------------------------------------------------------------------------------
# Finding and verifying an archive
# ---------------------------------------------------------------------------------------------


def locate_archive(
    variant: MovieLensVariant,
    settings: Settings,
    progress: bool = True,
    *,
    base_url: str = DEFAULT_BASE_URL,
) -> Path:
    """The path of a verified archive of ``variant``, downloading it if no copy is at hand.

    Looks in ``settings.datasets_dir`` first (verified by :func:`verify_local_archive`), then
    in ``settings.cache_dir`` (verified when it was downloaded), and otherwise downloads
    ``<base_url>/<name>.zip`` into the cache.

    Raises:
        ChecksumError: A local copy or the download fails verification.
        DataSourceError: The download fails (offline, HTTP error, cut short).
    """
    if settings.datasets_dir is not None:
        local = settings.datasets_dir / variant.filename
        if local.is_file():
            if settings.verify_checksums:
                verify_local_archive(local, variant)
            else:
                logger.warning("checksum verification is off: using %s unverified", local)
            return local
    cached = settings.cache_dir / variant.filename
    if cached.is_file() and _cached_copy_intact(cached, variant):
        return cached
    return download_file(
        variant.url_at(base_url),
        cached,
        variant.expected,
        progress=progress,
        verify_checksums=settings.verify_checksums,
    )


def _cached_copy_intact(cached: Path, variant: MovieLensVariant) -> bool:
    # The cache only ever receives verified downloads, so a cheap size check catches the one
    # thing that can still go wrong (a file damaged on disk) without rehashing every run.
    if variant.size_bytes is None or cached.stat().st_size == variant.size_bytes:
        return True
    logger.warning("%s has the wrong size: downloading it again", cached)
    cached.unlink()
    return False


def verify_local_archive(path: Path, variant: MovieLensVariant) -> str:
    """Check a user's copy of an archive; never deletes it.

    Accepted when (a) the archive's checksum is the official one, or (b) a ``SHA256SUMS``
    file beside it lists it with a matching hash, or (c) every official member-file SHA-256
    of the release matches (rebuilt archives holding the original files). A release with no
    published checksum at all (``ml-latest``) is accepted with a warning.

    Returns:
        How it was verified, for logs: ``official checksum``, ``SHA256SUMS``,
        ``member checksums`` or ``unverified``.

    Raises:
        ChecksumError: None of the above holds.
        DataSourceError: The archive is not a readable zip.
    """
    digests = file_digests(path)
    if variant.expected.has_checksum and mismatch(digests, variant.expected) is None:
        return "official checksum"
    listed = read_sha256sums(path.parent).get(path.name)
    if listed is not None and listed == digests.sha256:
        return "SHA256SUMS"
    if variant.member_sha256 and _members_match(path, variant.member_sha256):
        return "member checksums"
    if not variant.has_checksum and listed is None:
        logger.warning("%s has no published checksum: %s is used unverified", variant.name, path)
        return "unverified"
    raise ChecksumError(
        f"{path} does not match the official {variant.name} archive (SHA-256 {digests.sha256}); "
        "the file was left in place: replace it, list its hash in a SHA256SUMS file beside it, "
        "or set MOVIEREC_VERIFY_CHECKSUMS=false"
    )


def _members_match(path: Path, member_sha256: tuple[tuple[str, str], ...]) -> bool:
    with _Archive(path) as archive:
        return all(archive.sha256(member) == digest for member, digest in member_sha256)


class _Archive:
    """An open zip whose files are found by name inside its single top folder.

    The top folder's name varies (``ml-10m.zip`` holds ``ml-10M100K/``), so members are looked
    up by file name, not by path. Every read error names the archive and the member.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataSourceError(f"{path} is not a readable zip archive ({exc})") from exc

    def __enter__(self) -> _Archive:
        return self

    def __exit__(self, *_: object) -> None:
        self._zip.close()

    def find(self, filename: str) -> str:
        """The path inside the archive of ``filename`` (at the top or one folder down)."""
        for name in self._zip.namelist():
            if name.rsplit("/", 1)[-1] == filename and name.count("/") <= 1:
                return name
        raise DataSourceError(f"{self.path} lacks the member file {filename}")

    def read(self, filename: str) -> bytes:
        """The bytes of ``filename``."""
        member = self.find(filename)
        with self._reading(member):
            return self._zip.read(member)

    def sha256(self, member: str) -> str | None:
        """SHA-256 of the file at path ``member``, or None when the archive lacks it."""
        if member not in self._zip.namelist():
            return None
        digest = hashlib.sha256()
        with self._reading(member), self._zip.open(member) as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    @contextmanager
    def _reading(self, member: str) -> Iterator[None]:
        # A damaged zip fails in many ways (bad CRC, bad deflate stream, early EOF): one error.
        try:
            yield
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise DataSourceError(
                f"{self.path}: cannot read member {member}, the archive is corrupt "
                f"or truncated ({exc})"
            ) from exc


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectedRow:
    """A skipped input line: its 1-based line number in its file and why it was skipped."""

    line: int
    reason: str


@dataclass
class ParseReport:
    """What parsing the ratings did.

    ``rows_accepted == rows_read - rows_rejected - duplicates_dropped``, the rows returned.
    ``rejected`` holds the first :data:`MAX_REJECTED_SAMPLES` bad rows in line order;
    ``notes`` holds everything else worth telling (defaults used, bad movie lines).
    """

    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    duplicates_dropped: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        text = (
            f"{self.rows_accepted:,} ratings accepted of {self.rows_read:,} read; "
            f"{self.rows_rejected:,} rejected, {self.duplicates_dropped:,} duplicates dropped"
        )
        if self.rejected:
            first = self.rejected[0]
            text += f" (first rejected: line {first.line}: {first.reason})"
        return text


@dataclass(frozen=True, eq=False)
class LoadedData:
    """A parsed data set: the canonical tables and how they were obtained.

    Attributes:
        name: The data set's name (the MovieLens release, or the CSV's stem).
        ratings: Canonical ratings (see :mod:`movierec.data.schema`).
        movies: Canonical movies, one row for every rated item at least.
        users: ``user_id``, ``name`` for sources that name their users; None otherwise.
        rating_scale: Lowest and highest possible rating.
        checksum: SHA-256 of the archive or input file.
        report: Rows read, rejected and dropped.
    """

    name: str
    ratings: pd.DataFrame
    movies: pd.DataFrame
    users: pd.DataFrame | None
    rating_scale: tuple[float, float]
    checksum: str
    report: ParseReport


# ---------------------------------------------------------------------------------------------
# MovieLens
# ---------------------------------------------------------------------------------------------


def load_movielens(
    name: str | MovieLensVariant,
    settings: Settings,
    *,
    strict: bool = False,
    progress: bool = True,
    base_url: str = DEFAULT_BASE_URL,
) -> LoadedData:
    """Locate (or download) and verify a MovieLens archive, then parse it.

    Args:
        name: A registered release name, or a variant (e.g. a mirror's own build).
        settings: Where to look for and cache archives; whether to verify them.
        strict: Raise on the first bad line instead of skipping it.
        progress: Show a progress bar while downloading.
        base_url: Where releases are downloaded from.
    """
    variant = get_variant(name) if isinstance(name, str) else name
    archive = locate_archive(variant, settings, progress, base_url=base_url)
    return read_movielens_archive(archive, variant, strict=strict)


def read_movielens_archive(
    archive: Path, variant: MovieLensVariant, *, strict: bool = False
) -> LoadedData:
    """Parse an archive in ``variant``'s format into the canonical tables (no verification).

    Raises:
        DataSourceError: The archive is corrupt or lacks a file its format needs.
        ParseError: A bad line in strict mode, or no valid rating at all.
    """
    readers = {"csv": _read_csv_release, "dat": _read_dat_release, "100k": _read_100k_release}
    with _Archive(archive) as opened:
        parsed, movies = readers[variant.format](opened, variant, strict)
    movies, note = _cover_rated_items(movies, parsed.ratings["item_id"], None)
    if note:
        parsed.report.notes.append(note)
    return LoadedData(
        name=variant.name,
        ratings=parsed.ratings,
        movies=movies,
        users=None,
        rating_scale=variant.rating_scale,
        checksum=file_digests(archive).sha256,
        report=parsed.report,
    )


_ML_RATING_NAMES = ("user_id", "item_id", "rating", "timestamp")


def _read_csv_release(
    archive: _Archive, variant: MovieLensVariant, strict: bool
) -> tuple[_ParsedRatings, pd.DataFrame]:
    layout = _Layout(delimiter=",", column_names=_ML_RATING_NAMES, header=True)
    parsed = _parse_ratings(
        archive.read("ratings.csv"),
        layout,
        _ML_RATING_FIELDS,
        _Rules(scale=variant.rating_scale),
        label="ratings.csv",
        strict=strict,
    )
    rows = _MovieRows("movies.csv", strict)
    reader = csv.reader(io.StringIO(_decode(archive.read("movies.csv"))))
    next(reader, None)
    for record in reader:
        if not record:
            continue
        if len(record) != 3:
            rows.reject(reader.line_num, f"wrong number of fields ({len(record)}, expected 3)")
            continue
        rows.add(reader.line_num, record[0], record[1], _split_genres(record[2]))
    movies = _with_links(rows.frame(), archive.read("links.csv"), rows)
    parsed.report.notes.extend(rows.notes())
    return parsed, movies


def _read_dat_release(
    archive: _Archive, variant: MovieLensVariant, strict: bool
) -> tuple[_ParsedRatings, pd.DataFrame]:
    # ``::`` is two bytes; pyarrow wants one. Ratings lines hold only digits and dots, so a tab
    # cannot clash with data, and the C reader stays in charge of 10M+ rows.
    ratings_bytes = archive.read("ratings.dat").replace(b"::", b"\t")
    parsed = _parse_ratings(
        ratings_bytes,
        _Layout(delimiter="\t", column_names=_ML_RATING_NAMES, header=False),
        _ML_RATING_FIELDS,
        _Rules(scale=variant.rating_scale),
        label="ratings.dat",
        strict=strict,
    )
    rows = _MovieRows("movies.dat", strict)
    for number, line in _lines(archive.read("movies.dat")):
        fields = line.split("::")
        if len(fields) != 3:
            rows.reject(number, f"wrong number of fields ({len(fields)}, expected 3)")
            continue
        rows.add(number, fields[0], fields[1], _split_genres(fields[2]))
    parsed.report.notes.extend(rows.notes())
    return parsed, rows.frame()


def _read_100k_release(
    archive: _Archive, variant: MovieLensVariant, strict: bool
) -> tuple[_ParsedRatings, pd.DataFrame]:
    parsed = _read_100k_ratings(archive, "u.data", variant.rating_scale, strict)
    genre_names = [line.split("|")[0] for _, line in _lines(archive.read("u.genre"))]
    rows = _MovieRows("u.item", strict)
    expected = 5 + len(genre_names)
    for number, line in _lines(archive.read("u.item")):
        fields = line.split("|")
        if len(fields) != expected:
            rows.reject(number, f"wrong number of fields ({len(fields)}, expected {expected})")
            continue
        flags = fields[5:]
        # "unknown" is ml-100k's way of listing no genre, like ml-latest's "(no genres listed)".
        genres = [g for g, flag in zip(genre_names, flags, strict=True) if flag == "1"]
        rows.add(number, fields[0], fields[1], [g for g in genres if g != "unknown"])
    parsed.report.notes.extend(rows.notes())
    return parsed, rows.frame()


def _read_100k_ratings(
    archive: _Archive, filename: str, scale: tuple[float, float], strict: bool
) -> _ParsedRatings:
    return _parse_ratings(
        archive.read(filename),
        _Layout(delimiter="\t", column_names=_ML_RATING_NAMES, header=False),
        _ML_RATING_FIELDS,
        _Rules(scale=scale),
        label=filename,
        strict=strict,
    )


ML100K_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


def read_ml100k_folds(archive: Path) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """The official ml-100k train/test folds: ``{"u1": (base, test), ..., "ub": (...)}``.

    u1..u5 are the five disjoint 80/20 splits for cross-validation; ua and ub hold out exactly
    10 ratings per user. Each frame is a canonical ratings table; the files are official, so
    any bad line raises.
    """
    scale = VARIANTS["ml-100k"].rating_scale
    folds: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    with _Archive(archive) as opened:
        for fold in ML100K_FOLDS:
            base, test = (
                _read_100k_ratings(opened, f"{fold}.{part}", scale, strict=True).ratings
                for part in ("base", "test")
            )
            folds[fold] = (base, test)
    return folds


def _with_links(movies: pd.DataFrame, links_bytes: bytes, rows: _MovieRows) -> pd.DataFrame:
    """``movies`` with ``imdb_id`` ("tt" + 7 digits) and ``tmdb_id`` from links.csv."""
    imdb: dict[int, str] = {}
    tmdb: dict[int, int] = {}
    reader = csv.reader(io.StringIO(_decode(links_bytes)))
    next(reader, None)
    for record in reader:
        if len(record) != 3 or not record[0].strip().isdigit():
            rows.note_links_problem(reader.line_num)
            continue
        item = int(record[0])
        if record[1].strip().isdigit():
            imdb[item] = "tt" + record[1].strip().zfill(7)
        if record[2].strip().isdigit():
            tmdb[item] = int(record[2])
    out = movies.copy()
    out["imdb_id"] = out["item_id"].map(imdb)
    out["tmdb_id"] = out["item_id"].map(tmdb)
    return as_canonical_movies(out)


def _decode(data: bytes) -> str:
    # Old releases are Latin-1, newer ones UTF-8; bytes that happen to be valid UTF-8 but
    # were meant as Latin-1 practically never occur in titles.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _lines(data: bytes) -> Iterator[tuple[int, str]]:
    """Non-blank lines of a text member with their 1-based numbers."""
    for number, line in enumerate(_decode(data).splitlines(), start=1):
        if line.strip():
            yield number, line


def _split_genres(text: str, separator: str = "|") -> list[str]:
    text = text.strip()
    if not text or text == NO_GENRES:
        return []
    return [genre.strip() for genre in text.split(separator) if genre.strip()]


class _MovieRows:
    """Collects movie rows, skipping (or, strict, raising on) bad ones with their line numbers.

    Movie files are at most ~100k lines, so a plain loop is fast enough and keeps exact
    line numbers even with quoted titles.
    """

    def __init__(self, label: str, strict: bool, ids: Callable[[str], int | None] | None = None):
        self.label, self.strict = label, strict
        self._ids = ids or _integer_id
        self._rows: dict[int, tuple[str, int | None, list[str]]] = {}
        self._bad: list[RejectedRow] = []
        self._bad_links: list[int] = []

    def add(
        self, line: int, raw_id: str, raw_title: str, genres: list[str], year: int | None = None
    ) -> None:
        item = self._ids(raw_id)
        if item is None:
            self.reject(line, f"bad movie id {raw_id.strip()!r}")
            return
        if item in self._rows:
            self.reject(line, f"movie id {item} repeats an earlier line")
            return
        title, parsed_year = split_title_year(raw_title)
        if not title:
            self.reject(line, "empty title")
            return
        self._rows[item] = (title, year if year is not None else parsed_year, genres)

    def reject(self, line: int, reason: str) -> None:
        if self.strict:
            raise ParseError(f"{self.label}, line {line}: {reason}")
        self._bad.append(RejectedRow(line, reason))

    def note_links_problem(self, line: int) -> None:
        # Links only enrich movies; a bad one loses an IMDb link, never a movie.
        self._bad_links.append(line)

    def frame(self) -> pd.DataFrame:
        items = list(self._rows)
        return as_canonical_movies(
            pd.DataFrame(
                {
                    "item_id": np.array(items, dtype=np.int64),
                    "title": [self._rows[i][0] for i in items],
                    "year": pd.array([self._rows[i][1] for i in items], dtype="Int64"),
                    "genres": [self._rows[i][2] for i in items],
                }
            )
        )

    def notes(self) -> list[str]:
        notes = []
        if self._bad:
            first = self._bad[0]
            notes.append(
                f"{self.label}: skipped {len(self._bad)} bad line(s); "
                f"first: line {first.line}: {first.reason}"
            )
        if self._bad_links:
            notes.append(
                f"links.csv: ignored {len(self._bad_links)} bad line(s); "
                f"first: line {self._bad_links[0]}"
            )
        return notes


def _integer_id(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


def _cover_rated_items(
    movies: pd.DataFrame, rated: pd.Series, names: pd.Series | None
) -> tuple[pd.DataFrame, str | None]:
    """``movies`` plus a placeholder row for every rated item it lacks.

    Consumers may assume every rated item has a catalog entry; a placeholder ("Item 42", or
    the item's name where the source gave one) keeps that true and is reported.
    """
    missing = np.setdiff1d(rated.unique(), movies["item_id"].to_numpy())
    if len(missing) == 0:
        return movies, None
    known = names if names is not None else pd.Series(dtype=object)
    titles = [known.get(item) or f"Item {item}" for item in missing.tolist()]
    split = [split_title_year(title) for title in titles]
    extra = pd.DataFrame(
        {
            "item_id": missing.astype(np.int64),
            "title": [title for title, _ in split],
            "year": pd.array([year for _, year in split], dtype="Int64"),
            "genres": [[] for _ in split],
        }
    )
    combined = as_canonical_movies(
        pd.concat([movies, as_canonical_movies(extra)], ignore_index=True)
    )
    note = None
    if len(movies):
        note = f"{len(missing)} rated item(s) missing from the movies file got placeholder titles"
    return combined, note


# ---------------------------------------------------------------------------------------------
# Ratings: the vectorized parser shared by every source
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """How a delimited ratings file is laid out.

    ``column_names`` None means the header line names the columns; otherwise they are given
    and ``header`` says whether a (positional, ignored) header line comes first.
    """

    delimiter: str
    column_names: tuple[str, ...] | None = None
    header: bool = True
    encoding: str = "utf-8"
    quoted: bool = False

    @property
    def first_data_line(self) -> int:
        return 2 if self.header else 1


@dataclass(frozen=True)
class _RatingFields:
    """The columns that hold each rating field (names as the layout names them)."""

    user: str
    item: str
    rating: str
    timestamp: str | None
    user_name: str | None = None
    item_name: str | None = None

    def wanted(self) -> list[str]:
        names = (self.user, self.item, self.rating, self.timestamp, self.user_name, self.item_name)
        return list(dict.fromkeys(n for n in names if n is not None))

    def fast_types(self) -> dict[str, pa.DataType]:
        """Column types for the fast path: numbers parsed by the reader itself."""
        types: dict[str, pa.DataType] = dict.fromkeys(self.wanted(), pa.string())
        types |= {self.user: pa.int64(), self.item: pa.int64(), self.rating: pa.float64()}
        if self.timestamp is not None:
            types[self.timestamp] = pa.int64()
        return types


_ML_RATING_FIELDS = _RatingFields("user_id", "item_id", "rating", "timestamp")


@dataclass(frozen=True)
class _Rules:
    """What counts as a valid rating row."""

    scale: tuple[float, float] | None
    hash_names: bool = False  # map non-integer ids to stable_id(name) instead of rejecting
    iso_dates: bool = False  # accept ISO-8601 timestamps besides epoch seconds
    default_timestamp: int | None = None  # for sources without a timestamp column


@dataclass
class _RawColumns:
    """The wanted columns as read, and the file line of each row."""

    table: pa.Table
    lines: np.ndarray
    bad_lines: int = 0
    bad_samples: list[RejectedRow] = field(default_factory=list)


@dataclass
class _ParsedRatings:
    ratings: pd.DataFrame
    report: ParseReport
    user_names: pd.Series | None = None  # user_id -> name
    item_names: pd.Series | None = None  # item_id -> name


def _read_columns(
    source: bytes | Path, layout: _Layout, fields: _RatingFields, label: str
) -> _RawColumns:
    """Read the wanted columns, fastest way first.

    1. Multi-threaded, numbers typed by the reader: succeeds on clean files.
    2. Multi-threaded, all text: succeeds when every line has the right number of fields.
    3. Single-threaded with a handler that records (and skips) lines with a wrong number of
       fields; only this pass knows their line numbers.
    """
    first = layout.first_data_line
    try:
        table = _arrow_read(source, layout, fields.fast_types())
        if not any(table.column(name).null_count for name in table.column_names):
            return _RawColumns(table, first + np.arange(table.num_rows))
    except pa.ArrowInvalid:
        pass
    text_types = dict.fromkeys(fields.wanted(), pa.string())
    try:
        table = _arrow_read(source, layout, text_types)
        return _RawColumns(table, first + np.arange(table.num_rows))
    except pa.ArrowInvalid:
        pass
    bad_numbers: list[int] = []
    samples: list[RejectedRow] = []

    def skip(row: pa_csv.InvalidRow) -> str:
        bad_numbers.append(row.number)
        if len(samples) < MAX_REJECTED_SAMPLES:
            reason = (
                f"wrong number of fields ({row.actual_columns}, expected {row.expected_columns})"
            )
            samples.append(RejectedRow(row.number, reason))
        return "skip"

    try:
        table = _arrow_read(source, layout, text_types, skip)
    except pa.ArrowInvalid as exc:
        raise ParseError(f"{label}: {exc}") from exc
    every_line = np.arange(first, first + table.num_rows + len(bad_numbers))
    lines = np.setdiff1d(every_line, np.asarray(bad_numbers, dtype=np.int64), assume_unique=True)
    return _RawColumns(table, lines, len(bad_numbers), samples)


def _arrow_read(
    source: bytes | Path,
    layout: _Layout,
    types: dict[str, pa.DataType],
    on_invalid_row: Callable[[pa_csv.InvalidRow], str] | None = None,
) -> pa.Table:
    read = pa_csv.ReadOptions(
        use_threads=on_invalid_row is None,  # line numbers are only known single-threaded
        column_names=list(layout.column_names) if layout.column_names else None,
        skip_rows=1 if layout.header and layout.column_names else 0,
        encoding=layout.encoding,
    )
    parse = pa_csv.ParseOptions(
        delimiter=layout.delimiter,
        quote_char='"' if layout.quoted else False,
        # Blank lines stay rows (of empty fields) so row i is always at a known line.
        ignore_empty_lines=False,
        invalid_row_handler=on_invalid_row,
    )
    convert = pa_csv.ConvertOptions(column_types=types, include_columns=list(types))
    data = pa.BufferReader(source) if isinstance(source, bytes) else str(source)
    return pa_csv.read_csv(data, read_options=read, parse_options=parse, convert_options=convert)


class _RowChecks:
    """Per-row validation failures, kept as boolean masks: no Python loop over rows.

    Reasons are only spelled out for the few rows that are reported.
    """

    def __init__(self, n_rows: int) -> None:
        self.failed = np.zeros(n_rows, dtype=bool)
        self._checks: list[tuple[np.ndarray, Callable[[int], str]]] = []

    def add(self, mask: np.ndarray, describe: Callable[[int], str]) -> None:
        if mask.any():
            self._checks.append((mask, describe))
            self.failed |= mask

    def reason(self, row: int) -> str:
        return next(describe(row) for mask, describe in self._checks if mask[row])


_INT_PATTERN = r"^-?\d{1,18}$"
_FLOAT_PATTERN = r"(?i)^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|nan|inf|infinity)$"


def _to_numpy(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _coerce(
    text: pa.ChunkedArray, target: pa.DataType, pattern: str
) -> tuple[np.ndarray, np.ndarray]:
    """Cast text to ``target``: values (0 where unparsable) and a mask of the parsed ones."""
    try:
        return _to_numpy(pc.cast(text, target)), np.ones(len(text), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsable = pc.match_substring_regex(text, pattern)
        values = pc.cast(pc.if_else(parsable, text, "0"), target)
        return _to_numpy(values), _to_numpy(parsable)


def _cell(table: pa.Table, column: str, row: int) -> str:
    return str(table.column(column)[row].as_py())


def _id_values(
    table: pa.Table, column: str, what: str, checks: _RowChecks, rules: _Rules
) -> tuple[np.ndarray, pd.Series | None]:
    """int64 ids; with ``rules.hash_names``, names become :func:`stable_id` ids.

    Returns the ids and, when names were hashed, a Series id -> name for them.
    """
    raw = table.column(column)
    if pa.types.is_integer(raw.type):
        return _to_numpy(raw), None
    text = pc.utf8_trim_whitespace(raw)
    empty = _to_numpy(pc.equal(text, ""))
    values, parsed = _coerce(text, pa.int64(), _INT_PATTERN)
    checks.add(empty, lambda _: f"empty {what} id")
    named = ~parsed & ~empty
    if not rules.hash_names:
        checks.add(named, lambda row: f"non-integer {what} id {_cell(table, column, row)!r}")
        return values, None
    if not named.any():
        return values, None
    codes, names = pd.factorize(pd.Series(text.filter(pa.array(named)).to_pylist(), dtype=object))
    hashed = np.fromiter((stable_id(name) for name in names), dtype=np.int64, count=len(names))
    values = values.copy()
    values[named] = hashed[codes]
    return values, pd.Series(list(names), index=hashed, dtype=object)


def _rating_values(table: pa.Table, column: str, checks: _RowChecks, rules: _Rules) -> np.ndarray:
    raw = table.column(column)
    if pa.types.is_string(raw.type):
        text = pc.utf8_trim_whitespace(raw)
        empty = _to_numpy(pc.equal(text, ""))
        values, parsed = _coerce(text, pa.float64(), _FLOAT_PATTERN)
        checks.add(empty, lambda _: "missing rating")
        checks.add(
            ~parsed & ~empty, lambda row: f"non-numeric rating {_cell(table, column, row)!r}"
        )
    else:
        values, parsed = _to_numpy(raw).astype(np.float64), np.ones(len(raw), dtype=bool)
    nan = np.isnan(values)
    checks.add(nan & parsed, lambda _: "rating is NaN")
    if rules.scale is not None:
        low, high = rules.scale
        outside = parsed & ~nan & ((values < low) | (values > high))
        checks.add(outside, lambda row: f"rating {values[row]:g} outside [{low:g}, {high:g}]")
    return values


def _timestamp_values(
    table: pa.Table, column: str, checks: _RowChecks, rules: _Rules
) -> np.ndarray:
    raw = table.column(column)
    if pa.types.is_integer(raw.type):
        return _to_numpy(raw)
    text = pc.utf8_trim_whitespace(raw)
    empty = _to_numpy(pc.equal(text, ""))
    values, parsed = _coerce(text, pa.int64(), _INT_PATTERN)
    values = values.copy()
    pending = ~parsed & ~empty
    if pending.any():
        # Fractional epoch seconds ("1112486027.5") keep their whole seconds.
        seconds, is_number = _coerce(text, pa.float64(), _FLOAT_PATTERN)
        usable = pending & is_number & np.isfinite(seconds)
        values[usable] = np.floor(seconds[usable]).astype(np.int64)
        pending &= ~usable
    if pending.any() and rules.iso_dates:
        dates = pd.to_datetime(
            pd.Series(text.filter(pa.array(pending)).to_pylist(), dtype=object),
            errors="coerce",
            utc=True,
            format="ISO8601",
        )
        ok = dates.notna().to_numpy()
        epoch = pd.Timestamp(0, tz="UTC")
        where = np.flatnonzero(pending)
        values[where[ok]] = ((dates[ok] - epoch) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
        pending[where[ok]] = False
    checks.add(empty, lambda _: "missing timestamp")
    checks.add(pending, lambda row: f"bad timestamp {_cell(table, column, row)!r}")
    return values


def _blank_rows(table: pa.Table) -> np.ndarray:
    """Rows whose every field is empty: blank lines, skipped without counting."""
    blank = np.ones(table.num_rows, dtype=bool)
    for name in table.column_names:
        column = table.column(name)
        if not pa.types.is_string(column.type):
            return np.zeros(table.num_rows, dtype=bool)
        blank &= _to_numpy(pc.equal(pc.utf8_trim_whitespace(column), ""))
    return blank


def _parse_ratings(
    source: bytes | Path,
    layout: _Layout,
    fields: _RatingFields,
    rules: _Rules,
    *,
    label: str,
    strict: bool,
) -> _ParsedRatings:
    """Read, validate and de-duplicate ratings; see :func:`read_ratings_csv` for the rules."""
    raw = _read_columns(source, layout, fields, label)
    table = raw.table
    checks = _RowChecks(table.num_rows)
    users, user_names = _id_values(table, fields.user, "user", checks, rules)
    items, item_names = _id_values(table, fields.item, "item", checks, rules)
    ratings = _rating_values(table, fields.rating, checks, rules)
    if fields.timestamp is not None:
        timestamps = _timestamp_values(table, fields.timestamp, checks, rules)
    else:
        timestamps = np.full(table.num_rows, rules.default_timestamp, dtype=np.int64)
    blank = _blank_rows(table)
    invalid = checks.failed & ~blank
    keep = ~checks.failed & ~blank

    report = ParseReport(
        rows_read=int(table.num_rows - blank.sum()) + raw.bad_lines,
        rows_rejected=int(invalid.sum()) + raw.bad_lines,
    )
    report.rejected = _rejected_samples(raw, checks, invalid)
    if report.rejected and strict:
        first = report.rejected[0]
        raise ParseError(
            f"{label}, line {first.line}: {first.reason} "
            f"({report.rows_rejected:,} bad line(s) in all)"
        )
    frame = pd.DataFrame(
        {
            "user_id": users[keep],
            "item_id": items[keep],
            "rating": ratings[keep].astype(np.float32),
            "timestamp": timestamps[keep],
        }
    )
    if frame.empty:
        first_problem = report.rejected[0] if report.rejected else None
        detail = f"; line {first_problem.line}: {first_problem.reason}" if first_problem else ""
        raise ParseError(f"{label}: no valid ratings ({report.rows_read:,} row(s) read{detail})")
    user_names = _named(table, fields.user_name, users, keep, user_names)
    item_names = _named(table, fields.item_name, items, keep, item_names)
    frame, report.duplicates_dropped = _drop_duplicates(frame)
    report.rows_accepted = len(frame)
    return _ParsedRatings(as_canonical_ratings(frame), report, user_names, item_names)


def _rejected_samples(
    raw: _RawColumns, checks: _RowChecks, invalid: np.ndarray
) -> list[RejectedRow]:
    rows = np.flatnonzero(invalid)[:MAX_REJECTED_SAMPLES]
    found = [RejectedRow(int(raw.lines[row]), checks.reason(row)) for row in rows]
    return sorted(found + raw.bad_samples, key=lambda r: r.line)[:MAX_REJECTED_SAMPLES]


def _named(
    table: pa.Table,
    column: str | None,
    ids: np.ndarray,
    keep: np.ndarray,
    hashed: pd.Series | None,
) -> pd.Series | None:
    """id -> name for the kept rows: the name column's last value, else the hashed name."""
    parts = []
    if column is not None:
        names = pd.Series(
            _to_numpy(pc.utf8_trim_whitespace(table.column(column))), index=ids, dtype=object
        )[keep]
        names = names[names != ""]
        parts.append(names[~names.index.duplicated(keep="last")])
    if hashed is not None:
        parts.append(hashed[hashed.index.isin(ids[keep])])
    if not parts:
        return None
    combined = pd.concat(parts)
    return combined[~combined.index.duplicated(keep="first")]


def _drop_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep one rating per (user, item): the newest; on equal timestamps, the later line.

    Only the repeated pairs are ordered by time, so a clean file costs one sort of the keys.
    """
    key = _pair_key(frame["user_id"].to_numpy(), frame["item_id"].to_numpy())
    # Sorting beats hashing every key (a hash table of tens of millions of random keys spends
    # its time on cache misses); the table of the few repeated keys fits in cache.
    ordered_keys = np.sort(key)
    repeated_keys = np.unique(ordered_keys[1:][ordered_keys[1:] == ordered_keys[:-1]])
    if len(repeated_keys) == 0:
        return frame, 0
    repeated = np.flatnonzero(pd.Series(key).isin(repeated_keys).to_numpy())
    timestamps = frame["timestamp"].to_numpy()
    # Sorted by pair, then time, then row (= line order): each pair's last row wins.
    order = repeated[np.lexsort((repeated, timestamps[repeated], key[repeated]))]
    pair = key[order]
    losers = order[:-1][pair[1:] == pair[:-1]]
    keep = np.ones(len(frame), dtype=bool)
    keep[losers] = False
    return frame[keep].reset_index(drop=True), len(losers)


def _pair_key(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """One int64 per (user, item) pair, equal exactly when the pairs are equal."""
    user_low, item_low = int(users.min()), int(items.min())
    user_span, item_span = int(users.max()) - user_low + 1, int(items.max()) - item_low + 1
    if user_span * item_span < 1 << 63:
        return (users - user_low) * item_span + (items - item_low)
    # Hashed ids span all of int64: number the distinct values first.
    user_codes, _ = pd.factorize(users)
    item_codes, item_values = pd.factorize(items)
    return user_codes.astype(np.int64) * len(item_values) + item_codes


# ---------------------------------------------------------------------------------------------
# Any ratings CSV
# ---------------------------------------------------------------------------------------------

_ID_MASK = (1 << 63) - 1


def stable_id(name: str) -> int:
    """A stable non-negative int64 id for a name (user or item names used as ids).

    blake2b (8 bytes) masked to 63 bits: the same name gives the same id in every run and on
    every machine, so repeated ingests of a file agree. Surrounding whitespace is ignored.
    """
    digest = hashlib.blake2b(name.strip().encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _ID_MASK


class CsvSpec(BaseModel):
    """Which columns of a ratings CSV hold what.

    Ids may be integers or names (names map to :func:`stable_id` and are kept as user names
    or movie titles). Without a timestamp column every row gets the file's modification time.
    Timestamps may be epoch seconds or ISO-8601 dates. Without a ``rating_scale`` the scale is
    the range of the data.
    """

    model_config = ConfigDict(frozen=True)

    user_col: str
    item_col: str
    rating_col: str
    timestamp_col: str | None = None
    rating_scale: tuple[float, float] | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    user_name_col: str | None = None
    item_name_col: str | None = None

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"the delimiter must be one character, not {value!r}")
        return value

    @field_validator("rating_scale")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError(f"rating_scale must be (low, high) with low < high, not {value}")
        return value

    def fields(self) -> _RatingFields:
        return _RatingFields(
            self.user_col,
            self.item_col,
            self.rating_col,
            self.timestamp_col,
            self.user_name_col,
            self.item_name_col,
        )


class MoviesCsvSpec(BaseModel):
    """Which columns of a movies CSV hold what; ``genres`` and ``year`` are used if present."""

    model_config = ConfigDict(frozen=True)

    item_col: str = "item_id"
    title_col: str = "title"
    genres_col: str = "genres"
    year_col: str = "year"
    genre_separator: str = "|"
    delimiter: str = ","
    encoding: str = "utf-8"


def read_ratings_csv(
    path: Path,
    spec: CsvSpec,
    *,
    strict: bool = False,
    movies_path: Path | None = None,
    movies_spec: MoviesCsvSpec | None = None,
) -> LoadedData:
    """Read a ratings CSV that is not MovieLens.

    Bad rows (wrong number of fields, empty id, non-numeric, NaN or out-of-scale rating, bad
    timestamp) are skipped and reported, or raise in strict mode. Repeated (user, item) rows
    keep the newest rating (on equal timestamps, the later line).

    Args:
        path: The ratings file (header line first).
        spec: Which columns hold what.
        strict: Raise :class:`ParseError` on the first bad line.
        movies_path: A movies CSV (item id, title, optional genres and year). Without one,
            titles come from ``spec.item_name_col`` or are ``"Item <id>"``.
        movies_spec: Its columns (defaults: item_id, title, genres, year).

    Returns:
        The data set named after the file; ``checksum`` covers the movies file too.

    Raises:
        ParseError: Columns missing (the message shows the file's header), a bad line in
            strict mode, or no valid row.
        DataSourceError: A file cannot be read.
    """
    header = _csv_header(path, spec.delimiter, spec.encoding)
    wanted = spec.fields().wanted()
    _require_columns(path, header, wanted)
    notes = []
    default_timestamp = None
    if spec.timestamp_col is None:
        default_timestamp = int(path.stat().st_mtime)
        notes.append("no timestamp column: every rating has the file's modification time")
    rules = _Rules(
        spec.rating_scale, hash_names=True, iso_dates=True, default_timestamp=default_timestamp
    )
    layout = _Layout(delimiter=spec.delimiter, encoding=spec.encoding, quoted=True)
    parsed = _parse_ratings(path, layout, spec.fields(), rules, label=path.name, strict=strict)
    report = parsed.report
    report.notes.extend(notes)
    ratings = parsed.ratings
    scale = spec.rating_scale
    if scale is None:
        scale = (float(ratings["rating"].min()), float(ratings["rating"].max()))
        report.notes.append(
            f"no rating scale given: using the data's range [{scale[0]:g}, {scale[1]:g}]"
        )
    checksum = file_digests(path).sha256
    if movies_path is not None:
        catalog, movie_notes = _read_movies_csv(movies_path, movies_spec or MoviesCsvSpec(), strict)
        report.notes.extend(movie_notes)
        checksum = hashlib.sha256(
            f"{checksum}\n{file_digests(movies_path).sha256}".encode()
        ).hexdigest()
    else:
        catalog = _empty_catalog()
    movies, note = _cover_rated_items(catalog, ratings["item_id"], parsed.item_names)
    if note:
        report.notes.append(note)
    users = None
    if parsed.user_names is not None:
        users = pd.DataFrame(
            {
                "user_id": parsed.user_names.index.to_numpy(np.int64),
                "name": parsed.user_names.to_numpy(),
            }
        )
    return LoadedData(
        name=path.stem,
        ratings=ratings,
        movies=movies,
        users=users,
        rating_scale=scale,
        checksum=checksum,
        report=report,
    )


def _python_encoding(encoding: str) -> str:
    # pyarrow skips a UTF-8 byte-order mark; Python's "utf-8" codec would keep it in the
    # first column's name.
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def _read_text(path: Path, encoding: str) -> str:
    try:
        return path.read_text(encoding=_python_encoding(encoding))
    except (OSError, UnicodeDecodeError, LookupError) as exc:
        raise DataSourceError(f"cannot read {path}: {exc}") from exc


def _csv_header(path: Path, delimiter: str, encoding: str) -> list[str]:
    try:
        with open(path, encoding=_python_encoding(encoding), newline="") as handle:
            return [name.strip() for name in next(csv.reader(handle, delimiter=delimiter), [])]
    except (OSError, UnicodeDecodeError, LookupError) as exc:
        raise DataSourceError(f"cannot read {path}: {exc}") from exc


def _require_columns(path: Path, header: list[str], wanted: list[str]) -> None:
    missing = [name for name in wanted if name not in header]
    if missing:
        raise ParseError(
            f"{path.name} lacks column(s) {', '.join(missing)}; its header is: {', '.join(header)}"
        )


def _empty_catalog() -> pd.DataFrame:
    return as_canonical_movies(pd.DataFrame({"item_id": np.empty(0, np.int64), "title": []}))


def _read_movies_csv(
    path: Path, spec: MoviesCsvSpec, strict: bool
) -> tuple[pd.DataFrame, list[str]]:
    header = _csv_header(path, spec.delimiter, spec.encoding)
    _require_columns(path, header, [spec.item_col, spec.title_col])
    position = {name: index for index, name in enumerate(header)}
    rows = _MovieRows(path.name, strict, ids=_id_or_name)
    reader = csv.reader(io.StringIO(_read_text(path, spec.encoding)), delimiter=spec.delimiter)
    next(reader, None)
    for record in reader:
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            rows.reject(
                reader.line_num,
                f"wrong number of fields ({len(record)}, expected {len(header)})",
            )
            continue
        genres = []
        if spec.genres_col in position:
            genres = _split_genres(record[position[spec.genres_col]], spec.genre_separator)
        year = None
        if spec.year_col in position:
            year = _integer_id(record[position[spec.year_col]])
        rows.add(
            reader.line_num,
            record[position[spec.item_col]],
            record[position[spec.title_col]],
            genres,
            year,
        )
    return rows.frame(), rows.notes()


def _id_or_name(text: str) -> int | None:
    """The id a ratings file would give this item: its integer, or its name's stable id."""
    text = text.strip()
    if not text:
        return None
    number = _integer_id(text)
    return number if number is not None else stable_id(text)
