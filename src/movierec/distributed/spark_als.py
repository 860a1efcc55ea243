"""Implicit-feedback ALS trained by Apache Spark MLlib, exported as movierec's own ``als`` model.

:class:`SparkALS` fits ``pyspark.ml.recommendation.ALS`` (``implicitPrefs=True``) on
``local[N]`` or on a cluster (``master``), collects the factors as float32 arrays and is saved
as an :class:`~movierec.models.als.ALS` artifact (factors, id maps, seen items, an ``ALSConfig``):
evaluation, the registry and the API load it as any other ALS model, fold-in and similar movies
included. PySpark is the optional extra ``movierec[spark]``; without it, fitting raises
:class:`SparkUnavailableError` saying how to install it.

The objectives differ from :mod:`movierec.models.als` (``implicit``'s ALS), so the two are
compared by ranking quality, not by their factors:

* Spark's confidence is ``1 + alpha * |r|`` with preference ``r > 0``, as movierec's;
* Spark scales the L2 penalty of each user's (item's) solve by its number of ratings
  (ALS-WR, Zhou et al. 2008): ``regParam * n_u``, where ``implicit`` uses one constant;
* Spark solves each least-squares step exactly (Cholesky), ``implicit`` by a few CG steps.

The exported config's ``regularization`` (used only by fold-in, which solves ``implicit``'s
constant-penalty user step) is ``reg_param`` times the median number of ratings per training
user: the penalty Spark gave a typical user. Fold-in thus matches Spark's step exactly for a
history of median length and approximately for others.

Data reaches Spark in one of two ways. :meth:`SparkALS.fit` ships the ``Interactions`` matrix
from the driver as an Arrow table (any split, any master). :func:`use_source` has the
executors read the ratings themselves, from the content-hashed parquet snapshot (a path every
executor must see) or from the PostgreSQL store over JDBC, and maps their ids to the driver's
indices with a broadcast join; the driver still reads the snapshot for the id maps and the
seen items the artifact keeps.

The defaults (64 factors, 15 iterations, ``reg_param=0.1``, ``alpha=0.25``, confidence from the
rating) were chosen on validation NDCG@10 (the latest 20% of each user's training ratings of a
per-user temporal holdout; ``benchmarks/spark.py quality``): over regParam 0.02-0.3 and alpha
0.25-4, weak confidence did best, as for movierec's ALS (alpha 0.5). They score 0.998 and 0.905
of movierec's ALS on validation (ml-100k, ml-latest-small); the test figures are in
``benchmarks/README.md``.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pydantic import Field
from sqlalchemy.engine import make_url

from movierec.data.interactions import Interactions
from movierec.data.snapshot import Snapshot
from movierec.errors import ConfigError, first_line
from movierec.models.als import ALS, ALSConfig
from movierec.models.base import ModelConfig, ModelError, Recommender

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "INSTALL_HINT",
    "SparkALS",
    "SparkALSConfig",
    "SparkJobError",
    "SparkUnavailableError",
    "jdbc_reader",
    "require_pyspark",
    "snapshot_reader",
    "spark_session",
    "use_source",
]

INSTALL_HINT = "the spark engine needs PySpark: pip install 'movierec[spark]' (or: make spark)"
SPARK_DEFAULT_BLOCKS = 10  # ALS's numUserBlocks / numItemBlocks default
JDBC_DRIVER_JAR = "/usr/share/java/postgresql.jar"  # Debian's libpostgresql-jdbc-java

RatingsReader = Callable[["SparkSession"], "DataFrame"]
"""Reads the ratings (``user_id``, ``item_id``, ``rating``: external ids) into Spark."""


class SparkUnavailableError(ConfigError):
    """PySpark is not installed (the ``spark`` extra)."""


class SparkJobError(ModelError):
    """Spark could not start or a Spark job failed; the message names the cause."""


class SparkALSConfig(ModelConfig):
    """Spark MLlib ALS (implicit preferences) and where it runs."""

    factors: int = Field(default=64, ge=1, description="Latent dimensions (Spark's rank).")
    iterations: int = Field(default=15, ge=1, description="Alternations (Spark's maxIter).")
    reg_param: float = Field(
        default=0.1, ge=0, description="L2 penalty per rating (Spark's regParam, ALS-WR)."
    )
    alpha: float = Field(default=0.25, ge=0, description="Extra confidence per unit of v.")
    confidence: Literal["binary", "rating"] = Field(
        default="rating", description="v: 1 for every rating, or the rating itself."
    )
    master: str = Field(
        default="local[2]", description="Spark master URL: local[N] or a cluster's spark://..."
    )
    blocks: int | None = Field(
        default=None, ge=1, description="User and item blocks (partitions); None: Spark's 10."
    )
    driver_memory: str = Field(
        default="2g", description="The driver JVM's heap (local mode: also the executors')."
    )
    checkpoint_dir: str | None = Field(
        default=None,
        description="Where Spark checkpoints every 10 iterations (a path every executor sees);"
        " None: a temporary folder in local mode, none on a cluster.",
    )


def require_pyspark() -> None:
    """Raise :class:`SparkUnavailableError` (one line: how to install it) without PySpark."""
    if importlib.util.find_spec("pyspark") is None:
        raise SparkUnavailableError(INSTALL_HINT)


@contextmanager
def spark_session(config: SparkALSConfig) -> Iterator[SparkSession]:
    """A SparkSession on ``config.master``: the running one when it runs there (kept open, so
    a test module or a benchmark shares one JVM), else a new one, stopped on exit.

    Raises:
        SparkUnavailableError: PySpark is not installed.
        SparkJobError: Spark does not start (a bad master URL, no Java, ...), or this process
            already runs Spark on another master (one SparkContext per process).
    """
    require_pyspark()
    from pyspark import SparkContext  # noqa: PLC0415 (an optional extra)
    from pyspark.sql import SparkSession  # noqa: PLC0415

    running = SparkContext._active_spark_context  # one per JVM, whichever thread made it
    if running is not None:
        if running.master != config.master:
            # getOrCreate would silently hand back the running context and its master.
            raise SparkJobError(
                f"this process already runs Spark on {running.master!r}, not {config.master!r}"
            )
        yield SparkSession.builder.getOrCreate()
        return
    builder = (
        SparkSession.builder.master(config.master)
        .appName("movierec-als")
        .config("spark.driver.memory", config.driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # ALS's lineage grows with every iteration; serializing it recursed past the default
        # 1 MB thread stack at 15 iterations on ml-100k (a StackOverflowError, seen once).
        .config("spark.driver.extraJavaOptions", "-Xss16m")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Few cores: Spark's 200 shuffle partitions are mostly scheduling overhead here.
        .config("spark.sql.shuffle.partitions", "8")
    )
    if Path(JDBC_DRIVER_JAR).exists():
        # On the class path from the JVM's start: a jar added to a later session of the same
        # JVM is not seen by JDBC's driver lookup (ClassNotFoundException, seen in the tests).
        builder = builder.config("spark.jars", JDBC_DRIVER_JAR).config(
            "spark.driver.extraClassPath", JDBC_DRIVER_JAR
        )
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j and JVM errors share no base class worth naming
        raise SparkJobError(f"Spark did not start on {config.master!r}: {_cause(exc)}") from exc
    session.sparkContext.setLogLevel("ERROR")
    try:
        with _checkpoints(session, config):
            yield session
    finally:
        session.stop()


@contextmanager
def _checkpoints(session: SparkSession, config: SparkALSConfig) -> Iterator[None]:
    """Give Spark a checkpoint folder, so ALS cuts its lineage every 10 iterations (without
    one Spark ignores ``checkpointInterval``): the configured one, else a temporary folder in
    local mode (on a cluster a local folder is not seen by the executors)."""
    if config.checkpoint_dir is not None:
        session.sparkContext.setCheckpointDir(config.checkpoint_dir)
        yield
    elif config.master.startswith("local"):
        with tempfile.TemporaryDirectory(prefix="movierec-spark-") as folder:
            session.sparkContext.setCheckpointDir(folder)
            yield
    else:
        yield


def snapshot_reader(path: str) -> RatingsReader:
    """Read a snapshot's ``ratings.parquet`` on the executors (a path they all see)."""

    def read(spark: SparkSession) -> DataFrame:
        return spark.read.parquet(path).select("user_id", "item_id", "rating")

    return read


