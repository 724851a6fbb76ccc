"""One engine for every SQL warehouse (Postgres, BigQuery, Snowflake, Databricks): the DuckDB engine's set
work compiled to the warehouse's dialect and run where the data is; each warehouse module only says how to
connect, fetch Arrow, load Arrow, name its tables and swap the outputs (a ``Warehouse``).

How it plugs in: the set-work SQL is written once, in ``pipeline.engines.duckdb`` (DuckDB's dialect).
``WarehouseEngine`` offers what those functions use — ``present`` (types named as DuckDB names them),
``sql(query, params)`` and a connection ``con`` with ``sql(query, params).to_arrow_reader(n)``,
``register`` and ``unregister`` — and compiles every query with ``pipeline.engines.dialects.transpile(…,
warehouse.dialect)`` before it reaches the server. So ``validate``, ``journey_batches``, ``journeys``,
``channel_report`` and the path summaries are the DuckDB engine's own functions run on the warehouse
(findings counted by the same aggregate queries and worded by the same code).

What a ``Warehouse`` (one per module: ``postgres``, ``bigquery``, ``snowflake``, ``databricks``) provides:

| member | what |
|---|---|
| ``kind``, ``dialect``, ``package`` | the source kind, sqlglot's dialect, the pip package of its driver |
| ``connect(source, secret, write)`` | the driver's DB-API connection (driver imported only here) |
| ``setup(con, write)`` | session statements after connecting (time zone, schema, read-only) |
| ``present_sql(source)`` / ``types`` | the tables and columns of the target schema; type names → DuckDB's |
| ``reader(con, cursor, batch_rows)`` | the cursor's result as an iterator of Arrow record batches |
| ``ingest(con, name, table)`` | an Arrow table appended to an existing table (COPY / PUT+COPY / load job / INSERT) |
| ``register`` / ``unregister`` | the credits of a report uploaded as a table the SQL can join, and dropped |
| ``swap(con, names, present, record)`` | the staged outputs (``_staging_NAME``) put in place, with the run record |
| ``table_versions_sql(tables)`` | one row: a content fingerprint per input table (staleness) |

Errors: every driver error becomes a one-line ``InputError`` naming the source by ``display()``, with the
secret (wherever it came from) replaced by ``***``. A missing driver package is a one-line ``InputError``
naming the package to install.

Output swap: staging tables are created from ``duckdb.DDL`` (compiled) and filled first; a failure there
drops them and leaves the previous outputs. Then ``swap``: Postgres renames in one transaction (outputs and
record change together); BigQuery, Snowflake and Databricks have no transactional DDL, so the swap drops
the run record first, replaces each output table by one atomic statement (BigQuery ``CREATE OR REPLACE
TABLE … COPY``, Snowflake ``ALTER TABLE … SWAP WITH``, Databricks ``INSERT OVERWRITE`` — readers see the
old or the new table, never a half-written one) and writes the new record last: a failure in between
leaves no record, so ``status`` says missing and the next ``run`` redoes everything. Inputs are never
touched.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional
from urllib.parse import quote

from ..errors import InputError
from ..journeys import Journeys
from ..schema import REQUIRED_COLUMNS
from ..sources import Source, parse_source
from ..validate import ValidationReport
from ..window import Window
from . import duckdb as D
from . import paths
from .dialects import transpile

OUTPUT_TABLES = D.OUTPUT_TABLES
BATCH_ROWS = D.BATCH_ROWS
RECORD_TABLE = D.RECORD_TABLE  # a table of the target schema: one row, the last run's record as JSON text
STAGING = "_staging_"
CONNECT_TIMEOUT = 10  # seconds, where the driver lets us say


class Warehouse:
    """What differs between SQL warehouses; the defaults suit an ADBC driver."""

    kind = ""
    dialect = ""
    package = ""  # pip package of the driver
    types: dict[str, str] = {}  # the warehouse's type names (upper case) → DuckDB's
    errors: tuple = ()  # the driver's exception classes (set by ``load_driver``)
    secret_is_a_path = False  # the "secret" names a key file (BigQuery): messages may show it
    # DDL and bulk loads inside a transaction (Postgres): the outputs are staged inside the swap's
    # transaction, so a run killed while staging leaves nothing behind
    transactional_ddl = False
    error_prefixes = ("IO: ", "NOT_FOUND: ", "INVALID_ARGUMENT: ", "INVALID_STATE: ", "UNKNOWN: ", "INTERNAL: ")

    # ---- connecting ----------------------------------------------------------------------------------
    def load_driver(self) -> Any:
        """Import the driver (only when such a source is used); sets ``errors``."""
        raise NotImplementedError

    def connect(self, source: Source, secret: Optional[str], write: bool, env: Mapping[str, str]) -> Any:
        """The driver's connection; ``env``: the environment over ``.env`` (non-secret settings)."""
        raise NotImplementedError

    def setup(self, con: "Connection", write: bool) -> None:
        """Session statements run after connecting."""

    def present_sql(self, source: Source) -> str:
        """(table, column, type) rows of the target schema, in the warehouse's dialect."""
        raise NotImplementedError

    def type_name(self, name: str) -> str:
        base = name.upper().split("(")[0].strip()
        return self.types.get(base, base)

    def ident(self, name: str) -> str:
        """``name`` quoted for the warehouse (tables this engine creates or reads by name)."""
        return '"' + name.replace('"', '""') + '"'

    # ---- results ----------------------------------------------------------------------------------------
    def execute(self, con: "Connection", cursor, text: str, batch_rows: Optional[int]) -> None:
        cursor.execute(text)

    def reader(self, con: "Connection", cursor, batch_rows: int):
        return cursor.fetch_record_batch()

    def rows(self, cursor) -> list[tuple]:
        return [tuple(r) for r in cursor.fetchall()]

    # ---- writing ----------------------------------------------------------------------------------------
    def ingest_name(self, name: str) -> str:
        """The name the driver's bulk load must be given for a table created as ``name`` (unquoted)."""
        return name

    def ingest(self, con: "Connection", name: str, table, label: Optional[str] = None) -> None:
        """Append the Arrow ``table`` to the existing table ``name`` (ADBC bulk ingest); errors say
        ``writing LABEL failed`` (the output a staging table stands for)."""
        cursor = con.raw.cursor()
        try:
            cursor.adbc_ingest(self.ingest_name(name), table, mode="append", **self.ingest_options(con))
        except self.errors as exc:
            raise con.error(f"writing {label or name} failed", exc) from None
        finally:
            cursor.close()

    def ingest_options(self, con: "Connection") -> dict:
        return {}

    def create_sql(self, staging: str, name: str) -> str:
        return transpile(f"CREATE TABLE {staging} ({D.DDL[name]})", self.dialect)

    def drop_sql(self, name: str) -> str:
        return f"DROP TABLE IF EXISTS {name}"

    def register(self, con: "Connection", name: str, table) -> None:
        """``table`` as a table ``name`` the next queries can join (a real table of the target schema
        here, so the engine must be open for writing; Postgres uses a temporary table instead)."""
        if con.read_only:
            raise con.source.error("opened read-only; the report's credits need a table: open it with write=True")
        con.run(self.drop_sql(name), transpile(f"CREATE TABLE {name} ({CREDITS_DDL})", self.dialect))
        self.ingest(con, name, table)

    def unregister(self, con: "Connection", name: str) -> None:
        con.run(self.drop_sql(name))

    def record_sql(self, record: dict) -> str:
        """One statement that replaces the run record table with ``record`` (atomic on its own)."""
        text = D.record_text(record)
        return transpile(
            f"CREATE OR REPLACE TABLE {RECORD_TABLE} AS SELECT CAST($record AS VARCHAR) AS record",
            self.dialect,
            {"record": text},
        )

    def replace_sql(self, staging: str, name: str, exists: bool) -> list[str]:
        """Statements that put ``staging`` in place of ``name`` (each output atomically)."""
        raise NotImplementedError

    def swap(self, con: "Connection", names: list[str], present: dict, record: Optional[dict]) -> None:
        """Put every staged output in place; no transactional DDL: record dropped first, written last."""
        staged = [STAGING + name for name in names]
        try:
            con.run(self.drop_sql(RECORD_TABLE))
            for name in names:
                con.run(*self.replace_sql(STAGING + name, name, name in present))
            if record is not None:
                con.run(self.record_sql(record))
        finally:
            drop_quietly(con, staged)

    def write_record(self, con: "Connection", record: dict) -> None:
        con.run(self.record_sql(record))

    def table_versions_sql(self, tables: dict[str, list[str]]) -> str:
        """One row: per table (in order) a text that changes whenever its content does."""
        raise NotImplementedError

    # ---- errors -------------------------------------------------------------------------------------------
    def error_text(self, exc: BaseException) -> str:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        text = lines[0] if lines else type(exc).__name__
        for prefix in self.error_prefixes:
            text = text.removeprefix(prefix)
        return text


