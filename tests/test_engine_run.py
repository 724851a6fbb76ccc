"""The whole pipeline on the DuckDB engine (pipeline.engines.run, pipeline.cli.on_engines) against the
SQLite engine, through the command line: the small demo converted to a DuckDB file and a Parquet folder;
every model gives the same per-session credit (1e-9), report (1e-6), byte-identical --csv and the same
validation findings. Staleness per engine, failure leaving the previous state, and bad sources."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.convert import convert
from pipeline.models import available_models
from tests.engine_support import KINDS, demo_sources, engine_url
from tests.helpers import assert_same_summary

MODELS = available_models()


def _cli(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def sources(small_demo, tmp_path_factory):
    """{kind: source}: a SQLite copy of the small demo and its conversions (inputs only)."""
    return demo_sources(small_demo, tmp_path_factory.mktemp("engine_run"))


def _credits(kind: str, source: str) -> dict:
    """{(conv_id, session_id): ihc} of the stored attribution."""
    if kind == "sqlite":
        con = sqlite3.connect(source)
        rows = con.execute("SELECT conv_id, session_id, ihc FROM attribution_customer_journey").fetchall()
        con.close()
    elif kind == "duckdb":
        con = duckdb.connect(source.removeprefix("duckdb:///"), read_only=True)
        rows = con.execute("SELECT conv_id, session_id, ihc FROM attribution_customer_journey").fetchall()
        con.close()
    else:
        t = pq.read_table(Path(source.removeprefix("parquet:///")) / "attribution_customer_journey").to_pylist()
        rows = [(r["conv_id"], r["session_id"], r["ihc"]) for r in t]
    return {(c, s): v for c, s, v in rows}


def _report(kind: str, source: str) -> dict:
    sql = "SELECT channel_name, date, cost, ihc, ihc_revenue FROM channel_reporting"
    if kind == "sqlite":
        con = sqlite3.connect(source)
        rows = con.execute(sql).fetchall()
        con.close()
    elif kind == "duckdb":
        con = duckdb.connect(source.removeprefix("duckdb:///"), read_only=True)
        rows = con.execute(sql).fetchall()
        con.close()
    else:
        t = pq.read_table(Path(source.removeprefix("parquet:///")) / "channel_reporting").to_pylist()
        rows = [tuple(r.values()) for r in t]
    return {(r[0], r[1]): r[2:] for r in rows}


def _findings(source: str, capsys) -> list:
    capsys.readouterr()
    _cli("validate", source, "--json")
    out = json.loads(capsys.readouterr().out)
    return [(f["code"], f["severity"], f["count"], f["message"]) for f in out["findings"]]


@pytest.mark.parametrize("model", MODELS)
def test_every_model_same_numbers_through_the_cli(sources, model, tmp_path, capsys):
    csv = {}
    for kind, source in sources.items():
        csv[kind] = tmp_path / f"{kind}.csv"
        assert _cli("run", source, "--model", model, "--csv", csv[kind], "-q") == 0, kind
    ref_credit, ref_report = _credits("sqlite", sources["sqlite"]), _report("sqlite", sources["sqlite"])
    assert ref_credit and ref_report
    ref_findings = _findings(sources["sqlite"], capsys)
    for kind in KINDS:
        credit = _credits(kind, sources[kind])
        assert credit.keys() == ref_credit.keys(), kind
        diff = max(abs(credit[k] - ref_credit[k]) for k in ref_credit)
        assert diff <= 1e-9, (kind, model, diff)
        report = _report(kind, sources[kind])
        assert report.keys() == ref_report.keys(), kind
        worst = max(abs(a - b) for k in ref_report for a, b in zip(report[k], ref_report[k]))
        assert worst <= 1e-6, (kind, model, worst)
        assert csv[kind].read_bytes() == csv["sqlite"].read_bytes(), (kind, model)
        assert _findings(sources[kind], capsys) == ref_findings, kind


def test_window_and_lookback_same_numbers(fresh, small_demo, tmp_path):
    window = ["--start", "2023-09-03", "--end", "2023-09-08", "--lookback-days", "3"]
    shutil.copy(small_demo, tmp_path / "w.db")
    sources = {"sqlite": str(tmp_path / "w.db"), **fresh}  # fresh: SQLite keeps other windows' credit
    out = {}
    for kind, source in sources.items():
        out[kind] = tmp_path / f"{kind}.csv"
        assert _cli("run", source, "--model", "markov", *window, "--csv", out[kind], "-q") == 0
    ref = _credits("sqlite", sources["sqlite"])
    for kind in KINDS:
        credit = _credits(kind, sources[kind])
        assert credit.keys() == ref.keys()
        assert max(abs(credit[k] - ref[k]) for k in ref) <= 1e-9
        assert out[kind].read_bytes() == out["sqlite"].read_bytes()


def test_export_and_status_on_engines(sources, tmp_path, capsys):
    for kind, source in sources.items():
        assert _cli("run", source, "--model", "linear", "-q") == 0
        assert _cli("export", source, "--csv", tmp_path / f"{kind}.csv", "--channel", "Referral") == 0
    for kind in KINDS:
        assert (tmp_path / f"{kind}.csv").read_bytes() == (tmp_path / "sqlite.csv").read_bytes()
        capsys.readouterr()
        assert _cli("status", sources[kind]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split()[:2] for line in lines] == [
            [s, "done"] for s in ("validate", "journeys", "attribute", "report")
        ]


def _report_warnings(source: str, capsys) -> tuple:
    """The ``warning: report:`` lines of ``run`` and of ``validate``, and ``validate --json``'s report warnings."""
    capsys.readouterr()
    assert _cli("run", source, "--model", "linear", "-q") == 0
    run = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: report:")]
    _cli("validate", source)
    validate = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: report:")]
    _cli("validate", source, "--json")
    return run, validate, json.loads(capsys.readouterr().out)["report_warnings"]


