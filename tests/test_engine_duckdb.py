"""Parity of the DuckDB engine (pipeline.engines.duckdb) with the SQLite engine, on the small demo and on
a database full of problems, each converted to a DuckDB file and to a Parquet folder."""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.convert import convert
from pipeline.db import open_database
from pipeline.engines import duckdb as E
from pipeline.schema import INPUT_TABLES
from pipeline.validate import validate
from pipeline.window import Window
from tests.engine_support import (
    KINDS,
    assert_same_findings,
    assert_same_journeys,
    assert_whole_batches,
    batch_credits,
    demo_sources,
    engine_url,
)
from tests.helpers import make_db


@pytest.fixture(scope="module")
def demo(small_demo, tmp_path_factory):
    """The small demo run by the SQLite engine (linear), and its conversions to each format."""
    targets = demo_sources(small_demo, tmp_path_factory.mktemp("engine"), model="linear", outputs=True)
    return Path(targets.pop("sqlite")), targets


def _credits(engine, model="linear", window=Window(), batch_rows=E.BATCH_ROWS) -> dict:
    return batch_credits(E, engine, model, window, batch_rows)


# ---- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_validation_findings_equal_on_the_demo(demo, kind):
    db, targets = demo
    con = open_database(db)
    expected = validate(con).to_dict()
    con.close()
    with E.open_engine(targets[kind]) as engine:
        assert E.validate(engine).to_dict() == expected


BAD_DDL = """
CREATE TABLE session_sources (session_id TEXT, user_id TEXT, event_date TEXT, event_time TEXT, channel_name TEXT,
    holder_engagement INTEGER, closer_engagement INTEGER, impression_interaction INTEGER);
CREATE TABLE conversions (conv_id TEXT, user_id TEXT, conv_date TEXT, conv_time TEXT, revenue REAL);
CREATE TABLE session_costs (session_id TEXT, cost REAL);
"""
BAD_SESSIONS = [
    ("s1", "u1", "2023-09-01", "10:00:00", "Display", 1, 0, 0),
    ("s1", "u1", "2023-09-01", "11:00:00", "Display", 0, 0, 0),  # duplicate id
    (None, "u1", "2023-09-01", "10:00:00", "Display", 0, 0, 0),  # no id
    ("s3", None, "2023-09-02", "10:00:00", None, 0, 0, 0),  # no user, no channel
    ("s4", "u2", "2023-02-30", "10:00:00", "Display", 0, 0, 0),  # no such day
    ("s5", "u2", "2023-9-1", "10:00", "Display", 2, 0, 0),  # bad date, time, flag
    ("s6", "u2", "2023-09-01", "24:00:00", "Display", 0, None, 0),
    ("s7", "u2", None, "10:00:60", "Display", 0, 0, 1),
    ("s8", "u3", "2023-09-20", "10:00:00", "Display", 0, 0, 0),  # after the last conversion
    ("s9", "u3", "2023-09-21", "23:59:59", "Display", 0, 0, 0),
]
BAD_CONVERSIONS = [
    ("c1", "u1", "2023-09-03", "10:00:00", 10.0),
    ("c1", "u2", "2023-09-03", "11:00:00", None),  # duplicate id, no revenue
    (None, "u9", "2023-09-03", "10:00:00", -5.0),  # no id, negative, user without sessions
    ("c3", None, "2023-13-01", "1:00:00", 3.0),
    ("c4", "u8", "2023-09-04", "10:00:00", 1.5),
]
BAD_COSTS = [("s1", 1.0), ("s3", None), (None, 2.0), ("ghost", 4.0), ("s4", -1.0), ("s4", 2.0)]


@pytest.mark.parametrize("kind", KINDS)
def test_validation_findings_equal_on_bad_data(tmp_path, kind):
    db = make_db(tmp_path / "bad.db", BAD_SESSIONS, BAD_CONVERSIONS, BAD_COSTS, ddl=BAD_DDL)
    target = engine_url(tmp_path, kind)
    convert(db, target)
    with E.open_engine(target) as engine:
        assert_same_findings(E.validate(engine), db)


def test_missing_table_is_a_finding(tmp_path):
    lake = tmp_path / "lake"
    db = make_db(tmp_path / "t.db", BAD_SESSIONS, BAD_CONVERSIONS, BAD_COSTS, ddl=BAD_DDL)
    convert(db, f"parquet:///{lake}")
    (lake / "session_costs.parquet").unlink()
    with E.open_engine(f"parquet:///{lake}") as engine:
        report = E.validate(engine)
    assert [(f.code, f.severity) for f in report.findings] == [("missing_table", "fatal")]


