"""Parity of the Spark engine (pipeline.engines.spark, PySpark local mode) with the SQLite engine, on the
small demo converted to a Parquet folder and to a Spark catalog database, and on a database full of
problems. One SparkSession (local[2]) serves the whole module: Spark starts in 10-40 s here."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.convert import convert
from pipeline.db import open_database
from pipeline.engines import duckdb as D
from pipeline.engines.dialects import transpile
from pipeline.journey_index import JourneyIndex
from pipeline.journeys import build_journeys
from pipeline.models import get_model
from pipeline.schema import INPUT_TABLES
from pipeline.validate import validate
from pipeline.window import Window
from tests.engine_support import assert_same_journeys, assert_whole_batches
from tests.helpers import assert_same_summary, make_db, run_db
from tests.test_engine_duckdb import BAD_CONVERSIONS, BAD_COSTS, BAD_DDL, BAD_SESSIONS

pytest.importorskip("pyspark", reason="pyspark is not installed (requirements-dev.txt)")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17 (.ci/run installs openjdk-17-jre-headless); no java here", allow_module_level=True)

from pipeline.engines import spark as S  # noqa: E402  (after the skips: imports pyspark lazily anyway)


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    """The module's one SparkSession (local mode, 2 cores), stopped at the end."""
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = S.spark_session("local[2]", {"spark.sql.warehouse.dir": str(warehouse)})
    yield session
    S.stop_spark(jvm=True)


@pytest.fixture(scope="module")
def demo(small_demo, tmp_path_factory, spark):
    """The small demo run by the SQLite engine (linear), converted to a Parquet folder (with the run's
    outputs) and saved as the tables of a Spark catalog database ``demo`` (with them too)."""
    base = tmp_path_factory.mktemp("spark-engine")
    db = base / "run.db"
    shutil.copy(small_demo, db)
    run_db(db, model="linear")
    lake = base / "lake"
    convert(db, f"parquet:///{lake}", outputs=True)
    spark.sql("CREATE DATABASE IF NOT EXISTS demo")
    for table in [*INPUT_TABLES, *S.OUTPUT_TABLES]:
        spark.read.parquet(str(lake / f"{table}.parquet")).write.saveAsTable(f"demo.{table}")
    return db, {"parquet": f"parquet:///{lake}", "spark": "spark:///demo"}


def _sqlite_credits(db: Path, model: str, window: Window = Window()) -> dict:
    con = open_database(db)
    index = JourneyIndex.from_columns(build_journeys(con, window).columns)
    con.close()
    ihc = np.asarray(get_model(model).credits(index).ihc)
    return dict(zip(zip(index.column("conversion_id").tolist(), index.column("session_id").tolist()), ihc.tolist()))


# ---- validation -------------------------------------------------------------------------------------


def test_validation_findings_equal(demo, tmp_path):
    db, targets = demo
    con = open_database(db)
    expected = validate(con).to_dict()
    con.close()
    for target in targets.values():
        with S.open_engine(target, master="local[2]") as engine:
            assert S.validate(engine).to_dict() == expected, target
    # and on a database with most problems SQLite's validation finds
    bad = make_db(tmp_path / "bad.db", BAD_SESSIONS, BAD_CONVERSIONS, BAD_COSTS, ddl=BAD_DDL)
    expected_bad, got = validations_on_sqlite_and_spark(bad, tmp_path / "bad")
    codes = [(f.code, f.severity, f.count) for f in expected_bad.findings]
    assert len(codes) >= 15
    assert [(f.code, f.severity, f.count) for f in got.findings] == codes
    assert [f.message for f in got.findings] == [f.message for f in expected_bad.findings]
    assert got.rows == expected_bad.rows and got.coverage == expected_bad.coverage
    assert [sorted(map(repr, f.examples)) for f in got.findings] == [
        sorted(map(repr, f.examples)) for f in expected_bad.findings
    ]


