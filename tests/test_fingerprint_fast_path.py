"""The fingerprints' fast path (``fingerprint.input_state``): stored fingerprints are reused only while
the file is the one they were stored in and its change counter is the one our last commit left; every
edit of the inputs after that — by another program, in rollback or WAL mode, in a copy, or half-written
by a killed writer — is seen, and the stale result is never reused."""

import shutil
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import fingerprint
from pipeline.db import open_database
from pipeline.fingerprint import input_fingerprints, input_state
from pipeline.schema import INPUT_DDL
from pipeline.status import DONE, STALE, status
from tests.helpers import TINY_CONVERSIONS, TINY_COSTS, TINY_SESSIONS, make_db, run_db

# Sessions of a user who never converts: the results stay the hand-computed ones, but the table spans
# enough pages for a killed writer's spilled pages to reach the file.
FILLER = [(f"f{i:05d}", "u9", "2023-09-01", "08:00:00", "Referral" + "x" * 40, 0, 0, 0) for i in range(4000)]


def _counter(path: Path) -> int:
    with open(path, "rb") as fh:
        return struct.unpack(">I", fh.read(100)[24:28])[0]


def _states(path: Path) -> dict[str, str]:
    con = open_database(path)
    try:
        return {stage: s.state for stage, s in status(con).items()}
    finally:
        con.close()


def _report(path: Path) -> list:
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT channel_name, date, cost, ihc, ihc_revenue FROM channel_reporting ORDER BY 1, 2"
        ).fetchall()
    finally:
        con.close()


def _full_fingerprints(path: Path) -> dict[str, str]:
    """The fingerprints computed from the pages, the stored state ignored."""
    con = open_database(path)
    try:
        with fingerprint.read_snapshot(con):
            pages = fingerprint._pages_readable(con)
            return {t: fingerprint._fingerprint(con, t, pages) for t in fingerprint.INPUT_TABLES}
    finally:
        con.close()


def _fast(path: Path, monkeypatch) -> bool:
    """``input_state`` answers from the stored state (without fingerprinting any table)."""
    calls = []
    real = fingerprint._fingerprint
    monkeypatch.setattr(fingerprint, "_fingerprint", lambda *a: calls.append(a) or real(*a))
    con = open_database(path)
    try:
        input_state(con)
    finally:
        con.close()
        monkeypatch.setattr(fingerprint, "_fingerprint", real)
    return not calls


@pytest.fixture
def ran(tmp_path):
    """The tiny database (with filler sessions), after one run with the default model."""
    path = make_db(tmp_path / "ran.db", TINY_SESSIONS + FILLER, TINY_CONVERSIONS, TINY_COSTS)
    run_db(path)
    return path


def test_after_a_run_the_stored_fingerprints_are_the_full_ones_and_are_used(ran, monkeypatch):
    con = sqlite3.connect(ran)
    stored_counter = con.execute("SELECT change_counter FROM pipeline_input_state").fetchone()[0]
    con.close()
    assert stored_counter == _counter(ran)  # the counter predicted inside the transaction is exact
    assert _fast(ran, monkeypatch)
    assert input_fingerprints(open_database(ran)) == _full_fingerprints(ran)
    assert set(_states(ran).values()) == {DONE}
    again = run_db(ran)
    assert all(o.skipped for o in again.outcomes)
    assert _fast(ran, monkeypatch)  # an up-to-date run wrote nothing: the state still holds


