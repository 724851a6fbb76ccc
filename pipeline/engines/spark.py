"""The Spark engine: the SQLite engine's set work as Spark SQL (PySpark), over a ``parquet:///folder``
(``--engine spark``) or the tables of a Spark catalog database (``spark:///database``), in local mode
(``local[*]``, the default) or on a cluster (``master="spark://host:7077"``). Same numbers as the SQLite
engine; parity tests in tests/test_engine_spark.py, a standalone-cluster test in
tests/test_engine_spark_cluster.py.

- ``open_engine(source, master=…)``: a Spark session of its own (``SparkSession.newSession``: its own
  temporary views and settings over the one SparkContext of the process), quiet (log level ERROR, no
  progress bar, no web UI), the driver bound to 127.0.0.1 in local mode, few shuffle partitions for
  small data, time zone UTC (timestamps are compared as text; the lookback subtracts whole days), and
  the product's ``pipeline`` package shipped to the executors as a zip (``addPyFile``), so the
  per-journey models run there even where ``pipeline`` is not installed.
- The set work is the DuckDB engine's own SQL, compiled to Spark SQL by sqlglot
  (``dialects.transpile(…, "spark")``, as the Postgres engine compiles it): ``SparkEngine`` offers what
  the functions of ``pipeline.engines.duckdb`` use — ``present`` (column types named as DuckDB names
  them), ``sql(query, params)`` and a ``con`` with ``sql(…).to_arrow_reader(n)``, ``register`` and
  ``unregister`` — so ``validate``, ``journey_batches``, ``journeys``, ``conversion_count``,
  ``channel_report``, ``stored_report`` and ``path_summary`` (``engines.paths``) are those functions run
  here. Spark's differences are the compiler's: an exact DECIMAL(38,0) sum of the report's fixed-point
  units (DuckDB's HUGEINT sum; each term rounded as SQLite rounds, divided once as SQLite divides —
  bit-identical to the SQLite engine's ``channel_reporting``), ``make_dt_interval`` for the lookback,
  a regular expression anchored with ``\\z`` (Java's ``$`` also matches before a final newline).
- ``journey_batches``: sorted by conversion, time, session_id (byte order, as SQLite's BINARY
  collation), fetched one partition at a time as Arrow record batches (``mapInArrow`` → IPC bytes →
  ``toLocalIterator``), cut into batches of whole journeys by the DuckDB engine's carry logic.
- ``attribute(engine, window, model)``: a per-journey numpy model run on the executors, unchanged, as a
  grouped Arrow UDF (``groupBy(bucket).applyInArrow``) where ``bucket`` hashes the conversion, so every
  journey is whole in one call; the credits (conv_id, session_id, ihc, ts) come back as one Arrow table.
  ``model`` is the engine-run module's ``BatchCredit`` (Markov and Shapley arrive fitted on
  ``path_summary``, as channel shares) or a per-journey model's name.
- ``fingerprint``, ``run_record`` / ``write_run_record``: what a run's staleness check and records need.
- ``write_outputs``: ``attribution_customer_journey`` and ``channel_reporting`` with the challenge
  schema: for a Parquet source, Parquet folders of those names (the DuckDB engine's writer); for a
  catalog database, Spark tables staged as ``NAME__staging`` and swapped in under a journal table
  (``pipeline_swap``), with the run record in the same swap: a run that dies inside the swap leaves the
  journal, and ``repair_swap`` (run by ``open_engine``) finishes it, so the outputs are never missing or
  half old, half new (``_write_catalog``).

Inputs are never modified: a Parquet source is read through temporary views; outputs replace only the
two output tables.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import pyspark  # noqa: F401  (here, so that the engine seam words a missing pyspark as a one-line error)

from ..errors import InputError
from ..journeys import Journeys
from ..schema import REQUIRED_COLUMNS
from ..sources import Source, check_local, parquet_files, parse_source
from ..validate import ValidationReport
from ..window import Window
from . import duckdb as _duck
from . import paths
from .dialects import transpile

DIALECT = "spark"

OUTPUT_TABLES = _duck.OUTPUT_TABLES
BATCH_ROWS = _duck.BATCH_ROWS
DEFAULT_MASTER = "local[*]"
LOCAL_SHUFFLE_PARTITIONS = 4  # the demo's few hundred thousand rows: 200 (Spark's default) tiny tasks cost more
ARROW_BATCH_ROWS = 50_000  # rows per Arrow batch between the JVM and Python

# Spark's own log4j2 settings, quiet: errors reach the caller as exceptions, worded by this module.
LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.spark.name = org.apache.spark
logger.spark.level = error
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
"""


