"""Posters: a movie's own ``<movie_id>.jpg`` from ``MOVIEREC_POSTERS_DIR``, else a drawn one.

The machine may be offline and the UI must not depend on a remote image service, so a movie
without a poster file gets an SVG drawn from what the catalog knows: its title, its year, and
two colours from its genres (the same movie always looks the same).
"""

from __future__ import annotations

import base64
import hashlib
import os
import textwrap
from functools import lru_cache
from html import escape
from pathlib import Path

POSTERS_DIR_ENV = "MOVIEREC_POSTERS_DIR"
GENRE_COLOURS = {
    "Action": "#c0392b",
    "Adventure": "#d35400",
    "Animation": "#f39c12",
    "Children": "#f1c40f",
    "Comedy": "#e67e22",
    "Crime": "#2c3e50",
    "Documentary": "#7f8c8d",
    "Drama": "#8e44ad",
    "Fantasy": "#6c5ce7",
    "Film-Noir": "#1e272e",
    "Horror": "#4a0e0e",
    "IMAX": "#0984e3",
    "Musical": "#e84393",
    "Mystery": "#34495e",
    "Romance": "#d63031",
    "Sci-Fi": "#00897b",
    "Thriller": "#2d3436",
    "War": "#556b2f",
    "Western": "#a0522d",
}
FALLBACK_COLOURS = ("#455a64", "#5d4037", "#37474f", "#4e342e", "#283593", "#1b5e20")
WIDTH, HEIGHT = 200, 300


def poster_src(movie_id: int, title: str, year: int | None, genres: tuple[str, ...]) -> str:
    """An ``<img src>`` for the movie: its poster file as a data URI, else a drawn SVG."""
    folder = os.environ.get(POSTERS_DIR_ENV)
    if folder:
        found = _poster_file(Path(folder), movie_id)
        if found is not None:
            return found
    return drawn_poster(movie_id, title, year, genres)


@lru_cache(maxsize=4096)
def _poster_file(folder: Path, movie_id: int) -> str | None:
    path = folder / f"{movie_id}.jpg"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


@lru_cache(maxsize=4096)
def drawn_poster(movie_id: int, title: str, year: int | None, genres: tuple[str, ...]) -> str:
    """An SVG poster as a data URI: a two-colour gradient of the genres, title and year."""
    top, bottom = _colours(movie_id, genres)
    lines = textwrap.wrap(title, width=16)[:5] or ["?"]
    first_y = HEIGHT / 2 - (len(lines) - 1) * 13
    text = "".join(
        f'<text x="{WIDTH / 2}" y="{first_y + 26 * i:.0f}" class="t">{escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}">'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="0.4" y2="1">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/>'
        f"</linearGradient><style>.t{{font:600 19px sans-serif;fill:#fff;text-anchor:middle}}"
        f".y{{font:400 15px sans-serif;fill:#ffffffcc;text-anchor:middle}}</style></defs>"
        f'<rect width="100%" height="100%" fill="url(#g)"/>'
        f'<rect x="10" y="10" width="{WIDTH - 20}" height="{HEIGHT - 20}" fill="none" '
        f'stroke="#ffffff55" stroke-width="1.5" rx="6"/>'
        f"{text}"
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 28}" class="y">{year or ""}</text></svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _colours(movie_id: int, genres: tuple[str, ...]) -> tuple[str, str]:
    known = [GENRE_COLOURS[g] for g in genres if g in GENRE_COLOURS]
    if len(known) >= 2:
        return known[0], known[1]
    # A stable choice per movie (not Python's salted hash): a movie keeps its colours.
    digest = hashlib.sha1(str(movie_id).encode()).digest()
    other = FALLBACK_COLOURS[digest[0] % len(FALLBACK_COLOURS)]
    return (known[0], other) if known else (other, "#111111")
