"""The Snowflake engine: the warehouse engine (``pipeline.engines.warehouse``: the DuckDB engine's set work
compiled by sqlglot to Snowflake SQL) over ADBC's Snowflake driver (``adbc-driver-snowflake``: results as
Arrow batches, Arrow tables loaded with PUT + COPY INTO).

Source: ``snowflake://user@account/database/schema?warehouse=WH&role=ROLE``. The password comes from the URL,
else ``SNOWFLAKE_PASSWORD`` in the environment, else ``.env``; the user from the URL, else
``SNOWFLAKE_USER`` (environment, else ``.env``). ``?host=…&port=…&protocol=http|https`` reach a private-link or proxy endpoint instead of
``ACCOUNT.snowflakecomputing.com`` (the tests point them at a loopback fake that refuses the login).

- Names: the engine's SQL names tables and columns unquoted, so Snowflake resolves them in upper case:
  the input tables must have case-insensitive (unquoted) names, as ``CREATE TABLE session_sources`` makes.
- Session: ``TIMEZONE = 'UTC'``. Snowflake has no read-only session: read-only commands send no write, and
  a role with SELECT only is enough for ``validate``, ``status`` and ``export``.
- Swap: DDL commits on its own in Snowflake, so the outputs are staged as ``_STAGING_NAME`` and put in place
  with ``ALTER TABLE … SWAP WITH`` (atomic per table), the run record dropped before and written after
  (``warehouse.Warehouse.swap``).
- Staleness: ``COUNT(*)`` and ``HASH_AGG(*)`` (Snowflake's order-independent hash of every row) per table.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from ..sources import Source
from . import warehouse as W
from .warehouse import Connection, WarehouseEngine
from .warehouse_contract import *  # noqa: F403  (the engine contract: pipeline.engines)

# information_schema.columns.data_type → DuckDB's names (NUMBER with scale 0 is listed as BIGINT).
TYPES = {
    "TEXT": "VARCHAR",
    "VARCHAR": "VARCHAR",
    "FLOAT": "DOUBLE",
    "NUMBER": "DECIMAL",
    "BIGINT": "BIGINT",
    "DATE": "DATE",
    "TIMESTAMP_NTZ": "TIMESTAMP",
    "TIMESTAMP_LTZ": "TIMESTAMP",
    "TIMESTAMP_TZ": "TIMESTAMP",
    "BOOLEAN": "BOOLEAN",
}
USER_ENV = "SNOWFLAKE_USER"


class Snowflake(W.Warehouse):
    kind = "snowflake"
    dialect = "snowflake"
    package = "adbc-driver-snowflake"
    types = TYPES

    def load_driver(self) -> Any:
        import adbc_driver_snowflake.dbapi as adbc
        from adbc_driver_manager import Error

        self.errors = (Error,)
        return adbc

    def connect(self, source: Source, secret: Optional[str], write: bool, env: Mapping[str, str]) -> Any:
        return self.load_driver().connect(db_kwargs=db_kwargs(source, secret, env), autocommit=True)

    def setup(self, con: Connection, write: bool) -> None:
        con.run("ALTER SESSION SET TIMEZONE = 'UTC'")

    def present_sql(self, source: Source) -> str:
        return (
            "SELECT table_name, column_name,"
            " CASE WHEN data_type = 'NUMBER' AND numeric_scale = 0 THEN 'BIGINT' ELSE data_type END"
            " FROM information_schema.columns WHERE table_schema = CURRENT_SCHEMA()"
            " ORDER BY table_name, ordinal_position"
        )

    def ident(self, name: str) -> str:
        return name  # unquoted: resolved in upper case, as the engine's SQL is

    def ingest_name(self, name: str) -> str:
        return name.upper()  # the driver quotes the name it is given; the table was created unquoted

    def replace_sql(self, staging: str, name: str, exists: bool) -> list[str]:
        if exists:
            return [f"ALTER TABLE {staging} SWAP WITH {name}"]  # staging then holds the old rows: dropped after
        return [f"ALTER TABLE {staging} RENAME TO {name}"]

    def table_versions_sql(self, tables: dict[str, list[str]]) -> str:
        parts = [f"(SELECT COUNT(*) || ':' || COALESCE(HASH_AGG(*), 0) FROM {table})" for table in tables]
        return f"SELECT {', '.join(parts)}"

    def error_text(self, exc: BaseException) -> str:
        return super().error_text(exc).removeprefix("[Snowflake] ")


SNOWFLAKE = Snowflake()
OPTIONS = {  # URL query parameter → the driver's option
    "warehouse": "adbc.snowflake.sql.warehouse",
    "role": "adbc.snowflake.sql.role",
    "host": "adbc.snowflake.sql.uri.host",
    "port": "adbc.snowflake.sql.uri.port",
    "protocol": "adbc.snowflake.sql.uri.protocol",
    "region": "adbc.snowflake.sql.region",
}


def db_kwargs(source: Source, secret: Optional[str], environ=None) -> dict[str, str]:
    """The driver's connection options for ``source`` (URL parts, then the environment)."""
    environ = os.environ if environ is None else environ
    user = source.user or environ.get(USER_ENV)
    if not user:
        raise source.error(f"no user: write snowflake://USER@account/… or set {USER_ENV}")
    unknown = sorted({k for k, _ in source.options} - set(OPTIONS))
    if unknown:
        raise source.error(f"unknown option(s) {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
    kwargs = {
        "username": user,
        "adbc.snowflake.sql.account": source.host or "",
        "adbc.snowflake.sql.client_option.login_timeout": f"{W.CONNECT_TIMEOUT}s",
        "adbc.snowflake.sql.client_option.app_name": "attribution-pipeline",
    }
    if secret:
        kwargs["password"] = secret
    if source.port is not None:
        kwargs["adbc.snowflake.sql.uri.port"] = str(source.port)
    if len(source.location) > 0:
        kwargs["adbc.snowflake.sql.db"] = source.location[0]
    if len(source.location) > 1:
        kwargs["adbc.snowflake.sql.schema"] = source.location[1]
    kwargs.update((OPTIONS[k], v) for k, v in source.options)
    return kwargs


def open_engine(source: str | Source, *, write: bool = False, environ=None, env_file=None) -> WarehouseEngine:
    """Connect to ``source`` (snowflake://…); tables may be missing (``validate`` reports that)."""
    return W.open_warehouse(SNOWFLAKE, source, write=write, environ=environ, env_file=env_file)