@dataclass
class SparkEngine:
    """A Spark session over a source's tables (temporary views of Parquet files, or a catalog database).
    ``sql``/``frame`` take the DuckDB engine's SQL (``$name`` parameters) and compile it to Spark SQL
    (``dialects.transpile(…, "spark")``); ``native`` runs Spark SQL as it is."""

    source: Source
    spark: Any  # pyspark.sql.SparkSession (a session of its own; the SparkContext is shared)
    present: dict  # table → {column: DuckDB type name} of the tables that exist
    database: Optional[str] = None  # a catalog source's database
    views: list = field(default_factory=list)

    def frame(self, query: str, params: Optional[dict] = None):
        """A DataFrame of DuckDB-dialect ``query``, compiled to Spark SQL with ``params`` bound."""
        return self.spark.sql(transpile(query, DIALECT, params))

    def sql(self, query: str, params: Optional[dict] = None) -> list[tuple]:
        return [tuple(r) for r in self.frame(query, params).collect()]

    def native(self, query: str) -> list[tuple]:
        """Spark SQL as it is (the catalog's own statements), all rows."""
        return [tuple(r) for r in self.spark.sql(query).collect()]

    @property
    def con(self) -> "_Connection":
        """What the DuckDB engine's functions use of a DuckDB connection (``sql(…).to_arrow_reader``,
        ``register``, ``unregister``)."""
        return _Connection(self)

    def close(self) -> None:
        for view in self.views:
            self.spark.catalog.dropTempView(view)
        self.views = []

    def __enter__(self) -> "SparkEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class _Connection:
    engine: SparkEngine

    def sql(self, query: str, params: Optional[dict] = None) -> "_Result":
        return _Result(self.engine.frame(query, params))

    def register(self, name: str, table) -> None:
        """An Arrow table as temporary view ``name`` of this engine's session."""
        self.engine.spark.createDataFrame(table).createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        self.engine.spark.catalog.dropTempView(name)


@dataclass
class _Result:
    frame: Any

    def to_arrow_reader(self, batch_rows: int) -> Iterator:
        """The rows as Arrow record batches of at most ``batch_rows``, in the query's order, fetched one
        partition at a time (the DuckDB engine's loop then cuts them into whole journeys)."""
        for batch in _arrow_batches(self.frame):
            for offset in range(0, batch.num_rows, batch_rows):
                yield batch.slice(offset, batch_rows)


# ---- the session ---------------------------------------------------------------------------------------

_lock = threading.Lock()
_shipped: dict = {}  # id of a SparkContext → the zip of ``pipeline`` added to it


def spark_session(master: Optional[str] = None, conf: Optional[dict] = None):
    """The process's SparkSession for ``master`` (started here when none runs; a running one must have the
    same master: Spark runs one SparkContext per process)."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    master = master or DEFAULT_MASTER
    with _lock:
        running = SparkContext._active_spark_context  # the process's, whichever thread started it
        if running is not None:
            if running.master != master:
                raise InputError(f"Spark is already running with master {running.master} in this process, not {master}")
            return SparkSession.builder.getOrCreate()
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        log_conf = Path(tempfile.gettempdir()) / "pipeline-spark-log4j2.properties"
        if not log_conf.is_file() or log_conf.read_text() != LOG4J2:
            fd, tmp = tempfile.mkstemp(prefix=".pipeline-spark-log4j2.", dir=log_conf.parent)
            with os.fdopen(fd, "w") as f:
                f.write(LOG4J2)
            os.replace(tmp, log_conf)  # whole, even with another process writing it at once
        local = master.startswith("local")
        builder = (
            SparkSession.builder.master(master)
            .appName("attribution-pipeline")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_conf}")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
        )
        if local:
            builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
            builder = builder.config("spark.sql.shuffle.partitions", str(LOCAL_SHUFFLE_PARTITIONS))
        for key, value in (conf or {}).items():
            builder = builder.config(key, value)
        from py4j.protocol import Py4JError

        try:
            session = builder.getOrCreate()
        except (RuntimeError, OSError, Py4JError) as exc:  # Java missing (PySparkRuntimeError), master unreachable
            raise InputError(f"Spark could not start with master {master}: {_first_line(exc)}") from None
        session.sparkContext.setLogLevel("ERROR")
        _quiet_python_loggers()
        return session


def _quiet_python_loggers() -> None:
    """PySpark logs every failed query's JVM stack trace as JSON to stderr before raising it; the caller
    gets the exception (and words it), so those loggers are switched off."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).disabled = True


