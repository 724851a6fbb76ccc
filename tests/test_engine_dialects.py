"""The engines' SQL compiled for the warehouses that cannot be reached from here (BigQuery, Snowflake,
Databricks) and for Postgres (run for real in tests/test_engine_postgres.py): every query the DuckDB engine
issues — validation on a database full of problems and on the demo with a stored attribution, journeys
for each window, the Markov/Shapley path summaries, the channel report with uploaded, stored and no
credit, the output tables' DDL — is compiled by ``pipeline.engines.dialects.transpile`` and parsed back
by sqlglot in the target's dialect, with nothing DuckDB-only left in it.

What this does not prove: that each warehouse accepts and runs the SQL (sqlglot's parsers are lenient
about functions they do not know; the checks below name the DuckDB-only functions that must be gone).
"""

from __future__ import annotations

import re
import shutil

import pytest
import sqlglot

from pipeline.convert import convert
from pipeline.engines import duckdb as E
from pipeline.engines import paths
from pipeline.engines.dialects import DIALECTS, transpile
from pipeline.window import Window
from tests.helpers import make_db, run_db
from tests.test_engine_duckdb import BAD_CONVERSIONS, BAD_COSTS, BAD_DDL, BAD_SESSIONS, WINDOWS


class Recording:
    """A DuckDB engine that records every query the shared engine functions send through ``sql``."""

    def __init__(self, engine):
        self.engine, self.source, self.con, self.present = engine, engine.source, engine.con, engine.present
        self.queries: list[tuple[str, dict]] = []

    def sql(self, query, params=None):
        self.queries.append((query, dict(params or {})))
        return self.engine.sql(query, params)


@pytest.fixture(scope="module")
def queries(small_demo, tmp_path_factory) -> list[tuple[str, dict]]:
    base = tmp_path_factory.mktemp("dialects")
    recorded: list[tuple[str, dict]] = []
    bad = make_db(base / "bad.db", BAD_SESSIONS, BAD_CONVERSIONS, BAD_COSTS, ddl=BAD_DDL)
    convert(bad, f"duckdb:///{base / 'bad.duckdb'}")
    with E.open_engine(f"duckdb:///{base / 'bad.duckdb'}") as engine:
        rec = Recording(engine)
        E.validate(rec)
        E.channel_report(rec)  # no credit stored: the empty credit CTE
        # numbers held as text (a warehouse table typed by hand): the TRY_CAST checks
        rec.present = {t: dict(cols) for t, cols in engine.present.items()}
        rec.present["session_costs"]["cost"] = rec.present["conversions"]["revenue"] = "VARCHAR"
        E.validate(rec)
        recorded += rec.queries
    db = base / "run.db"
    shutil.copy(small_demo, db)
    run_db(db, model="linear")
    convert(db, f"duckdb:///{base / 'demo.duckdb'}", outputs=True)
    with E.open_engine(f"duckdb:///{base / 'demo.duckdb'}") as engine:
        rec = Recording(engine)
        E.validate(rec)
        credits = E.journeys(engine)
        E.channel_report(rec)  # stored credit
        table = engine.sql("SELECT conv_id, session_id, ihc FROM attribution_customer_journey")
        E.channel_report(rec, {k: [r[i] for r in table] for i, k in enumerate(("conv_id", "session_id", "ihc"))})
        E.channel_report(rec, start="2023-09-03", end="2023-09-04")
        recorded += rec.queries
        for window in WINDOWS:
            rows_sql, conv_sql = E._journeys_sql(engine)
            converting_sql, null_sql = paths.summary_sql(engine)
            _, bucketed_sql = paths.summary_sql(engine, bucketed=True, lookback=False)
            params = {"start": window.start, "end": window.end, "lookback_days": window.lookback_days}
            recorded += [(q, params) for q in (rows_sql, conv_sql, converting_sql, null_sql)]
            recorded.append((bucketed_sql, {**params, "buckets": 4, "bucket": 1}))
        assert len(credits.conversion_ids)
    recorded += [(f"CREATE TABLE _staging_{name} ({ddl})", {}) for name, ddl in E.DDL.items()]
    return recorded