def test_report_warnings_as_the_sqlite_engines(sources, capsys):
    """``run`` and ``validate`` on an engine print the stored report's warnings (the last session days
    incomplete) with the SQLite engine's words and figures."""
    expected = _report_warnings(sources["sqlite"], capsys)
    assert len(expected[0]) == 1 and "session day" in expected[0][0] and "incomplete" in expected[0][0]
    assert expected[1] == expected[0] and [w["code"] for w in expected[2]] == ["incomplete_last_days"]
    for kind in KINDS:
        assert _report_warnings(sources[kind], capsys) == expected, kind


def _snapshot(kind: str, source: str) -> dict:
    """The whole state a run may change: every file of a Parquet folder with its content hash; every
    table of a DuckDB file with its rows (DuckDB's own blocks move when a staging table comes and goes)."""
    root = Path(source.split(":///", 1)[1])
    if kind == "duckdb" and root.is_file():
        con = duckdb.connect(str(root), read_only=True)
        try:
            tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
            return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())) for t in sorted(tables)}
        finally:
            con.close()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def fresh(small_demo, tmp_path):
    """Fresh conversions of the small demo (for tests that edit or break them)."""
    out = {}
    for kind in KINDS:
        out[kind] = engine_url(tmp_path / kind, kind)
        (tmp_path / kind).mkdir()
        convert(small_demo, out[kind])
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_second_run_does_nothing_and_an_input_edit_reruns(fresh, kind, tmp_path, capsys):
    source = fresh[kind]
    inputs = {k: v for k, v in _snapshot(kind, source).items() if "attribution" not in k and "channel_rep" not in k}
    assert _cli("run", source, "--model", "linear", "-q") == 0
    after_run = _snapshot(kind, source)
    assert {k: after_run[k] for k in inputs} == inputs  # the input tables are never written
    first = capsys.readouterr().out
    assert "journeys: built" in first and "report:" in first
    state = _snapshot(kind, source)
    assert _cli("run", source, "--model", "linear", "-q") == 0
    second = capsys.readouterr().out
    assert "journeys: up to date" in second and "attribute: up to date" in second and "report: up to date" in second
    assert _snapshot(kind, source) == state  # nothing written
    before = _report(kind, source)
    # one conversion's revenue doubles: the next run sees it and redoes the work
    if kind == "duckdb":
        con = duckdb.connect(source.removeprefix("duckdb:///"))
        con.execute(
            "UPDATE conversions SET revenue = revenue * 2 WHERE conv_id = (SELECT min(conv_id) FROM conversions)"
        )
        con.close()
    else:
        path = Path(source.removeprefix("parquet:///")) / "conversions.parquet"
        table = pq.read_table(path).to_pandas()
        first_id = table["conv_id"].min()
        table.loc[table["conv_id"] == first_id, "revenue"] *= 2
        pq.write_table(pq.read_table(path).from_pandas(table, preserve_index=False), path)
    assert _cli("run", source, "--model", "linear", "-q") == 0
    third = capsys.readouterr().out
    assert "journeys: built" in third and "up to date" not in third
    after = _report(kind, source)
    assert sum(v[2] for v in after.values()) > sum(v[2] for v in before.values())  # revenue grew


