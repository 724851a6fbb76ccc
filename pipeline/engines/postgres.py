"""The Postgres engine: the DuckDB engine's set work, compiled to PostgreSQL and run on the server that holds
the data (``postgres://user@host:5432/database[/schema]``; same numbers as the SQLite engine, parity tests
against a real Debian ``postgresql`` in tests/test_engine_postgres.py).

How it plugs in: the set-work SQL is written once, in ``pipeline.engines.duckdb`` (DuckDB's dialect).
``PgEngine`` offers what those functions use — ``present`` (types named as DuckDB names them), ``sql(query,
params)`` and a connection ``con`` with ``sql(query, params).to_arrow_reader(n)``, ``register`` and
``unregister`` — and compiles every query with ``pipeline.engines.dialects.transpile(…, "postgres")``
before it reaches the server. So ``validate``, ``journey_batches``, ``journeys`` and ``channel_report`` are
the DuckDB engine's own functions run on this engine (findings counted by the same aggregate queries and
worded by the same code); only connecting, fetching Arrow batches, uploading credits and writing the
outputs are Postgres's own.

- Driver: ADBC's libpq driver (``adbc-driver-postgresql``): results arrive as Arrow record batches through
  COPY (the journey rows go to numpy as the DuckDB engine's do), and Arrow tables are written with COPY.
  Measured against psycopg 3 in bench/bench_postgres.py (docs/engines.md).
- Connection: ``postgresql://`` URI with the password of the URL, else ``PGPASSWORD`` from the environment,
  else ``.env``; ``connect_timeout`` 10 s; session time zone UTC (date checks parse timestamps, which must
  not move with daylight saving); ``search_path`` set to the schema when the URL names one. Opened without
  ``write`` the session is read-only (``default_transaction_read_only``): reads cannot modify anything.
- Errors: every driver error becomes a one-line ``InputError`` naming the source by ``display()``, with the
  password (wherever it came from) replaced by ``***``.
- Journeys: one ordered query, fetched as Arrow batches (``batch_rows`` × ~64 bytes per batch as the
  driver's size hint); the DuckDB engine's loop keeps the rows of a conversion that may continue in the
  next batch, so each batch holds whole journeys. Ordering uses ``COLLATE "C"`` (byte order, as SQLite).
- Report: credits are uploaded with COPY to a temporary table (the only write of a read-only session,
  allowed for its duration), then the fixed-point sums run on the server: ``sum(bigint)`` is NUMERIC in
  Postgres, exact at any size, and each term's rounding is SQLite's (``duckdb._units``).
- Markov/Shapley: ``non_converting_summary`` / ``path_summary`` (``pipeline.engines.paths``, the DuckDB
  engine's own, in one pass: one row per converting journey and per distinct non-converting path come
  back; equal to SQLite's summaries).
- Staleness: ``table_versions`` (content fingerprints: row count + exact sum of 64-bit row hashes);
  ``fingerprint`` hashes them for ``engines.run``.
- Run record: ``pipeline_run_record`` (one row, the record as JSON text) in the target schema, replaced
  in the same transaction as the outputs' swap (``write_outputs(…, record=…)``), so outputs and record
  never disagree; ``run_record`` reads it, ``stored_report`` the stored ``channel_reporting``.
- Loading: ``load_tables`` (``convert DB.db postgres://…``): COPY into staging tables, renamed in one
  transaction, then ANALYZE.
- ``write_outputs``: ``attribution_customer_journey`` and ``channel_reporting`` (the challenge schema,
  ``duckdb.DDL`` compiled) are filled as ``_staging_*`` tables with COPY, then swapped in one transaction
  (drop old, rename staging, rename its key): a failure leaves the previous outputs. Inputs are never
  touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Optional
from urllib.parse import quote, urlencode

from adbc_driver_manager import Error as DriverError

from ..errors import InputError
from ..journeys import Journeys
from ..schema import REQUIRED_COLUMNS
from ..sources import Source, parse_source
from ..validate import ValidationReport
from ..window import Window
from . import duckdb as D
from . import paths
from .dialects import transpile

DIALECT = "postgres"
OUTPUT_TABLES = D.OUTPUT_TABLES
BATCH_ROWS = D.BATCH_ROWS
CONNECT_TIMEOUT = 10  # seconds

# Postgres type names (information_schema.columns.data_type) → the DuckDB names the shared SQL tests for.
TYPES = {
    "text": "VARCHAR",
    "character varying": "VARCHAR",
    "character": "VARCHAR",
    "double precision": "DOUBLE",
    "real": "FLOAT",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "numeric": "DECIMAL",
    "date": "DATE",
    "boolean": "BOOLEAN",
}


@dataclass
class PgEngine:
    """An open Postgres session on a source's schema."""

    source: Source
    con: "_Connection" = field(repr=False)
    present: dict = field(default_factory=dict, repr=False)  # table → {column: DuckDB type name}
    writable: bool = False

    def sql(self, query: str, params=None) -> list[tuple]:
        """DuckDB-dialect ``query`` run on the server; all rows."""
        cursor = self.con.execute(query, params)
        try:
            return [tuple(r) for r in cursor.fetchall()]
        except DriverError as exc:  # a driver error while fetching
            raise self.con.error("a query failed", exc) from None
        finally:
            cursor.close()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "PgEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Result:
    """What ``con.sql(...)`` returns in DuckDB, as far as the shared engine functions use it."""

    def __init__(self, con: "_Connection", query: str, params):
        self.con, self.query, self.params = con, query, params

    def to_arrow_reader(self, batch_rows: int):
        cursor = self.con.execute(self.query, self.params, batch_bytes=max(4096, 64 * int(batch_rows)))
        try:
            return _Batches(cursor.fetch_record_batch(), cursor, self.con)
        except DriverError as exc:
            cursor.close()
            raise self.con.error("a query failed", exc) from None


