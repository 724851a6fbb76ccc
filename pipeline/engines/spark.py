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
- ``validate(engine)``: the DuckDB engine's checks and wording (``duckdb._Validator``, itself worded as
  ``pipeline.validate``) over counts from Spark SQL aggregate queries; only the SQL of the value checks
  (a date, a time, a flag, a number) is Spark's (``_SparkValidator``).
- ``journey_batches`` / ``journeys``: the DuckDB engine's journeys query in Spark SQL, sorted by
  conversion, time, session_id (byte order, as SQLite's BINARY collation), fetched one partition at a
  time as Arrow record batches (``mapInArrow`` → IPC bytes → ``toLocalIterator``), cut into batches of
  whole journeys by the DuckDB engine's carry logic, in the columns ``journeys.journey_columns`` builds.
- ``attribute(engine, window, model)``: a per-journey numpy model run on the executors, unchanged, as a
  grouped Arrow UDF (``groupBy(bucket).applyInArrow``) where ``bucket`` hashes the conversion, so every
  journey is whole in one call; the credits (conv_id, session_id, ihc, ts) come back as one Arrow table.
  ``model`` is the engine-run module's ``BatchCredit`` (Markov and Shapley arrive fitted on
  ``path_summary``, as channel shares) or a per-journey model's name.
- ``channel_report``: the DuckDB engine's report query in Spark SQL with SQLite's fixed-point sums:
  each term ``round(x * scale)`` as SQLite rounds (``_units``), summed exactly as DECIMAL(38,0), divided
  once as SQLite divides (``duckdb.fixed``) — bit-identical to the SQLite engine's ``channel_reporting``.
- ``path_summary``: the distinct channel paths (converting and not) Markov and Shapley fit on, built by
  Spark; ``fingerprint``, ``stored_report``, ``run_record`` / ``write_run_record``, ``conversion_count``:
  what a run's staleness check and records need (as the DuckDB engine offers them).
