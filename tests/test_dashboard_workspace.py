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


def test_a_run_that_writes_nothing_leaves_the_demo_shared(base, demo):
    """The demo is attributed with the default model already: a run with it finds every stage up to date
    and writes nothing, so the session keeps reading the shared file (the sidebar then does not warn that
    a reload loses "your runs on the demo"); its copy is dropped. A run that writes still swaps in its copy."""
    from pages._look import unsaved_work

    before = digest(demo)
    a = Workspace.create(base)
    a.use_demo(demo, SMALL)
    result, _ = a.run(RunOptions())
    assert all(o.skipped for o in result.outcomes), result.lines()
    assert a.db_path == demo and a.shares_demo and unsaved_work(a) is None
    assert sorted(p.name for p in a.root.iterdir() if p.suffix == ".db") == []  # no copy left behind
    assert digest(demo) == before
    a.run(RunOptions(model="linear"))
    assert not a.shares_demo and a.db_path == a.root / "current.db" and unsaved_work(a) is not None


def test_workspace_is_private_and_shares_the_demo_until_the_first_write(base, demo):
    """A page load copies nothing: the session reads the cached demo read-only; its first run copies it."""
    before = digest(demo)
    a, b = Workspace.create(base), Workspace.create(base)
    assert a.root != b.root and (a.root.stat().st_mode & 0o777) == 0o700
    a.use_demo(demo, SMALL)
    b.use_demo(demo, SMALL)
    assert a.source.kind == "demo" and "5,000 sessions" in a.source.detail
    assert a.db_path == demo and a.shares_demo and not (a.root / "current.db").exists()
    assert wsm.folder_bytes(a.root) < 1000  # nothing copied
    con = a.connect()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        con.execute("CREATE TABLE x (y)")  # shared read-only
    con.close()
    assert a.fingerprint() != b.fingerprint()  # caches stay per session, even on the same file
    result, seconds = a.run(RunOptions(model="linear"))
    assert digest(demo) == before  # the cached demo is never written
    assert a.db_path == a.root / "current.db" and not a.shares_demo
    assert digest(a.db_path) != before and seconds > 0
    assert b.db_path == demo and digest(b.db_path) == before  # another session is untouched
    c = Workspace.create(base)
    c.use_demo(demo)
    c.run(RunOptions(model="linear"), in_place=True)  # the API's in-place run copies first, too
    assert digest(demo) == before and c.db_path == c.root / "current.db"


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
    assert sorted(p.name for p in ws.root.iterdir()) == ["current.db", "owner.pid", "session"]  # nothing left over


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
    assert sorted(p.name for p in ws.root.iterdir()) == ["owner.pid", "session"]  # the demo is still shared


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
    assert sorted(p.name for p in ws.root.iterdir()) in (
        ["owner.pid", "session"],
        ["current.db", "owner.pid", "session"],
    )
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


# ---- issue 12: one run at a time, SQLite errors, bounded uploads, clean-up on schedule, a size cap ---


def test_one_run_at_a_time_per_workspace(base, demo):
    """A second Run while one is going is refused (it used to share next.db and crash with FileNotFoundError)."""
    ws = Workspace.create(base)
    ws.use_demo(demo)
    started, release = threading.Event(), threading.Event()
    outcome = {}

    def slow_progress(done, total, message):
        started.set()
        release.wait(30)

    def first():
        try:
            outcome["result"] = ws.run(RunOptions(model="linear", force=True), slow_progress)
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(30)
    assert ws.running
    with pytest.raises(wsm.RunInProgress, match="already in progress"):
        ws.run(RunOptions(model="first-click"))
    release.set()
    thread.join(60)
    assert "error" not in outcome, outcome.get("error")
    ws.run(RunOptions(model="first-click"))  # the next run works
    assert not ws.running
    names = sorted(p.name for p in ws.root.iterdir())
    assert names == ["current.db", "owner.pid", "session"]


def trigger_db(tmp_path, table: str, when: str = "BEFORE INSERT") -> Path:
    from pipeline.schema import OUTPUT_DDL, OWN_DDL

    db = tiny_db(tmp_path / f"trigger-{table}.db")
    con = sqlite3.connect(db)
    con.executescript(OUTPUT_DDL + OWN_DDL)
    con.execute(f"CREATE TRIGGER no_write {when} ON {table} BEGIN SELECT RAISE(ABORT, 'writes are frozen'); END")
    con.commit()
    con.close()
    return db