# The credits a report joins (``duckdb.channel_report`` registers them as ``_credits``).
CREDITS_DDL = "conv_id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, ihc DOUBLE NOT NULL"


def load_driver(warehouse: Warehouse, source: Source) -> Any:
    """The warehouse's driver module; a one-line InputError naming the package when it is missing."""
    try:
        return warehouse.load_driver()
    except ImportError:
        raise source.error(
            f"the {warehouse.kind} engine needs the driver package {warehouse.package}: "
            f"pip install -r requirements-warehouses.txt (or pip install {warehouse.package})"
        ) from None


@dataclass
class WarehouseEngine:
    """An open session on a warehouse schema."""

    source: Source
    con: "Connection" = field(repr=False)
    present: dict = field(default_factory=dict, repr=False)  # table → {column: DuckDB type name}
    writable: bool = False

    @property
    def warehouse(self) -> Warehouse:
        return self.con.warehouse

    def sql(self, query: str, params=None) -> list[tuple]:
        """DuckDB-dialect ``query`` run on the warehouse; all rows."""
        cursor = self.con.execute(query, params)
        try:
            return self.con.warehouse.rows(cursor)
        except self.con.warehouse.errors as exc:  # a driver error while fetching
            raise self.con.error("a query failed", exc) from None
        finally:
            cursor.close()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "WarehouseEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Result:
    """What ``con.sql(...)`` returns in DuckDB, as far as the shared engine functions use it."""

    def __init__(self, con: "Connection", query: str, params):
        self.con, self.query, self.params = con, query, params

    def to_arrow_reader(self, batch_rows: int):
        con = self.con
        cursor = con.execute(self.query, self.params, batch_rows=int(batch_rows))
        try:
            return Batches(con.warehouse.reader(con, cursor, int(batch_rows)), cursor, con)
        except con.warehouse.errors as exc:
            cursor.close()
            raise con.error("a query failed", exc) from None