def validations_on_sqlite_and_spark(db, lake):
    """SQLite's validation of ``db``, and Spark's of the same data converted to Parquet in ``lake``."""
    con = open_database(db)
    expected = validate(con)
    con.close()
    convert(db, f"parquet:///{lake}")
    with S.open_engine(f"parquet:///{lake}", master="local[2]") as engine:
        return expected, S.validate(engine)


@pytest.mark.parametrize("conversion_ids", ["integer", "text"])
def test_real_user_ids_refused_as_sqlite_refuses_them(spark, tmp_path, conversion_ids):
    """Sessions' user ids stored as reals (7.0) against integer or text conversion ids: SQLite's fatal
    finding, word for word (Spark matched 7.0 with 7 and with '7')."""
    from tests.test_malformed_faces import NUMBERS, real_ids_db

    ids = NUMBERS if conversion_ids == "integer" else {u: str(n) for u, n in NUMBERS.items()}
    expected, got = validations_on_sqlite_and_spark(real_ids_db(tmp_path / "real.db", ids), tmp_path / "lake")
    fatal = [(f.code, f.message) for f in expected.findings if f.severity == "fatal"]
    assert [(f.code, f.message) for f in got.findings] == fatal
    assert fatal[0][0] == "user_id_type_mismatch" and len(fatal) == 1


# ---- journeys -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [Window(), Window(start="2023-09-04", end="2023-09-08", lookback_days=2)], ids=str)
def test_journeys_equal_and_batches_whole(demo, window):
    db, targets = demo
    with S.open_engine(targets["parquet"], master="local[2]") as engine:
        got = S.journeys(engine, window)
        batches = list(S.journey_batches(engine, window, batch_rows=97))
    assert_same_journeys(got, db, window)
    con = open_database(db)
    expected = build_journeys(con, window)
    con.close()
    assert_whole_batches(batches, expected.columns)


# ---- credit on the executors and the report -------------------------------------------------------------


@pytest.mark.parametrize("model", ["linear", "ihc", "time-decay"])
def test_credit_on_executors_equals_sqlite(demo, model):
    db, targets = demo
    expected = _sqlite_credits(db, model)
    with S.open_engine(targets["parquet"], master="local[2]") as engine:
        credits = S.attribute(engine, Window(), model, buckets=3)
    assert credits.schema.names == ["conv_id", "session_id", "ihc", "ts"]
    got = dict(zip(zip(credits["conv_id"].to_pylist(), credits["session_id"].to_pylist()), credits["ihc"].to_pylist()))
    assert got.keys() == expected.keys() and len(got) > 500
    assert max(abs(got[k] - expected[k]) for k in expected) <= 1e-9


