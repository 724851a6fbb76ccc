"""The BigQuery engine: the warehouse engine (``pipeline.engines.warehouse``: the DuckDB engine's set work
compiled by sqlglot to GoogleSQL) over ADBC's BigQuery driver (``adbc-driver-bigquery``: results as Arrow
batches from the Storage Read API, Arrow tables loaded by the driver's bulk ingest).

Source: ``bigquery://project/dataset?location=EU``. Credentials: a service-account JSON key file named by
``GOOGLE_APPLICATION_CREDENTIALS`` (environment, else ``.env``) or ``?credentials_file=…``; without one the
driver uses Application Default Credentials (``gcloud auth application-default login``, or the VM's
service account). The key's contents are never read here; its path is masked in messages.

- Names: every query runs with the URL's project and dataset as the default dataset, so the engine's
  unqualified table names are the dataset's tables.
- Swap: BigQuery has no transactions for DDL, so the outputs are staged as ``_staging_NAME`` and put in
  place with ``CREATE OR REPLACE TABLE NAME COPY _staging_NAME`` (atomic per table: readers see the old or
  the new table), the run record dropped before and written after (``warehouse.Warehouse.swap``).
- Staleness: ``COUNT(*)`` and the exact (BIGNUMERIC) sum of ``FARM_FINGERPRINT(TO_JSON_STRING(row))`` per
  table: a content hash (one scan per input table, billed as such).
- Read-only commands send no write; ``run`` needs BigQuery Data Editor on the dataset and Job User.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any, Mapping, Optional

from ..sources import Source
from . import warehouse as W
from .warehouse import Connection, WarehouseEngine
from .warehouse_contract import *  # noqa: F403  (the engine contract: pipeline.engines)

TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL",
    "BIGNUMERIC": "DECIMAL",
    "DATE": "DATE",
    "DATETIME": "TIMESTAMP",
    "TIMESTAMP": "TIMESTAMP",
    "BOOL": "BOOLEAN",
}
OPTIONS = ("location",)


class BigQuery(W.Warehouse):
    kind = "bigquery"
    dialect = "bigquery"
    package = "adbc-driver-bigquery"
    types = TYPES
    secret_is_a_path = True  # GOOGLE_APPLICATION_CREDENTIALS names the key file; its contents are never read

    def load_driver(self) -> Any:
        import adbc_driver_bigquery.dbapi as adbc
        from adbc_driver_manager import Error

        self.errors = (Error,)
        return adbc

    def connect(self, source: Source, secret: Optional[str], write: bool, env: Mapping[str, str]) -> Any:
        return self.load_driver().connect(db_kwargs=db_kwargs(source, secret), autocommit=True)

    def setup(self, con: Connection, write: bool) -> None:
        pass  # the first query (the table listing) is what authenticates: the driver connects lazily

    def present_sql(self, source: Source) -> str:
        project, dataset = location(source)
        return (
            f"SELECT table_name, column_name, data_type FROM `{project}.{dataset}`.INFORMATION_SCHEMA.COLUMNS"
            " ORDER BY table_name, ordinal_position"
        )

    def execute(self, con: "Connection", cursor, text: str, batch_rows: Optional[int]) -> None:
        project, dataset = location(con.source)
        cursor.adbc_statement.set_options(
            **{
                "adbc.bigquery.sql.query.default_project_id": project,
                "adbc.bigquery.sql.query.default_dataset_id": dataset,
            }
        )
        cursor.execute(text)

    def ident(self, name: str) -> str:
        return "`" + name.replace("`", "") + "`"

    def ingest_options(self, con: Connection) -> dict:
        project, dataset = location(con.source)
        return {"catalog_name": project, "db_schema_name": dataset}

    def create_sql(self, staging: str, name: str) -> str:
        # BigQuery's keys are informational and must say so
        return re.sub(r"(PRIMARY KEY \([^)]*\))", r"\1 NOT ENFORCED", super().create_sql(staging, name))

    def replace_sql(self, staging: str, name: str, exists: bool) -> list[str]:
        return [f"CREATE OR REPLACE TABLE {self.ident(name)} COPY {self.ident(staging)}"]

    def table_versions_sql(self, tables: dict[str, list[str]]) -> str:
        parts = [
            "(SELECT CONCAT(CAST(COUNT(*) AS STRING), ':', CAST(COALESCE(SUM(CAST(FARM_FINGERPRINT("
            f"TO_JSON_STRING(t)) AS BIGNUMERIC)), 0) AS STRING)) FROM {self.ident(table)} AS t)"
            for table in tables
        ]
        return f"SELECT {', '.join(parts)}"

    def error_text(self, exc: BaseException) -> str:
        # the driver puts the service's answer (e.g. the token endpoint's) on the lines after the first
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        for prefix in self.error_prefixes:
            text = text.removeprefix(prefix)
        return text.removeprefix("[BigQuery] ")


BIGQUERY = BigQuery()


def location(source: Source) -> tuple[str, str]:
    """(project, dataset) of the URL."""
    if len(source.location) != 1:
        raise source.error("name one dataset: bigquery://project/dataset")
    return source.host or "", source.location[0]


def db_kwargs(source: Source, secret: Optional[str]) -> dict[str, str]:
    """The driver's connection options: project, dataset, location, and the key file when there is one."""
    project, dataset = location(source)
    unknown = sorted({k for k, _ in source.options} - set(OPTIONS))
    if unknown:
        raise source.error(f"unknown option(s) {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
    kwargs = {"adbc.bigquery.sql.project_id": project, "adbc.bigquery.sql.dataset_id": dataset}
    if source.option("location"):
        kwargs["adbc.bigquery.sql.location"] = source.option("location") or ""
    if secret:
        key = _key_json(secret)
        if key is not None:  # the key itself (JSON, or base64 of it: ?credentials_base64=…)
            kwargs["adbc.bigquery.sql.auth_type"] = "adbc.bigquery.sql.auth_type.json_credential_string"
            kwargs["adbc.bigquery.sql.auth_credentials"] = key
        elif os.path.isfile(secret):
            kwargs["adbc.bigquery.sql.auth_type"] = "adbc.bigquery.sql.auth_type.json_credential_file"
            kwargs["adbc.bigquery.sql.auth_credentials"] = secret
        else:  # never echo the value: it may be a key pasted in the wrong place
            raise source.error(
                "the credentials are neither an existing key file nor a service-account key "
                "(GOOGLE_APPLICATION_CREDENTIALS, ?credentials_file= or ?credentials_base64=)"
            )
    else:
        kwargs["adbc.bigquery.sql.auth_type"] = "adbc.bigquery.sql.auth_type.auth_bigquery"
    return kwargs


def open_engine(source: str | Source, *, write: bool = False, environ=None, env_file=None) -> WarehouseEngine:
    """Connect to ``source`` (bigquery://project/dataset); tables may be missing (``validate`` reports that)."""
    return W.open_warehouse(BIGQUERY, source, write=write, environ=environ, env_file=env_file)


def _key_json(secret: str) -> Optional[str]:
    """A service-account key given as its JSON text or as base64 of it; None for anything else (a path)."""
    text = secret.strip()
    if not text.startswith("{"):
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8").strip()
        except (ValueError, UnicodeDecodeError):
            return None
    try:
        return text if isinstance(json.loads(text), dict) else None
    except ValueError:
        return None