- ``write_outputs``: ``attribution_customer_journey`` and ``channel_reporting`` with the challenge
  schema: for a Parquet source, Parquet folders of those names written by the driver to a staging
  folder and renamed into place (the DuckDB engine's writer); for a catalog database, Spark tables
  written as ``NAME__staging`` and then swapped in by renames (``ALTER TABLE … RENAME``).

Inputs are never modified: a Parquet source is read through temporary views; outputs replace only the
two output tables.
"""

from __future__ import annotations

import atexit
import io
import os
import re
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
from ..journeys import Journeys, journey_columns, sessions_per
from ..schema import BLANK, NO_CHANNEL, REQUIRED_COLUMNS, channel_label
from ..sources import Source, check_local, parquet_files, parse_source
from ..sums import CREDIT_SCALE, MONEY_SCALE
from ..validate import ValidationReport
from ..window import Window
from . import duckdb as _duck

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
    """A Spark session over a source's tables (temporary views of Parquet files, or a catalog database)."""

    source: Source
    spark: Any  # pyspark.sql.SparkSession (a session of its own; the SparkContext is shared)
    present: dict  # table → {column: Spark type (simpleString)} of the tables that exist
    database: Optional[str] = None  # a catalog source's database
    views: list = field(default_factory=list)

    def frame(self, query: str, params: Optional[dict] = None):
        """A DataFrame of ``query``; parameters written ``$name`` (the DuckDB engine's SQL) or ``:name``."""
        params = params or {}
        text = re.sub(r"\$(\w+)", r":\1", query)
        used = set(re.findall(r":(\w+)", text))
        return self.spark.sql(text, args={k: v for k, v in params.items() if k in used} or None)

    def sql(self, query: str, params: Optional[dict] = None) -> list[tuple]:
        return [tuple(r) for r in self.frame(query, params).collect()]

    def close(self) -> None:
        for view in self.views:
            self.spark.catalog.dropTempView(view)
        self.views = []

    def __enter__(self) -> "SparkEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
        _parquet_views(engine, [*REQUIRED_COLUMNS, *OUTPUT_TABLES])
    else:
        engine.database = source.location[0]
        if not spark.catalog.databaseExists(engine.database):
            raise source.error(f"Spark catalog has no database {engine.database}")
        spark.catalog.setCurrentDatabase(engine.database)
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
        present[table] = {f.name: f.dataType.simpleString() for f in schema.fields}
    return present


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# ---- SQLite's value checks in Spark SQL ---------------------------------------------------------------

NUMERIC_TYPES = ("double", "float", "bigint", "int", "smallint", "tinyint", "decimal")


def _is_numeric(dtype: str) -> bool:
    return dtype.lower().startswith(NUMERIC_TYPES)


def _text(c: str, dtype: str) -> str:
    """Column ``c`` as text the way SQLite holds it ('YYYY-MM-DD', 'HH:MM:SS', ids as text)."""
    if dtype.lower() in ("string",) or dtype.lower().startswith(("varchar", "char")):
        return c
    if dtype.lower() == "date":
        return f"date_format({c}, 'yyyy-MM-dd')"
    return f"CAST({c} AS STRING)"


def _bad_date(c: str) -> str:
    return f"({c} IS NULL OR NOT coalesce(date_format(try_to_timestamp({c}, 'yyyy-MM-dd'), 'yyyy-MM-dd') = {c}, false))"


def _bad_time(c: str) -> str:
    # length 8 and a match from the start: Java's '$' would also accept a trailing newline
    return f"NOT coalesce(length({c}) = 8 AND {c} RLIKE '^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]', false)"


def _bad_flag(c: str) -> str:
    return f"({c} IS NULL OR NOT coalesce(try_cast({c} AS DOUBLE) IN (0D, 1D), false))"


def _number(c: str, dtype: str) -> str:
    return f"CAST({c} AS DOUBLE)" if _is_numeric(dtype) else f"try_cast({c} AS DOUBLE)"


def _not_number(c: str, dtype: str) -> str:
    return "false" if _is_numeric(dtype) else f"({c} IS NOT NULL AND try_cast({c} AS DOUBLE) IS NULL)"


# ---- validation ---------------------------------------------------------------------------------------


class _SparkValidator(_duck._Validator):
    """The DuckDB engine's checks and wording; Spark SQL for the value checks and the channel-days."""

    text, number, not_number = staticmethod(_text), staticmethod(_number), staticmethod(_not_number)
    bad_date, bad_time, bad_flag = staticmethod(_bad_date), staticmethod(_bad_time), staticmethod(_bad_flag)

    @staticmethod
    def channel(c: str) -> str:
        return _channel(c)

    @staticmethod
    def no_channel(c: str) -> str:
        return _no_channel(c)

    def channel_days(self, engine) -> set[tuple[str, str]]:
        return channel_days(engine)

    def channel_day_costs(self, engine) -> dict[tuple[str, str], float]:
        return channel_day_costs(engine)


def validate(engine: SparkEngine) -> ValidationReport:
    """The findings of ``pipeline.validate.validate`` for this source (aggregate queries in Spark)."""
    return _duck.validate(engine, _SparkValidator)  # type: ignore[arg-type]


# ---- journeys -----------------------------------------------------------------------------------------


def _journeys_sql(engine: SparkEngine) -> tuple[str, str]:
    """(journey rows, conversions in the window) queries; parameters :start, :end, :lookback_days."""
    s, c = engine.present["session_sources"], engine.present["conversions"]
    s_ts = f"{_text('s.event_date', s['event_date'])} || ' ' || {_text('s.event_time', s['event_time'])}"
    conv_date = _text("conv_date", c["conv_date"])
    conv = f"""
    conv AS (
        SELECT CAST(conv_id AS STRING) AS conv_id, user_id, {conv_date} || ' ' || {_text("conv_time", c["conv_time"])} AS conv_ts
        FROM conversions
        WHERE conv_id IS NOT NULL
          AND (:start IS NULL OR {conv_date} >= :start)
          AND (:end IS NULL OR {conv_date} <= :end))"""
    back = "date_format(try_to_timestamp(conv_ts, 'yyyy-MM-dd HH:mm:ss') - make_dt_interval(:lookback_days), 'yyyy-MM-dd HH:mm:ss')"
    rows = f"""
    WITH {conv},
    pairs AS (
        SELECT c.conv_id, CAST(s.session_id AS STRING) AS session_id, {s_ts} AS ts_text,
               {_channel("s.channel_name")} AS channel,
               s.holder_engagement AS h, s.closer_engagement AS cl, s.impression_interaction AS i, c.conv_ts
        FROM session_sources s JOIN conv c ON c.user_id = s.user_id)
    SELECT conv_id, session_id, ts_text, channel, h, cl, i FROM pairs
    WHERE ts_text < conv_ts AND (:lookback_days IS NULL OR ts_text >= {back})
    """
    conversions = f"WITH {conv} SELECT conv_id FROM conv ORDER BY conv_id"
    return rows, conversions


def _params(window: Window) -> dict:
    return {"start": window.start, "end": window.end, "lookback_days": window.lookback_days}


def _journey_frame(engine: SparkEngine, window: Window):
    rows_sql, _ = _journeys_sql(engine)
    return engine.frame(rows_sql, _params(window))


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


def journey_batches(engine: SparkEngine, window: Window = Window(), batch_rows: int = BATCH_ROWS) -> Iterator[dict]:
    """The journeys of ``window`` as batches of whole journeys: each a dict of ``journey_columns``, rows
    sorted by conversion, time and session_id. Spark sorts (range partitions, in order); the driver holds
    one Arrow batch and the rows of the journey that continues in the next (the DuckDB engine's carry)."""
    import pyarrow as pa

    frame = _journey_frame(engine, window).orderBy("conv_id", "ts_text", "session_id")
    carry = None
    for batch in _arrow_batches(frame):
        for offset in range(0, batch.num_rows, batch_rows):
            chunk = batch.slice(offset, batch_rows)
            table = pa.Table.from_batches([chunk]) if carry is None else _duck._concat(carry, chunk)
            conv = table.column(0).to_numpy(zero_copy_only=False)
            # rows are sorted by conversion: those of the last one may continue in the next chunk, keep them back
            others = np.flatnonzero(conv != conv[-1])
            whole = int(others[-1]) + 1 if len(others) else 0
            if whole:
                yield _duck._columns(table.slice(0, whole))
            carry = table.slice(whole)
    if carry is not None and carry.num_rows:
        yield _duck._columns(carry)


def journeys(engine: SparkEngine, window: Window = Window()) -> Journeys:
    """All journeys of ``window`` gathered in one ``Journeys`` (for parity with the SQLite engine)."""
    from ..journey_index import JOURNEY_COLUMNS

    parts = list(journey_batches(engine, window))
    names = [*JOURNEY_COLUMNS, "ts"]
    if parts:
        columns = {n: np.concatenate([p[n] for p in parts]) for n in names}
    else:
        columns = journey_columns([np.zeros(0, dtype=object) for _ in range(7)])
    _, conv_sql = _journeys_sql(engine)
    conv_ids = np.asarray(
        [r[0] for r in engine.sql(conv_sql, {"start": window.start, "end": window.end})], dtype=object
    )
    return Journeys(columns, conv_ids, sessions_per(conv_ids, columns["conversion_id"]), window)


def conversion_count(engine: SparkEngine, window: Window = Window()) -> int:
    """The conversions of ``window`` (with an id), those a run attributes or explains."""
    _, conv_sql = _journeys_sql(engine)
    return int(engine.sql(f"SELECT count(*) FROM ({conv_sql})", {"start": window.start, "end": window.end})[0][0])


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


# ---- the channel report ---------------------------------------------------------------------------------


def _units(expr: str, scale: int) -> str:
    """``CAST(round((expr) * scale) AS BIGINT)`` with SQLite's round(), as the DuckDB engine's ``_units``:
    beyond ±2**52 a double has no fraction and is kept; below, ``sign(x) * floor(|x| + 0.5)`` (half away
    from zero, so 0.49999999999999994 → 1 as SQLite says). Double literals (``D``): a plain Spark literal
    with a point is a DECIMAL, which would change the arithmetic."""
    v = f"(CAST(({expr}) AS DOUBLE) * {float(scale)!r}D)"
    return (
        f"CAST(CASE WHEN abs({v}) > 4503599627370496D THEN {v} ELSE sign({v}) * floor(abs({v}) + 0.5D) END AS BIGINT)"
    )


def _exact_sum(units: str) -> str:
    """An exact integer sum (DECIMAL(38,0): a BIGINT sum would wrap silently without ANSI mode)."""
    return f"sum(CAST({units} AS DECIMAL(38,0)))"


fixed = _duck.fixed


def _no_channel(c: str) -> str:
    """``schema.no_channel_sql`` in Spark SQL: Spark's two-argument ``trim(a, b)`` trims the characters of
    ``a`` from ``b`` (the reverse of SQLite's and DuckDB's), so the standard form is spelled out."""
    return f"(nullif(trim(BOTH '{BLANK}' FROM CAST({c} AS STRING)), '') IS NULL)"


def _channel(c: str) -> str:
    """The channel a session is reported under (``schema.channel_sql``: NULL, empty or blank → '(not set)')."""
    return f"(CASE WHEN {_no_channel(c)} THEN '{NO_CHANNEL}' ELSE CAST({c} AS STRING) END)"


def channel_day_costs(engine: SparkEngine) -> dict[tuple[str, str], float]:
    """{(channel, date): cost} of every channel-day with matched cost, as the DuckDB engine's (a fixed-point
    sum per channel_name as stored and date, then NULL channel and a literal '(not set)' merged)."""
    s, cost_type = engine.present["session_sources"], engine.present["session_costs"]["cost"]
    date = _text("s.event_date", s["event_date"])
    rows = engine.sql(
        f"SELECT CAST(s.channel_name AS STRING), {date}, {_exact_sum(_units(_number('sc.cost', cost_type), MONEY_SCALE))}"
        " FROM session_costs sc JOIN session_sources s ON s.session_id = sc.session_id GROUP BY 1, 2"
    )
    costs: dict[tuple[str, str], float] = {}
    for channel, day, units in rows:
        key = (channel_label(channel), day)
        costs[key] = costs.get(key, 0.0) + fixed(units, MONEY_SCALE)
    return costs


def channel_days(engine: SparkEngine) -> set[tuple[str, str]]:
    """Every (channel, date) of the sessions (NULL channel as '(not set)')."""
    s = engine.present["session_sources"]
    date = _text("event_date", s["event_date"])
    return {
        (ch, day) for ch, day in engine.sql(f"SELECT DISTINCT {_channel('channel_name')}, {date} FROM session_sources")
    }


def _credits_view(engine: SparkEngine, credits):
    """``credits`` (an Arrow table or a mapping with conv_id, session_id, ihc) as a DataFrame."""
    import pyarrow as pa

    table = (
        credits if isinstance(credits, pa.Table) else _duck.output_tables(credits, [])["attribution_customer_journey"]
    )
    table = table.select(["conv_id", "session_id", "ihc"])
    return engine.spark.createDataFrame(table)


def channel_report(
    engine: SparkEngine, credits=None, start: Optional[str] = None, end: Optional[str] = None
) -> list[tuple]:
    """Rows (channel_name, date, cost, ihc, ihc_revenue) sorted by date and channel, as
    ``report.build_report``: every channel-day with sessions in range; ``credits`` (an Arrow table or a
    mapping with conv_id, session_id, ihc) or, without it, the source's ``attribution_customer_journey``."""
    s = engine.present["session_sources"]
    date = _text("s.event_date", s["event_date"])
    revenue = _number("c.revenue", engine.present["conversions"]["revenue"])
    in_range = f"(:start IS NULL OR {date} >= :start) AND (:end IS NULL OR {date} <= :end)"
    view = None
    if credits is not None:
        view = f"_credits_{os.getpid()}_{threading.get_ident()}"
        _credits_view(engine, credits).createOrReplaceTempView(view)
        credit_table: Optional[str] = view
    elif "attribution_customer_journey" in engine.present:
        credit_table = "attribution_customer_journey"
    else:
        credit_table = None
    credit_cte = (
        f"""credit AS (
        SELECT {_channel("s.channel_name")} AS channel, {date} AS day,
               {_exact_sum(_units("a.ihc", CREDIT_SCALE))} AS ihc,
               {_exact_sum(_units(f"a.ihc * coalesce({revenue}, 0D)", MONEY_SCALE))} AS ihc_revenue
        FROM {credit_table} a
        JOIN session_sources s ON s.session_id = a.session_id
        JOIN conversions c ON c.conv_id = a.conv_id
        WHERE {in_range}
        GROUP BY 1, 2)"""
        if credit_table
        else "credit AS (SELECT CAST(NULL AS STRING) AS channel, CAST(NULL AS STRING) AS day, "
        "CAST(0 AS DECIMAL(38,0)) AS ihc, CAST(0 AS DECIMAL(38,0)) AS ihc_revenue WHERE false)"
    )
    sql = f"""
    WITH days AS (
        SELECT DISTINCT {_channel("s.channel_name")} AS channel, {date} AS day
        FROM session_sources s WHERE {in_range}),
    {credit_cte}
    SELECT d.channel, d.day, credit.ihc, credit.ihc_revenue
    FROM days d LEFT JOIN credit ON credit.channel = d.channel AND credit.day = d.day
    ORDER BY d.day, d.channel
    """
    try:
        rows = engine.sql(sql, {"start": start, "end": end})
    finally:
        if view is not None:
            engine.spark.catalog.dropTempView(view)
    costs = channel_day_costs(engine)
    return [
        (ch, day, costs.get((ch, day), 0.0))
        + ((fixed(ihc, CREDIT_SCALE), fixed(rev, MONEY_SCALE)) if ihc is not None else (0.0, 0.0))
        for ch, day, ihc, rev in rows
    ]


# ---- writing the outputs back ---------------------------------------------------------------------------


def write_outputs(engine: SparkEngine, credits, report: list[tuple]) -> dict[str, int]:
    """Replace ``attribution_customer_journey`` and ``channel_reporting`` of the source, staged then swapped
    (a failure leaves the previous outputs as they were); the input tables are never touched."""
    tables = _duck.output_tables(credits, report)
    if engine.source.kind == "parquet":
        # the views read the old output files lazily: drop them before the folders are replaced
        for name in OUTPUT_TABLES:
            if name in engine.views:
                engine.spark.catalog.dropTempView(name)
                engine.views.remove(name)
        _duck._write_parquet(engine.source, tables)
        _parquet_views(engine, OUTPUT_TABLES)
    else:
        _write_catalog(engine, tables)
    engine.present = _present(engine)
    return {name: t.num_rows for name, t in tables.items()}


def _write_catalog(engine: SparkEngine, tables: dict) -> None:
    """Tables of the catalog database: each written whole as ``NAME__staging``, then the old table renamed
    aside, the staging one renamed into place, the old one dropped."""
    spark, db = engine.spark, engine.database
    staged = []
    try:
        for name, table in tables.items():
            staging = f"{name}__staging"
            spark.sql(f"DROP TABLE IF EXISTS `{db}`.`{staging}`")
            spark.createDataFrame(table).write.format("parquet").saveAsTable(f"`{db}`.`{staging}`")
            staged.append(name)
    except BaseException:
        for name in staged:
            spark.sql(f"DROP TABLE IF EXISTS `{db}`.`{name}__staging`")
        raise
    for name in tables:
        exists = spark.catalog.tableExists(f"{db}.{name}")
        if exists:
            spark.sql(f"DROP TABLE IF EXISTS `{db}`.`{name}__replaced`")
            spark.sql(f"ALTER TABLE `{db}`.`{name}` RENAME TO `{db}`.`{name}__replaced`")
        spark.sql(f"ALTER TABLE `{db}`.`{name}__staging` RENAME TO `{db}`.`{name}`")
        if exists:
            spark.sql(f"DROP TABLE IF EXISTS `{db}`.`{name}__replaced`")


# ---- path summaries for Markov and Shapley ----------------------------------------------------------------


def path_summary(engine: SparkEngine, window: Window = Window()):
    """``path_summary.path_summary`` in Spark SQL: one row per distinct channel path of ``window`` with its
    converting journeys (those ``journey_batches`` gives), its non-converting users' paths (as
    ``journeys.build_non_converting``: a user with no conversion in the window, the sessions dated in it,
    with a lookback only those within that many days before the user's last one) and the converting
    journeys' revenue. Each path is built on the executors as ``hex(channel)`` joined with ',' in
    (time, session_id) order (``array_sort`` of structs; hex keeps any channel name whole), so only
    distinct paths reach the driver, decoded by the SQLite engine's own ``path_summary._decode``."""
    from ..models.weighted_paths import PathSummary
    from ..path_summary import _decode

    s, c = engine.present["session_sources"], engine.present["conversions"]
    conv_date, ev_date = _text("conv_date", c["conv_date"]), _text("event_date", s["event_date"])
    ts = f"{ev_date} || ' ' || {_text('event_time', s['event_time'])}"
    channel = f"hex({_channel('channel_name')})"
    revenue = _number("revenue", c["revenue"])

    def back(t: str) -> str:
        return f"date_format(try_to_timestamp({t}, 'yyyy-MM-dd HH:mm:ss') - make_dt_interval(:lookback_days), 'yyyy-MM-dd HH:mm:ss')"

    path = "array_join(transform(array_sort(collect_list(struct(ts, sid, ch))), x -> x.ch), ',')"
    sql = f"""
    WITH conv AS (
        SELECT conv_id, user_id, {conv_date} || ' ' || {_text("conv_time", c["conv_time"])} AS conv_ts,
               coalesce({revenue}, 0D) AS revenue
        FROM conversions
        WHERE conv_id IS NOT NULL AND user_id IS NOT NULL
          AND (:start IS NULL OR {conv_date} >= :start) AND (:end IS NULL OR {conv_date} <= :end)),
    sessions AS (
        SELECT user_id, {ts} AS ts, CAST(session_id AS STRING) AS sid, {channel} AS ch, {ev_date} AS day
        FROM session_sources WHERE user_id IS NOT NULL),
    conv_s AS (
        SELECT c.conv_id, s.ts, s.sid, s.ch, c.revenue FROM sessions s JOIN conv c ON c.user_id = s.user_id
        WHERE s.ts < c.conv_ts AND (:lookback_days IS NULL OR s.ts >= {back("c.conv_ts")})),
    conv_paths AS (SELECT {path} AS key, max(revenue) AS revenue FROM conv_s GROUP BY conv_id),
    null_s AS (
        SELECT user_id, ts, sid, ch, max(ts) OVER (PARTITION BY user_id) AS last
        FROM sessions s LEFT ANTI JOIN (SELECT DISTINCT user_id FROM conv) u USING (user_id)
        WHERE (:start IS NULL OR day >= :start) AND (:end IS NULL OR day <= :end)),
    null_paths AS (
        SELECT {path} AS key FROM null_s
        WHERE :lookback_days IS NULL OR ts >= {back("last")}
        GROUP BY user_id)
    SELECT key, sum(conversions), sum(non_conversions), sum(value) FROM (
        SELECT key, 1D AS conversions, 0D AS non_conversions, revenue AS value FROM conv_paths
        UNION ALL SELECT key, 0D, 1D, 0D FROM null_paths)
    GROUP BY key ORDER BY key
    """
    rows = engine.sql(sql, _params(window))
    if not rows:
        return PathSummary.empty()
    keys, conversions, non_conversions, value = (np.asarray(col, dtype=object) for col in zip(*rows))
    return _decode(keys, non_conversions.astype(np.float64), conversions.astype(np.float64), value.astype(np.float64))


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
            row = engine.sql(f"SELECT count(*), sum(CAST(xxhash64({columns}) AS DECIMAL(38,0))) FROM {table}")[0]
            parts.append((table, int(row[0]), str(row[1])))
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def stored_report(engine: SparkEngine, start: Optional[str] = None, end: Optional[str] = None) -> Optional[list[tuple]]:
    """The stored ``channel_reporting`` rows (channel_name, date, cost, ihc, ihc_revenue) in range, sorted
    by date then channel (None: no report stored)."""
    if "channel_reporting" not in engine.present:
        return None
    return engine.sql(
        "SELECT channel_name, date, cost, ihc, ihc_revenue FROM channel_reporting"
        " WHERE (:start IS NULL OR date >= :start) AND (:end IS NULL OR date <= :end) ORDER BY date, channel_name",
        {"start": start, "end": end},
    )


RECORD_TABLE = "pipeline_run_record"  # in a catalog database: one row, the last run's record as JSON
RECORD_FILE = "_pipeline_run.json"  # in a Parquet folder (as the DuckDB engine keeps it)


def run_record(engine: SparkEngine) -> Optional[dict]:
    """The record the last successful run stored with the outputs (None: none, or unreadable)."""
    import json

    try:
        if engine.source.kind == "parquet":
            path = engine.source.file / RECORD_FILE
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        name = f"{engine.database}.{RECORD_TABLE}"
        if not engine.spark.catalog.tableExists(name):
            return None
        engine.spark.catalog.refreshTable(name)
        rows = engine.sql(f"SELECT record FROM `{engine.database}`.`{RECORD_TABLE}`")
        return json.loads(rows[0][0]) if rows else None
    except (OSError, ValueError):
        return None


def write_run_record(engine: SparkEngine, record: dict) -> None:
    """Store ``record`` beside the outputs, replacing the previous one whole (a file written aside then
    renamed; a catalog table staged then swapped in by renames)."""
    import json

    text = json.dumps(record, sort_keys=True, default=str)
    if engine.source.kind == "parquet":
        folder = engine.source.file
        fd, tmp = tempfile.mkstemp(prefix=f".{RECORD_FILE}.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, folder.stat().st_mode & 0o666)
            os.replace(tmp, folder / RECORD_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return
    import pyarrow as pa

    _write_catalog(engine, {RECORD_TABLE: pa.table({"record": pa.array([text], pa.string())})})
