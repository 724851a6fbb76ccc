"""Hostile surroundings rather than hostile data (issue 12, "Reliability"): a source path that is a named
pipe or a symbolic link loop, a Parquet file damaged inside, a disk that fills up (a file-size limit,
RLIMIT_FSIZE, in the child process) and an IHC API server that trickles its answer. Each gets one line,
a non-zero exit and no traceback, writes nothing it should not, and leaves the input as it was."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, tiny_db
from tests.test_cli import assert_clean_failure


def cli_within(seconds: float, *args, env=None) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS``, failing the test (not hanging it) when it takes over ``seconds``."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "pipeline", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            timeout=seconds,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`{' '.join(map(str, args))}` still waits after {seconds} s")


# ---- a source path that is not a regular file -------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "validate", "status"])
@pytest.mark.parametrize("scheme", ["", "sqlite:///", "duckdb:///"])
def test_a_named_pipe_as_the_database_is_refused_at_once(tmp_path, scheme, command):
    """Were: the command waited for ever — reading the SQLite header (or DuckDB opening the file) blocks
    until something writes into the pipe."""
    fifo = tmp_path / "export.db"
    os.mkfifo(fifo)
    what = "DuckDB" if scheme == "duckdb:///" else "SQLite"
    r = cli_within(60, command, f"{scheme}{fifo}")
    assert_clean_failure(r, "is a named pipe (FIFO)", f"not a {what} database file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.db"]


@pytest.mark.parametrize("scheme", ["", "duckdb:///"])
def test_a_symbolic_link_loop_says_so(tmp_path, scheme):
    """Was "no such file" for a name that is there: the analyst looks for a typo, not at the link."""
    (tmp_path / "a.db").symlink_to(tmp_path / "b.db")
    (tmp_path / "b.db").symlink_to(tmp_path / "a.db")
    assert_clean_failure(cli_within(60, "run", f"{scheme}{tmp_path / 'a.db'}"), "symbolic link that leads nowhere")


def test_a_regular_file_through_a_symbolic_link_still_runs(tmp_path):
    db = tiny_db(tmp_path / "real.db")
    (tmp_path / "link.db").symlink_to(db)
    r = cli_within(120, "run", tmp_path / "link.db", "--model", "linear", "-q")
    assert r.returncode == 0, r.stderr


# ---- a Parquet file damaged inside ------------------------------------------------------------------


@pytest.mark.parametrize("table", ["session_sources", "conversions", "session_costs"])
def test_a_parquet_file_damaged_inside_is_one_line(tmp_path, table):
    """Its footer whole (so the folder's check reads its schema) but the bytes after the magic number
    garbled: DuckDB raised its bare ``Error`` ("TProtocolException: Invalid data"), which reached the
    analyst as a traceback (exit 1)."""
    from tests.test_malformed_faces import digest, parquet_folder

    lake = parquet_folder(tmp_path / "lake", [])
    damaged = lake / f"{table}.parquet"
    data = bytearray(damaged.read_bytes())
    data[4:68] = bytes(range(200, 256)) + bytes(8)  # the first page header, garbled
    damaged.write_bytes(bytes(data))
    before = digest(lake)
    for command in (["validate"], ["run", "--model", "linear"]):
        r = cli_within(120, *command[:1], f"parquet:///{lake}", *command[1:])
        assert_clean_failure(r, f"parquet:///{lake}: the engine could not read the data", f"{table}.parquet is damaged")
    assert digest(lake) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake"]


# ---- no room to write: a full disk, or a file-size limit ----------------------------------------------

# The CLI in a child whose files may not grow past LIMIT bytes (RLIMIT_FSIZE, as `ulimit -f`): a write
# beyond it fails with EFBIG ("File too large"), as one beyond a full disk fails with ENOSPC.
LIMITED = """
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from pipeline.cli import main
sys.exit(main(sys.argv[2:]))
"""


def cli_limited(limit: int, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", LIMITED, str(limit), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )


@pytest.mark.parametrize("kind", ["duckdb", "parquet"])
def test_convert_without_room_is_one_line_and_leaves_nothing(tmp_path, kind):
    """Were: a traceback (DuckDB's TransactionException, Arrow's OSError)."""
    db = tiny_db(tmp_path / "tiny.db")
    before = db.read_bytes()
    target = tmp_path / ("x.duckdb" if kind == "duckdb" else "lake")
    r = cli_limited(600, "convert", db, f"{kind}:///{target}")
    assert_clean_failure(r, f"{kind}:///{target}: no room left to write (File too large)", "free some disk space")
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.db"]  # no target, no staging left


def _outputs(kind: str, source):
    import duckdb

    con = duckdb.connect(str(source) if kind == "duckdb" else ":memory:", read_only=kind == "duckdb")
    try:
        if kind == "parquet":
            for name in ("attribution_customer_journey", "channel_reporting"):
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{source}/{name}/*.parquet')")
        return [
            con.execute("SELECT * FROM attribution_customer_journey ORDER BY 1, 2").fetchall(),
            con.execute("SELECT * FROM channel_reporting ORDER BY 1, 2").fetchall(),
        ]
    finally:
        con.close()


@pytest.mark.parametrize("kind", ["duckdb", "parquet"])
def test_an_engine_run_without_room_is_one_line_and_the_next_run_works(tmp_path, kind):
    """Were: a traceback — DuckDB's FatalException from the CHECKPOINT after the outputs' commit, Arrow's
    OSError writing a staged output. The outputs stay whole (the previous ones, or the new ones when the
    commit was through), the inputs as they were, and the next run with room gives the bytes of a run
    that was never cut short."""
    from tests.test_malformed_faces import duck_file, parquet_folder

    make = duck_file if kind == "duckdb" else parquet_folder
    source = make(tmp_path / ("x.duckdb" if kind == "duckdb" else "lake"), [])
    twin = make(tmp_path / ("twin.duckdb" if kind == "duckdb" else "twin"), [])  # never cut short
    url, twin_url = f"{kind}:///{source}", f"{kind}:///{twin}"
    for u in (url, twin_url):
        assert cli_within(300, "run", u, "--model", "linear", "-q").returncode == 0
    linear = _outputs(kind, source)
    inputs = {t: _outputs_of(kind, source, t) for t in ("session_sources", "conversions", "session_costs")}
    # DuckDB: the file may not grow; Parquet: no output file may be written
    limit = source.stat().st_size if kind == "duckdb" else 200
    r = cli_limited(limit, "run", url, "--model", "first-click", "--force", "-q")
    assert_clean_failure(r, f"{url}: no room left to write (File too large)")
    assert (
        cli_within(300, "run", twin_url, "--model", "first-click", "-q", "--csv", tmp_path / "twin.csv").returncode == 0
    )
    first_click = _outputs(kind, twin)
    assert _outputs(kind, source) in (linear, first_click)
    assert {t: _outputs_of(kind, source, t) for t in inputs} == inputs
    r = cli_within(300, "run", url, "--model", "first-click", "-q", "--csv", tmp_path / "next.csv")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "next.csv").read_bytes() == (tmp_path / "twin.csv").read_bytes()
    assert _outputs(kind, source) == first_click


def _outputs_of(kind: str, source, table: str):
    import duckdb

    con = duckdb.connect(str(source) if kind == "duckdb" else ":memory:", read_only=kind == "duckdb")
    try:
        where = table if kind == "duckdb" else f"read_parquet('{source}/{table}.parquet')"
        return con.execute(f"SELECT * FROM {where} ORDER BY 1").fetchall()
    finally:
        con.close()


def test_sqlite_without_room_says_so_and_leaves_the_file_as_it_was(tmp_path):
    """SQLite's "database or disk is full" (here: the file may not grow past its pages, PRAGMA
    max_page_count) read "the database could not be read: database or disk is full"."""
    from tests.test_cli import digest

    db = tiny_db(tmp_path / "tiny.db")
    before = digest(db)
    code = f"""