@pytest.mark.parametrize("model", ["ihc", "markov"])
def test_run_through_the_cli_on_spark_equals_sqlite(small_demo, tmp_path, spark, model, capsys):
    """``run SOURCE --engine spark --spark-master local[2]`` (pipeline.engines.run with this engine;
    Markov fitted on the engine's path summary, applied per bucket on the executors): the SQLite engine's
    credit (1e-9), report, byte-identical --csv and report warnings."""
    from pipeline.cli import main

    db = tmp_path / "demo.db"
    shutil.copy(small_demo, db)
    lake = tmp_path / "lake"
    convert(db, f"parquet:///{lake}")
    capsys.readouterr()
    assert main(["run", str(db), "--model", model, "--csv", str(tmp_path / "sqlite.csv"), "-q"]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: report:")]
    argv = ["run", f"parquet:///{lake}", "--engine", "spark", "--spark-master", "local[2]", "--model", model]
    assert main([*argv, "--csv", str(tmp_path / "spark.csv"), "-q"]) == 0
    assert warnings  # the last session day is incomplete
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: report:")] == warnings
    con = sqlite3.connect(db)
    expected = {
        (c, s): v for c, s, v in con.execute("SELECT conv_id, session_id, ihc FROM attribution_customer_journey")
    }
    report = {(r[0], r[1]): tuple(r[2:]) for r in con.execute("SELECT * FROM channel_reporting")}
    con.close()
    got = {
        (r["conv_id"], r["session_id"]): r["ihc"]
        for r in pq.read_table(lake / "attribution_customer_journey").to_pylist()
    }
    assert got.keys() == expected.keys() and len(got) > 500
    assert max(abs(got[k] - expected[k]) for k in expected) <= 1e-9
    rows = pq.read_table(lake / "channel_reporting").to_pylist()
    assert {(r["channel_name"], r["date"]): (r["cost"], r["ihc"], r["ihc_revenue"]) for r in rows} == report
    assert (tmp_path / "spark.csv").read_bytes() == (tmp_path / "sqlite.csv").read_bytes()


def test_ihc_api_on_spark_equals_sqlite(small_demo, tmp_path, spark, capsys, monkeypatch):
    """``run parquet:///… --engine spark --model ihc-api`` against the loopback fake IHC server: the SQLite
    engine's byte-identical --csv (the journeys come from Spark, the API's ledger from the work file
    beside the folder), and a second run sends nothing."""
    from pipeline.cli import main
    from pipeline.ihc_api.local_server import LocalIhcServer

    key = "spark-api-key-0a1b2c3d"
    monkeypatch.setenv("IHC_API_KEY", key)
    monkeypatch.setenv("IHC_CONV_TYPE_ID", "local")
    monkeypatch.chdir(tmp_path)  # no .env here
    db = tmp_path / "demo.db"
    shutil.copy(small_demo, db)
    lake = tmp_path / "lake"
    convert(db, f"parquet:///{lake}")
    with LocalIhcServer(key, max_journeys=50, max_sessions=120) as server:
        api = ["--model", "ihc-api", "--api-url", server.url, "--max-journeys", "50", "--max-sessions", "120", "-q"]
        assert main(["run", str(db), *api, "--csv", str(tmp_path / "sqlite.csv")]) == 0
        spark_run = ["run", f"parquet:///{lake}", "--engine", "spark", "--spark-master", "local[2]", *api]
        posts = len(server.received)
        assert main([*spark_run, "--csv", str(tmp_path / "spark.csv")]) == 0
        assert len(server.received) > posts  # asked the API (its own ledger, beside the folder)
        assert (tmp_path / "spark.csv").read_bytes() == (tmp_path / "sqlite.csv").read_bytes()
        posts = len(server.received)
        capsys.readouterr()
        assert main(spark_run) == 0
        assert "attribute: up to date" in capsys.readouterr().out and len(server.received) == posts
    assert key not in "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.json"))


def test_markov_is_refused_per_bucket(demo):
    _, targets = demo
    with S.open_engine(targets["parquet"], master="local[2]") as engine, pytest.raises(Exception, match="every path"):
        S.attribute(engine, Window(), "markov")


@pytest.mark.parametrize("window", [Window(), Window(start="2023-09-03", lookback_days=2)], ids=str)
def test_path_summary_equal_and_markov_shapley_fit_on_it(demo, window):
    """Markov and Shapley fit on every path at once: the engine's path summary (distinct paths computed by
    Spark) equals the SQLite engine's, and the models fitted on it give the SQLite engine's credit."""
    from pipeline.journeys import build_non_converting
    from pipeline.path_summary import path_summary

    db, targets = demo
    con = open_database(db)
    expected = path_summary(con, window)
    index = JourneyIndex.from_columns(build_journeys(con, window).columns)
    non_converting = build_non_converting(con, window)
    con.close()
    with S.open_engine(targets["parquet"], master="local[2]") as engine:
        got = S.path_summary(engine, window)
        journeys = S.journeys(engine, window)
    assert got.n_paths == expected.n_paths > 10
    assert_same_summary(got, expected, rtol=1e-12)
    spark_index = JourneyIndex.from_columns(journeys.columns)
    for model in ("markov", "shapley"):
        want = np.asarray(get_model(model).credits(index, non_converting=non_converting).ihc)
        have = np.asarray(get_model(model).credits(spark_index, non_converting=got).ihc)
        assert (spark_index.column("session_id") == index.column("session_id")).all()
        assert np.abs(have - want).max() <= 1e-9, model


