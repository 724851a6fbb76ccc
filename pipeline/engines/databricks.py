"""The Databricks engine: the warehouse engine (``pipeline.engines.warehouse``: the DuckDB engine's set work
compiled by sqlglot to Databricks SQL) on a Databricks SQL warehouse through ``databricks-sql-connector``
(results fetched as Arrow; there is no ADBC driver for Databricks on PyPI).

Source: ``databricks://HOST/catalog/schema?http_path=/sql/1.0/warehouses/ID`` (HOST: the workspace,
``dbc-….cloud.databricks.com``; ``HOST:PORT`` for a proxy). The personal access token comes from
``?access_token=…`` in the URL (masked everywhere), else ``DATABRICKS_TOKEN`` in the environment, else
``.env``; ``http_path`` may also come from ``DATABRICKS_HTTP_PATH`` (environment, else ``.env``).

- Session: the URL's catalog and schema are the session's (the engine's unqualified table names are that
  schema's tables), time zone UTC. No read-only session: read-only commands send no write, and SELECT on
  the schema is enough for ``validate``, ``status`` and ``export``.
- Loading Arrow: the connector has no bulk load, so the outputs (and the credits a report joins) are
  written with multi-row ``INSERT … VALUES`` of exact literals (``repr`` of each double, suffixed ``D``),
  ``INSERT_ROWS`` rows a statement.
- Swap: Delta tables have no multi-statement DDL transaction; the outputs are staged as
  ``_staging_NAME`` and put in place with ``INSERT OVERWRITE NAME SELECT * FROM _staging_NAME`` (one Delta
  commit, atomic: readers see the old or the new rows; ``ALTER TABLE … RENAME TO`` the first time), the
  run record dropped before and written after (``warehouse.Warehouse.swap``).
- Staleness: ``count(*)`` and the exact (DECIMAL(38,0)) sum of ``xxhash64`` of every row per table.
- Errors: connection attempts are not retried for minutes (the connector's default): one attempt,
  ``CONNECT_TIMEOUT`` seconds.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Optional

from ..sources import Source
from . import warehouse as W
from .warehouse import Connection, WarehouseEngine
from .warehouse_contract import *  # noqa: F403  (the engine contract: pipeline.engines)

TYPES = {
    "STRING": "VARCHAR",
    "VARCHAR": "VARCHAR",
    "BIGINT": "BIGINT",
    "LONG": "BIGINT",
    "INT": "INTEGER",
    "INTEGER": "INTEGER",
    "SMALLINT": "SMALLINT",
    "DOUBLE": "DOUBLE",
    "FLOAT": "FLOAT",
    "DECIMAL": "DECIMAL",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMP_NTZ": "TIMESTAMP",
    "BOOLEAN": "BOOLEAN",
}
HTTP_PATH_ENV = "DATABRICKS_HTTP_PATH"
OPTIONS = ("http_path",)
INSERT_ROWS = 2000  # rows per INSERT … VALUES statement


class Databricks(W.Warehouse):
    kind = "databricks"
    dialect = "databricks"
    package = "databricks-sql-connector"
    types = TYPES

    def load_driver(self) -> Any:
        import logging

        import urllib3
        from databricks import sql
        from databricks.sql.exc import Error

        # the connector logs each failed request before raising it; the raised error is the one line shown
        logging.getLogger("databricks.sql").setLevel(logging.CRITICAL)
        self.errors = (Error, urllib3.exceptions.HTTPError, OSError)
        return sql

    def error_text(self, exc: BaseException) -> str:
        context = getattr(exc, "context", None)  # the connector's RequestError: the HTTP answer
        if isinstance(context, dict) and context.get("http-code"):
            said = str(context.get("error-message") or "").strip(": ")  # e.g. "Invalid access token."
            return f"HTTP {context['http-code']}" + (f": {said}" if said else "")
        reason = getattr(exc, "reason", None)  # urllib3's MaxRetryError: the last attempt's error
        text = super().error_text(reason if isinstance(reason, BaseException) else exc)
        return text.split("): ", 1)[-1] if "Connection(host=" in text else text

    def connect(self, source: Source, secret: Optional[str], write: bool, env: Mapping[str, str]) -> Any:
        return self.load_driver().connect(**connect_kwargs(source, secret, env))

    def setup(self, con: Connection, write: bool) -> None:
        con.run("SET TIME ZONE 'UTC'")

    def present_sql(self, source: Source) -> str:
        return (
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_catalog = current_catalog() AND table_schema = current_schema()"
            " ORDER BY table_name, ordinal_position"
        )

    def reader(self, con: Connection, cursor, batch_rows: int):
        return _arrow_batches(cursor, batch_rows)

    def ident(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def ingest(self, con: Connection, name: str, table, label: Optional[str] = None) -> None:
        for statement in insert_statements(name, table, INSERT_ROWS):
            con.run(statement)

    def replace_sql(self, staging: str, name: str, exists: bool) -> list[str]:
        if exists:
            return [f"INSERT OVERWRITE {self.ident(name)} SELECT * FROM {self.ident(staging)}"]
        return [f"ALTER TABLE {self.ident(staging)} RENAME TO {self.ident(name)}"]

    def table_versions_sql(self, tables: dict[str, list[str]]) -> str:
        parts = [
            "(SELECT concat(CAST(count(*) AS STRING), ':', CAST(coalesce(sum(CAST(xxhash64("
            + ", ".join(self.ident(c) for c in columns)
            + f") AS DECIMAL(38, 0))), 0) AS STRING)) FROM {self.ident(table)})"
            for table, columns in tables.items()
        ]
        return f"SELECT {', '.join(parts)}"


DATABRICKS = Databricks()


def _arrow_batches(cursor, batch_rows: int):
    """The result as Arrow record batches, ``batch_rows`` rows fetched at a time."""
    while True:
        table = cursor.fetchmany_arrow(batch_rows)
        if table.num_rows == 0:
            return
        yield from table.to_batches()


def literal(value) -> str:
    """A Databricks SQL literal that reads back exactly: text with its quotes and backslashes escaped, a
    double as its shortest round-trip ``repr`` with the ``D`` suffix (a DOUBLE literal, not a DECIMAL)."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"CAST('{value!r}' AS DOUBLE)"
        return f"{value!r}D"
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"no Databricks literal for {type(value).__name__}")