import sys
import pipeline.db as db
real = db.tune
def full(con):
    real(con)
    con.execute("PRAGMA max_page_count = " + str(con.execute("PRAGMA page_count").fetchone()[0]))
db.tune = full
from pipeline.cli import main
sys.exit(main(["run", {str(db)!r}, "--model", "linear", "-q"]))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert_clean_failure(r, f"{db}: no room left to write (database or disk is full)", "free some disk space")
    assert "could not be read" not in r.stderr
    assert digest(db) == before


# ---- a DuckDB file another process has open for writing ---------------------------------------------

HOLD = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


def test_a_duckdb_file_another_process_writes_is_named_as_such(tmp_path):
    """Was "is not a readable DuckDB database (IO Error: Could not set lock on file …)": the file is
    sound, only busy. DuckDB lets one process write a file and no other open it meanwhile."""
    from tests.test_malformed_faces import digest, duck_file

    source = duck_file(tmp_path / "x.duckdb", [])
    url = f"duckdb:///{source}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(source)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        before = digest(source)
        for command in (["validate"], ["status"], ["run", "--model", "linear"]):
            r = cli_within(120, *command[:1], url, *command[1:])
            assert_clean_failure(r, f"{url}: process {holder.pid} (", "has the file open for writing", "try again")
            assert "not a readable" not in r.stderr
        assert digest(source) == before
    finally:
        holder.communicate("\n", timeout=60)
    r = cli_within(120, "run", url, "--model", "linear", "-q")  # the holder gone: the run works
    assert r.returncode == 0, r.stderr