def stop_spark(jvm: bool = False) -> None:
    """Stop the process's SparkContext (a later ``open_engine`` starts a new one); with ``jvm`` also the
    Java process PySpark launched for it (it otherwise stays, a child of this process, for reuse)."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    with _lock:
        running = SparkContext._active_spark_context
        if running is not None:
            _shipped.pop(id(running), None)
            SparkSession.builder.getOrCreate().stop()
        gateway = SparkContext._gateway
        if jvm and gateway is not None:
            gateway.shutdown()
            proc = getattr(gateway, "proc", None)
            if proc is not None:
                proc.kill()
                proc.wait()
            SparkContext._gateway = None
            SparkContext._jvm = None


def ship_package(spark) -> Path:
    """Zip the ``pipeline`` package this process runs and add it to the executors' Python path (once per
    SparkContext), so the UDFs' imports of ``pipeline`` resolve on every worker."""
    sc = spark.sparkContext
    key = id(sc)
    if key in _shipped:
        return _shipped[key]
    root = Path(__file__).resolve().parents[1]  # …/pipeline
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, Path("pipeline") / path.relative_to(root))
    folder = Path(tempfile.mkdtemp(prefix="pipeline-spark-"))
    atexit.register(shutil.rmtree, folder, True)  # served to executors while the context runs
    target = folder / "pipeline.zip"
    target.write_bytes(buffer.getvalue())
    sc.addPyFile(str(target))
    _shipped[key] = target
    return target


def open_engine(
    source: str | Source,
    *,
    write: bool = False,
    master: Optional[str] = None,
    conf: Optional[dict] = None,
) -> SparkEngine:
    """Open ``source`` (parquet folder or ``spark:///database``) on Spark ``master`` (default local[*]).
    Tables may be missing (``validate`` reports that). ``write`` is accepted for the engine contract:
    Spark opens nothing read-only."""
    source = parse_source(source) if not isinstance(source, Source) else source
    if source.kind not in ("parquet", "spark"):
        raise InputError(f"{source.display()}: the Spark engine reads parquet:///folder or spark:///database")
    if source.kind == "parquet":
        check_local(source, {})  # the folder exists and is readable
    base = spark_session(master, conf)
    ship_package(base)
    spark = base.newSession()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    engine = SparkEngine(source, spark, {})
    if source.kind == "parquet":
        _duck.repair_parquet(source.file)  # a run killed inside its output swap: undone before anything reads
        _parquet_views(engine, [*REQUIRED_COLUMNS, *OUTPUT_TABLES])
    else:
        engine.database = source.location[0]
        if not spark.catalog.databaseExists(engine.database):
            raise source.error(f"Spark catalog has no database {engine.database}")
        spark.catalog.setCurrentDatabase(engine.database)
        repair_swap(engine)  # a run that died inside its output swap: finished before anything reads
    engine.present = _present(engine)
    return engine


def _parquet_views(engine: SparkEngine, tables) -> None:
    """A temporary view per table over its Parquet files (tables without files get none)."""
    for table in tables:
        files = parquet_files(engine.source, table)
        if not files:
            if table in engine.views:
                engine.spark.catalog.dropTempView(table)
                engine.views.remove(table)
            continue
        check_local(engine.source, {table: REQUIRED_COLUMNS.get(table, [])})  # one schema across parts
        engine.spark.read.parquet(*[str(p) for p in files]).createOrReplaceTempView(table)
        if table not in engine.views:
            engine.views.append(table)


# Spark type names (``simpleString``) → the DuckDB names the shared SQL tests for (``engines.columns``).
TYPES = {
    "string": "VARCHAR",
    "double": "DOUBLE",
    "float": "FLOAT",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
}


def _duckdb_type(spark_type: str) -> str:
    name = spark_type.lower()
    if name.startswith(("varchar", "char")):
        return "VARCHAR"
    return TYPES.get(name, name.upper())