def _raising(index, params, context):
    raise RuntimeError("the model broke")


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_model_leaves_outputs_and_record_as_they_were(fresh, kind):
    from pipeline.engines.run import run_on_engine
    from pipeline.models.base import Model
    from pipeline.runner import RunOptions

    source = fresh[kind]
    assert _cli("run", source, "--model", "linear", "-q") == 0
    state = _snapshot(kind, source)
    broken = Model("broken", "raises on every batch", _raising)
    with pytest.raises(RuntimeError, match="the model broke"):
        run_on_engine(source, RunOptions(model=broken, force=True))
    assert _snapshot(kind, source) == state


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_output_write_leaves_the_previous_state(fresh, kind, monkeypatch):
    from pipeline.engines import duckdb as E
    from pipeline.engines.run import run_on_engine
    from pipeline.runner import RunOptions

    source = fresh[kind]
    assert _cli("run", source, "--model", "linear", "-q") == 0
    state = _snapshot(kind, source)
    real = E.output_tables

    def half_written(credits, report):
        tables = real(credits, report)
        tables["channel_reporting"] = None  # the second table cannot be written
        return tables

    monkeypatch.setattr(E, "output_tables", half_written)
    with pytest.raises(Exception):
        run_on_engine(source, RunOptions(model="first-click"))
    assert _snapshot(kind, source) == state