class Batches:
    """An Arrow batch stream whose driver errors become InputErrors; closes its cursor at the end."""

    def __init__(self, reader, cursor, con: "Connection"):
        self.reader, self.cursor, self.con = reader, cursor, con

    def __iter__(self):
        try:
            for batch in self.reader:
                yield batch
        except InputError:
            raise
        except self.con.warehouse.errors as exc:
            raise self.con.error("reading the results failed", exc) from None
        finally:
            self.cursor.close()


class Connection:
    """The driver's connection, speaking DuckDB-dialect SQL (compiled to the warehouse's per query)."""

    def __init__(self, warehouse: Warehouse, source: Source, raw, secret: Optional[str], read_only: bool):
        self.warehouse, self.source, self.raw = warehouse, source, raw
        self.password, self.read_only = secret, read_only

    def error(self, what: str, exc: BaseException) -> InputError:
        return driver_error(self.warehouse, self.source, self.password, what, exc)

    def execute(self, query: str, params=None, *, batch_rows: Optional[int] = None, compiled: bool = False):
        text = query if compiled else transpile(query, self.warehouse.dialect, params)
        cursor = self.raw.cursor()
        try:
            self.warehouse.execute(self, cursor, text, batch_rows)
        except self.warehouse.errors as exc:
            cursor.close()
            raise self.error("a query failed", exc) from None
        return cursor

    def run(self, *statements: str) -> None:
        """Statements in the warehouse's dialect, as they are, results discarded."""
        for statement in statements:
            self.execute(statement, compiled=True).close()

    def sql(self, query: str, params=None) -> Result:
        return Result(self, query, params)

    def register(self, name: str, table) -> None:
        self.warehouse.register(self, name, table)

    def unregister(self, name: str) -> None:
        self.warehouse.unregister(self, name)

    def close(self) -> None:
        try:
            self.raw.close()
        except self.warehouse.errors:  # closing a broken connection: nothing left to do
            pass


def driver_error(
    warehouse: Warehouse, source: Source, secret: Optional[str], what: str, exc: BaseException
) -> InputError:
    """One line naming the source, the driver's own words without its prefixes, never the secret."""
    message = f"{what}: {warehouse.error_text(exc)}"
    if secret and not warehouse.secret_is_a_path:
        message = message.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return source.error(message)