def _present(engine: SparkEngine) -> dict:
    present: dict = {}
    for table in [*REQUIRED_COLUMNS, *OUTPUT_TABLES]:
        if engine.source.kind == "parquet" and table not in engine.views:
            continue
        if engine.source.kind == "spark":
            if not engine.spark.catalog.tableExists(f"{engine.database}.{table}"):
                continue
            engine.spark.catalog.refreshTable(f"{engine.database}.{table}")  # another writer's files: seen
        schema = engine.spark.table(table).schema
        present[table] = {f.name: _duckdb_type(f.dataType.simpleString()) for f in schema.fields}
    return present


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# ---- the DuckDB engine's set work, compiled to Spark SQL ----------------------------------------------


def validate(engine: SparkEngine) -> ValidationReport:
    """The findings of ``pipeline.validate.validate`` for this source (``duckdb.validate``'s aggregate
    queries and wording)."""
    return _duck.validate(engine)  # type: ignore[arg-type]


def journey_batches(engine: SparkEngine, window: Window = Window(), batch_rows: int = BATCH_ROWS) -> Iterator[dict]:
    """The journeys of ``window`` as batches of whole journeys (``duckdb.journey_batches``): Spark sorts
    (range partitions, in order); the driver holds one Arrow batch and the rows of the journey that
    continues in the next."""
    return _duck.journey_batches(engine, window, batch_rows)  # type: ignore[arg-type]


def journeys(engine: SparkEngine, window: Window = Window()) -> Journeys:
    """All journeys of ``window`` gathered in one ``Journeys`` (``duckdb.journeys``)."""
    return _duck.journeys(engine, window)  # type: ignore[arg-type]


def conversion_count(engine: SparkEngine, window: Window = Window()) -> int:
    """The conversions of ``window`` (with an id) (``duckdb.conversion_count``)."""
    return _duck.conversion_count(engine, window)  # type: ignore[arg-type]


def channel_report(
    engine: SparkEngine, credits=None, start: Optional[str] = None, end: Optional[str] = None
) -> list[tuple]:
    """Rows (channel_name, date, cost, ihc, ihc_revenue), bit-identical to SQLite's (``duckdb.channel_report``:
    each term rounded as SQLite rounds, summed exactly as DECIMAL(38,0), divided once)."""
    return _duck.channel_report(engine, credits, start, end)  # type: ignore[arg-type]


def path_summary(engine: SparkEngine, window: Window = Window()):
    """Every path of ``window`` with its conversions, non-conversions and value (``paths.path_summary``,
    in one pass: Spark spills its own sorts and aggregates)."""
    return paths.path_summary(engine, window, bucket_sessions=None)


def stored_report(engine: SparkEngine, start: Optional[str] = None, end: Optional[str] = None) -> Optional[list[tuple]]:
    """The stored ``channel_reporting`` rows in range, sorted by date then channel (``duckdb.stored_report``)."""
    return _duck.stored_report(engine, start, end)  # type: ignore[arg-type]


def _params(window: Window) -> dict:
    return {"start": window.start, "end": window.end, "lookback_days": window.lookback_days}


def _unordered(query: str) -> str:
    """DuckDB-dialect ``query`` without its final ORDER BY (rows grouped by bucket need no global sort)."""
    import sqlglot

    tree = sqlglot.parse_one(query, read="duckdb")
    tree.set("order", None)
    return tree.sql(dialect="duckdb")


def _journey_frame(engine: SparkEngine, window: Window):
    """The journey rows of ``window`` (``duckdb._journeys_sql``) as a DataFrame, unsorted."""
    rows_sql, _ = _duck._journeys_sql(engine)  # type: ignore[arg-type]
    return engine.frame(_unordered(rows_sql), _params(window))


def _to_ipc(batches):
    """mapInArrow: each Arrow record batch → one row holding it as Arrow IPC bytes (order kept)."""
    import pyarrow as pa

    for batch in batches:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        yield pa.RecordBatch.from_arrays([pa.array([sink.getvalue().to_pybytes()], pa.binary())], ["ipc"])


def _arrow_batches(frame) -> Iterator:
    """The rows of ``frame`` on the driver as Arrow record batches, in the frame's order, one partition at
    a time (never all rows at once)."""
    import pyarrow as pa

    for row in frame.mapInArrow(_to_ipc, "ipc binary").toLocalIterator():
        yield from pa.ipc.open_stream(row[0])


