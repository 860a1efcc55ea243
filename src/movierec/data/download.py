"""Fetch a file over HTTP(S) without ever leaving a bad copy behind, and hash files once.

A download streams into ``<file>.part``, is checked against the expected size and checksums,
and only then renamed into place: a crash, a cut connection or a wrong checksum leaves no
file that a later run could mistake for a good one.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from movierec.errors import ChecksumError, DataSourceError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
_CHUNK_BYTES = 1 << 20
DATASETS_DIR_ENV = "MOVIEREC_DATASETS_DIR"


@dataclass(frozen=True)
class FileDigests:
    """Size and checksums of one file, computed in a single pass."""

    size: int
    md5: str
    sha256: str


@dataclass(frozen=True)
class Expected:
    """What a file should be; None where nothing is published."""

    size_bytes: int | None = None
    md5: str | None = None
    sha256: str | None = None

    @property
    def has_checksum(self) -> bool:
        """Whether there is any checksum to compare against."""
        return bool(self.md5 or self.sha256)


def file_digests(path: Path) -> FileDigests:
    """Size, MD5 and SHA-256 of ``path``.

    Results are cached per (path, size, mtime) so verifying an archive and then recording its
    checksum reads a multi-hundred-megabyte file once, not twice.
    """
    stat = path.stat()
    return _digests(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _digests(path: str, size: int, mtime_ns: int) -> FileDigests:
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            md5.update(chunk)
            sha256.update(chunk)
    return FileDigests(size=size, md5=md5.hexdigest(), sha256=sha256.hexdigest())


def mismatch(digests: FileDigests, expected: Expected) -> str | None:
    """Describe how ``digests`` differ from ``expected`` in one phrase, or None if they agree."""
    if expected.size_bytes is not None and digests.size != expected.size_bytes:
        return f"size {digests.size:,} bytes, expected {expected.size_bytes:,}"
    if expected.sha256 and digests.sha256 != expected.sha256.lower():
        return f"SHA-256 {digests.sha256}, expected {expected.sha256}"
    if expected.md5 and digests.md5 != expected.md5.lower():
        return f"MD5 {digests.md5}, expected {expected.md5}"
    return None


def read_sha256sums(folder: Path) -> dict[str, str]:
    """The entries of ``folder/SHA256SUMS`` (``sha256sum`` output): file name -> lowercase hash.

    A missing file gives an empty mapping; lines that are not ``<64 hex> <name>`` are ignored.
    """
    sums_file = folder / "SHA256SUMS"
    if not sums_file.is_file():
        return {}
    entries: dict[str, str] = {}
    for line in sums_file.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            continue
        digest, name = parts
        # sha256sum marks binary mode with a leading '*' on the name.
        entries[name.removeprefix("*").strip()] = digest.lower()
    return entries


def download_file(
    url: str,
    dest: Path,
    expected: Expected,
    *,
    progress: bool = True,
    verify_checksums: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, checked before it is renamed.

    Args:
        url: What to fetch.
        dest: Final path; its folder is created if needed.
        expected: Size and checksums the file must have.
        progress: Show a progress bar on stderr.
        verify_checksums: Compare the checksums (the size announced by the server is
            always checked, so a cut connection is never accepted).
        timeout: Seconds to wait for the server on connect and on each read.

    Returns:
        ``dest``.

    Raises:
        DataSourceError: The server is unreachable (the message says how to use a local
            copy instead), answers with an error, or the body is cut short.
        ChecksumError: The file arrived whole but its size or checksum is wrong.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with _open_url(url, dest.name, timeout) as response:
            announced = _content_length(response)
            if verify_checksums:
                _check_announced_size(url, announced, expected.size_bytes)
            received = _stream_to(response, part, url, announced or expected.size_bytes, progress)
        if announced is not None and received != announced:
            raise DataSourceError(
                f"download of {url} was cut short: {received:,} of {announced:,} bytes arrived"
            )
        if verify_checksums:
            _check_download(part, url, expected)
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


def _check_announced_size(url: str, announced: int | None, size_bytes: int | None) -> None:
    # Refuse before transferring hundreds of megabytes that cannot be right.
    if announced is not None and size_bytes is not None and announced != size_bytes:
        raise ChecksumError(f"{url} announces {announced:,} bytes, expected {size_bytes:,}")


def _check_download(part: Path, url: str, expected: Expected) -> None:
    if not expected.has_checksum:
        logger.warning("%s has no published checksum: it was downloaded unverified", url)
        return
    problem = mismatch(file_digests(part), expected)
    if problem is not None:
        raise ChecksumError(f"download of {url} is corrupt ({problem}); nothing was kept")


@contextmanager
def _open_url(url: str, filename: str, timeout: float) -> Iterator[http.client.HTTPResponse]:
    request = urllib.request.Request(url, headers={"User-Agent": "movierec"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DataSourceError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        host = urlsplit(url).netloc or url
        raise DataSourceError(
            f"cannot reach {host} ({reason}): this machine appears to be offline; put "
            f"{filename} in a folder and set {DATASETS_DIR_ENV} to that folder to use a local copy"
        ) from exc
    with response:
        if response.status != 200:
            raise DataSourceError(f"cannot download {url}: HTTP {response.status}")
        yield response


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value is not None and value.strip().isdigit() else None


def _stream_to(
    response: http.client.HTTPResponse, part: Path, url: str, total: int | None, progress: bool
) -> int:
    received = 0
    with (
        open(part, "wb") as out,
        _progress_bar(part.name.removesuffix(".part"), total, progress) as advance,
    ):
        while True:
            try:
                chunk = response.read(_CHUNK_BYTES)
            except (http.client.IncompleteRead, OSError) as exc:
                raise DataSourceError(
                    f"download of {url} was cut short after {received:,} bytes: {exc}"
                ) from exc
            if not chunk:
                break
            out.write(chunk)
            received += len(chunk)
            advance(len(chunk))
    return received


@contextmanager
def _progress_bar(label: str, total: int | None, enabled: bool) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield _no_progress
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"downloading {label}", total=total)
        yield lambda n: bar.advance(task, n)


def _no_progress(_: int) -> None:
    return None