class _Batches:
    """An Arrow batch stream whose driver errors become InputErrors; closes its cursor at the end."""

    def __init__(self, reader, cursor, con: "_Connection"):
        self.reader, self.cursor, self.con = reader, cursor, con

    def __iter__(self):
        try:
            for batch in self.reader:
                yield batch
        except InputError:
            raise
        except DriverError as exc:
            raise self.con.error("reading the results failed", exc) from None
        finally:
            self.cursor.close()


class _Connection:
    """The ADBC connection, speaking DuckDB-dialect SQL (compiled to Postgres per query)."""

    def __init__(self, source: Source, raw, password: Optional[str], read_only: bool):
        self.source, self.raw, self.password, self.read_only = source, raw, password, read_only

    def error(self, what: str, exc: BaseException) -> InputError:
        return _error(self.source, self.password, what, exc)

    def execute(self, query: str, params=None, *, batch_bytes: Optional[int] = None, compiled: bool = False):
        text = query if compiled else transpile(query, DIALECT, params)
        cursor = self.raw.cursor()
        try:
            if batch_bytes:
                cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(batch_bytes)})
            cursor.execute(text)
        except DriverError as exc:
            cursor.close()
            raise self.error("a query failed", exc) from None
        return cursor

    def run(self, *statements: str) -> None:
        """Postgres statements, as they are, results discarded."""
        for statement in statements:
            self.execute(statement, compiled=True).close()

    def sql(self, query: str, params=None) -> _Result:
        return _Result(self, query, params)

    def register(self, name: str, table) -> None:
        """``table`` (Arrow) uploaded with COPY as temporary table ``name`` (this session only)."""
        self._writing(True)
        cursor = self.raw.cursor()
        try:
            cursor.adbc_ingest(name, table, mode="replace", temporary=True)
        except DriverError as exc:
            raise self.error(f"uploading {name} failed", exc) from None
        finally:
            cursor.close()
            self._writing(False)

    def unregister(self, name: str) -> None:
        self._writing(True)
        try:
            self.run(f'DROP TABLE IF EXISTS pg_temp."{name}"')
        finally:
            self._writing(False)

    def _writing(self, on: bool) -> None:
        if self.read_only:
            self.run(f"SET default_transaction_read_only = {'off' if on else 'on'}")

    def close(self) -> None:
        try:
            self.raw.close()
        except DriverError:
            pass


