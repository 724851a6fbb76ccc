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