@pytest.mark.parametrize("table", ["pipeline_journeys", "pipeline_attribution", "channel_reporting"])
def test_a_trigger_that_aborts_a_write_gets_the_one_line_message(base, tmp_path, table):
    from tests.helpers import cli

    db = trigger_db(tmp_path, table)
    ws = Workspace.create(base)
    ws.use_file(db)
    before = digest(ws.db_path)
    with pytest.raises(InputError) as caught:
        ws.run(RunOptions(model="linear"))
    message = str(caught.value)
    assert "writes are frozen" in message and "\n" not in message
    assert str(ws.root) not in message
    assert digest(ws.db_path) == before  # nothing half-written
    cli_run = cli("run", db, "--model", "linear")
    assert cli_run.returncode == 2 and f"error: {message}" in cli_run.stderr  # the CLI's very words


def recursive_view_db(path: Path) -> Path:
    """Tiny, and endless: session_sources is a recursive view that never stops."""
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE VIEW session_sources AS
          WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)
          SELECT 's' || n AS session_id, 'u' || n AS user_id, '2023-09-01' AS event_date,
                 '10:00:00' AS event_time, 'Display' AS channel_name, 0 AS holder_engagement,
                 0 AS closer_engagement, 0 AS impression_interaction FROM r;
        CREATE TABLE conversions (conv_id TEXT, user_id TEXT, conv_date TEXT, conv_time TEXT, revenue REAL);
        INSERT INTO conversions VALUES ('c1', 'u1', '2023-09-02', '12:00:00', 1.0);
        CREATE TABLE session_costs (session_id TEXT, cost REAL);
        """
    )
    con.close()
    return path


def test_an_endless_view_in_an_upload_is_stopped_with_a_clear_message(base, demo, tmp_path, monkeypatch):
    import time

    monkeypatch.setenv(wsm.QUERY_SECONDS_ENV, "1.5")
    monkeypatch.setenv(wsm.QUERY_STEPS_ENV, str(10**15))  # the clock's bound, not the work bound (own tests)
    db = recursive_view_db(tmp_path / "endless.db")
    assert db.stat().st_size < 20_000
    ws = Workspace.create(base)
    ws.use_demo(demo)
    t0 = time.monotonic()
    with pytest.raises(UploadRefused) as caught:
        ws.use_file(db)
    elapsed = time.monotonic() - t0
    assert "took longer than 1.5 s" in str(caught.value) and "endless.db" in str(caught.value)
    assert elapsed < 30
    assert ws.db_path == demo  # the previous database stays
    assert sorted(p.name for p in ws.root.iterdir()) == ["owner.pid", "session"]


def test_closing_the_workspace_stops_queries_on_the_upload(base, tmp_path, monkeypatch):
    """The session ended (tab closed): a query still running on its upload stops at once."""
    import time

    from pipeline.db import sqlite_error_message

    monkeypatch.setenv(wsm.QUERY_SECONDS_ENV, "600")
    # The work bound (50M steps for a tiny file) ends the endless query in well under 0.5 s on an idle
    # machine: keep it out of the way, so what stops the query is the session's end.
    monkeypatch.setenv(wsm.QUERY_STEPS_ENV, str(10**15))
    ws = Workspace.create(base)
    ws.use_file(tiny_db(tmp_path / "ok.db"))
    con = ws.connect()  # bounded: a read of an upload
    failure = {}

    def endless():
        try:
            con.execute("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r")
        except sqlite3.DatabaseError as exc:
            failure["message"] = sqlite_error_message(exc)

    thread = threading.Thread(target=endless)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()
    ws.close()
    thread.join(10)
    assert not thread.is_alive()
    assert "stopped: the session ended" in failure["message"]
    con.close()


def test_sweep_removes_sessions_gone_for_the_grace_period(base, demo):
    import os
    import time

    live, gone, fresh = (Workspace.create(base, session_id=name) for name in ("live", "gone", "fresh"))
    for ws in (live, gone, fresh):
        ws.use_demo(demo)
    old = time.time() - 300
    for ws in (live, gone):
        os.utime(ws.root / "session", (old, old))
    removed = wsm.sweep(base, is_live=lambda session: session == "live", grace_seconds=120)
    assert removed == [gone.root] and gone.closed
    assert live.root.exists() and fresh.root.exists()  # fresh: gone less than 120 s ago (a reconnect may come)


def test_the_size_cap_evicts_abandoned_sessions_then_refuses(base, tmp_path):
    import os
    import time

    upload = tiny_db(tmp_path / "u.db")
    size = upload.stat().st_size
    a, b, me = (Workspace.create(base, session_id=n) for n in ("a", "b", "me"))
    for ws in (a, b):
        ws.use_file(upload)
    old = time.time() - 600
    os.utime(a.root / "session", (old, old))  # a: abandoned 10 minutes ago; b: seen just now
    wsm.set_liveness(lambda session: session == "b")
    try:
        cap = wsm.folder_bytes(base) + size + 100  # room for one more upload only after an eviction...
        evicted = wsm.make_room(2 * size, keep=me.root, max_bytes=cap)
        assert evicted == [a.root] and a.closed and b.root.exists()
        with pytest.raises(wsm.WorkspaceFull, match="working space is full"):
            wsm.make_room(10 * size, keep=me.root, max_bytes=cap)  # b is live: never evicted
        assert b.root.exists() and me.root.exists()
    finally:
        wsm.set_liveness(None)


def test_an_upload_beyond_the_cap_is_refused_with_a_clear_message(base, demo, tmp_path, monkeypatch):
    upload = tiny_db(tmp_path / "u.db")
    monkeypatch.setenv(wsm.MAX_MB_ENV, str(upload.stat().st_size / 2 / 1e6))
    ws = Workspace.create(base)
    ws.use_demo(demo)
    with pytest.raises(InputError, match="working space is full"):
        ws.use_file(upload)
    assert ws.db_path == demo


def test_error_texts_shown_to_the_analyst_hide_server_paths(base):
    ws = Workspace.create(base)
    text = f'File "{wsm.REPO_DIR}/pipeline/db.py", line 3\nFileNotFoundError: {ws.root}/next.db; {sys.prefix}/lib'
    shown = ws.public_text(text)
    for path in (str(wsm.REPO_DIR), str(ws.root), sys.prefix):
        assert path not in shown
    assert "<app>/pipeline/db.py" in shown and "<session folder>/next.db" in shown


def test_a_finaliser_that_unregisters_a_bound_while_the_lock_is_held_does_not_deadlock(tmp_path):
    """A workspace's finaliser calls db.bound_queries(folder, None); garbage collection can run it inside
    a thread that already holds the bounds' lock (it did, in db.bound_for): the lock must be re-entrant."""
    import threading

    from pipeline import db

    db.bound_queries(tmp_path, db.QueryBound(60))
    done = threading.Event()

    def holder():
        with db._BOUNDS_LOCK:
            db.bound_queries(tmp_path, None)  # what the finaliser does, under the lock
        done.set()

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert done.wait(5), "bound_queries deadlocked under the bounds' lock"
    assert db.bound_for(tmp_path / "x.db") is None