def _error(source: Source, password: Optional[str], what: str, exc: BaseException) -> InputError:
    """One line naming the source, the driver's own words without its prefixes, never the password."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    for prefix in ("IO: ", "NOT_FOUND: ", "INVALID_ARGUMENT: ", "INVALID_STATE: ", "UNKNOWN: ", "INTERNAL: "):
        text = text.removeprefix(prefix)
    text = text.removeprefix("[libpq] ").replace("ERROR:  ", "").replace("FATAL:  ", "")
    message = f"{what}: {text}"
    if password:
        message = message.replace(password, "***").replace(quote(password, safe=""), "***")
    return source.error(message)


def _uri(source: Source, password: Optional[str]) -> str:
    user = quote(source.user, safe="") if source.user else ""
    secret = f":{quote(password, safe='')}" if password and user else ""
    netloc = f"{user}{secret}@" if user else ""
    host = source.host or "localhost"
    netloc += f"[{host}]" if ":" in host else host
    if source.port is not None:
        netloc += f":{source.port}"
    database = quote(source.location[0], safe="") if source.location else ""
    options = {"connect_timeout": str(CONNECT_TIMEOUT), "application_name": "attribution-pipeline"}
    options.update((k, v) for k, v in source.options if k != "schema")
    if password and not user:
        options["password"] = password
    return f"postgresql://{netloc}/{database}?{urlencode(options)}"


def schema_of(source: Source) -> Optional[str]:
    """The schema named by the URL (``postgres://…/database/schema`` or ``?schema=``), else None (the
    user's ``search_path``)."""
    if len(source.location) > 1:
        return source.location[1]
    return source.option("schema")


def open_engine(
    source: str | Source,
    *,
    write: bool = False,
    environ=None,
    env_file=None,
) -> PgEngine:
    """Connect to ``source`` (postgres://…); tables may be missing (``validate`` reports that)."""
    import adbc_driver_postgresql.dbapi as adbc

    source = parse_source(source) if not isinstance(source, Source) else source
    if source.kind != "postgres":
        raise InputError(f"{source.display()}: the Postgres engine reads postgres://user@host:5432/database")
    password = source.secret(environ, env_file)
    try:
        raw = adbc.connect(_uri(source, password), autocommit=True)
    except DriverError as exc:
        raise _error(source, password, "could not connect", exc) from None
    con = _Connection(source, raw, password, read_only=not write)
    try:
        con.run("SET TIME ZONE 'UTC'")
        schema = schema_of(source)
        if schema:
            con.run(f"SET search_path TO {_ident(schema)}")
        if not write:
            con.run("SET default_transaction_read_only = on")
        engine = PgEngine(source, con, _present(con), writable=write)
    except BaseException:
        con.close()
        raise
    return engine


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _present(con: _Connection) -> dict:
    cursor = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
        compiled=True,
    )
    try:
        rows = cursor.fetchall()
    finally:
        cursor.close()
    present: dict = {}
    for table, column, dtype in rows:
        present.setdefault(table, {})[column] = TYPES.get(dtype, dtype.upper())
    return present


def require_inputs(engine: PgEngine) -> None:
    """InputError (one line, naming the source) unless every input table has its required columns."""
    for table, required in REQUIRED_COLUMNS.items():
        if table not in engine.present:
            raise engine.source.error(f"table {table} is missing (it needs columns {', '.join(required)})")
        missing = [c for c in required if c not in engine.present[table]]
        if missing:
            raise engine.source.error(f"table {table} lacks column(s) {', '.join(missing)}")


# ---- the contract: the DuckDB engine's set work, compiled for Postgres --------------------------------


def validate(engine: PgEngine) -> ValidationReport:
    """The findings of ``pipeline.validate.validate`` (``duckdb.validate``'s queries and wording)."""
    return D.validate(engine)  # type: ignore[arg-type]


def journey_batches(engine: PgEngine, window: Window = Window(), batch_rows: int = BATCH_ROWS) -> Iterator[dict]:
    """Batches of whole journeys in ``journeys.journey_columns`` (``duckdb.journey_batches``)."""
    require_inputs(engine)
    return D.journey_batches(engine, window, batch_rows)  # type: ignore[arg-type]


def journeys(engine: PgEngine, window: Window = Window()) -> Journeys:
    """All journeys of ``window`` in one ``Journeys`` (``duckdb.journeys``)."""
    require_inputs(engine)
    return D.journeys(engine, window)  # type: ignore[arg-type]


def channel_report(engine: PgEngine, credits=None, start: Optional[str] = None, end: Optional[str] = None):
    """Rows (channel_name, date, cost, ihc, ihc_revenue), bit-identical to SQLite's (``duckdb.channel_report``)."""
    require_inputs(engine)
    return D.channel_report(engine, credits, start, end)  # type: ignore[arg-type]


def non_converting_summary(engine: PgEngine, window: Window = Window()):
    """Markov/Shapley's non-converting paths, summarised on the server (``paths.non_converting_summary``)."""
    require_inputs(engine)
    return paths.non_converting_summary(engine, window)