def test_a_finding_quoting_no_room_words_is_not_taken_for_a_full_disk(tmp_path):
    """The words are matched in the engines' and the OS's errors only, never in our own one lines (which
    quote the data)."""
    from tests.test_malformed_faces import duck_file

    source = duck_file(
        tmp_path / "x.duckdb",
        ["UPDATE session_sources SET event_date = 'No space left on device' WHERE session_id = 's1'"],
    )
    r = cli_within(120, "run", f"duckdb:///{source}", "--model", "linear")
    assert r.returncode == 2 and "no room left" not in r.stderr + r.stdout, (r.stdout, r.stderr)
    assert "No space left on device" in r.stderr + r.stdout


def test_a_copy_or_a_demo_without_room_leaves_no_half_file(tmp_path):
    """--output-db left COPY.db.partial-journal behind, and demo-db its 3 MB DEMO.db.tmp, both on a full
    disk (a 3 MB tmpfs) as under a file-size limit; the messages read "disk I/O error" (SQLite's words for
    a write past the limit) and, for demo-db, named "the database" instead of the file."""
    db = tiny_db(tmp_path / "tiny.db")
    out = tmp_path / "out"
    out.mkdir()
    r = cli_limited(8192, "run", db, "--model", "linear", "-q", "--output-db", out / "copy.db")
    assert_clean_failure(r, f"cannot write --output-db {out / 'copy.db'}: no room left to write (File too large)")
    r = cli_limited(8192, "demo-db", out / "demo.db", "--sessions", "5000", "--conversions", "100", "--days", "5")
    assert_clean_failure(r, f"{out / 'demo.db'}: no room left to write (File too large)")
    assert sorted(out.iterdir()) == []


def test_a_sqlite_run_past_a_file_size_limit_says_so(tmp_path):
    from tests.test_cli import digest

    db = tiny_db(tmp_path / "tiny.db")
    before = digest(db)
    r = cli_limited(db.stat().st_size, "run", db, "--model", "linear", "-q")
    assert_clean_failure(r, f"{db}: no room left to write (File too large)")
    assert "disk I/O error" not in r.stderr
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.db"]