def test_report_bit_identical_to_sqlite(demo):
    db, targets = demo
    con = sqlite3.connect(db)
    stored = {(r[0], r[1]): tuple(r[2:]) for r in con.execute("SELECT * FROM channel_reporting")}
    con.close()
    for target in targets.values():
        with S.open_engine(target, master="local[2]") as engine:
            credits = S.attribute(engine, Window(), "linear")
            rows = S.channel_report(engine, credits)
            assert [(r[0], r[1]) for r in rows] == sorted(stored, key=lambda k: (k[1], k[0]))
            assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == stored, target  # the same fixed-point sums
            # reversed credit rows: the same figures (sums do not depend on the order rows arrive in)
            assert S.channel_report(engine, credits.take(np.arange(credits.num_rows)[::-1])) == rows
            ranged = S.channel_report(engine, credits, start="2023-09-03", end="2023-09-04")
            assert ranged == [r for r in rows if "2023-09-03" <= r[1] <= "2023-09-04"] and ranged


def test_units_round_as_sqlite_does(spark):
    values = [2.5, -2.5, 0.5, -0.5, 1.5, 0.49999999999999994, -0.49999999999999994, 4503599627370497.0,
              4503599627370495.5, -4503599627370497.0, 0.3, 123456789.49999999, 2.0**60 + 768, 0.0, 1 / 3]  # fmt: skip
    lite = sqlite3.connect(":memory:")
    expected = [lite.execute("SELECT CAST(round(? * 1) AS INTEGER)", (v,)).fetchone()[0] for v in values]
    spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, x double").createOrReplaceTempView("units")
    # the DuckDB engine's rounding, compiled to Spark SQL as the report's sums are
    got = [r[0] for r in spark.sql(transpile(f"SELECT {D._units('x', 1)} FROM units ORDER BY i", "spark")).collect()]
    spark.catalog.dropTempView("units")
    assert got == expected and expected[5] == 1


# ---- writing the outputs -----------------------------------------------------------------------------