# ---- journeys -------------------------------------------------------------------------------------------


WINDOWS = [Window(), Window(start="2023-09-04", end="2023-09-08"), Window(lookback_days=2), Window(lookback_days=1)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_journeys_equal(demo, kind, window):
    db, targets = demo
    with E.open_engine(targets[kind]) as engine:
        got = E.journeys(engine, window)
    assert_same_journeys(got, db, window)


def test_batches_hold_whole_journeys(demo):
    _, targets = demo
    with E.open_engine(targets["parquet"]) as engine:
        whole = E.journeys(engine)
        batches = list(E.journey_batches(engine, batch_rows=97))
    assert_whole_batches(batches, whole.columns)


# ---- credit and the report ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_credit_and_report_match_the_sqlite_run(demo, kind):
    db, targets = demo
    con = sqlite3.connect(db)
    stored = {(c, s): v for c, s, v in con.execute("SELECT conv_id, session_id, ihc FROM attribution_customer_journey")}
    report = {(r[0], r[1]): r[2:] for r in con.execute("SELECT * FROM channel_reporting")}
    con.close()
    with E.open_engine(targets[kind]) as engine:
        credits = _credits(engine, batch_rows=500)
        rows = E.channel_report(engine, credits)
    got = {(c, s): v for c, s, v in zip(credits["conv_id"], credits["session_id"], credits["ihc"])}
    assert got.keys() == stored.keys()
    assert max(abs(got[k] - stored[k]) for k in stored) <= 1e-9
    assert [(r[0], r[1]) for r in rows] == sorted(report, key=lambda k: (k[1], k[0]))
    worst = max(abs(a - b) for r in rows for a, b in zip(r[2:], report[(r[0], r[1])]))
    assert worst <= 1e-6
    assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == report  # bit-identical: the same fixed-point sums


def test_report_does_not_depend_on_row_order(demo):
    _, targets = demo
    with E.open_engine(targets["duckdb"]) as engine:
        credits = _credits(engine)
        order = list(range(len(credits["ihc"])))
        random.Random(3).shuffle(order)
        shuffled = {k: v[order] for k, v in credits.items()}
        assert E.channel_report(engine, shuffled) == E.channel_report(engine, credits)
        ranged = E.channel_report(engine, credits, start="2023-09-03", end="2023-09-04")
    assert ranged and {r[1] for r in ranged} == {"2023-09-03", "2023-09-04"}


def test_units_round_as_sqlite_does():
    """The fixed-point terms: DuckDB must round each x * scale exactly as SQLite's round() (which is not
    C's round: 0.49999999999999994 → 1; beyond 2**52 the value is kept)."""
    import duckdb

    values = [2.5, -2.5, 0.5, -0.5, 1.5, 0.49999999999999994, -0.49999999999999994, 4503599627370497.0,
              4503599627370495.5, -4503599627370497.0, 0.3, 123456789.49999999, 2.0**60 + 768, 0.0, 1 / 3]  # fmt: skip
    lite = sqlite3.connect(":memory:")
    expected = [lite.execute("SELECT CAST(round(? * 1) AS INTEGER)", (v,)).fetchone()[0] for v in values]
    con = duckdb.connect()
    got = [
        r[0]
        for r in con.execute(
            f"SELECT {E._units('x', 1)} FROM unnest($v) WITH ORDINALITY t(x, i) ORDER BY i", {"v": values}
        ).fetchall()
    ]
    assert got == expected
    assert expected[5] == 1 and expected[7] == 4503599627370497  # C round says 0; trunc(|x| + 0.5) says ...498


# ---- writing the outputs -----------------------------------------------------------------------------


def _digest(folder: Path) -> dict:
    """Hashes of the input tables' files."""
    return {t: hashlib.sha256((folder / f"{t}.parquet").read_bytes()).hexdigest() for t in INPUT_TABLES}


def test_write_outputs_parquet(demo, tmp_path, monkeypatch):
    _, targets = demo
    lake = tmp_path / "lake"
    shutil.copytree(Path(targets["parquet"].removeprefix("parquet:///")), lake)
    inputs = _digest(lake)
    with E.open_engine(f"parquet:///{lake}") as engine:
        credits = _credits(engine)
        report = E.channel_report(engine, credits)
        assert E.write_outputs(engine, credits, report) == {
            "attribution_customer_journey": len(credits["ihc"]),
            "channel_reporting": len(report),
        }
    assert _digest(lake) == inputs  # input tables untouched
    # the single-file outputs convert copied were replaced by folders of those names
    assert not (lake / "channel_reporting.parquet").exists() and (lake / "channel_reporting").is_dir()
    acj = pq.read_table(lake / "attribution_customer_journey")
    assert [(f.name, str(f.type)) for f in acj.schema] == [
        ("conv_id", "string"),
        ("session_id", "string"),
        ("ihc", "double"),
    ]
    rep = pq.read_table(lake / "channel_reporting")
    assert rep.schema.names == ["channel_name", "date", "cost", "ihc", "ihc_revenue"]
    with E.open_engine(f"parquet:///{lake}") as engine:
        assert E.channel_report(engine) == report  # read back from the written folder
    # a failure while staging leaves the previous outputs as they were, and no staging folder
    before = {p: p.read_bytes() for p in lake.rglob("part-*.parquet")}
    real = pq.write_table
    calls = []

    def failing(table, where, *a, **k):
        calls.append(where)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(table, where, *a, **k)

    monkeypatch.setattr(pq, "write_table", failing)
    with E.open_engine(f"parquet:///{lake}") as engine, pytest.raises(OSError, match="disk full"):
        E.write_outputs(engine, {k: v[:5] for k, v in credits.items()}, report[:2])
    assert {p: p.read_bytes() for p in lake.rglob("part-*.parquet")} == before
    assert not [p for p in lake.iterdir() if p.name.startswith(".")]


def test_write_outputs_duckdb(demo, tmp_path):
    _, targets = demo
    path = tmp_path / "x.duckdb"
    shutil.copy(targets["duckdb"].removeprefix("duckdb:///"), path)
    with E.open_engine(f"duckdb:///{path}", write=True) as engine:
        credits = _credits(engine)
        report = E.channel_report(engine, credits)
        E.write_outputs(engine, credits, report)
        types = engine.sql(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_name IN ('attribution_customer_journey', 'channel_reporting')"
            " ORDER BY table_name, ordinal_position"
        )
        # a failing write (a NULL id breaks NOT NULL while staging) keeps the previous outputs
        bad = {k: v[:3].copy() for k, v in credits.items()}
        bad["conv_id"][0] = None
        with pytest.raises(Exception, match="NOT NULL"):
            E.write_outputs(engine, bad, report[:1])
        assert engine.sql("SELECT count(*) FROM attribution_customer_journey")[0][0] == len(credits["ihc"])
        assert E.channel_report(engine) == report
        assert not [r for r in engine.sql("SHOW TABLES") if r[0].startswith("_staging")]
    assert types == [
        ("attribution_customer_journey", "conv_id", "VARCHAR", "NO"),
        ("attribution_customer_journey", "session_id", "VARCHAR", "NO"),
        ("attribution_customer_journey", "ihc", "DOUBLE", "NO"),
        ("channel_reporting", "channel_name", "VARCHAR", "NO"),
        ("channel_reporting", "date", "VARCHAR", "NO"),
        ("channel_reporting", "cost", "DOUBLE", "NO"),
        ("channel_reporting", "ihc", "DOUBLE", "NO"),
        ("channel_reporting", "ihc_revenue", "DOUBLE", "NO"),
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_orphan_costs_counted_as_sqlite_does(tmp_path, kind):
    sessions = [s for s in BAD_SESSIONS if s[0] is not None]
    unique = {s[0]: s for s in sessions}
    costs = [("s1", 1.0), ("ghost", 4.0), ("ghost2", 2.5), (None, 1.0), ("s3", 0.5)]
    db = make_db(tmp_path / "orphans.db", list(unique.values()), BAD_CONVERSIONS, costs, ddl=BAD_DDL)
    con = open_database(db)
    expected = validate(con)
    con.close()
    assert any(f.code == "orphan_cost" for f in expected.findings)  # the check this test is about ran
    target = engine_url(tmp_path, kind)
    convert(db, target)
    with E.open_engine(target) as engine:
        got = E.validate(engine)
    assert [(f.code, f.severity, f.count, f.message) for f in got.findings] == [
        (f.code, f.severity, f.count, f.message) for f in expected.findings
    ]


def test_validation_and_report_join_costs_with_sessions_once(demo):
    _, targets = demo
    with E.open_engine(targets["duckdb"]) as engine:
        sent: list[str] = []
        con = engine.con

        class Counting:
            def execute(self, query, params=None):
                sent.append(query)
                return con.execute(query, params)

            def __getattr__(self, name):
                return getattr(con, name)

        engine.con = Counting()
        E.validate(engine)
        credits = _credits(engine)
        E.channel_report(engine, credits)
        engine.con = con
    joins = [q for q in sent if "FROM session_costs sc JOIN session_sources s" in q]
    assert len(joins) == 1


def test_a_write_killed_half_way_leaves_the_previous_outputs_and_no_other_table(demo, tmp_path):
    """A process that dies while it writes the credit (``os._exit`` from inside the rows DuckDB is
    reading: no ``except``, no ``finally``, as a SIGKILL): the file opens with the previous outputs and
    no other table. Staged outside the swap's transaction, a killed run left
    ``_staging_attribution_customer_journey`` in the file until the next run."""
    import subprocess
    import sys
    import textwrap

    _, targets = demo
    path = tmp_path / "x.duckdb"
    shutil.copy(targets["duckdb"].removeprefix("duckdb:///"), path)
    outputs = ("attribution_customer_journey", "channel_reporting")
    with E.open_engine(f"duckdb:///{path}") as engine:
        before = {t: engine.sql(f"SELECT * FROM {t} ORDER BY ALL") for t in outputs}
        tables_before = sorted(engine.sql("SHOW TABLES"))
    assert before["attribution_customer_journey"] and before["channel_reporting"]
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        import pyarrow as pa
        from pipeline.engines import duckdb as E

        schema = pa.schema([("conv_id", pa.string()), ("session_id", pa.string()), ("ihc", pa.float64())])

        def batches():
            for i in range(3):
                yield pa.record_batch([[f"c{{i}}"], ["s"], [1.0]], schema=schema)
            os._exit(9)  # half-way through the credit's rows

        with E.open_engine("duckdb:///{path}", write=True) as engine:
            reader = pa.RecordBatchReader.from_batches(schema, batches())
            E._write_duckdb(engine, {{"attribution_customer_journey": reader}})
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    with E.open_engine(f"duckdb:///{path}") as engine:
        assert sorted(engine.sql("SHOW TABLES")) == tables_before
        assert {t: engine.sql(f"SELECT * FROM {t} ORDER BY ALL") for t in outputs} == before


def test_a_credit_larger_than_duckdbs_memory_limit_is_written(tmp_path, monkeypatch):
    """300,000 credit rows of real-shaped ids (40- and 64-hex) under a 16 MB ``memory_limit``: the
    credit table's PRIMARY KEY kept its index in memory and ran out ("could not allocate block"; 8M
    rows under the default 500 MB did the same). Without it the rows are written and read back whole."""
    import duckdb
    import numpy as np

    monkeypatch.setenv("ATTRIBUTION_DUCKDB_MEMORY", "16MB")
    path = tmp_path / "big.duckdb"
    duckdb.connect(str(path)).execute("CREATE TABLE session_sources (session_id VARCHAR)").close()
    n = 300_000
    credits = {
        "conv_id": np.array([f"{i // 3:040x}" for i in range(n)], dtype=object),
        "session_id": np.array([f"{i:064x}" for i in range(n)], dtype=object),
        "ihc": np.full(n, 1 / 3),
    }
    report = [("Paid Search", "2023-09-01", 1.5, 100_000.0, 1234.5)]
    with E.open_engine(f"duckdb:///{path}", write=True) as engine:
        assert E.write_outputs(engine, credits, report) == {"attribution_customer_journey": n, "channel_reporting": 1}
    monkeypatch.delenv("ATTRIBUTION_DUCKDB_MEMORY")  # (the check's DISTINCT needs more than 16 MB)
    with E.open_engine(f"duckdb:///{path}") as engine:
        assert engine.sql(
            "SELECT count(*), count(DISTINCT (conv_id, session_id)), min(session_id), max(conv_id), sum(ihc)"
            " FROM attribution_customer_journey"
        ) == [(n, n, f"{0:064x}", f"{(n - 1) // 3:040x}", pytest.approx(n / 3))]
        assert engine.sql("SELECT * FROM channel_reporting") == report