def open_warehouse(
    warehouse: Warehouse, source: str | Source, *, write: bool = False, environ=None, env_file=None
) -> WarehouseEngine:
    """Connect to ``source`` with ``warehouse``'s driver; tables may be missing (``validate`` reports
    that). Credentials: ``source.secret`` (URL, then environment, then ``.env``)."""
    source = parse_source(source) if not isinstance(source, Source) else source
    if source.kind != warehouse.kind:
        raise InputError(f"{source.display()}: the {warehouse.kind} engine reads {warehouse.kind}:// sources")
    load_driver(warehouse, source)
    secret = source.secret(environ, env_file)
    try:
        raw = warehouse.connect(source, secret, write, settings(environ, env_file))
    except InputError:
        raise
    except warehouse.errors as exc:
        raise driver_error(warehouse, source, secret, "could not connect", exc) from None
    con = Connection(warehouse, source, raw, secret, read_only=not write)
    try:
        warehouse.setup(con, write)
        engine = WarehouseEngine(source, con, present_tables(con), writable=write)
    except BaseException:
        con.close()
        raise
    return engine


def settings(environ=None, env_file=None) -> dict[str, str]:
    """The environment over ``.env``'s values (``env_file``, else ``.env`` in the working directory), for
    non-secret settings such as ``SNOWFLAKE_USER`` (secrets come through ``Source.secret``)."""
    from pathlib import Path

    from dotenv import dotenv_values

    candidate = Path(env_file) if env_file is not None else Path.cwd() / ".env"
    values = {k: v for k, v in dotenv_values(candidate).items() if v is not None} if candidate.is_file() else {}
    return {**values, **(os.environ if environ is None else environ)}


def present_tables(con: Connection) -> dict:
    """{table: {column: DuckDB type name}} of the target schema (names in lower case)."""
    cursor = con.execute(con.warehouse.present_sql(con.source), compiled=True)
    try:
        rows = con.warehouse.rows(cursor)
    except con.warehouse.errors as exc:
        raise con.error("listing the tables failed", exc) from None
    finally:
        cursor.close()
    present: dict = {}
    for table, column, dtype in rows:
        present.setdefault(str(table).lower(), {})[str(column).lower()] = con.warehouse.type_name(str(dtype))
    return present


def require_inputs(engine: WarehouseEngine) -> None:
    """InputError (one line, naming the source) unless every input table has its required columns."""
    for table, required in REQUIRED_COLUMNS.items():
        if table not in engine.present:
            raise engine.source.error(f"table {table} is missing (it needs columns {', '.join(required)})")
        missing = [c for c in required if c not in engine.present[table]]
        if missing:
            raise engine.source.error(f"table {table} lacks column(s) {', '.join(missing)}")


def rollback_quietly(con: Connection) -> None:
    """Roll the open transaction back; a connection already lost has rolled it back itself."""
    try:
        con.run("ROLLBACK")
    except InputError:
        pass


def drop_quietly(con: Connection, tables: list[str]) -> None:
    for table in tables:
        try:
            con.run(con.warehouse.drop_sql(table))
        except InputError:
            pass


# ---- the contract: the DuckDB engine's set work, compiled for the warehouse ----------------------------


def validate(engine: WarehouseEngine) -> ValidationReport:
    """The findings of ``pipeline.validate.validate`` (``duckdb.validate``'s queries and wording)."""
    return D.validate(engine)  # type: ignore[arg-type]


def journey_batches(engine: WarehouseEngine, window: Window = Window(), batch_rows: int = BATCH_ROWS) -> Iterator[dict]:
    """Batches of whole journeys in ``journeys.journey_columns`` (``duckdb.journey_batches``)."""
    require_inputs(engine)
    return D.journey_batches(engine, window, batch_rows)  # type: ignore[arg-type]


def journeys(engine: WarehouseEngine, window: Window = Window()) -> Journeys:
    """All journeys of ``window`` in one ``Journeys`` (``duckdb.journeys``)."""
    require_inputs(engine)
    return D.journeys(engine, window)  # type: ignore[arg-type]


def channel_report(engine: WarehouseEngine, credits=None, start: Optional[str] = None, end: Optional[str] = None):
    """Rows (channel_name, date, cost, ihc, ihc_revenue), bit-identical to SQLite's (``duckdb.channel_report``)."""
    require_inputs(engine)
    return D.channel_report(engine, credits, start, end)  # type: ignore[arg-type]


