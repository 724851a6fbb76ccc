"""The per-session working folder: demo cache, uploads, safe writes, isolation and clean-up."""

from __future__ import annotations

import gc
import hashlib
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipeline import workspace as wsm
from pipeline.demo_size import DemoSize
from pipeline.errors import InputError, PipelineError
from pipeline.runner import RunOptions
from pipeline.status import status
from pipeline.workspace import UploadRefused, Workspace
from tests.helpers import make_db, tiny_db

SMALL = DemoSize(sessions=5_000, conversions=100, days=5, seed=3)


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def base(tmp_path):
    return tmp_path / "workspaces"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return wsm.cached_demo(SMALL, tmp_path_factory.mktemp("cache"))


# ---- the demo cache -----------------------------------------------------------------------------


def test_cached_demo_is_built_once_and_already_attributed(tmp_path, monkeypatch):
    calls = []
    real = wsm.write_demo_db
    monkeypatch.setattr(wsm, "write_demo_db", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    results = []
    threads = [threading.Thread(target=lambda: results.append(wsm.cached_demo(SMALL, tmp_path))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1
    path = results[0]
    assert path.name.startswith("demo-s5000-c100-d5-r3-")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert {s: st.state for s, st in status(con).items()} == {"journeys": "done", "attribute": "done", "report": "done"}
    assert not list(tmp_path.glob("*.building.db"))
    mtime = path.stat().st_mtime_ns
    assert wsm.cached_demo(SMALL, tmp_path) == path and path.stat().st_mtime_ns == mtime
    other = wsm.demo_cache_path(DemoSize(sessions=6_000, conversions=100, days=5, seed=3), tmp_path)
    assert other != path


def test_demo_size_from_env():
    size = wsm.demo_size_from_env({"ATTRIBUTION_DEMO_SESSIONS": "20000", "ATTRIBUTION_DEMO_SEED": "7"})
    assert (size.sessions, size.conversions, size.days, size.seed) == (20_000, 2_000, 10, 7)
    assert wsm.demo_size_from_env({}) == DemoSize()
    with pytest.raises(InputError, match="ATTRIBUTION_DEMO_DAYS"):
        wsm.demo_size_from_env({"ATTRIBUTION_DEMO_DAYS": "ten"})
    # the dashboard's demo has the real data's id shape unless asked for short ids (benchmarks compare)
    assert not wsm.demo_size_from_env({}).short_ids
    assert wsm.demo_size_from_env({"ATTRIBUTION_DEMO_SHORT_IDS": "1"}).short_ids
    assert not wsm.demo_size_from_env({"ATTRIBUTION_DEMO_SHORT_IDS": "0"}).short_ids
    with pytest.raises(InputError, match="ATTRIBUTION_DEMO_SHORT_IDS"):
        wsm.demo_size_from_env({"ATTRIBUTION_DEMO_SHORT_IDS": "yes"})


def test_short_and_real_shaped_demos_are_cached_apart(tmp_path):
    real = wsm.demo_cache_path(SMALL, tmp_path)
    assert wsm.demo_cache_path(DemoSize(5_000, 100, 5, 3, short_ids=True), tmp_path) != real


# ---- the working folder ---------------------------------------------------------------------------


def test_workspace_is_private_and_copies_the_demo(base, demo):
    before = digest(demo)
    a, b = Workspace.create(base), Workspace.create(base)
    assert a.root != b.root and (a.root.stat().st_mode & 0o777) == 0o700
    a.use_demo(demo, SMALL)
    assert a.source.kind == "demo" and "5,000 sessions" in a.source.detail
    assert a.db_path != demo and digest(a.db_path) == before
    result, seconds = a.run(RunOptions(model="linear"))
    assert digest(demo) == before  # the cached demo is never written
    assert digest(a.db_path) != before and seconds > 0
    assert not b.has_database  # another session's folder is untouched
    assert a.fingerprint() != b.fingerprint()


def test_upload_accepted_and_original_untouched(base, tmp_path):
    original = tiny_db(tmp_path / "mine.db")
    before = digest(original)
    ws = Workspace.create(base)
    with open(original, "rb") as fh:
        report = ws.use_upload("C:\\Users\\ana\\mine.db", fh)
    assert report.ok and ws.source.name == "mine.db" and ws.source.kind == "upload"
    assert ws.source.size_bytes == original.stat().st_size
    ws.run(RunOptions(model="linear"))
    assert digest(original) == before
    assert sqlite3.connect(ws.db_path).execute("SELECT count(*) FROM attribution_customer_journey").fetchone()[0] == 6
    assert sorted(p.name for p in ws.root.iterdir()) == ["current.db", "owner.pid"]  # nothing left over


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"hello, this is text\n" * 10, "is not a SQLite database"),
        (b"SQLite format 3\x00" + b"\x00" * 30, "truncated"),
    ],
)
def test_upload_of_a_bad_file_is_refused_and_keeps_the_previous_database(base, demo, content, message):
    ws = Workspace.create(base)
    ws.use_demo(demo)
    before = digest(ws.db_path)
    with pytest.raises(UploadRefused, match=message) as info:
        ws.use_upload("broken.db", content)
    assert "broken.db" in str(info.value) and str(ws.root) not in str(info.value)
    assert digest(ws.db_path) == before and ws.source.kind == "demo"
    assert sorted(p.name for p in ws.root.iterdir()) == ["current.db", "owner.pid"]