def test_an_endless_view_stops_on_work_done_whatever_the_clock(base, demo, tmp_path, monkeypatch):
    """Uploads are bounded in rows (SQLite VM steps) as well as time: with a generous time bound (a fast
    machine does more per second), the endless view still stops, on the work it did, in one line."""
    import time

    monkeypatch.setenv(wsm.QUERY_SECONDS_ENV, "25")
    db = recursive_view_db(tmp_path / "endless.db")
    ws = Workspace.create(base)
    ws.use_demo(demo)
    t0 = time.monotonic()
    with pytest.raises(UploadRefused) as caught:
        ws.use_file(db)
    message = str(caught.value)
    assert "steps of work: stopped" in message and "endless.db" in message and "\n" not in message
    assert time.monotonic() - t0 < 25
    assert ws.db_path == demo


def test_the_step_bound_follows_the_upload_size(tmp_path):
    small = wsm.upload_bound(file_bytes=20_000)
    assert small.max_steps == wsm.MIN_QUERY_STEPS
    big = wsm.upload_bound(file_bytes=500_000_000)
    assert big.max_steps == 500_000_000 * wsm.QUERY_STEPS_PER_BYTE > small.max_steps


# ---- the next run's copy, made ahead (Workspace.prepare_copy) -------------------------------------