def path_summary(engine: PgEngine, window: Window = Window()):
    """Every path of ``window`` with its conversions, non-conversions and value (``paths.path_summary``,
    the DuckDB engine's SQL; in one pass: the server spills its own sorts to disk, so the user buckets
    that bound DuckDB's memory would only scan the sessions again)."""
    require_inputs(engine)
    return paths.path_summary(engine, window, bucket_sessions=None)


def table_versions(engine: PgEngine, tables=tuple(REQUIRED_COLUMNS)) -> dict[str, Optional[str]]:
    """{table: a fingerprint of its content} for staleness (None for a missing table): the row count and
    the exact (NUMERIC) sum of a 64-bit hash of every row's text, one scan per table, in one statement.
    Content, not statistics: ``pg_stat_user_tables`` counters are flushed asynchronously and can be
    reset, and ``xmin`` misses deletes. Order-independent (a table rewritten with the same rows keeps its
    fingerprint); any changed value changes it (up to 64-bit hash collisions)."""
    present = [t for t in tables if t in engine.present]
    versions: dict[str, Optional[str]] = {t: None for t in tables}
    if not present:
        return versions
    parts = [
        f"(SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text"
        f" FROM {_ident(table)} t)"
        for table in present
    ]
    cursor = engine.con.execute(f"SELECT {', '.join(parts)}", compiled=True)
    try:
        row = cursor.fetchall()[0]
    except DriverError as exc:
        raise engine.con.error("reading table versions failed", exc) from None
    finally:
        cursor.close()
    versions.update(zip(present, row))
    return versions


# ---- writing the outputs back ---------------------------------------------------------------------------


def write_outputs(engine: PgEngine, credits, report: list[tuple], record: Optional[dict] = None) -> dict[str, int]:
    """Replace the two output tables: COPY into staging tables, then swap them in one transaction. With
    ``record`` (a run's record, ``engines.run``) that transaction also replaces the run record, so outputs
    and record change together or not at all."""
    if not engine.writable:
        raise engine.source.error("opened read-only; open it with write=True to write the outputs")
    tables = D.output_tables(credits, report)
    con = engine.con
    staged = []
    try:
        for name, table in tables.items():
            staging = f"_staging_{name}"
            staged.append(staging)
            con.run(f"DROP TABLE IF EXISTS {staging}", transpile(f"CREATE TABLE {staging} ({D.DDL[name]})", DIALECT))
            cursor = con.raw.cursor()
            try:
                cursor.adbc_ingest(staging, table, mode="append")
            except DriverError as exc:
                raise con.error(f"writing {name} failed", exc) from None
            finally:
                cursor.close()
    except BaseException:
        _drop_quietly(con, staged)
        raise
    swap = ["BEGIN"]
    for name in tables:
        swap += [
            f"DROP TABLE IF EXISTS {name}",
            f"ALTER TABLE _staging_{name} RENAME TO {name}",
            f"ALTER TABLE {name} RENAME CONSTRAINT _staging_{name}_pkey TO {name}_pkey",
        ]
    if record is not None:
        swap += _record_statements(record)
    _commit_or_drop(con, swap, staged)
    engine.present = _present(con)
    return {name: t.num_rows for name, t in tables.items()}


# ---- what a run needs beyond the stages (pipeline.engines.run) -------------------------------------------

RECORD_TABLE = D.RECORD_TABLE  # a table of the target schema: one row, the last run's record as JSON text


def conversion_count(engine: PgEngine, window: Window = Window()) -> int:
    """The conversions of ``window`` (with an id) (``duckdb.conversion_count``)."""
    require_inputs(engine)
    return D.conversion_count(engine, window)  # type: ignore[arg-type]


def fingerprint(engine: PgEngine) -> str:
    """What the input tables are, for staleness: a hash of ``table_versions`` (each table's row count
    and exact sum of row hashes: content, so writing the outputs or the record never changes it)."""
    import hashlib

    return hashlib.sha256(repr(sorted(table_versions(engine).items())).encode()).hexdigest()


def run_record(engine: PgEngine) -> Optional[dict]:
    """The record the last successful run stored with the outputs (None: none, or unreadable)."""
    import json

    if RECORD_TABLE not in engine.present:
        return None
    rows = engine.sql(f"SELECT record FROM {RECORD_TABLE}")
    try:
        return json.loads(rows[0][0]) if rows else None
    except (TypeError, ValueError):
        return None


