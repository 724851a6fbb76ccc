"""The Postgres engine (pipeline.engines.postgres) against a real PostgreSQL server: Debian's ``postgresql``
started by this module on a loopback port with password authentication (tests/pg_server.py), the small
demo loaded with ``convert``; parity with the SQLite engine (validation, journeys, credit, report), the
staged output write, and bad input (unreachable server, wrong password, missing table/column)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from pipeline.convert import convert
from pipeline.db import open_database
from pipeline.engines import paths
from pipeline.engines import postgres as P
from pipeline.errors import InputError
from pipeline.journeys import build_journeys
from pipeline.models import get_model
from pipeline.validate import validate
from pipeline.window import Window
from tests.engine_support import (
    assert_same_findings,
    assert_same_journeys,
    assert_whole_batches,
    batch_credits,
    sqlite_summaries,
)
from tests.helpers import assert_same_summary, make_db, run_db
from tests.pg_server import DATABASE, PASSWORD, pg_binaries, start_server
from tests.test_engine_duckdb import BAD_CONVERSIONS, BAD_COSTS, BAD_DDL, BAD_SESSIONS, WINDOWS

pytestmark = pytest.mark.skipif(
    pg_binaries() is None, reason="no PostgreSQL binaries: install Debian's postgresql (.ci/run does)"
)


@pytest.fixture(scope="module")
def server():
    srv = start_server()
    try:
        yield srv
    finally:
        srv.stop()


def _database(server, name: str) -> str:
    """A fresh database ``name`` on the server; its URL (with the password)."""
    import adbc_driver_postgresql.dbapi as adbc

    con = adbc.connect(server.url().replace("postgres://", "postgresql://"), autocommit=True)
    try:
        cur = con.cursor()
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
        cur.close()
    finally:
        con.close()
    return server.url(database=name)


@pytest.fixture(scope="module")
def demo(server, small_demo, tmp_path_factory):
    """The small demo run by the SQLite engine (linear) and loaded, with its outputs, into Postgres."""
    db = tmp_path_factory.mktemp("pg") / "run.db"
    shutil.copy(small_demo, db)
    run_db(db, model="linear")
    url = server.url()
    convert(db, url, outputs=True)
    return db, url


def _credits(engine, model="linear", window=Window(), batch_rows=P.BATCH_ROWS) -> dict:
    return batch_credits(P, engine, model, window, batch_rows)


def _table(url: str, sql: str) -> list[tuple]:
    import adbc_driver_postgresql.dbapi as adbc

    con = adbc.connect(url.replace("postgres://", "postgresql://"), autocommit=True)
    try:
        cur = con.cursor()
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]
    finally:
        con.close()


# ---- validation -------------------------------------------------------------------------------------


def test_validation_findings_equal_on_the_demo(demo):
    db, url = demo
    con = open_database(db)
    expected = validate(con).to_dict()
    con.close()
    with P.open_engine(url) as engine:
        assert P.validate(engine).to_dict() == expected


def test_validation_findings_equal_on_bad_data(server, tmp_path):
    db = make_db(tmp_path / "bad.db", BAD_SESSIONS, BAD_CONVERSIONS, BAD_COSTS, ddl=BAD_DDL)
    url = _database(server, "bad")
    convert(db, url)
    with P.open_engine(url) as engine:
        assert_same_findings(P.validate(engine), db)


# ---- journeys -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_journeys_equal(demo, window):
    db, url = demo
    with P.open_engine(url) as engine:
        got = P.journeys(engine, window)
    assert_same_journeys(got, db, window)


def test_batches_hold_whole_journeys(demo):
    _, url = demo
    with P.open_engine(url) as engine:
        whole = P.journeys(engine)
        batches = list(P.journey_batches(engine, batch_rows=97))
    assert_whole_batches(batches, whole.columns)


# ---- credit and the report ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["linear", "ihc", "time-decay"])
def test_credit_and_report_match_the_sqlite_engine(demo, tmp_path, model):
    db, url = demo
    if model != "linear":  # the demo's stored outputs are linear; run this model on a copy
        db = Path(shutil.copy(db, tmp_path / "m.db"))
        run_db(db, model=model)
    con = sqlite3.connect(db)
    stored = {(c, s): v for c, s, v in con.execute("SELECT conv_id, session_id, ihc FROM attribution_customer_journey")}
    report = {(r[0], r[1]): r[2:] for r in con.execute("SELECT * FROM channel_reporting")}
    con.close()
    with P.open_engine(url) as engine:
        credits = _credits(engine, model, batch_rows=500)
        rows = P.channel_report(engine, credits)
    got = {(c, s): v for c, s, v in zip(credits["conv_id"], credits["session_id"], credits["ihc"])}
    assert got.keys() == stored.keys()
    assert max(abs(got[k] - stored[k]) for k in stored) <= 1e-9
    assert [(r[0], r[1]) for r in rows] == sorted(report, key=lambda k: (k[1], k[0]))
    assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == report  # bit-identical: the same fixed-point sums


def test_report_from_the_stored_credit_and_in_a_range(demo):
    db, url = demo
    con = sqlite3.connect(db)
    report = {(r[0], r[1]): r[2:] for r in con.execute("SELECT * FROM channel_reporting")}
    con.close()
    with P.open_engine(url) as engine:
        rows = P.channel_report(engine)  # the attribution_customer_journey loaded from the SQLite run
        ranged = P.channel_report(engine, start="2023-09-03", end="2023-09-04")
    assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == report
    assert ranged and {r[1] for r in ranged} == {"2023-09-03", "2023-09-04"}


# ---- writing the outputs ----------------------------------------------------------------------------


def test_outputs_written_staged_and_inputs_untouched(server, small_demo):
    url = _database(server, "out")
    convert(small_demo, url)
    inputs_sql = (
        "SELECT (SELECT md5(string_agg(s::text, ',' ORDER BY s::text)) FROM session_sources s),"
        " (SELECT md5(string_agg(c::text, ',' ORDER BY c::text)) FROM conversions c),"
        " (SELECT md5(string_agg(k::text, ',' ORDER BY k::text)) FROM session_costs k)"
    )
    before = _table(url, inputs_sql)
    with P.open_engine(url) as engine:
        credits = _credits(engine)
        report = P.channel_report(engine, credits)
        with pytest.raises(InputError, match="read-only"):
            P.write_outputs(engine, credits, report)
    with P.open_engine(url, write=True) as engine:
        assert P.write_outputs(engine, credits, report) == {
            "attribution_customer_journey": len(credits["ihc"]),
            "channel_reporting": len(report),
        }
        assert P.channel_report(engine) == report  # the stored credit gives the same report
    stored = _table(url, "SELECT conv_id, session_id, ihc FROM attribution_customer_journey")
    assert sorted(stored) == sorted(zip(credits["conv_id"], credits["session_id"], credits["ihc"]))
    assert sorted(_table(url, "SELECT * FROM channel_reporting")) == sorted(report)
    columns = _table(
        url,
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_name IN"
        " ('attribution_customer_journey', 'channel_reporting') ORDER BY table_name, ordinal_position",
    )
    assert [(t, c) for t, c, _ in columns] == [
        ("attribution_customer_journey", "conv_id"),
        ("attribution_customer_journey", "session_id"),
        ("attribution_customer_journey", "ihc"),
        ("channel_reporting", "channel_name"),
        ("channel_reporting", "date"),
        ("channel_reporting", "cost"),
        ("channel_reporting", "ihc"),
        ("channel_reporting", "ihc_revenue"),
    ]
    assert {d for _, _, d in columns} == {"text", "double precision"}  # VARCHAR compiles to TEXT
    # A failing write (a duplicate key in the credit) leaves the previous outputs and no staging table.
    broken = {k: np.concatenate([v, v[:1]]) for k, v in credits.items()}
    with P.open_engine(url, write=True) as engine:
        with pytest.raises(InputError, match="writing attribution_customer_journey failed"):
            P.write_outputs(engine, broken, report)
        assert P.write_outputs(engine, credits, report)  # and the next write works (the key renamed)
    assert sorted(_table(url, "SELECT conv_id, session_id, ihc FROM attribution_customer_journey")) == sorted(stored)
    assert _table(url, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_staging\\_%'") == [(0,)]
    assert _table(url, inputs_sql) == before


def test_a_write_killed_while_staging_leaves_the_previous_outputs_and_no_staging_table(server, demo):
    """A process that dies after staging the credit and before the report (``os._exit``: no ``except``,
    no ``finally``, as a SIGKILL): the server rolls the transaction back, so the database holds its
    previous outputs and no ``_staging_*`` table. Staged outside the swap's transaction, a killed run
    left ``_staging_attribution_customer_journey`` behind until the next run."""
    import os
    import subprocess
    import sys
    import textwrap

    db, _ = demo
    url = _database(server, "killed")
    convert(db, url, outputs=True)
    outputs_sql = (
        "SELECT (SELECT md5(string_agg(a::text, ',' ORDER BY a::text)) FROM attribution_customer_journey a),"
        " (SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM channel_reporting r)"
    )
    tables_sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
    before, tables = _table(url, outputs_sql), _table(url, tables_sql)
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        import numpy as np
        from pipeline.engines import postgres as P, warehouse as W

        ingest = W.Warehouse.ingest

        def dying(self, con, name, table, label=None):
            if name == W.STAGING + "channel_reporting":
                os._exit(9)  # the credit is staged, the report not yet
            return ingest(self, con, name, table, label)

        W.Warehouse.ingest = dying
        with P.open_engine(os.environ["KILLED_URL"], write=True) as engine:
            rows = engine.sql("SELECT conv_id, session_id, ihc FROM attribution_customer_journey")
            credits = dict(zip(("conv_id", "session_id", "ihc"), (np.array(c) for c in zip(*rows))))
            P.write_outputs(engine, credits, P.channel_report(engine, credits))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "KILLED_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 9, done.stderr
    assert _table(url, tables_sql) == tables and _table(url, outputs_sql) == before
    assert not [t for (t,) in tables if t.startswith("_staging_")]


# ---- bad input and secrets ------------------------------------------------------------------------------


def _one_line_without_password(exc: InputError, url_shown: str) -> str:
    text = str(exc)
    assert "\n" not in text
    assert PASSWORD not in text
    assert text.startswith(url_shown), text
    return text


def test_wrong_password_is_one_line_without_it(server, monkeypatch):
    wrong = server.url().replace(PASSWORD, "not-" + PASSWORD)
    with pytest.raises(InputError) as caught:
        P.open_engine(wrong)
    text = _one_line_without_password(caught.value, f"postgres://analyst:***@127.0.0.1:{server.port}/{DATABASE}")
    assert "password authentication failed" in text
    assert "not-" not in text
    # the same from PGPASSWORD (not in the URL)
    monkeypatch.setenv("PGPASSWORD", "not-" + PASSWORD)
    with pytest.raises(InputError) as caught:
        P.open_engine(server.url(password=False))
    text = _one_line_without_password(caught.value, f"postgres://analyst@127.0.0.1:{server.port}/{DATABASE}")
    assert "password authentication failed" in text and "not-" not in text


def test_password_from_the_environment_or_dotenv(demo, server, monkeypatch, tmp_path):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"PGPASSWORD={PASSWORD}\n")
    with P.open_engine(server.url(password=False)) as engine:
        assert "conversions" in engine.present
        assert PASSWORD not in repr(engine) and PASSWORD not in str(engine.source)
    (tmp_path / ".env").unlink()
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with P.open_engine(server.url(password=False)) as engine:
        assert P.validate(engine).findings is not None


def test_unreachable_server(server):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgres://analyst:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    with pytest.raises(InputError) as caught:
        P.open_engine(url)
    text = _one_line_without_password(caught.value, f"postgres://analyst:***@127.0.0.1:{port}/{DATABASE}")
    assert "could not connect" in text and "refused" in text


def test_missing_database_table_and_column(server, tmp_path):
    with pytest.raises(InputError, match='database "nosuch" does not exist') as caught:
        P.open_engine(server.url(database="nosuch"))
    _one_line_without_password(caught.value, "postgres://analyst:***@")
    url = _database(server, "partial")
    db = make_db(tmp_path / "t.db", BAD_SESSIONS, BAD_CONVERSIONS, BAD_COSTS, ddl=BAD_DDL)
    convert(db, url)
    _table(url, "DROP TABLE session_costs")
    with P.open_engine(url) as engine:
        assert [(f.code, f.severity) for f in P.validate(engine).findings] == [("missing_table", "fatal")]
        with pytest.raises(InputError, match="table session_costs is missing") as caught:
            list(P.journey_batches(engine))
        _one_line_without_password(caught.value, "postgres://analyst:***@")
    _table(url, "CREATE TABLE session_costs (session_id text)")
    with P.open_engine(url) as engine:
        assert [(f.code, f.count) for f in P.validate(engine).findings] == [("missing_column", 1)]
        with pytest.raises(InputError, match=r"table session_costs lacks column\(s\) cost"):
            P.channel_report(engine)


def test_convert_refuses_existing_tables_without_overwrite(server, tiny):
    url = _database(server, "conv")
    assert convert(tiny, url).rows["conversions"] > 0
    with pytest.raises(InputError, match="already exists; pass --overwrite") as caught:
        convert(tiny, url)
    _one_line_without_password(caught.value, "postgres://analyst:***@")
    assert convert(tiny, url, overwrite=True).rows["conversions"] > 0


EDGE_DATES = [
    "2024-02-29", "2023-02-29", "2000-02-29", "1900-02-29", "2023-04-31", "2023-04-30", "2023-12-31",
    "2023-13-01", "2023-00-10", "2023-01-00", "2023-1-01", " 2023-01-01", "2023-01-01 ", "2023/01/01",
    "20230101", "9999-12-31", "abcd-ef-gh", "",
]  # fmt: skip
EDGE_TIMES = ["00:00:00", "23:59:59", "24:00:00", "23:60:00", "23:59:60", "9:00:00", "09:00", "09:00:00 ", ""]


def test_date_and_time_checks_agree_with_sqlite_on_edge_values(demo):
    """The strict date parse compiled for Postgres (regex + month lengths + leap years) and the time check
    say what the SQLite engine's checks (``validate.BAD_DATE`` / ``BAD_TIME``) say on edge values."""
    from pipeline.engines import duckdb as D
    from pipeline.validate import BAD_DATE, BAD_TIME

    _, url = demo
    lite = sqlite3.connect(":memory:")
    with P.open_engine(url) as engine:
        for values, bad, sqlite_bad in (
            (EDGE_DATES, D._bad_date("x"), BAD_DATE.format(c=":x")),
            (EDGE_TIMES, D._bad_time("x"), BAD_TIME.format(c=":x")),
        ):
            listed = ", ".join(f"('{v}')" for v in values)
            got = dict(engine.sql(f"SELECT x, {bad} FROM (VALUES {listed}) AS t(x)"))
            expected = {v: bool(lite.execute(f"SELECT {sqlite_bad}", {"x": v}).fetchone()[0]) for v in values}
            assert got == expected
            assert any(expected.values()) and not all(expected.values())


