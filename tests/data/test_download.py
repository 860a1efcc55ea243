"""Downloads through a real HTTP server on 127.0.0.1: good, corrupt, cut short, missing, offline."""

from __future__ import annotations

import hashlib
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from movierec.config import Settings
from movierec.data.download import (
    Expected,
    download_file,
    file_digests,
    mismatch,
    read_sha256sums,
)
from movierec.data.sources import MovieLensVariant, load_movielens, locate_archive
from movierec.errors import ChecksumError, DataSourceError

pytestmark = pytest.mark.network

RATINGS = b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n2,1,3.5,964982224\n"
MOVIES = b"movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
LINKS = b"movieId,imdbId,tmdbId\n1,0114709,862\n"


@dataclass
class Served:
    """What the test server answers: path -> body; ``short`` paths announce more than they send."""

    files: dict[str, bytes] = field(default_factory=dict)
    short: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    served: Served

    def do_GET(self) -> None:
        self.served.requests.append(self.path)
        body = self.served.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        announced = len(body) + 1000 if self.path in self.served.short else len(body)
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *_: object) -> None:
        pass


@dataclass
class Server:
    url: str
    served: Served


@pytest.fixture
def server() -> Iterator[Server]:
    served = Served()
    handler = type("Handler", (_Handler,), {"served": served})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", served)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def archive(tmp_path: Path) -> bytes:
    path = tmp_path / "source.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("ml-test/ratings.csv", RATINGS)
        out.writestr("ml-test/movies.csv", MOVIES)
        out.writestr("ml-test/links.csv", LINKS)
    return path.read_bytes()


def variant_for(data: bytes) -> MovieLensVariant:
    return MovieLensVariant(
        name="ml-test",
        url="https://files.grouplens.org/datasets/movielens/ml-test.zip",
        size_bytes=len(data),
        md5=hashlib.md5(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        format="csv",
        rating_scale=(0.5, 5.0),
        description="two ratings",
    )


def settings_in(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "work", datasets_dir=tmp_path / "no-such-dir")


def leftovers(settings: Settings) -> list[str]:
    cache = settings.cache_dir
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_good_download_is_cached_and_used(server: Server, archive: bytes, tmp_path: Path) -> None:
    server.served.files["/ml-test.zip"] = archive
    settings = settings_in(tmp_path)
    data = load_movielens(variant_for(archive), settings, progress=True, base_url=server.url)
    assert len(data.ratings) == 2
    assert data.movies.loc[0, "imdb_id"] == "tt0114709"
    assert data.checksum == hashlib.sha256(archive).hexdigest()
    assert leftovers(settings) == ["ml-test.zip"]
    # The second time the cache answers; the server is not asked again.
    again = locate_archive(variant_for(archive), settings, progress=False, base_url=server.url)
    assert again == settings.cache_dir / "ml-test.zip"
    assert server.served.requests == ["/ml-test.zip"]


def test_cached_copy_of_the_wrong_size_is_fetched_again(
    server: Server, archive: bytes, tmp_path: Path
) -> None:
    server.served.files["/ml-test.zip"] = archive
    settings = settings_in(tmp_path)
    settings.cache_dir.mkdir(parents=True)
    (settings.cache_dir / "ml-test.zip").write_bytes(archive[:100])
    found = locate_archive(variant_for(archive), settings, progress=False, base_url=server.url)
    assert found.read_bytes() == archive


def test_bad_checksum_leaves_no_file(server: Server, archive: bytes, tmp_path: Path) -> None:
    server.served.files["/ml-test.zip"] = archive
    settings = settings_in(tmp_path)
    wrong = replace(variant_for(archive), sha256="0" * 64)
    with pytest.raises(ChecksumError, match=r"is corrupt .*SHA-256.*nothing was kept"):
        locate_archive(wrong, settings, progress=False, base_url=server.url)
    assert leftovers(settings) == []


def test_wrong_announced_size_is_refused_before_the_transfer(
    server: Server, archive: bytes, tmp_path: Path
) -> None:
    server.served.files["/ml-test.zip"] = archive
    settings = settings_in(tmp_path)
    bigger = replace(variant_for(archive), size_bytes=len(archive) + 1)
    with pytest.raises(ChecksumError, match="announces"):
        locate_archive(bigger, settings, progress=False, base_url=server.url)
    assert leftovers(settings) == []


def test_truncated_body_leaves_no_file(server: Server, archive: bytes, tmp_path: Path) -> None:
    server.served.files["/ml-test.zip"] = archive
    server.served.short.add("/ml-test.zip")
    settings = settings_in(tmp_path)
    unknown_size = replace(variant_for(archive), size_bytes=None)
    with pytest.raises(DataSourceError, match="cut short"):
        locate_archive(unknown_size, settings, progress=False, base_url=server.url)
    assert leftovers(settings) == []


def test_http_404_is_a_clear_error(server: Server, archive: bytes, tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    with pytest.raises(DataSourceError, match=r"cannot download .*/ml-test\.zip: HTTP 404"):
        locate_archive(variant_for(archive), settings, progress=False, base_url=server.url)
    assert leftovers(settings) == []


def test_unreachable_server_says_offline_and_names_the_datasets_dir(
    archive: bytes, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = settings_in(tmp_path)
    with pytest.raises(DataSourceError, match=r"offline.*MOVIEREC_DATASETS_DIR"):
        locate_archive(
            variant_for(archive), settings, progress=False, base_url=f"http://127.0.0.1:{port}"
        )
    assert leftovers(settings) == []


def test_unverified_download_without_checksums(
    server: Server, archive: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.served.files["/x.zip"] = archive
    dest = download_file(f"{server.url}/x.zip", tmp_path / "x.zip", Expected(), progress=False)
    assert dest.read_bytes() == archive
    assert "unverified" in caplog.text


def test_digests_and_sha256sums(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    digests = file_digests(path)
    assert digests.size == 3
    assert digests.md5 == hashlib.md5(b"abc").hexdigest()
    assert digests.sha256 == hashlib.sha256(b"abc").hexdigest()
    assert mismatch(digests, Expected(3, digests.md5, digests.sha256.upper())) is None
    assert mismatch(digests, Expected(size_bytes=4)) == "size 3 bytes, expected 4"
    assert "MD5" in (mismatch(digests, Expected(md5="0" * 32)) or "")
    path.write_bytes(b"abcd")  # a changed file is hashed again
    assert file_digests(path).size == 4
    (tmp_path / "SHA256SUMS").write_text(
        f"{digests.sha256}  a.bin\n{'1' * 64} *b.zip\nnot a line\n"
    )
    assert read_sha256sums(tmp_path) == {"a.bin": digests.sha256, "b.zip": "1" * 64}
    assert read_sha256sums(tmp_path / "none") == {}