def non_converting_summary(engine: WarehouseEngine, window: Window = Window()):
    """Markov/Shapley's non-converting paths, summarised on the server (``paths.non_converting_summary``)."""
    require_inputs(engine)
    return paths.non_converting_summary(engine, window)


def path_summary(engine: WarehouseEngine, window: Window = Window()):
    """Every path of ``window`` with its conversions, non-conversions and value (``paths.path_summary``,
    the DuckDB engine's SQL, in one pass: the warehouse spills its own sorts)."""
    require_inputs(engine)
    return paths.path_summary(engine, window, bucket_sessions=None)


def conversion_count(engine: WarehouseEngine, window: Window = Window()) -> int:
    """The conversions of ``window`` (with an id) (``duckdb.conversion_count``)."""
    require_inputs(engine)
    return D.conversion_count(engine, window)  # type: ignore[arg-type]


def table_versions(engine: WarehouseEngine, tables=tuple(REQUIRED_COLUMNS)) -> dict[str, Optional[str]]:
    """{table: a fingerprint of its content} for staleness (None for a missing table), one statement
    (``Warehouse.table_versions_sql``: row count and an order-independent sum of row hashes)."""
    present = {t: list(engine.present[t]) for t in tables if t in engine.present}
    versions: dict[str, Optional[str]] = {t: None for t in tables}
    if not present:
        return versions
    con = engine.con
    cursor = con.execute(con.warehouse.table_versions_sql(present), compiled=True)
    try:
        row = con.warehouse.rows(cursor)[0]
    except con.warehouse.errors as exc:
        raise con.error("reading table versions failed", exc) from None
    finally:
        cursor.close()
    versions.update(zip(present, (None if v is None else str(v) for v in row)))
    return versions


def fingerprint(engine: WarehouseEngine) -> str:
    """What the input tables are, for staleness: a hash of ``table_versions`` (content, so writing the
    outputs or the record never changes it)."""
    return hashlib.sha256(repr(sorted(table_versions(engine).items())).encode()).hexdigest()


def run_record(engine: WarehouseEngine) -> Optional[dict]:
    """The record the last successful run stored with the outputs (None: none, or unreadable)."""
    if RECORD_TABLE not in engine.present:
        return None
    return D.record_of(engine.sql(f"SELECT record FROM {RECORD_TABLE}"))


def write_run_record(engine: WarehouseEngine, record: dict) -> None:
    """Store ``record`` beside the outputs, replacing the previous one (one statement, or one transaction
    on Postgres); a run stores it with the outputs instead (``write_outputs(…, record=…)``)."""
    if not engine.writable:
        raise engine.source.error("opened read-only; open it with write=True to write the run record")
    engine.warehouse.write_record(engine.con, record)
    engine.present = present_tables(engine.con)


def stored_report(
    engine: WarehouseEngine, start: Optional[str] = None, end: Optional[str] = None
) -> Optional[list[tuple]]:
    """The stored ``channel_reporting`` rows in range, sorted by date then channel (None: none stored)."""
    return D.stored_report(engine, start, end)  # type: ignore[arg-type]


def write_outputs(
    engine: WarehouseEngine, credits, report: list[tuple], record: Optional[dict] = None
) -> dict[str, int]:
    """Replace the two output tables: each filled as ``_staging_NAME``, then ``Warehouse.swap`` puts them
    in place with ``record`` (a run's record, ``engines.run``). With ``transactional_ddl`` the staging is
    inside the transaction the swap commits."""
    if not engine.writable:
        raise engine.source.error("opened read-only; open it with write=True to write the outputs")
    wh = engine.warehouse
    tables = D.output_tables(credits, report)
    con = engine.con
    staged: list[str] = []
    if wh.transactional_ddl:
        con.run("BEGIN")
    try:
        for name, table in tables.items():
            staging = STAGING + name
            staged.append(staging)
            con.run(wh.drop_sql(staging), wh.create_sql(staging, name))
            wh.ingest(con, staging, table, name)
    except BaseException:
        if wh.transactional_ddl:
            rollback_quietly(con)
        else:
            drop_quietly(con, staged)
        raise
    wh.swap(con, list(tables), engine.present, record)
    engine.present = present_tables(con)
    return {name: t.num_rows for name, t in tables.items()}