def test_cli_convert_to_postgres(server, tiny, tmp_path):
    import os
    import subprocess
    import sys

    url = _database(server, "cli")
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    cmd = [sys.executable, "-m", "pipeline", "convert", str(tiny), server.url(password=False, database="cli"), "-q"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "conversions:" in done.stdout and PASSWORD not in done.stdout + done.stderr
    # a wrong password: exit 2, one line on stderr naming the source without it, nothing written
    env["PGPASSWORD"] = "wrong-" + PASSWORD
    done = subprocess.run([*cmd, "--overwrite"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "password authentication failed" in done.stderr
    assert PASSWORD not in done.stderr and "postgres://analyst@127.0.0.1" in done.stderr
    rows = sqlite3.connect(tiny).execute("SELECT count(*) FROM conversions").fetchall()
    assert _table(url, "SELECT count(*) FROM conversions") == rows  # the first load, as it was


# ---- Markov and Shapley: path summaries computed by the server ----------------------------------------


@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_path_summaries_equal(demo, window):
    db, url = demo
    expected_all, expected_null = sqlite_summaries(db, window)
    with P.open_engine(url) as engine:
        assert_same_summary(P.path_summary(engine, window), expected_all)
        assert_same_summary(P.non_converting_summary(engine, window), expected_null)
        # the DuckDB engine's memory-bounded passes over user buckets, compiled for Postgres: the same
        assert_same_summary(paths.path_summary(engine, window, bucket_sessions=3_000), expected_all)
    assert expected_all.n_paths > 100 and expected_null.n_paths > 100


@pytest.mark.parametrize("model", ["markov", "shapley"])
def test_markov_and_shapley_credit_match_the_sqlite_engine(demo, tmp_path, model):
    db = Path(shutil.copy(demo[0], tmp_path / "m.db"))
    run_db(db, model=model)
    con = sqlite3.connect(db)
    stored = {(c, s): v for c, s, v in con.execute("SELECT conv_id, session_id, ihc FROM attribution_customer_journey")}
    con.close()
    with P.open_engine(demo[1]) as engine:
        journeys = P.journeys(engine)
        null = P.non_converting_summary(engine, journeys.window)
    index = journeys.index
    credit = get_model(model).credits(index, non_converting=null).ihc
    got = dict(zip(zip(index.column("conversion_id"), index.column("session_id")), credit))
    assert got.keys() == stored.keys()
    assert max(abs(got[k] - stored[k]) for k in stored) <= 1e-9


def test_a_password_with_url_characters(demo, server):
    """A password holding '@', ':', '/', '%' and a quote, given URL-encoded: it connects, and a wrong
    one's error shows neither form."""
    from urllib.parse import quote

    secret = "p@ss:w/rd%'x"
    _table(server.url(), f"CREATE ROLE odd LOGIN PASSWORD '{secret.replace(chr(39), chr(39) * 2)}'")
    _table(server.url(), "GRANT SELECT ON ALL TABLES IN SCHEMA public TO odd")
    url = f"postgres://odd:{quote(secret, safe='')}@127.0.0.1:{server.port}/{DATABASE}"
    with P.open_engine(url) as engine:
        assert "conversions" in engine.present
        assert secret not in repr(engine) and quote(secret, safe="") not in repr(engine)
    with pytest.raises(InputError) as caught:
        P.open_engine(url.replace(quote(secret, safe=""), quote(secret + "!", safe="")))
    text = str(caught.value)
    assert secret not in text and quote(secret, safe="") not in text and "password authentication failed" in text


def test_table_versions_follow_the_content(server, tiny):
    url = _database(server, "versions")
    convert(tiny, url)
    with P.open_engine(url) as engine:
        first = P.table_versions(engine)
        assert set(first) == {"session_sources", "conversions", "session_costs"} and all(first.values())
        assert P.table_versions(engine) == first  # reading changes nothing
        assert P.table_versions(engine, ("conversions", "nosuch")) == {
            "conversions": first["conversions"],
            "nosuch": None,
        }
    # the same rows written again (another physical order) keep the version; one changed value does not
    _table(url, "CREATE TABLE c2 AS SELECT * FROM conversions ORDER BY conv_id DESC")
    _table(url, "DROP TABLE conversions")
    _table(url, "ALTER TABLE c2 RENAME TO conversions")
    with P.open_engine(url) as engine:
        assert P.table_versions(engine) == first
    _table(
        url, "UPDATE conversions SET revenue = revenue + 0.01 WHERE conv_id = (SELECT min(conv_id) FROM conversions)"
    )
    _table(url, "DELETE FROM session_costs WHERE session_id = (SELECT min(session_id) FROM session_costs)")
    with P.open_engine(url) as engine:
        now = P.table_versions(engine)
    assert now["session_sources"] == first["session_sources"]
    assert now["conversions"] != first["conversions"] and now["session_costs"] != first["session_costs"]


CASE_SESSIONS = [  # ids and channels whose byte order differs from a linguistic one ('B' < 'a' in bytes)
    ("a-1", "u1", "2023-09-01", "10:00:00", "b", 0, 0, 0),
    ("B-1", "u1", "2023-09-01", "10:00:00", "C", 0, 0, 0),  # same time: session_id breaks the tie
    ("Z-1", "u1", "2023-09-01", "11:00:00", "C", 0, 0, 0),
    ("a-2", "U2", "2023-09-01", "09:00:00", "b", 0, 0, 0),
    ("_-2", "U2", "2023-09-01", "09:00:00", "Ä", 0, 0, 0),
]
CASE_CONVERSIONS = [
    ("c-a", "u1", "2023-09-02", "10:00:00", 10.0),
    ("C-B", "U2", "2023-09-02", "10:00:00", 20.0),
]
CASE_COSTS = [("a-1", 1.0), ("B-1", 2.0), ("_-2", 3.0)]


def test_byte_order_in_a_database_with_a_linguistic_collation(server, tmp_path):
    """In a database whose default collation is ICU en-US, journeys, conversions and the report are still
    in SQLite's byte order (COLLATE "C"), and the linear credit follows."""
    import adbc_driver_postgresql.dbapi as adbc

    con = adbc.connect(server.url().replace("postgres://", "postgresql://"), autocommit=True)
    try:
        cur = con.cursor()
        cur.execute("DROP DATABASE IF EXISTS icu")
        cur.execute("CREATE DATABASE icu TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
        cur.close()
    finally:
        con.close()
    url = server.url(database="icu")
    assert _table(url, "SELECT 'B' < 'a'") == [(False,)]  # linguistic order here
    db = make_db(tmp_path / "case.db", CASE_SESSIONS, CASE_CONVERSIONS, CASE_COSTS)
    convert(db, url)
    lite = open_database(db)
    expected = build_journeys(lite, Window())
    lite.close()
    with P.open_engine(url) as engine:
        got = P.journeys(engine)
        credits = _credits(engine)
        report = P.channel_report(engine, credits)
        summary = P.path_summary(engine)
    for name, values in expected.columns.items():
        assert (got.columns[name] == values).all(), name
    assert list(got.conversion_ids) == list(expected.conversion_ids) == ["C-B", "c-a"]
    assert list(got.columns["session_id"]) == ["_-2", "a-2", "B-1", "a-1", "Z-1"]
    assert [(r[0], r[1]) for r in report] == [("C", "2023-09-01"), ("b", "2023-09-01"), ("Ä", "2023-09-01")]
    run_db(db, model="linear")
    lite = open_database(db)
    from pipeline.path_summary import path_summary

    assert_same_summary(summary, path_summary(lite, Window()))
    assert [tuple(r) for r in lite.execute("SELECT * FROM channel_reporting ORDER BY date, channel_name")] == report
    lite.close()


# ---- the whole run through the command line (pipeline.engines.run) -------------------------------------


def test_cli_run_same_csv_as_sqlite_up_to_date_and_an_input_edit_reruns(
    server, small_demo, tmp_path, monkeypatch, capsys
):
    """``run postgres://… --model linear --csv``: byte-identical CSV and report warnings to the SQLite
    engine's; the record is
    stored with the outputs; the second run is up to date and writes nothing; an edited input table
    reruns; the password (from PGPASSWORD, not in the URL) never appears in what the commands print."""
    from pipeline.cli import main

    def cli(*argv) -> str:
        assert main([str(a) for a in argv]) == 0, argv
        out = capsys.readouterr()
        assert PASSWORD not in out.out + out.err
        return out.out

    admin = _database(server, "clirun")
    convert(small_demo, admin)
    url = server.url(password=False, database="clirun")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    db = Path(shutil.copy(small_demo, tmp_path / "lite.db"))
    lite = cli("run", db, "--model", "linear", "--csv", tmp_path / "sqlite.csv", "-q")
    first = cli("run", url, "--model", "linear", "--csv", tmp_path / "pg.csv", "-q")
    assert "journeys: built" in first
    warnings = [line for line in lite.splitlines() if line.startswith("warning: report:")]  # incomplete days
    assert warnings and warnings == [line for line in first.splitlines() if line.startswith("warning: report:")]
    assert (tmp_path / "pg.csv").read_bytes() == (tmp_path / "sqlite.csv").read_bytes()
    record = _table(admin, f"SELECT record FROM {P.RECORD_TABLE}")
    assert len(record) == 1 and '"fingerprint"' in record[0][0]
    assert _table(admin, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_staging\\_%'") == [(0,)]
    assert "up to date" in cli("status", url)
    state = _table(admin, "SELECT record, (SELECT count(*) FROM channel_reporting) FROM pipeline_run_record")
    second = cli("run", url, "--model", "linear", "-q")
    assert "journeys: up to date" in second and "attribute: up to date" in second and "report: up to date" in second
    assert _table(admin, "SELECT record, (SELECT count(*) FROM channel_reporting) FROM pipeline_run_record") == state
    # one conversion's revenue doubles: status says stale, the next run redoes the work
    _table(
        admin,
        "UPDATE conversions SET revenue = revenue * 2 WHERE conv_id = (SELECT min(conv_id) FROM conversions)"
        " RETURNING conv_id",
    )
    assert "stale" in cli("status", url)
    third = cli("run", url, "--model", "linear", "--csv", tmp_path / "pg2.csv", "-q")
    assert "journeys: built" in third and "up to date" not in third
    assert (tmp_path / "pg2.csv").read_bytes() != (tmp_path / "pg.csv").read_bytes()
    assert _table(admin, f"SELECT record FROM {P.RECORD_TABLE}") != record


def test_run_record_is_swapped_with_the_outputs(server, tiny, monkeypatch):
    """The record is replaced in the outputs' transaction: a failure inside it keeps both as they were."""
    url = _database(server, "rec")
    convert(tiny, url)
    record = {"run_id": "first", "text": 'it\'s a \\ "quoted" ünicode line'}
    with P.open_engine(url, write=True) as engine:
        assert P.run_record(engine) is None
        credits = _credits(engine)
        report = P.channel_report(engine, credits)
        P.write_outputs(engine, credits, report, record=record)
        assert P.run_record(engine) == record
        real = P._record_statements
        monkeypatch.setattr(P, "_record_statements", lambda r: [*real(r), "SELECT 1 / 0"])
        halved = {**credits, "ihc": credits["ihc"] / 2}
        with pytest.raises(InputError, match="division by zero"):
            P.write_outputs(engine, halved, P.channel_report(engine, halved), record={"run_id": "second"})
    with P.open_engine(url) as engine:
        assert P.run_record(engine) == record
        assert P.stored_report(engine) == sorted(report, key=lambda r: (r[1], r[0]))
    stored = _table(url, "SELECT conv_id, session_id, ihc FROM attribution_customer_journey")
    assert sorted(stored) == sorted(zip(credits["conv_id"], credits["session_id"], credits["ihc"]))
    assert _table(url, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_staging\\_%'") == [(0,)]
