"""The Postgres engine: the DuckDB engine's set work, compiled to PostgreSQL and run on the server that holds
the data (``postgres://user@host:5432/database[/schema]``; same numbers as the SQLite engine, parity tests
against a real Debian ``postgresql`` in tests/test_engine_postgres.py).

How it plugs in: ``pipeline.engines.warehouse`` runs the DuckDB engine's set-work SQL, compiled to the
warehouse's dialect, on any SQL warehouse; this module is its ``Postgres`` ``Warehouse`` (connecting,
fetching Arrow batches, uploading credits, the transactional output swap and the content fingerprints)
and ``load_tables`` for ``convert``. So ``validate``, ``journey_batches``, ``journeys`` and
``channel_report`` are the DuckDB engine's own functions run on this engine (findings counted by the same
aggregate queries and worded by the same code).

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

from typing import Any, Mapping, Optional
from urllib.parse import quote, urlencode

from ..errors import InputError
from ..sources import Source
from . import warehouse as W
from .duckdb import record_text
from .warehouse import RECORD_TABLE, Connection, WarehouseEngine
from .warehouse_contract import *  # noqa: F403  (the engine contract: pipeline.engines)

DIALECT = "postgres"
CONNECT_TIMEOUT = W.CONNECT_TIMEOUT  # seconds
PgEngine = WarehouseEngine

# Postgres type names (information_schema.columns.data_type) → the DuckDB names the shared SQL tests for.
TYPES = {
    "TEXT": "VARCHAR",
    "CHARACTER VARYING": "VARCHAR",
    "CHARACTER": "VARCHAR",
    "DOUBLE PRECISION": "DOUBLE",
    "REAL": "FLOAT",
    "BIGINT": "BIGINT",
    "INTEGER": "INTEGER",
    "SMALLINT": "SMALLINT",
    "NUMERIC": "DECIMAL",
    "DATE": "DATE",
    "BOOLEAN": "BOOLEAN",
}


class Postgres(W.Warehouse):
    """ADBC's libpq driver; a read-only session unless opened for writing; the swap in one transaction."""

    kind = "postgres"
    dialect = DIALECT
    package = "adbc-driver-postgresql"
    types = TYPES

    def load_driver(self) -> Any:
        import adbc_driver_postgresql.dbapi as adbc
        from adbc_driver_manager import Error

        self.errors = (Error,)
        return adbc

    def connect(self, source: Source, secret: Optional[str], write: bool, env: Mapping[str, str]) -> Any:
        return self.load_driver().connect(_uri(source, secret), autocommit=True)

    def setup(self, con: Connection, write: bool) -> None:
        con.run("SET TIME ZONE 'UTC'")
        schema = schema_of(con.source)
        if schema:
            con.run(f"SET search_path TO {_ident(schema)}")
        if not write:
            con.run("SET default_transaction_read_only = on")

    def present_sql(self, source: Source) -> str:
        return (
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        )

    def execute(self, con: "Connection", cursor, text: str, batch_rows: Optional[int]) -> None:
        if batch_rows:  # the driver's size hint for each Arrow batch (~64 bytes per journey row)
            cursor.adbc_statement.set_options(
                **{"adbc.postgresql.batch_size_hint_bytes": str(max(4096, 64 * batch_rows))}
            )
        cursor.execute(text)

    def error_text(self, exc: BaseException) -> str:
        text = super().error_text(exc)
        return text.removeprefix("[libpq] ").replace("ERROR:  ", "").replace("FATAL:  ", "")

    def register(self, con: Connection, name: str, table) -> None:
        """``table`` (Arrow) uploaded with COPY as temporary table ``name`` (this session only: the one
        write a read-only session makes, allowed for its duration)."""
        _writing(con, True)
        cursor = con.raw.cursor()
        try:
            cursor.adbc_ingest(name, table, mode="replace", temporary=True)
        except self.errors as exc:
            raise con.error(f"uploading {name} failed", exc) from None
        finally:
            cursor.close()
            _writing(con, False)

    def unregister(self, con: Connection, name: str) -> None:
        _writing(con, True)
        try:
            con.run(f'DROP TABLE IF EXISTS pg_temp."{name}"')
        finally:
            _writing(con, False)

    transactional_ddl = True

    def swap(self, con: Connection, names: list[str], present: dict, record: Optional[dict]) -> None:
        """The end of the transaction that staged the outputs (``warehouse.write_outputs``): drop old,
        rename staging, rename its key; the run record replaced with them."""
        swap = []
        for name in names:
            swap += [
                f"DROP TABLE IF EXISTS {name}",
                f"ALTER TABLE _staging_{name} RENAME TO {name}",
                f"ALTER TABLE {name} RENAME CONSTRAINT _staging_{name}_pkey TO {name}_pkey",
            ]
        if record is not None:
            swap += _record_statements(record)
        _commit_or_drop(con, swap, [W.STAGING + name for name in names])

    def write_record(self, con: Connection, record: dict) -> None:
        try:
            con.run("BEGIN", *_record_statements(record), "COMMIT")
        except BaseException:
            con.run("ROLLBACK")
            raise

    def table_versions_sql(self, tables: dict[str, list[str]]) -> str:
        """Each table's row count and the exact (NUMERIC) sum of a 64-bit hash of every row's text, one
        scan per table. Content, not statistics: ``pg_stat_user_tables`` counters are flushed
        asynchronously and can be reset, and ``xmin`` misses deletes. Order-independent; any changed
        value changes it (up to 64-bit hash collisions)."""
        parts = [
            f"(SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text"
            f" FROM {_ident(table)} t)"
            for table in tables
        ]
        return f"SELECT {', '.join(parts)}"


POSTGRES = Postgres()


def _writing(con: Connection, on: bool) -> None:
    if con.read_only:
        con.run(f"SET default_transaction_read_only = {'off' if on else 'on'}")


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
) -> WarehouseEngine:
    """Connect to ``source`` (postgres://…); tables may be missing (``validate`` reports that)."""
    return W.open_warehouse(POSTGRES, source, write=write, environ=environ, env_file=env_file)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _present(con: Connection) -> dict:
    return W.present_tables(con)


def _record_statements(record: dict) -> list[str]:
    """Statements (inside a transaction) that replace the run record table's one row with ``record``."""
    text = record_text(record).replace("'", "''")
    return [
        "SET LOCAL standard_conforming_strings = on",  # backslashes in the JSON text are literal
        f"DROP TABLE IF EXISTS {RECORD_TABLE}",
        f"CREATE TABLE {RECORD_TABLE} (record TEXT NOT NULL)",
        f"INSERT INTO {RECORD_TABLE} VALUES ('{text}')",
    ]


def _commit_or_drop(con: Connection, swap: list[str], staged) -> None:
    """Run the swap statements in the transaction that staged the tables, and COMMIT; on any failure roll
    back (the staging tables go with it; dropped again in case), so the previous tables stay as they were
    and nothing staged is left."""
    try:
        con.run(*swap, "COMMIT")
    except BaseException:
        try:
            con.run("ROLLBACK")
        finally:
            _drop_quietly(con, staged)
        raise


def _drop_quietly(con: Connection, tables: list[str]) -> None:
    W.drop_quietly(con, tables)


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
        con.run("BEGIN")  # the staging tables too: a convert killed half-way leaves nothing behind
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
                except POSTGRES.errors as exc:
                    raise con.error(f"writing {name} failed", exc) from None
                finally:
                    cursor.close()
                rows[name] = counted[0]
        except BaseException:
            W.rollback_quietly(con)
            raise
        swap = []
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