DUCKDB_ONLY = re.compile(r"try_strptime|regexp_full_match|to_days|hugeint|int128|\$[a-z_]|%\([a-z_]+\)s", re.I)
NOT_IN = {  # what each target lacks
    "postgres": re.compile(r"\bTRY_CAST\b|\bSEMI JOIN\b", re.I),
    "spark": re.compile(r"\bHUGEINT\b|\bINTERVAL\s*\(|\$'", re.I),  # run for real in tests/test_engine_spark.py
    "bigquery": re.compile(r"\bFILTER\s*\(|\bSEMI JOIN\b|\bTRY_CAST\b|\bFORMAT_DATE\b", re.I),
    "snowflake": re.compile(r"\bFILTER\s*\(|\bSEMI JOIN\b", re.I),
    "databricks": re.compile(r"\bHUGEINT\b", re.I),
}


def test_the_recording_covers_every_stage(queries):
    text = "\n".join(q for q, _ in queries)
    assert len(queries) >= 30
    for needle in (
        "try_strptime",
        "regexp_full_match",
        "to_days",
        "SEMI JOIN",
        "FILTER",
        "HUGEINT",
        "$last",
        "$start",
        "string_agg",
        "hex(",
    ):
        assert needle in text, needle
    assert "TRY_CAST" in text


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_query_compiles_and_parses_back(queries, dialect):
    for query, params in queries:
        params = {"start": None, "end": None, "lookback_days": None, "last": None, **params}
        compiled = transpile(query, dialect, params)
        assert not DUCKDB_ONLY.search(compiled), (dialect, compiled)
        assert not NOT_IN[dialect].search(compiled), (dialect, compiled)
        tree = sqlglot.parse_one(compiled, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
        again = tree.sql(dialect=dialect)  # a parse that understood it regenerates it unchanged
        assert sqlglot.parse_one(again, read=dialect).sql(dialect=dialect) == again


@pytest.mark.parametrize("dialect", DIALECTS)
def test_parameters_are_bound_as_literals(dialect):
    sql = transpile(
        "SELECT * FROM t WHERE d >= $start AND d <= $end AND n = $n",
        dialect,
        {"start": "2023-09-01", "end": "it's", "n": 3},
    )
    assert "'2023-09-01'" in sql and "3" in sql
    assert "it''s" in sql or "it\\'s" in sql  # quoted for the target, never spliced raw
    with pytest.raises(KeyError):
        transpile("SELECT $missing", dialect, {})


def test_postgres_orders_bytewise_and_names_subqueries():
    sql = transpile("SELECT count(*) FROM (SELECT 1 FROM t) ORDER BY a", "postgres")
    assert 'ORDER BY a COLLATE "C"' in sql
    assert re.search(r"\) AS _q1", sql)


def test_unknown_dialect():
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        transpile("SELECT 1", "oracle")


def test_window_values_reach_the_sql():
    rows_sql, _ = E._journeys_sql(
        type(
            "Fake",
            (),
            {
                "present": {
                    "session_sources": {c: "VARCHAR" for c in ("event_date", "event_time")},
                    "conversions": {c: "VARCHAR" for c in ("conv_date", "conv_time")},
                }
            },
        )()
    )
    w = Window(start="2023-09-04", end="2023-09-08", lookback_days=2)
    for dialect in DIALECTS:
        sql = transpile(rows_sql, dialect, {"start": w.start, "end": w.end, "lookback_days": w.lookback_days})
        assert "'2023-09-04'" in sql and "'2023-09-08'" in sql and re.search(r"\b2\b", sql)


@pytest.mark.parametrize("dialect", ["spark", "databricks"])  # Databricks runs Spark SQL
def test_spark_sums_units_exactly_anchors_at_the_very_end_and_moves_back_by_days(dialect):
    sql = transpile(
        "SELECT sum(CAST(x * 100 AS BIGINT)), sum(y), regexp_full_match(t, '[0-9]'),"
        " try_strptime(d, '%Y-%m-%d %H:%M:%S') - to_days(CAST($n AS INTEGER))",
        dialect,
        {"n": 3},
    )
    assert "SUM(CAST(CAST(x * 100 AS BIGINT) AS DECIMAL(38, 0)))" in sql  # no BIGINT overflow, as HUGEINT
    assert "SUM(y)" in sql  # other sums as they are
    assert "RLIKE '^([0-9])\\\\z'" in sql or "REGEXP_LIKE(t, '^([0-9])\\\\z')" in sql  # no match before a final newline
    assert "MAKE_DT_INTERVAL(CAST(3 AS INT))" in sql