def write_run_record(engine: PgEngine, record: dict) -> None:
    """Store ``record`` beside the outputs, replacing the previous one in one transaction (a run stores
    it with the outputs instead: ``write_outputs(…, record=…)``)."""
    if not engine.writable:
        raise engine.source.error("opened read-only; open it with write=True to write the run record")
    con = engine.con
    try:
        con.run("BEGIN", *_record_statements(record), "COMMIT")
    except BaseException:
        con.run("ROLLBACK")
        raise
    engine.present = _present(con)


def _record_statements(record: dict) -> list[str]:
    """Statements (inside a transaction) that replace the run record table's one row with ``record``."""
    import json

    text = json.dumps(record, sort_keys=True, default=str).replace("'", "''")
    return [
        "SET LOCAL standard_conforming_strings = on",  # backslashes in the JSON text are literal
        f"DROP TABLE IF EXISTS {RECORD_TABLE}",
        f"CREATE TABLE {RECORD_TABLE} (record TEXT NOT NULL)",
        f"INSERT INTO {RECORD_TABLE} VALUES ('{text}')",
    ]


def stored_report(engine: PgEngine, start: Optional[str] = None, end: Optional[str] = None) -> Optional[list[tuple]]:
    """The stored ``channel_reporting`` rows in range, sorted by date then channel (None: none stored)
    (``duckdb.stored_report``; byte order of the text, as SQLite's)."""
    return D.stored_report(engine, start, end)  # type: ignore[arg-type]


def _commit_or_drop(con, swap: list[str], staged) -> None:
    """Run the swap statements (after its BEGIN) and COMMIT; on any failure roll back and drop the staging
    tables, so the previous tables stay as they were and nothing staged is left."""
    try:
        con.run(*swap, "COMMIT")
    except BaseException:
        try:
            con.run("ROLLBACK")
        finally:
            _drop_quietly(con, staged)
        raise


def _drop_quietly(con: _Connection, tables: list[str]) -> None:
    for table in tables:
        try:
            con.run(f"DROP TABLE IF EXISTS {table}")
        except InputError:
            pass


# ---- loading tables (``convert DB.db postgres://…``) -----------------------------------------------------


def load_tables(target: Source, tables, overwrite: bool = False, progress=None) -> dict[str, int]:
    """``tables``: (name, iterable of Arrow record batches) pairs, each written with COPY into a staging
    table, then all renamed into place in one transaction. Existing tables of those names are refused
    unless ``overwrite`` (then replaced only in that transaction)."""
    import pyarrow as pa

    tables = list(tables)
    with open_engine(target, write=True) as engine:
        con = engine.con
        clash = [name for name, _ in tables if name in engine.present]
        if clash and not overwrite:
            raise target.error(f"table {', '.join(clash)} already exists; pass --overwrite to replace it")
        rows: dict[str, int] = {}
        staged: list[str] = []
        try:
            for i, (name, batches) in enumerate(tables):
                if progress is not None:
                    progress(i, len(tables), f"convert: {name}")
                staging = f"_staging_{name}"
                staged.append(staging)
                con.run(f"DROP TABLE IF EXISTS {_ident(staging)}")
                batches = iter(batches)
                first = next(batches, None)
                if first is None:
                    raise target.error(f"table {name} came without a schema")
                counted = [0]

                def chained(first=first, batches=batches, counted=counted):
                    for batch in _chain(first, batches):
                        counted[0] += batch.num_rows
                        yield batch

                reader = pa.RecordBatchReader.from_batches(first.schema, chained())
                cursor = con.raw.cursor()
                try:
                    cursor.adbc_ingest(staging, reader, mode="create")
                except InputError:
                    raise
                except DriverError as exc:
                    raise con.error(f"writing {name} failed", exc) from None
                finally:
                    cursor.close()
                rows[name] = counted[0]
        except BaseException:
            _drop_quietly(con, staged)
            raise
        swap = ["BEGIN"]
        for name, _ in tables:
            swap += [
                f"DROP TABLE IF EXISTS {_ident(name)}",
                f"ALTER TABLE {_ident('_staging_' + name)} RENAME TO {_ident(name)}",
            ]
        _commit_or_drop(con, swap, staged)
        con.run(*(f"ANALYZE {_ident(name)}" for name, _ in tables))  # planner statistics for the new tables
        if progress is not None:
            progress(len(tables), len(tables), f"convert: {sum(rows.values()):,} rows")
    return rows


def _chain(first, rest):
    yield first
    yield from rest