def _dead_pid() -> int:
    """The pid of a process that has ended (what a killed run leaves its leftovers named after)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_run_killed_inside_the_parquet_swap_is_undone_by_the_next_command(fresh, capsys):
    source = fresh["parquet"]
    root = Path(source.removeprefix("parquet:///"))
    assert _cli("run", source, "--model", "linear", "-q") == 0
    report, credits = _report("parquet", source), _credits("parquet", source)
    # what a run killed between channel_reporting's two renames leaves behind: the record already removed,
    # the previous folder moved aside, a staging folder of the other table
    pid = _dead_pid()
    (root / "_pipeline_run.json").unlink()
    os.replace(root / "channel_reporting", root / f".channel_reporting.replaced-{pid}")
    staging = root / f".attribution_customer_journey.staging-{pid}-k1ll"
    staging.mkdir()
    (staging / "part-0.parquet").write_bytes(b"half a file")
    alive = root / f".channel_reporting.staging-{os.getpid()}-busy"  # a run still going on beside
    alive.mkdir()
    capsys.readouterr()
    assert _cli("status", source) == 0  # any command repairs it when it opens the folder
    assert _report("parquet", source) == report  # the previous outputs, whole, back in place
    assert not staging.exists() and not (root / f".channel_reporting.replaced-{pid}").exists()
    assert alive.exists()  # a living process's staging folder is left alone
    alive.rmdir()
    assert _cli("run", source, "--model", "linear", "-q") == 0  # no record: redone, never "up to date"
    out = capsys.readouterr().out
    assert "journeys: built" in out and "up to date" not in out
    assert _report("parquet", source) == report and _credits("parquet", source) == credits


def test_a_parquet_swap_cut_short_is_never_taken_as_up_to_date(fresh, capsys, monkeypatch):
    from pipeline.engines import duckdb as E
    from pipeline.engines.run import run_on_engine
    from pipeline.runner import RunOptions

    source = fresh["parquet"]
    assert _cli("run", source, "--model", "linear", "-q") == 0
    real = os.replace

    def second_table_fails(src, dst):
        if Path(dst).name.startswith(".channel_reporting.replaced-"):
            raise OSError("disk gone")
        return real(src, dst)

    monkeypatch.setattr(E.os, "replace", second_table_fails)
    with pytest.raises(OSError, match="disk gone"):  # attribution swapped to first-click, the report not
        run_on_engine(source, RunOptions(model="first-click"))
    monkeypatch.setattr(E.os, "replace", real)
    engine = E.open_engine(source)
    try:
        assert E.run_record(engine) is None  # the linear record would have vouched for first-click credit
    finally:
        engine.con.close()
    capsys.readouterr()
    assert _cli("run", source, "--model", "first-click", "-q") == 0
    assert "journeys: built" in capsys.readouterr().out


def test_a_duckdb_run_record_is_swapped_with_the_outputs(fresh, monkeypatch):
    from pipeline.engines import duckdb as E
    from pipeline.engines.run import run_on_engine
    from pipeline.runner import RunOptions

    source = fresh["duckdb"]
    assert _cli("run", source, "--model", "linear", "-q") == 0
    state = _snapshot("duckdb", source)

    def unwritable(record):
        raise RuntimeError("record lost")

    monkeypatch.setattr(E, "record_text", unwritable)
    with pytest.raises(RuntimeError, match="record lost"):
        run_on_engine(source, RunOptions(model="first-click"))
    assert _snapshot("duckdb", source) == state  # outputs and record: both the previous ones, or neither


# ---- bad sources: one line naming the source, exit 2, nothing written -------------------------------------


def _bad(capsys, *argv) -> str:
    capsys.readouterr()
    assert _cli(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err
    return err


def test_unknown_scheme(capsys):
    assert "unknown source scheme 'mysql'" in _bad(capsys, "run", "mysql:///x", "-q")


def test_missing_table_and_column(fresh, capsys):
    lake = Path(fresh["parquet"].removeprefix("parquet:///"))
    (lake / "session_costs.parquet").unlink()
    state = _snapshot("parquet", fresh["parquet"])
    err = _bad(capsys, "run", fresh["parquet"], "-q")
    assert fresh["parquet"] in err and "session_costs" in err and "missing" in err
    assert _snapshot("parquet", fresh["parquet"]) == state
    con = duckdb.connect(fresh["duckdb"].removeprefix("duckdb:///"))
    con.execute("ALTER TABLE conversions DROP COLUMN revenue")
    con.close()
    state = _snapshot("duckdb", fresh["duckdb"])
    err = _bad(capsys, "run", fresh["duckdb"], "-q")
    assert fresh["duckdb"] in err and "revenue" in err
    assert _snapshot("duckdb", fresh["duckdb"]) == state


def test_mixed_parquet_schemas(fresh, capsys):
    lake = Path(fresh["parquet"].removeprefix("parquet:///"))
    table = pq.read_table(lake / "conversions.parquet")
    (lake / "conversions.parquet").unlink()
    (lake / "conversions").mkdir()
    pq.write_table(table.slice(0, 10), lake / "conversions" / "a.parquet")
    pq.write_table(table.slice(10).drop_columns(["revenue"]), lake / "conversions" / "b.parquet")
    state = _snapshot("parquet", fresh["parquet"])
    err = _bad(capsys, "run", fresh["parquet"], "-q")
    assert fresh["parquet"] in err and "mixes schemas" in err
    assert _snapshot("parquet", fresh["parquet"]) == state


def test_a_duckdb_url_naming_a_file_that_is_not_duckdb(tmp_path, capsys):
    fake = tmp_path / "fake.duckdb"
    fake.write_text("not a database\n")
    err = _bad(capsys, "run", f"duckdb:///{fake}", "-q")
    assert str(fake) in err and "DuckDB" in err
    assert fake.read_text() == "not a database\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.duckdb"]


def test_sqlite_url_runs_todays_engine(small_demo, tmp_path, capsys):
    db = tmp_path / "x.db"
    shutil.copy(small_demo, db)
    assert _cli("run", f"sqlite:///{db}", "--model", "linear", "--csv", tmp_path / "a.csv", "-q") == 0
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM pipeline_stages").fetchone()[0] >= 3  # the SQLite runner's records
    con.close()


def test_engine_choice_errors(sources, capsys):
    err = _bad(capsys, "run", sources["sqlite"], "--engine", "duckdb", "-q")
    assert "does not run sqlite sources" in err
    err = _bad(capsys, "run", sources["duckdb"], "--engine", "spark", "-q")
    assert "spark" in err


def test_credit_is_identical_for_any_batch_size(fresh):
    """Batches of whole journeys: the credit does not depend on how the rows are cut."""
    from pipeline.engines.run import open_run, run_on_engine
    from pipeline.runner import RunOptions

    run_on_engine(fresh["duckdb"], RunOptions(model="time-decay"), batch_rows=97)
    small = _credits("duckdb", fresh["duckdb"])
    run_on_engine(fresh["duckdb"], RunOptions(model="time-decay", force=True))
    big = _credits("duckdb", fresh["duckdb"])
    assert small.keys() == big.keys()
    assert np.array_equal(np.array([small[k] for k in big]), np.array(list(big.values())))
    mod, eng = open_run(fresh["duckdb"], write=False)
    with eng:
        assert mod.run_record(eng)["stages"]["attribute"]["params"]["model"] == "time-decay"


@pytest.mark.parametrize("lookback", [None, 2])
def test_path_summary_in_buckets_equals_sqlites(small_demo, fresh, monkeypatch, lookback):
    """The non-converting paths summarised in several passes over user buckets: the same summary."""
    from pipeline.db import open_database
    from pipeline.engines import duckdb as E
    from pipeline.engines import paths
    from pipeline.path_summary import path_summary
    from pipeline.window import Window

    window = Window(lookback_days=lookback)
    ref = path_summary(open_database(small_demo), window)
    monkeypatch.setattr(paths, "PATH_BUCKET_SESSIONS", 3_000)  # 7 passes over the 20k sessions
    for source in fresh.values():
        with E.open_engine(source) as engine:
            got = E.path_summary(engine, window)
        assert_same_summary(got, ref)  # values too: summed in conversion order, as SQLite's


def test_an_engine_without_the_run_contract_says_what_it_lacks(capsys, monkeypatch):
    """An engine module offering only part of the contract is a one-line error, not a traceback; nothing
    is connected to (a stand-in module for Postgres, which now offers the whole contract)."""
    import sys
    import types

    from pipeline import engines

    partial = types.ModuleType("tests.partial_engine")
    partial.validate = partial.journey_batches = lambda *a, **k: None  # type: ignore[attr-defined]
    partial.open_engine = lambda *a, **k: pytest.fail("connected")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, partial.__name__, partial)
    monkeypatch.setitem(engines.ENGINES, ("postgres", "postgres"), partial.__name__)
    err = _bad(capsys, "run", "postgres://analyst@127.0.0.1:1/shop", "-q")
    assert "postgres://analyst@127.0.0.1:1/shop" in err and "does not offer this command yet" in err
    assert "run_record" in err and "validate" not in err.split("lacks", 1)[1]
