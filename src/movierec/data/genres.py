"""MovieLens' genres, as plain constants: the API's schemas (and so the UI, which imports only
the client and the schemas) name them without importing the data layer's numerical modules."""

# Alphabetical, as MovieLens lists them, with their ML-20M movie counts.
GENRE_COUNTS = {
    "Action": 3520,
    "Adventure": 2329,
    "Animation": 1027,
    "Children": 1139,
    "Comedy": 8374,
    "Crime": 2939,
    "Documentary": 2471,
    "Drama": 13344,
    "Fantasy": 1412,
    "Film-Noir": 330,
    "Horror": 2611,
    "IMAX": 196,
    "Musical": 1036,
    "Mystery": 1514,
    "Romance": 4127,
    "Sci-Fi": 1743,
    "Thriller": 4178,
    "War": 1194,
    "Western": 676,
}
GENRES = tuple(GENRE_COUNTS)

FAVOURED_WEIGHT = 10.0
"""How much more often synthetic activity draws a favoured genre's movies
(:mod:`movierec.data.activity`)."""