EDITS = {
    "session_sources": "UPDATE session_sources SET channel_name = 'Display' WHERE session_id = 's1'",
    "conversions": "UPDATE conversions SET revenue = 101.0 WHERE conv_id = 'c1'",
    "session_costs": "UPDATE session_costs SET cost = 9.0 WHERE session_id = 's1'",
    "delete": "DELETE FROM session_costs WHERE session_id = 's2'",
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edit_in_rollback_mode_by_another_program_is_seen(ran, monkeypatch, edit):
    before = _report(ran)
    w = sqlite3.connect(ran)
    w.execute(EDITS[edit])
    w.commit()
    w.close()
    assert not _fast(ran, monkeypatch)
    assert STALE in _states(ran).values()
    run_db(ran)
    assert _report(ran) != before
    assert set(_states(ran).values()) == {DONE}


def test_an_edit_in_wal_mode_before_a_checkpoint_is_seen(ran, monkeypatch):
    before = _report(ran)
    w = sqlite3.connect(ran)
    w.execute("PRAGMA journal_mode=WAL")
    w.execute("PRAGMA wal_autocheckpoint=0")
    counter = _counter(ran)
    w.execute("UPDATE session_costs SET cost = 9.0 WHERE session_id = 's1'")
    w.commit()
    assert Path(f"{ran}-wal").stat().st_size > 0 and _counter(ran) == counter  # the edit: only in the WAL
    assert not _fast(ran, monkeypatch)
    assert _states(ran)["report"] == STALE
    run_db(ran)  # (in WAL mode: nothing is stored for the fast path)
    assert _report(ran) != before and set(_states(ran).values()) == {DONE}
    assert not _fast(ran, monkeypatch)
    w.close()


def test_an_edit_in_wal_mode_checkpointed_and_back_in_rollback_mode_is_seen(ran, monkeypatch):
    before = _report(ran)
    w = sqlite3.connect(ran)
    w.execute("PRAGMA journal_mode=WAL")
    w.execute("UPDATE session_costs SET cost = 9.0 WHERE session_id = 's1'")
    w.commit()
    w.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    w.execute("PRAGMA journal_mode=DELETE")
    w.close()
    assert not Path(f"{ran}-wal").exists()
    assert not _fast(ran, monkeypatch)
    assert _states(ran)["report"] == STALE
    run_db(ran)
    assert _report(ran) != before
    assert _fast(ran, monkeypatch)  # rollback mode again: the run stored its state


def test_copies_edited_alike_have_equal_counters_and_neither_reuses_the_results(ran, tmp_path, monkeypatch):
    a, b = shutil.copy(ran, tmp_path / "a.db"), shutil.copy(ran, tmp_path / "b.db")
    for path, sql in ((a, EDITS["session_costs"]), (b, EDITS["conversions"])):
        w = sqlite3.connect(path)
        w.execute(sql)
        w.commit()
        w.close()
    assert _counter(Path(a)) == _counter(Path(b))
    for path in (a, b):
        assert not _fast(Path(path), monkeypatch)
        assert _states(Path(path))["report"] == STALE
    run_db(Path(a))
    run_db(Path(b))
    assert _report(Path(a)) != _report(Path(b)) != _report(ran)


def test_a_copy_with_the_same_counter_but_other_bytes_takes_the_full_fingerprint(ran, tmp_path, monkeypatch):
    """A copy whose input pages differ while its header and stored state are the original's (what a
    file copied without its hot journal looks like): another file, so the pages are hashed."""
    data = Path(ran).read_bytes()
    at = data.index(b"Paid Search Brand")
    copy = tmp_path / "copy.db"
    copy.write_bytes(data[:at] + b"Paid Search Brant" + data[at + 17 :])
    assert _counter(copy) == _counter(ran)
    assert not _fast(copy, monkeypatch)
    assert _states(copy)["journeys"] == STALE
    assert _fast(ran, monkeypatch)  # (the original still is what was stored)


KILLED_WRITER = """
import os, sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA cache_size = 2")
con.execute("BEGIN")
con.execute("UPDATE session_sources SET channel_name = 'Display' WHERE user_id = 'u9'")
con.execute("UPDATE session_sources SET channel_name = 'Display' WHERE session_id = 's1'")
os._exit(1)  # killed before COMMIT: its spilled pages are in the file, the old ones in the journal
"""


def test_a_killed_writer_s_half_written_file_is_rolled_back_or_else_never_up_to_date(ran, tmp_path, monkeypatch):
    before, fingerprints = _report(ran), _full_fingerprints(ran)
    counter, original = _counter(ran), Path(ran).read_bytes()
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(ran)], check=False)
    journal = Path(f"{ran}-journal")
    assert journal.exists() and Path(ran).read_bytes() != original  # a hot journal, pages half written
    assert _counter(ran) == counter  # ... and the counter has not moved
    half = tmp_path / "half.db"  # the file copied without its hot journal
    shutil.copy(ran, half)
    assert not _fast(half, monkeypatch)
    assert _states(half)["journeys"] == STALE
    # The original with its journal: rolled back on open, so the stored state is true again.
    assert set(_states(ran).values()) == {DONE}
    assert not journal.exists() and _full_fingerprints(ran) == fingerprints
    assert _fast(ran, monkeypatch)
    run_db(ran)
    assert _report(ran) == before