def test_write_outputs_parquet(demo, tmp_path):
    _, targets = demo
    lake = tmp_path / "lake"
    shutil.copytree(Path(targets["parquet"].removeprefix("parquet:///")), lake)
    inputs = {t: hashlib.sha256((lake / f"{t}.parquet").read_bytes()).hexdigest() for t in INPUT_TABLES}
    with S.open_engine(f"parquet:///{lake}", master="local[2]") as engine:
        before = S.fingerprint(engine)
        credits = S.attribute(engine, Window(), "ihc")
        report = S.channel_report(engine, credits)
        assert S.write_outputs(engine, credits, report) == {
            "attribution_customer_journey": credits.num_rows,
            "channel_reporting": len(report),
        }
        assert S.channel_report(engine) == report  # the engine reads the new folder at once
        assert S.stored_report(engine) == report
        assert S.fingerprint(engine) == before  # the inputs' identity: outputs do not change it
        assert S.run_record(engine) is None
        S.write_run_record(engine, {"model": "ihc", "fingerprint": before})
        assert S.run_record(engine) == {"model": "ihc", "fingerprint": before}
    assert {t: hashlib.sha256((lake / f"{t}.parquet").read_bytes()).hexdigest() for t in INPUT_TABLES} == inputs
    assert not (lake / "channel_reporting.parquet").exists() and (lake / "channel_reporting").is_dir()
    assert [(f.name, str(f.type)) for f in pq.read_table(lake / "attribution_customer_journey").schema] == [
        ("conv_id", "string"),
        ("session_id", "string"),
        ("ihc", "double"),
    ]
    assert pq.read_table(lake / "channel_reporting").schema.names == [
        "channel_name",
        "date",
        "cost",
        "ihc",
        "ihc_revenue",
    ]
    assert not [p for p in lake.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_write_outputs_catalog(demo, spark):
    _, targets = demo
    with S.open_engine(targets["spark"], master="local[2]") as engine:
        credits = S.attribute(engine, Window(), "linear")
        report = S.channel_report(engine, credits)
        before = S.fingerprint(engine)
        S.write_outputs(engine, credits, report)
        S.write_outputs(engine, credits, report)  # replacing existing outputs
        assert S.channel_report(engine) == report and S.stored_report(engine) == report
        assert S.fingerprint(engine) == before
        assert S.run_record(engine) is None
        for n in (1, 2):  # written, then replaced
            S.write_run_record(engine, {"run": n})
            assert S.run_record(engine) == {"run": n}
        spark.sql("INSERT INTO demo.session_costs VALUES ('x', 1.0)")
        assert S.fingerprint(engine) != before  # a changed input table is seen
        assert engine.sql("SELECT count(*) FROM attribution_customer_journey")[0][0] == credits.num_rows
    tables = {t.name for t in spark.catalog.listTables("demo")}
    assert tables == {*INPUT_TABLES, "attribution_customer_journey", "channel_reporting", S.RECORD_TABLE}


class Killed(BaseException):
    """Stands for the process dying at that point: no handler of the engine's catches it."""


def _catalog_copy(spark, database: str) -> None:
    """A catalog database ``database`` holding the demo's inputs and the SQLite engine's outputs."""
    spark.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")
    spark.sql(f"CREATE DATABASE {database}")
    for table in [*INPUT_TABLES, *S.OUTPUT_TABLES]:
        spark.table(f"demo.{table}").write.saveAsTable(f"{database}.{table}")


def _tables(spark, database: str) -> set:
    return {t.name for t in spark.catalog.listTables(database) if not t.isTemporary}


def _dies_at(monkeypatch, step: str, call: int) -> list:
    """``S.<step>`` raising ``Killed`` at its ``call``-th call; the list of the table names it got."""
    calls: list = []
    real = getattr(S, step)

    def dying(engine, *args):
        calls.append(args[-1])  # the table renamed to / saved as
        if len(calls) == call:
            raise Killed
        real(engine, *args)

    monkeypatch.setattr(S, step, dying)
    return calls


def test_catalog_swap_killed_between_its_steps_is_finished_by_the_next_open(demo, spark, monkeypatch):
    """A run that dies after replacing the first output table and before renaming the second (the old
    channel_reporting dropped, the new one still staged): the next open (a run, ``status``, any command)
    finishes the swap from its journal, so the outputs and the run record are the new ones, whole; the
    next run then works."""
    from pipeline.cli import main

    _catalog_copy(spark, "swap")
    with S.open_engine("spark:///swap", master="local[2]") as engine:
        old_report = S.stored_report(engine)
        credits = S.attribute(engine, Window(), "first-click")
        report = S.channel_report(engine, credits)
        assert report != old_report  # first click credits other channels than the stored linear run
        renames = _dies_at(monkeypatch, "_rename", 2)
        with pytest.raises(Killed):
            S.write_outputs(engine, credits, report, record={"run": "new"})
        monkeypatch.undo()
    assert renames == ["attribution_customer_journey", "channel_reporting"]
    half = _tables(spark, "swap")
    assert "channel_reporting" not in half and {"channel_reporting__staging", S.SWAP_TABLE} <= half
    with S.open_engine("spark:///swap", master="local[2]") as engine:
        assert S.stored_report(engine) == report
        assert S.run_record(engine) == {"run": "new"}
        assert engine.sql("SELECT count(*) FROM attribution_customer_journey")[0][0] == credits.num_rows
    assert _tables(spark, "swap") == {*INPUT_TABLES, *S.OUTPUT_TABLES, S.RECORD_TABLE}
    argv = ["run", "spark:///swap", "--spark-master", "local[2]", "--model", "linear", "-q"]
    assert main(argv) == 0  # the next run works (the record it finds is no run's: it recomputes)
    with S.open_engine("spark:///swap", master="local[2]") as engine:
        assert S.stored_report(engine) == old_report and S.run_record(engine)["version"] == 1


def test_catalog_swap_killed_while_staging_keeps_the_previous_outputs(demo, spark, monkeypatch):
    """A failure while the new tables are being written, and a process that died there (its staging table
    left behind): the previous outputs stay as they were and the leftovers are dropped."""
    _catalog_copy(spark, "stage")
    with S.open_engine("spark:///stage", master="local[2]") as engine:
        old_report = S.stored_report(engine)
        credits = S.attribute(engine, Window(), "first-click")
        report = S.channel_report(engine, credits)
        saves = _dies_at(monkeypatch, "_save", 2)
        with pytest.raises(Killed):
            S.write_outputs(engine, credits, report)
        monkeypatch.undo()
        assert saves == ["attribution_customer_journey__staging", "channel_reporting__staging"]
        assert _tables(spark, "stage") == {*INPUT_TABLES, *S.OUTPUT_TABLES}
        assert S.stored_report(engine) == old_report
        # as a process killed there leaves it: a whole staging table and no journal
        spark.table("stage.attribution_customer_journey").write.saveAsTable("stage.channel_reporting__staging")
    with S.open_engine("spark:///stage", master="local[2]") as engine:
        assert S.stored_report(engine) == old_report
    assert _tables(spark, "stage") == {*INPUT_TABLES, *S.OUTPUT_TABLES}


def test_files_a_killed_save_left_at_a_staging_location_do_not_block_the_next_run(demo, spark):
    """A process killed inside saveAsTable leaves files at the table's managed location and no table
    in the catalog; Spark then refuses to create that table there (LOCATION_ALREADY_EXISTS). The next
    write clears such files of the names the engine owns (staging tables, the journal) and succeeds."""
    _catalog_copy(spark, "leftover")
    location = Path(spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:")) / "leftover.db"
    for name in ("channel_reporting__staging", S.SWAP_TABLE):
        (location / name).mkdir(parents=True)
        (location / name / "part-00000-dead.parquet").write_bytes(b"half a file")
    with S.open_engine("spark:///leftover", master="local[2]") as engine:
        credits = S.attribute(engine, Window(), "first-click")
        report = S.channel_report(engine, credits)
        S.write_outputs(engine, credits, report)
        assert S.stored_report(engine) == report
    assert _tables(spark, "leftover") == {*INPUT_TABLES, *S.OUTPUT_TABLES}


def test_bad_sources_are_one_line_errors(tmp_path):
    with pytest.raises(Exception, match="no such folder"):
        S.open_engine(f"parquet:///{tmp_path / 'nowhere'}", master="local[2]")
    with pytest.raises(Exception, match="no database nowhere"):
        S.open_engine("spark:///nowhere", master="local[2]")
    with pytest.raises(Exception, match="already running with master local\\[2\\]"):
        S.open_engine("spark:///demo", master="spark://127.0.0.1:1")


def test_blank_channels_as_sqlite(spark):
    """NULL, empty and blank (Unicode spaces too) channel names are '(not set)', as SQLite's channel_sql
    says; Spark's own two-argument trim reverses its arguments, so the compiled SQL must spell it out."""
    from pipeline.schema import channel_sql

    values = [None, "", " ", "\u00a0\t", " Display ", "x\u3000", "\u3000", "\ufeff"]
    spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, c string").createOrReplaceTempView("blank")
    got = [r[0] for r in spark.sql(transpile(f"SELECT {channel_sql('c')} FROM blank ORDER BY i", "spark")).collect()]
    spark.catalog.dropTempView("blank")
    lite = sqlite3.connect(":memory:")
    expected = [lite.execute(f"SELECT {channel_sql('x')} FROM (SELECT ? AS x)", (v,)).fetchone()[0] for v in values]
    assert got == expected and expected.count("(not set)") == 6
