"""Settings: one object, read from ``MOVIEREC_*`` environment variables and an optional ``.env``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATASET = "ml-latest-small"
# API keys a production service must never run with (placeholders of docs and compose files).
UNSAFE_API_KEYS = frozenset({"", "changeme", "change-me", "secret", "admin", "movierec", "dev"})
MIN_API_KEY_CHARS = 16
# Database passwords a production service must never connect with: empty, the images' and
# tutorials' defaults, and the development values of deploy/.env.example (all "dev-...").
UNSAFE_DB_PASSWORDS = frozenset(
    {"", "postgres", "password", "root", "mysql", "mariadb", "admin", "movierec", "changeme"}
)
MIN_DB_PASSWORD_CHARS = 12


class Settings(BaseSettings):
    """Where movierec keeps its data and which store it talks to.

    Attributes:
        data_dir: Working directory: the SQLite store, the download cache, snapshots.
        datasets_dir: A folder searched for MovieLens archives before any download
            (an offline machine points it at local copies).
        database_url: SQLAlchemy URL of the ratings store; defaults to a SQLite file
            in ``data_dir``. PostgreSQL in production (``postgresql+psycopg://...``), or
            MySQL/MariaDB (``mysql+pymysql://...``).
        dataset: The data set ``make run`` and commands without a name use.
        model: The model family commands use when they name none.
        verify_checksums: Refuse archives whose checksum is unknown or wrong.
        movielens_base_url: Where MovieLens archives are downloaded from (a mirror, or a
            local server in tests).
        mlflow_tracking_uri: MLflow tracking (and registry) URI; defaults to a SQLite file
            in ``data_dir`` with artifacts in ``data_dir/mlartifacts`` (no server).
        mlflow_experiment: The MLflow experiment training runs are logged to.
        registered_model: The registered model whose ``champion`` alias the API serves.
        primary_metric: The metric promotion compares (lower is better for ``rmse``/``mae``).
        promotion_margin: How much a new model must beat the champion by to replace it.
        environment: ``development`` or ``production``; production refuses to start without
            a strong API key, or with a database server URL whose password is missing, a
            default or short.
        api_key: The key admin routes (training, tuning, reload) require in ``X-API-Key``.
        max_k: The largest ``k`` a client may ask for.
        max_batch: The most ratings (or movies in a history) one request may carry.
        max_body_bytes: The largest request body the API reads (larger ones get 413).
        opentelemetry: Whether the API reports to OpenTelemetry (FastAPI's native tracing,
            metrics and logs, through the globally configured providers). Off by default:
            ``/metrics`` exports Prometheus metrics either way, and checking for providers on
            every request costs a measurable share of a recommendation.
        top_n_depth: How many movies of each known user's list the API computes in batch when
            it loads a model (answers up to that ``k`` without scoring; 0: score every request).
        serving_monitor: Whether the API counts the quality of what it serves and logs
            impressions for online feedback (off: ``/monitoring/stats`` and ``/online`` are
            empty; the serving benchmark measures its cost against off).
        impressions_sample_rate: The share of users whose impressions (lists served) are
            logged for online feedback (chosen by a hash of the user id).
        impressions_retention_days: How long impressions are kept.
        impressions_max_rows: The most impressions (lists) kept; the oldest go first (online
            feedback over a million lists takes seconds: see benchmarks/monitoring.py).
        online_horizon_days: How long after a showing a rating of a shown movie counts as
            online feedback on it.
        positive_rating: The rating from which online feedback counts as positive.
        drift_share: The share of drift features that must drift for the data drift verdict
            (Evidently's default, 0.5); it decides ``movierec schedule --on-drift``.
        drift_interval: Seconds between two drift computations the API's ``/metrics`` reports
            (the latest result is served in between; a model load recomputes at once).
        replica_feed: How API replicas on several hosts tell each other of fresh ratings and
            reloads: ``none`` (one host: its workers share a local file), ``postgres``
            (LISTEN/NOTIFY on the ratings store, which must be PostgreSQL) or ``redis``
            (pub/sub at ``redis_url``). See :mod:`movierec.serving.replicas`.
        redis_url: The Redis server of ``replica_feed=redis`` (``redis://``, ``rediss://`` or
            ``unix://``); secret, as it may carry a password.
        champion_poll_interval: Seconds between two reads of the registry's champion alias by
            each API worker, which reloads when it changed (a promotion made outside the API
            reaches every replica); 0 turns polling off.
    """

    model_config = SettingsConfigDict(
        env_prefix="MOVIEREC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(default=Path("data"))
    datasets_dir: Path | None = None
    database_url: str | None = None
    dataset: str = DEFAULT_DATASET
    # ALS: within 0.01 NDCG@10 of the best model on ml-latest-small and tied best on ml-100k,
    # with an artifact of a few MB; EASE's dense item-item matrix is 2.9 GB at 27k movies.
    model: str = "als"
    verify_checksums: bool = True
    movielens_base_url: str = "https://files.grouplens.org/datasets/movielens"
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str = "movierec"
    registered_model: str = "movierec"
    primary_metric: str = "ndcg@10"
    promotion_margin: float = Field(default=0.0, ge=0.0)
    environment: Literal["development", "production"] = "development"
    api_key: SecretStr | None = None
    max_k: int = Field(default=100, ge=1, le=10_000)
    max_batch: int = Field(default=1_000, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1_024)
    opentelemetry: bool = False
    top_n_depth: int = Field(default=100, ge=0, le=10_000)
    serving_monitor: bool = True
    impressions_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    impressions_retention_days: float = Field(default=30.0, gt=0.0)
    impressions_max_rows: int = Field(default=1_000_000, ge=1)
    online_horizon_days: float = Field(default=7.0, gt=0.0)
    positive_rating: float = 4.0
    drift_share: float = Field(default=0.5, gt=0.0, le=1.0)
    drift_interval: float = Field(default=900.0, ge=1.0)
    replica_feed: Literal["none", "postgres", "redis"] = "none"
    redis_url: SecretStr | None = None
    champion_poll_interval: float = Field(default=0.0, ge=0.0)

    @field_validator("data_dir", "datasets_dir", mode="after")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        return path.expanduser().resolve() if path is not None else None

    @field_validator("database_url", mode="after")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        if not url:  # an empty MOVIEREC_DATABASE_URL means "use the default"
            return None
        if not url.startswith(("sqlite", "postgresql", "mysql", "mariadb")):
            raise ValueError(
                f"unsupported database URL {url!r}: use sqlite:///PATH, "
                "postgresql+psycopg://... or mysql+pymysql://..."
            )
        return url

    @model_validator(mode="after")
    def _replica_feed_has_its_server(self) -> Self:
        problem = _replica_feed_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _production_needs_a_real_key(self) -> Self:
        if self.environment != "production":
            return self
        key = self.api_key.get_secret_value() if self.api_key is not None else ""
        if key.strip().lower() in UNSAFE_API_KEYS or len(key) < MIN_API_KEY_CHARS:
            raise ValueError(
                "production needs MOVIEREC_API_KEY: a non-default key of at least "
                f"{MIN_API_KEY_CHARS} characters (e.g. `openssl rand -hex 32`)"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_real_database_passwords(self) -> Self:
        if self.environment != "production":
            return self
        # A file (SQLite) has no password; a server URL must carry a real one.
        urls = {"MOVIEREC_DATABASE_URL": self.database_url,
                "MOVIEREC_MLFLOW_TRACKING_URI": self.mlflow_tracking_uri}  # fmt: skip
        for variable, url in urls.items():
            problem = _weak_server_password(url)
            if problem is not None:
                raise ValueError(
                    f"production refuses {variable}: {problem}; set a non-default password of "
                    f"at least {MIN_DB_PASSWORD_CHARS} characters (e.g. `openssl rand -hex 24`)"
                )
        return self

    @cached_property
    def store_url(self) -> str:
        """The database URL to use: the configured one or a SQLite file in ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'movierec.db'}"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI to use: the configured one or a SQLite file in ``data_dir``."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.data_dir / 'mlflow.db'}"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        """Where the embedded MLflow store keeps run artifacts and logged models."""
        return self.data_dir / "mlartifacts"

    @property
    def cache_dir(self) -> Path:
        """Where downloaded archives are kept."""
        return self.data_dir / "cache"

    @property
    def models_dir(self) -> Path:
        """Where ``movierec train`` saves models (the MLflow registry comes on top of it)."""
        return self.data_dir / "models"

    @property
    def served_models_dir(self) -> Path:
        """Where the server keeps the registry versions it serves (one download per version,
        mapped by all its workers)."""
        return self.data_dir / "served-models"

    @property
    def jobs_dir(self) -> Path:
        """Where the API keeps its training and tuning jobs (shared by its workers)."""
        return self.data_dir / "jobs"

    @property
    def snapshots_dir(self) -> Path:
        """Where content-hashed parquet snapshots of the store are written."""
        return self.data_dir / "snapshots"


def _replica_feed_problem(settings: Settings) -> str | None:
    """Why the replica feed cannot work with these settings, or None."""
    if settings.replica_feed == "postgres" and not (settings.database_url or "").startswith(
        "postgresql"
    ):
        return (
            "MOVIEREC_REPLICA_FEED=postgres needs MOVIEREC_DATABASE_URL to be a PostgreSQL URL "
            "(postgresql+psycopg://...): the replicas listen on their shared ratings store"
        )
    if settings.replica_feed == "redis":
        url = settings.redis_url.get_secret_value() if settings.redis_url is not None else ""
        if not url.startswith(("redis://", "rediss://", "unix://")):
            given = "is not set" if not url else "is not a redis://, rediss:// or unix:// URL"
            return f"MOVIEREC_REPLICA_FEED=redis needs MOVIEREC_REDIS_URL, which {given}"
    return None


def _weak_server_password(url: str | None) -> str | None:
    """Why the password of a database server URL is unsafe, or None (also for files, HTTP
    tracking servers and no URL). The URL itself is never part of the answer: it holds the
    password."""
    if not url or "://" not in url:
        return None
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite") or parts.scheme in {"http", "https", "file"}:
        return None
    if not parts.hostname or "host=/" in parts.query:
        return None  # a local socket: the operating system authenticates (peer), no password
    password = unquote(parts.password or "")
    if not password:
        return f"the {parts.scheme} URL has no password"
    if password.lower() in UNSAFE_DB_PASSWORDS or password.lower().startswith("dev-"):
        return f"the {parts.scheme} URL has a default or development password"
    if len(password) < MIN_DB_PASSWORD_CHARS:
        return (
            f"the {parts.scheme} URL's password is shorter than {MIN_DB_PASSWORD_CHARS} characters"
        )
    return None