def test_after_a_run_in_wal_mode_an_edit_is_seen_until_back_in_rollback_mode(tmp_path, monkeypatch):
    """In WAL mode a commit moves the counter only when it changes the first page (ours did: new
    tables), an edit of a row does not, not even once checkpointed: a run in WAL mode stores no state
    and every read there hashes. Checked before the checkpoint, after it, with the -wal file gone
    (header still in WAL mode) and back in rollback mode."""
    path = make_db(tmp_path / "wal.db", TINY_SESSIONS + FILLER, TINY_CONVERSIONS, TINY_COSTS)
    w = sqlite3.connect(path)
    w.execute("PRAGMA journal_mode=WAL")
    w.close()
    run_db(path)
    before, counter = _report(path), _counter(path)
    w = sqlite3.connect(path)
    w.execute("PRAGMA wal_autocheckpoint=0")
    w.execute("UPDATE session_costs SET cost = 9.0 WHERE session_id = 's1'")
    w.commit()
    for step in ("in the WAL", "checkpointed", "WAL file gone", "rollback mode"):
        if step == "checkpointed":
            w.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            assert _counter(path) == counter  # the edit is in the file, the counter has not moved
        elif step == "WAL file gone":
            w.close()
            assert not Path(f"{path}-wal").exists() and _counter(path) == counter
        elif step == "rollback mode":
            w = sqlite3.connect(path)
            w.execute("PRAGMA journal_mode=DELETE")
            w.close()
        assert not _fast(path, monkeypatch), step
        assert _states(path)["report"] == STALE, step
    run_db(path)
    assert _report(path) != before


def test_an_edit_between_our_fingerprints_and_our_commit_is_seen(ran, monkeypatch):
    """Another program commits after this command fingerprinted the inputs and before it commits a
    stage: the stage's record holds the older fingerprints, and no state is stored for the fast path."""
    from pipeline.runner import journeys_stage
    from pipeline.status import StageBook
    from pipeline.window import Window

    con = open_database(ran, write=True)
    book = StageBook(con)
    w = sqlite3.connect(ran)
    w.execute(EDITS["session_sources"])
    w.commit()
    w.close()
    assert not journeys_stage(book, Window(), force=True).skipped
    con.close()
    assert sqlite3.connect(ran).execute("SELECT COUNT(*) FROM pipeline_input_state").fetchone()[0] == 0
    assert not _fast(ran, monkeypatch)
    assert _states(ran)["journeys"] == STALE


def test_an_input_that_is_a_view_is_always_fingerprinted(tmp_path, monkeypatch):
    """A view's rows can change without any commit (``date('now')``, ``random()``): no stored state."""
    ddl = INPUT_DDL.replace("CREATE TABLE session_costs", "CREATE TABLE raw_costs") + (
        "CREATE VIEW session_costs AS SELECT * FROM raw_costs;"
    )
    path = make_db(tmp_path / "view.db", TINY_SESSIONS + FILLER, TINY_CONVERSIONS, ddl=ddl)
    con = sqlite3.connect(path)
    con.executemany("INSERT INTO raw_costs VALUES (?, ?)", TINY_COSTS)
    con.commit()
    con.close()
    run_db(path)
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM pipeline_input_state").fetchone()[0] == 0
    assert not _fast(path, monkeypatch)
    assert set(_states(path).values()) == {DONE}