def test_upload_with_fatal_findings_is_refused_with_the_findings(base, tmp_path):
    no_costs = make_db(tmp_path / "nocost.db", ddl="CREATE TABLE session_sources (session_id TEXT);")
    ws = Workspace.create(base)
    with pytest.raises(UploadRefused, match="cannot be attributed") as info:
        ws.use_file(no_costs)
    assert info.value.report is not None and len(info.value.report.fatal) >= 3
    assert not ws.has_database
    bad_dates = make_db(
        tmp_path / "dates.db",
        sessions=[("s1", "u1", "2023-13-45", "10:00:00", "Direct", 0, 0, 0)],
        conversions=[("c1", "u1", "2023-09-02", "12:00:00", 1.0)],
    )
    with pytest.raises(UploadRefused, match="event_date"):
        ws.use_file(bad_dates)


def test_failed_run_keeps_the_previous_results(base, demo, monkeypatch):
    ws = Workspace.create(base)
    ws.use_demo(demo)
    before, fp = digest(ws.db_path), ws.fingerprint()
    import pipeline.runner as runner

    def broken_report(*args, **kwargs):
        raise PipelineError("report failed on purpose")

    monkeypatch.setattr(runner, "report_stage", broken_report)
    with pytest.raises(PipelineError, match="on purpose"):
        ws.run(RunOptions(model="linear"))  # journeys and attribute were committed — in the copy
    assert digest(ws.db_path) == before and ws.fingerprint() == fp
    assert sorted(p.name for p in ws.root.iterdir()) == ["current.db", "owner.pid"]
    with pytest.raises(InputError, match="unknown model"):
        ws.run(RunOptions(model="nope"))
    assert digest(ws.db_path) == before


def test_in_place_run_for_the_api(base, demo):
    ws = Workspace.create(base)
    ws.use_demo(demo)
    ws.run(RunOptions(model="linear"), in_place=True)
    con = sqlite3.connect(ws.db_path)
    assert con.execute("SELECT DISTINCT model FROM pipeline_attribution").fetchall() == [("linear",)]


def test_copy_of_a_wal_database(tmp_path):
    db = tiny_db(tmp_path / "wal.db")
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("INSERT INTO conversions VALUES ('c9', 'u3', '2023-09-05', '10:00:00', 5.0)")
    con.commit()  # the row may still be only in the -wal file
    copy = wsm.copy_db_file(db, tmp_path / "copy.db")
    con.close()
    assert sqlite3.connect(copy).execute("SELECT count(*) FROM conversions").fetchone()[0] == 4


def test_clean_up(base, demo):
    ws = Workspace.create(base)
    ws.use_demo(demo)
    root = ws.root
    ws.close()
    assert not root.exists() and ws.closed
    ws2 = Workspace.create(base)
    root2 = ws2.root
    del ws2
    gc.collect()
    assert not root2.exists()  # the session ended: its folder goes with it


def test_sweep_removes_folders_of_dead_processes(base):
    alive = Workspace.create(base)
    dead = base / "ws-dead"
    dead.mkdir()
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (dead / "owner.pid").write_text(proc.stdout.strip())
    orphan = base / "ws-orphan"
    orphan.mkdir()
    removed = wsm.sweep(base)
    assert set(removed) == {dead, orphan}
    assert alive.root.exists()
    assert wsm.sweep(base / "missing") == []