# ---- attribution on the executors -----------------------------------------------------------------------

CREDIT_SCHEMA = "conv_id string, session_id string, ihc double, ts bigint"


class _ModelCredit:
    """A registered model by name as a batch → credit callable (what ``engines.run.BatchCredit`` is for
    the engine-run module): picklable by its name and resolved parameters."""

    def __init__(self, name: str, params: dict):
        self.name, self.params = name, params

    def __call__(self, batch: dict) -> dict:
        from pipeline.journey_index import JourneyIndex
        from pipeline.models import get_model

        index = JourneyIndex.from_columns(batch)
        return {
            "conv_id": index.column("conversion_id"),
            "session_id": index.column("session_id"),
            "ihc": np.asarray(get_model(self.name).credits(index, self.params).ihc, dtype=np.float64),
            "ts": np.asarray(index.ts, dtype=np.int64),
        }


def _portable(credit):
    """``credit`` with an IHC profile named by file or built-in name loaded here, on the driver: the
    executors import ``pipeline`` from a zip, where the built-in profile files cannot be opened."""
    import dataclasses

    params = getattr(credit, "params", None)
    if not isinstance(params, dict) or not isinstance(params.get("profile"), (str, os.PathLike)):
        return credit
    from ..ihc import load_profile

    loaded = {**params, "profile": load_profile(params["profile"])}
    if dataclasses.is_dataclass(credit) and not isinstance(credit, type):
        return dataclasses.replace(credit, params=loaded)
    credit.params = loaded
    return credit


def _credits_udf(credit):
    """The grouped Arrow UDF: one bucket's journey rows (whole journeys) → ``credit`` of them. It imports
    only ``pipeline`` modules, which ``ship_package`` put on the executors' path."""

    def run(table):
        import pyarrow as pa

        from pipeline.journeys import journey_columns as columns_of

        raw = [np.asarray(table.column(i).to_numpy(zero_copy_only=False), dtype=object) for i in range(7)]
        out = credit(columns_of(raw))
        return pa.table(
            {
                "conv_id": pa.array(np.asarray(out["conv_id"], dtype=object), pa.string()),
                "session_id": pa.array(np.asarray(out["session_id"], dtype=object), pa.string()),
                "ihc": pa.array(np.asarray(out["ihc"], dtype=np.float64), pa.float64()),
                "ts": pa.array(np.asarray(out["ts"], dtype=np.int64), pa.int64()),
            }
        )

    return run