@pytest.mark.parametrize(
    "pragma", ["journal_mode=OFF", "journal_mode=MEMORY", "journal_mode=PERSIST", "locking_mode=EXCLUSIVE"]
)
def test_edits_by_a_program_with_other_journal_or_locking_modes_are_seen(ran, monkeypatch, pragma):
    """Every rollback-mode commit moves the counter; in exclusive locking mode only the first one of
    the lock does (checked here), which is enough: the counter has left the stored value."""
    before, counter = _report(ran), _counter(ran)
    w = sqlite3.connect(ran, isolation_level=None)
    w.execute(f"PRAGMA {pragma}")
    w.execute(EDITS["session_costs"])
    w.execute(EDITS["conversions"])
    w.close()
    assert _counter(ran) != counter
    assert not _fast(ran, monkeypatch)
    assert _states(ran)["report"] == STALE
    run_db(ran)
    assert _report(ran) != before


NO_NUMPY_RUN = """
import sys
from pipeline.cli import main
code = main(["run", sys.argv[1], "--model", "linear", "-q"])
loaded = sorted(m for m in ("numpy", "pandas", "pyarrow") if m in sys.modules)
print(code, loaded)
"""


def test_a_run_with_every_stage_up_to_date_imports_no_numpy(ran):
    """What the fast path leaves of an up-to-date run is mostly imports: numpy is not one of them."""
    run_db(ran, model="linear")
    out = subprocess.run(
        [sys.executable, "-c", NO_NUMPY_RUN, str(ran)], capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    assert out.stdout.split("\n")[-2] == "0 []", out.stdout + out.stderr


# ---- a copy keeps its fingerprints (workspace.copy_db_file) ---------------------------------------


def test_a_copy_made_by_the_workspace_keeps_the_fingerprints_and_takes_the_fast_path(ran, tmp_path, monkeypatch):
    from pipeline.workspace import copy_db_file

    copy = copy_db_file(ran, tmp_path / "copy.db")
    assert _fast(copy, monkeypatch)  # the source's stored fingerprints, adopted with the copy's identity
    assert input_fingerprints(open_database(copy)) == _full_fingerprints(copy) == _full_fingerprints(ran)
    assert set(_states(copy).values()) == {DONE}
    w = sqlite3.connect(copy)  # and an edit of the copy is seen in the copy
    w.execute(EDITS["session_costs"])
    w.commit()
    w.close()
    assert not _fast(copy, monkeypatch)
    assert _states(copy)["report"] == STALE
    assert _fast(ran, monkeypatch)


def test_a_copy_of_a_file_edited_since_its_run_is_fingerprinted_in_full(ran, tmp_path, monkeypatch):
    from pipeline.workspace import copy_db_file

    w = sqlite3.connect(ran)
    w.execute(EDITS["conversions"])
    w.commit()
    w.close()
    copy = copy_db_file(ran, tmp_path / "copy.db")
    assert not _fast(copy, monkeypatch)  # nothing known to carry over: the stored state is not current
    assert _states(copy)["journeys"] == STALE


def test_the_copy_is_taken_under_a_read_lock_no_commit_lands_in_the_middle(ran, tmp_path, monkeypatch):
    from pipeline import workspace

    real = workspace.shutil.copyfile
    refused = []

    def copy_while_someone_writes(src, dst):
        w = sqlite3.connect(src, timeout=0)
        try:
            w.execute(EDITS["session_costs"])
            w.commit()
        except sqlite3.OperationalError as exc:
            refused.append(str(exc))
        finally:
            w.close()
        return real(src, dst)

    monkeypatch.setattr(workspace.shutil, "copyfile", copy_while_someone_writes)
    copy = workspace.copy_db_file(ran, tmp_path / "copy.db")
    assert refused == ["database is locked"]
    assert _full_fingerprints(copy) == _full_fingerprints(ran)