def _copies(monkeypatch) -> list:
    """The database copies ``Workspace`` makes from now on (not counting a spare being made)."""
    made: list = []
    real = wsm.copy_db_file

    def counting(source, target):
        if Path(target).name != wsm.SPARE:
            made.append(Path(target).name)
        return real(source, target)

    monkeypatch.setattr(wsm, "copy_db_file", counting)
    return made


def _cost(path: Path) -> float:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT total(cost) FROM channel_reporting").fetchone()[0]
    finally:
        con.close()


def test_a_run_starts_on_the_spare_copy_made_ahead(base, demo, monkeypatch):
    before = digest(demo)
    ws = Workspace.create(base)
    ws.use_demo(demo)
    ws.prepare_copy().join()
    assert ws.spare_path.exists() and digest(ws.spare_path) != before  # (its fingerprints adopted: one commit)
    assert ws.prepare_copy() is None  # the spare is current: nothing to do
    made = _copies(monkeypatch)
    ws.run(RunOptions(model="linear"))
    assert made == [] and not ws.spare_path.exists()  # the run took the spare, copied nothing
    assert digest(demo) == before and ws.db_path == ws.root / "current.db"
    assert {s.state for s in status(sqlite3.connect(ws.db_path)).values()} == {"done"}
    ws.prepare_copy().join()  # after a run: the spare of the new current.db
    ws.run(RunOptions(model="first-click"), in_place=True)  # the in-place run does not need it...
    assert made == [] and ws.spare_path.exists()  # ...and leaves it (it is stale now)
    ws.run(RunOptions(model="linear"))
    assert made and made[0].startswith("next-") and not ws.spare_path.exists()  # stale spare: copied anew


def test_a_spare_of_inputs_changed_since_is_discarded(base, tmp_path, monkeypatch):
    ws = Workspace.create(base)
    ws.use_file(tiny_db(tmp_path / "t.db"))
    ws.run(RunOptions())
    assert _cost(ws.db_path) == 6.5  # hand-computed: 2 + 1 + 0.5 + 3
    ws.prepare_copy().join()
    assert ws.spare_path.exists()
    con = sqlite3.connect(ws.db_path)  # the database written after the spare was made
    con.execute("UPDATE session_costs SET cost = 9.0 WHERE session_id = 's1'")
    con.commit()
    con.close()
    made = _copies(monkeypatch)
    ws.run(RunOptions())
    assert len(made) == 1 and not ws.spare_path.exists()
    assert _cost(ws.db_path) == 13.5  # 9 + 1 + 0.5 + 3: the run saw the edit, not the spare's 2


def test_a_spare_is_discarded_first_when_room_is_short(base, tmp_path):
    upload = tiny_db(tmp_path / "u.db")
    size = upload.stat().st_size
    a, me = Workspace.create(base, session_id="a"), Workspace.create(base, session_id="me")
    a.use_file(upload)
    a.prepare_copy().join()
    assert a.spare_path.exists()
    wsm.set_liveness(lambda session: True)  # both sessions live: neither may be evicted
    try:
        cap = wsm.folder_bytes(base) + size // 2  # room for the new file only without a's spare
        assert not wsm.room_for(size, base=base, max_bytes=cap)
        assert wsm.make_room(size, keep=me.root, max_bytes=cap) == []  # nobody evicted...
        assert not a.spare_path.exists() and a.db_path.exists()  # ...a's spare went first
    finally:
        wsm.set_liveness(None)


def test_no_spare_is_made_without_room_for_it(base, tmp_path, monkeypatch):
    ws = Workspace.create(base)
    ws.use_file(tiny_db(tmp_path / "t.db"))
    monkeypatch.setenv(wsm.MAX_MB_ENV, str((wsm.folder_bytes(base) + 100) / 1e6))  # less than one copy
    assert ws.prepare_copy() is None and not ws.spare_path.exists()
    monkeypatch.delenv(wsm.MAX_MB_ENV)
    free = wsm.shutil.disk_usage(base).free
    monkeypatch.setattr(wsm.shutil, "disk_usage", lambda p: wsm.shutil._ntuple_diskusage(free, 0, 100))  # a full disk
    assert ws.prepare_copy() is None and not ws.spare_path.exists()
    monkeypatch.undo()
    ws.prepare_copy().join()
    assert ws.spare_path.exists()