def attribute(
    engine: SparkEngine,
    window: Window = Window(),
    model: Any = "ihc",
    params: Optional[dict] = None,
    *,
    buckets: Optional[int] = None,
):
    """Credit per (conv_id, session_id) of ``window``, computed on the executors: the journey rows grouped
    by a hash of the conversion into ``buckets`` groups (default: twice the default parallelism), each
    group's whole journeys run through the model's numpy code unchanged (``applyInArrow``). ``model``: a
    picklable callable batch → {conv_id, session_id, ihc, ts} (``engines.run.BatchCredit``, which also
    carries Markov/Shapley fitted on ``path_summary``), or a registered model's name (with ``params``; a
    model fitting on all paths at once is refused by name). Returns an Arrow table (conv_id, session_id,
    ihc, ts) sorted by conv_id, session_id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(model, str):
        from ..models import get_model

        m = get_model(model)
        if m.needs_non_converting:
            raise InputError(
                f"model {model!r} fits on every path at once, not per group of journeys: fit it on the "
                "engine's path_summary first (engines.run.batch_credit) and pass the fitted credit"
            )
        credit: Any = _ModelCredit(model, m.resolve_params(params))
    else:
        credit = model
    credit = _portable(credit)
    n = buckets or max(1, 2 * engine.spark.sparkContext.defaultParallelism)
    frame = _journey_frame(engine, window)
    grouped = frame.withColumn("_bucket", _bucket_column(n)).groupBy("_bucket")
    result = grouped.applyInArrow(_credits_udf(credit), CREDIT_SCHEMA).toArrow()
    if result.num_rows == 0:
        empty = {"conv_id": pa.string(), "session_id": pa.string(), "ihc": pa.float64(), "ts": pa.int64()}
        return pa.table({k: pa.array([], t) for k, t in empty.items()})
    order = pc.sort_indices(result, [("conv_id", "ascending"), ("session_id", "ascending")])
    return result.take(order)


def _bucket_column(n: int):
    from pyspark.sql import functions as F

    return F.pmod(F.xxhash64("conv_id"), F.lit(n))


# ---- writing the outputs back ---------------------------------------------------------------------------

RECORD_TABLE = _duck.RECORD_TABLE  # in a catalog database: one row, the last run's record as JSON
RECORD_FILE = _duck.RECORD_FILE  # in a Parquet folder (as the DuckDB engine keeps it)
SWAP_TABLE = "pipeline_swap"  # in a catalog database while a swap is under way: the tables it replaces
SWAPPED = (*OUTPUT_TABLES, RECORD_TABLE)  # the tables a swap may replace (never an input table)


def write_outputs(engine: SparkEngine, credits, report: list[tuple], record: Optional[dict] = None) -> dict[str, int]:
    """Replace ``attribution_customer_journey`` and ``channel_reporting`` of the source, staged then swapped
    (a failure leaves the previous outputs as they were); the input tables are never touched. With
    ``record`` (a run's record, ``engines.run``) a catalog database swaps the run record with the outputs
    (``_write_catalog``: all or nothing, even if the process dies); a Parquet folder removes the old one before its renames and writes the new one after them."""
    tables = _duck.output_tables(credits, report)
    if engine.source.kind == "parquet":
        # the views read the old output files lazily: drop them before the folders are replaced
        for name in OUTPUT_TABLES:
            if name in engine.views:
                engine.spark.catalog.dropTempView(name)
                engine.views.remove(name)
        _duck._write_parquet(engine.source, tables, record)  # the record removed first, written last
        _parquet_views(engine, OUTPUT_TABLES)
    else:
        _write_catalog(engine, {**tables, **({RECORD_TABLE: _record_table(record)} if record is not None else {})})
    engine.present = _present(engine)
    return {name: t.num_rows for name, t in tables.items()}


def _record_table(record: dict):
    import pyarrow as pa

    return pa.table({"record": pa.array([_duck.record_text(record)], pa.string())})


def _write_catalog(engine: SparkEngine, tables: dict) -> None:
    """Tables of the catalog database replaced all together, or not at all, even if the process dies:

    1. each written whole as ``NAME__staging`` (a failure drops them: the previous tables stay);
    2. the swap journal ``pipeline_swap`` written, naming them: from here the swap goes forward;
    3. per table, the old one dropped and ``NAME__staging`` renamed to ``NAME``; then the journal dropped.

    A Spark catalog has no transaction over several renames, so a run killed inside step 3 leaves a
    journal behind: ``repair_swap`` (run by ``open_engine``, so by the next run, ``status`` and every
    other command) finishes it, and the outputs are then the new ones, whole."""
    import pyarrow as pa

    repair_swap(engine)  # a previous swap left half done: finished before this one starts
    staged: list[str] = []
    try:
        for name, table in tables.items():
            _drop(engine, _staging(name))
            staged.append(name)
            _save(engine, table, _staging(name))
        _save(engine, pa.table({"name": pa.array(list(tables), pa.string())}), SWAP_TABLE)
    except BaseException:
        for name in staged:
            _drop(engine, _staging(name))
        raise
    _finish_swap(engine, list(tables))


def repair_swap(engine: SparkEngine) -> list[str]:
    """Finish or undo what an interrupted ``_write_catalog`` left in a catalog database; the tables it
    repaired ([] when nothing was half done). With the journal: the staged tables are whole, so the swap
    is finished (the new outputs). Without it: staging tables are from a run that died while staging
    and are dropped (the previous outputs stay); an output renamed aside by an older version of this
    engine (``NAME__replaced`` without ``NAME``) is renamed back."""
    if engine.source.kind != "spark":
        return []
    if _exists(engine, SWAP_TABLE):
        names = [r[0] for r in engine.native(f"SELECT name FROM {_name(engine, SWAP_TABLE)}") if r[0] in SWAPPED]
        _finish_swap(engine, names)
        return names
    repaired = []
    for name in SWAPPED:
        if _exists(engine, _staging(name)):
            _drop(engine, _staging(name))
            repaired.append(name)
        if _exists(engine, f"{name}__replaced") and not _exists(engine, name):
            _rename(engine, f"{name}__replaced", name)
            repaired.append(name)
    return repaired


def _finish_swap(engine: SparkEngine, names: list[str]) -> None:
    """Step 3 of ``_write_catalog``; every step may be repeated (a staged table already renamed is
    skipped), so a repair may run it again after any of them."""
    for name in names:
        if _exists(engine, _staging(name)):
            _drop(engine, name)
            _rename(engine, _staging(name), name)
        _drop(engine, f"{name}__replaced")
    _drop(engine, SWAP_TABLE)


def _staging(name: str) -> str:
    return f"{name}__staging"


def _name(engine: SparkEngine, table: str) -> str:
    return f"`{engine.database}`.`{table}`"


def _exists(engine: SparkEngine, table: str) -> bool:
    return engine.spark.catalog.tableExists(f"{engine.database}.{table}")


def _drop(engine: SparkEngine, table: str) -> None:
    engine.spark.sql(f"DROP TABLE IF EXISTS {_name(engine, table)}")


def _rename(engine: SparkEngine, old: str, new: str) -> None:
    engine.spark.sql(f"ALTER TABLE {_name(engine, old)} RENAME TO {_name(engine, new)}")


def _save(engine: SparkEngine, table, name: str) -> None:
    if not _exists(engine, name):
        _clear_location(engine, name)
    engine.spark.createDataFrame(table).write.format("parquet").saveAsTable(_name(engine, name))


def _clear_location(engine: SparkEngine, name: str) -> None:
    """Remove the files at the managed location of table ``name`` when no table owns them: what a process
    killed inside ``saveAsTable`` leaves behind, where Spark would refuse to create the table
    (LOCATION_ALREADY_EXISTS) and every later run would fail. Only the engine's own tables (staging, the
    swap journal) are saved here, never an input table."""
    spark = engine.spark
    jvm = spark.sparkContext._jvm
    ident = jvm.org.apache.spark.sql.catalyst.TableIdentifier(name, jvm.scala.Option.apply(engine.database))
    uri = spark._jsparkSession.sessionState().catalog().defaultTablePath(ident)
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if fs.exists(path):
        fs.delete(path, True)


# ---- what a run needs beyond the stages -------------------------------------------------------------------


def fingerprint(engine: SparkEngine) -> str:
    """What the input tables are, for staleness: a Parquet source by its files' names, sizes and
    modification times (nanoseconds); a catalog database by each input table's row count and the sum of
    a 64-bit hash of every row (order-independent; one aggregate query per table, after refreshing the
    table's cached file listing so that another writer's changes are seen)."""
    import hashlib

    parts: list = []
    for table in REQUIRED_COLUMNS:
        if engine.source.kind == "parquet":
            for p in parquet_files(engine.source, table):
                st = p.stat()
                parts.append((str(p.relative_to(engine.source.file)), st.st_size, st.st_mtime_ns))
        elif table not in engine.present:
            parts.append((table, None))
        else:
            engine.spark.catalog.refreshTable(f"{engine.database}.{table}")  # files written since: seen
            columns = ", ".join(f"`{c}`" for c in engine.present[table])
            row = engine.native(f"SELECT count(*), sum(CAST(xxhash64({columns}) AS DECIMAL(38,0))) FROM {table}")[0]
            parts.append((table, int(row[0]), str(row[1])))
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def run_record(engine: SparkEngine) -> Optional[dict]:
    """The record the last successful run stored with the outputs (None: none, or unreadable)."""
    if engine.source.kind == "parquet":
        return _duck.run_record(engine)  # type: ignore[arg-type]
    if not _exists(engine, RECORD_TABLE):
        return None
    engine.spark.catalog.refreshTable(f"{engine.database}.{RECORD_TABLE}")
    return _duck.record_of(engine.native(f"SELECT record FROM {_name(engine, RECORD_TABLE)}"))


def write_run_record(engine: SparkEngine, record: dict) -> None:
    """Store ``record`` beside the outputs, replacing the previous one whole (a file written aside then
    renamed; a catalog table staged then swapped in; a run stores it with the outputs instead:
    ``write_outputs(…, record=…)``)."""
    if engine.source.kind == "parquet":
        _duck.write_run_record(engine, record)  # type: ignore[arg-type]
        return
    _write_catalog(engine, {RECORD_TABLE: _record_table(record)})