def jdbc_reader(url: str, user: str | None = None, password: str | None = None) -> RatingsReader:
    """Read the PostgreSQL store's ``ratings`` table over JDBC (``jdbc:postgresql://...``)."""

    def read(spark: SparkSession) -> DataFrame:
        options = {"url": url, "dbtable": "ratings", "driver": "org.postgresql.Driver"}
        options |= {k: v for k, v in (("user", user), ("password", password)) if v is not None}
        return (
            spark.read.format("jdbc")
            .options(**options)
            .load()
            .select("user_id", "item_id", "rating")
        )

    return read


class SparkALS(ALS):
    """ALS fitted by Spark MLlib; saved (and served) as a plain :class:`ALS` model."""

    config_class: ClassVar[type[ModelConfig]] = SparkALSConfig
    config: SparkALSConfig  # type: ignore[assignment]  # Spark's parameters, not implicit's

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        # ALS's own __init__ types its config as implicit's; SparkALSConfig is Spark's own.
        super().__init__(config, **params)  # type: ignore[arg-type]
        self.reader: RatingsReader | None = None
        """Where the executors read the ratings (:func:`use_source`); None: from the driver."""
        self._exported: ALS | None = None

    def _fit(self, interactions: Interactions) -> None:
        with spark_session(self.config) as spark:
            try:
                frame = (
                    _driver_frame(spark, interactions)
                    if self.reader is None
                    else _indexed(spark, self.reader(spark), interactions)
                )
                users, items = _fit_factors(frame, interactions, self.config)
            except (ModelError, ConfigError):
                raise
            except Exception as exc:  # a failed job surfaces as a py4j/JVM error
                raise SparkJobError(f"the Spark ALS job failed: {_cause(exc)}") from exc
        self.user_factors, self.item_factors = users, items

    def exported(self) -> ALS:
        """This model as movierec's :class:`ALS` (same arrays, an ``ALSConfig``)."""
        user_factors, item_factors = self._factors()
        cached = self._exported
        if cached is not None and cached.user_factors is user_factors:
            return cached
        model = ALS(self._als_config())
        model.user_ids, model.item_ids = self._fitted_ids()
        model.user_items = self._seen()
        model.rating_scale = self.rating_scale
        model.user_factors, model.item_factors = user_factors, item_factors
        self._exported = model
        return model

    def _als_config(self) -> ALSConfig:
        counts = np.diff(self._seen().indptr)
        typical = float(np.median(counts[counts > 0])) if counts.any() else 1.0
        return ALSConfig(
            factors=self.config.factors,
            iterations=self.config.iterations,
            regularization=self.config.reg_param * typical,
            alpha=self.config.alpha,
            confidence=self.config.confidence,
            seed=self.config.seed,
        )

    def _history_vector(
        self, items: npt.NDArray[np.int64], ratings: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        return self.exported()._history_vector(items, ratings)

    def save(self, path: str | Path) -> Path:
        """Save as an :class:`ALS` artifact (``config.json`` says ``als``)."""
        return self.exported().save(path)

    @classmethod
    def load(cls, path: str | Path, *, mmap_mode: bool = False) -> Self:
        """Load a saved Spark-trained model: it is an :class:`ALS` artifact, and loads as one
        (no Spark needed)."""
        # An ALS, not a SparkALS: every method a caller may use answers the same.
        return ALS.load(path, mmap_mode=mmap_mode)  # type: ignore[return-value]

    def save_for_serving(self, path: str | Path) -> Path:
        """:meth:`ALS.save_for_serving` of :meth:`exported`."""
        return self.exported().save_for_serving(path)


def _driver_frame(spark: SparkSession, interactions: Interactions) -> DataFrame:
    """The matrix's stored cells as (user, item, rating) indices, sent as one Arrow table."""
    coo = interactions.matrix.tocoo()
    table = pa.table(
        {
            "user": pa.array(coo.row.astype(np.int32)),
            "item": pa.array(coo.col.astype(np.int32)),
            "rating": pa.array(coo.data.astype(np.float32)),
        }
    )
    return spark.createDataFrame(table)


def _indexed(spark: SparkSession, ratings: DataFrame, interactions: Interactions) -> DataFrame:
    """``ratings`` (external ids) as the driver's indices; ids it does not know are dropped."""
    users = spark.createDataFrame(_id_table(interactions.user_ids, "user_id", "user"))
    items = spark.createDataFrame(_id_table(interactions.item_ids, "item_id", "item"))
    from pyspark.sql.functions import broadcast, col  # noqa: PLC0415 (an optional extra)

    return (
        ratings.join(broadcast(users), "user_id")
        .join(broadcast(items), "item_id")
        .select("user", "item", col("rating").cast("float"))
    )


def _id_table(ids: npt.NDArray[np.int64], id_name: str, index_name: str) -> pa.Table:
    return pa.table(
        {
            id_name: pa.array(ids.astype(np.int64)),
            index_name: pa.array(np.arange(len(ids), dtype=np.int32)),
        }
    )


def _fit_factors(
    frame: DataFrame, interactions: Interactions, config: SparkALSConfig
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Fit Spark's ALS on ``frame`` (user, item, rating) and collect both factor matrices."""
    from pyspark.ml import recommendation  # noqa: PLC0415 (an optional extra)
    from pyspark.sql.functions import lit  # noqa: PLC0415

    if config.confidence == "binary":
        frame = frame.withColumn("rating", lit(1.0))
    blocks = config.blocks or SPARK_DEFAULT_BLOCKS
    estimator = recommendation.ALS(
        rank=config.factors,
        maxIter=config.iterations,
        regParam=config.reg_param,
        alpha=config.alpha,
        implicitPrefs=True,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        seed=config.seed,
        numUserBlocks=blocks,
        numItemBlocks=blocks,
    )
    fitted = estimator.fit(frame)
    return (
        _collect(fitted.userFactors, interactions.n_users, config.factors),
        _collect(fitted.itemFactors, interactions.n_items, config.factors),
    )


def _collect(factors: DataFrame, size: int, rank: int) -> npt.NDArray[np.float32]:
    """Spark's (id, features) rows as a dense float32 matrix; rows Spark never saw are zeros
    (a user or item without training ratings scores 0, as in ``implicit``)."""
    table = factors.toArrow()  # Arrow straight from the JVM: no pandas in between
    dense = np.zeros((size, rank), dtype=np.float32)
    if table.num_rows:
        ids = table.column("id").to_numpy()
        values = table.column("features").combine_chunks().flatten().to_numpy()
        dense[ids] = values.reshape(len(ids), rank)
    return dense


def _cause(exc: BaseException) -> str:
    """A Spark error's cause in one line: a JVM error's own message (py4j's first line only
    names the call, e.g. "An error occurred while calling o196.load")."""
    java = getattr(exc, "java_exception", None)
    return first_line(exc) if java is None else first_line(Exception(str(java.toString())))


def use_source(
    model: Recommender, source: str, snapshot: Snapshot | None, database_url: str
) -> None:
    """Have ``model`` (a :class:`SparkALS`) read its ratings from ``source``: ``driver`` (sent
    from this process), ``snapshot`` (the parquet file, a path every executor must see) or
    ``jdbc`` (the PostgreSQL store at ``database_url``, with Debian's JDBC driver).

    Raises:
        ConfigError: A source this setup cannot give (no snapshot, a store that is not
            PostgreSQL, no JDBC driver).
    """
    if not isinstance(model, SparkALS):
        raise ConfigError(f"only a Spark-trained model reads from a source, not {model.name}")
    if source == "driver":
        return
    if snapshot is None:
        raise ConfigError(f"the {source} source reads the store's snapshot: train on the store")
    if source == "snapshot":
        model.reader = snapshot_reader(str(snapshot.ratings_path))
        return
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        raise ConfigError(f"the jdbc source reads a PostgreSQL store, not {url.drivername}")
    if not Path(JDBC_DRIVER_JAR).exists():
        raise ConfigError(f"no PostgreSQL JDBC driver at {JDBC_DRIVER_JAR}: run make spark")
    jdbc_url = f"jdbc:postgresql://{url.host or 'localhost'}:{url.port or 5432}/{url.database}"
    model.reader = jdbc_reader(jdbc_url, url.username, url.password)
