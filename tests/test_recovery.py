"""After a crash: a hot journal is rolled back by whichever command comes next, a damaged copy is never
"up to date", an abandoned IHC API run is marked interrupted, and scan children die with their parent
(issue 12, "Recovery after a crash")."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT, cli
from tests.test_cli import assert_clean_failure

CRASH = """
import os, signal, sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA cache_size = 2")  # a tiny page cache: changed pages spill into the file early
con.execute("BEGIN IMMEDIATE")
con.execute(sys.argv[2])
os.kill(os.getpid(), signal.SIGKILL)  # as kill -9 during the commit
"""


def crash_during_write(db, sql: str) -> None:
    """Leave ``db`` as kill -9 in the middle of writing ``sql`` does: changed pages in the file, and
    the original pages in a hot ``-journal``."""
    r = subprocess.run([sys.executable, "-c", CRASH, str(db), sql], capture_output=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    journal = f"{db}-journal"
    assert os.path.exists(journal) and os.path.getsize(journal) > 0


def channels(db) -> list:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT channel_name FROM session_sources ORDER BY session_id").fetchall()
    finally:
        con.close()


@pytest.fixture
def demo_copy(small_demo, tmp_path):
    path = tmp_path / "demo.db"
    shutil.copy(small_demo, path)
    return path


UPDATE = "UPDATE session_sources SET channel_name = channel_name || ' (edited)'"


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["validate"],
        ["run", "--model", "linear", "-q"],
        ["export", "--csv", "-"],
        ["run", "--model", "linear", "-q", "--output-db", "{tmp}/copy.db"],
    ],
)
def test_every_command_rolls_a_hot_journal_back(demo_copy, tmp_path, command):
    if command[0] == "export":
        assert cli("run", demo_copy, "--model", "linear", "-q").returncode == 0
    before = channels(demo_copy)
    crash_during_write(demo_copy, UPDATE)
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    r = cli(args[0], demo_copy, *args[1:])
    assert r.returncode == 0, r.stderr
    assert "cannot be opened" not in r.stderr and "not a SQLite" not in r.stderr
    assert not os.path.exists(f"{demo_copy}-journal")
    assert channels(demo_copy) == before
    if "--output-db" in args:
        assert channels(tmp_path / "copy.db") == before


def test_a_copy_without_its_hot_journal_is_never_up_to_date(demo_copy, tmp_path):
    assert cli("run", demo_copy, "--model", "linear", "-q").returncode == 0
    # The crash hits a rewrite of the product's own output: the inputs are untouched.
    crash_during_write(demo_copy, "DELETE FROM pipeline_attribution WHERE rowid % 3 = 0")
    damaged = tmp_path / "copied.db"
    shutil.copy(demo_copy, damaged)  # copied without its -journal: the half-written pages stay
    s = cli("status", damaged)
    assert "done" not in s.stdout, s.stdout
    assert s.returncode != 0 or "stale" in s.stdout, (s.stdout, s.stderr)
    r = cli("run", damaged, "--model", "linear", "-q")
    assert "up to date" not in r.stdout, r.stdout
    if r.returncode != 0:
        assert_clean_failure(r, "damaged")


def test_an_abandoned_api_run_is_marked_interrupted(tmp_path):
    from pipeline.ihc_api import ledger

    con = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    ledger.ensure_tables(con)
    key = ledger.key_id_for(con, "http://127.0.0.1:9/", "type", None)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    abandoned = ledger.start_run(con, key, "fp", 5, 0, 1)
    con.execute("UPDATE ihc_api_runs SET pid = ? WHERE run_id = ?", (gone.pid, abandoned))
    alive = ledger.start_run(con, key, "fp", 5, 0, 1)  # this process: still running
    ledger.start_run(con, key, "fp", 5, 0, 1)
    status = dict(con.execute("SELECT run_id, status FROM ihc_api_runs"))
    assert status[abandoned] == "interrupted"
    assert status[alive] == "running"
    message = con.execute("SELECT message FROM ihc_api_runs WHERE run_id = ?", (abandoned,)).fetchone()[0]
    assert "abandoned" in message and str(gone.pid) in message


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked scans and /proc are Linux only")
def test_scan_children_die_with_a_killed_run(tmp_path):
    from pipeline.demo import DemoSize, write_demo_db

    db = tmp_path / "big.db"
    write_demo_db(db, DemoSize(sessions=450_000, conversions=2_000, days=10, seed=3))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(db), "--model", "linear", "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children: list[int] = []
    deadline = time.monotonic() + 30
    while not children and time.monotonic() < deadline and proc.poll() is None:
        children = _children(proc.pid)
    try:
        assert children, "the run forked no scan process"
        time.sleep(0.05)  # past the child's first lines (where it asks for the signal)
        # Stopped children cannot notice anything themselves: only the kernel's parent-death
        # signal (SIGKILL) ends them, however long their scan would still take.
        for child in children:
            os.kill(child, signal.SIGSTOP)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 2
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(_alive(c) for c in children)
    finally:
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_read_only_database_says_so(tiny):
    # As root, file permissions do not stop a write: open the database read-only, as SQLite does
    # (silently) when the file or its folder is not writable, and run the CLI's entry point.
    code = f"""
import sqlite3, sys
import pipeline.db as db
real = db.open_database
db.open_database = lambda path, write=False: real(path)
import pipeline.cli.core
pipeline.cli.core.open_database = db.open_database
from pipeline.cli import main
sys.exit(main(["run", {str(tiny)!r}, "--model", "linear", "-q"]))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert_clean_failure(r, "read-only", "--output-db")


def test_a_lock_held_too_long_names_the_other_process(tiny):
    hold = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; con = sqlite3.connect(sys.argv[1], isolation_level=None);"
            " con.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(30)",
            str(tiny),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert hold.stdout.readline().strip() == "locked"
        r = cli("run", tiny, "--model", "linear", env={"ATTRIBUTION_BUSY_TIMEOUT": "2"})
        assert_clean_failure(r, "another process", "waited 2 s")
        assert "waiting for another process" in r.stderr
    finally:
        hold.kill()
        hold.wait()


def test_too_little_memory_gets_one_line_and_writes_nothing(tiny):
    # A MemoryError anywhere in the run (here: building the journeys, as on 2M conversions / 20M
    # sessions) ends in one line about the machine, exit 1, and the database as it was.
    from tests.test_cli import digest

    before = digest(tiny)
    code = f"""
import sys
import pipeline.journeys as jr
def no_memory(*args, **kwargs):
    raise MemoryError()
jr.journeys_from_rows = no_memory
from pipeline.cli import main
sys.exit(main(["run", {str(tiny)!r}, "--model", "linear", "-q"]))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("error:")] == [
        "error: this machine has too little memory for this database (MemoryError); use a machine with "
        "more memory, a narrower --start/--end window or smaller batches (ATTRIBUTION_JOURNEY_BATCH_ROWS)"
    ]
    assert digest(tiny) == before