def insert_statements(name: str, table, rows: int) -> list[str]:
    """``INSERT INTO name VALUES (…), …`` statements for the Arrow ``table``, ``rows`` rows each."""
    columns = ", ".join(DATABRICKS.ident(c) for c in table.column_names)
    statements = []
    for start in range(0, table.num_rows, rows):
        part = table.slice(start, rows).to_pydict()
        values = zip(*(part[c] for c in table.column_names))
        body = ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in values)
        statements.append(f"INSERT INTO {DATABRICKS.ident(name)} ({columns}) VALUES {body}")
    return statements


def connect_kwargs(source: Source, secret: Optional[str], environ=None) -> dict[str, Any]:
    """``databricks.sql.connect`` keywords for ``source``: host, port, path, token, catalog, schema, and a
    single quick attempt instead of the connector's 15 minutes of retries."""
    environ = os.environ if environ is None else environ
    unknown = sorted({k for k, _ in source.options} - set(OPTIONS))
    if unknown:
        raise source.error(f"unknown option(s) {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
    http_path = source.option("http_path") or environ.get(HTTP_PATH_ENV)
    if not http_path:
        raise source.error(f"no SQL warehouse: add ?http_path=/sql/1.0/warehouses/ID or set {HTTP_PATH_ENV}")
    if not secret:
        raise source.error("no access token: set DATABRICKS_TOKEN (environment or .env)")
    kwargs: dict[str, Any] = {
        "server_hostname": source.host,
        "http_path": http_path,
        "access_token": secret,
        "_retry_stop_after_attempts_count": 1,
        "_retry_stop_after_attempts_duration": W.CONNECT_TIMEOUT,
        "_socket_timeout": 15 * 60,
        "enable_telemetry": False,
        "user_agent_entry": "attribution-pipeline",
    }
    if source.port is not None:
        kwargs["_port"] = source.port
    if len(source.location) > 0:
        kwargs["catalog"] = source.location[0]
    if len(source.location) > 1:
        kwargs["schema"] = source.location[1]
    return kwargs


def open_engine(source: str | Source, *, write: bool = False, environ=None, env_file=None) -> WarehouseEngine:
    """Connect to ``source`` (databricks://…); tables may be missing (``validate`` reports that)."""
    return W.open_warehouse(DATABRICKS, source, write=write, environ=environ, env_file=env_file)
