"""Where else a movie lives: MovieLens, IMDb and TMDb, where the data set has their ids."""

from __future__ import annotations

from movierec.serving.schemas import MovieDetails


def movie_urls(movie: MovieDetails) -> dict[str, str]:
    """Site name -> the movie's page there (only the sites the data set links).

    A catalog with IMDb or TMDb ids came from a MovieLens ``links.csv``, so its movie ids are
    MovieLens ids too; a plain ratings CSV has none of them and gets no links.
    """
    urls: dict[str, str] = {}
    if movie.imdb_id or movie.tmdb_id is not None:
        urls["MovieLens"] = f"https://movielens.org/movies/{movie.movie_id}"
    if movie.imdb_id:
        urls["IMDb"] = f"https://www.imdb.com/title/tt{movie.imdb_id.removeprefix('tt')}/"
    if movie.tmdb_id is not None:
        urls["TMDb"] = f"https://www.themoviedb.org/movie/{movie.tmdb_id}"
    return urls


def movie_links(movie: MovieDetails) -> list[str]:
    """The links as markdown."""
    return [f"[{site}]({url})" for site, url in movie_urls(movie).items()]
