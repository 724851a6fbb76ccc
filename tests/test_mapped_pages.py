"""The database map's pages leave the process's resident memory as a scan goes (``pipeline.mapped_pages``):
after a whole-table scan through ``open_database``, the map holds at most about the budget, where
without the release it holds the whole table."""

from __future__ import annotations

import sqlite3
import sys

import pytest

from pipeline import mapped_pages
from pipeline.db import open_database

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise and /proc: Linux")


def mapped_kb(path) -> int:
    """Resident KB of this process's maps of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            first = line.split(maxsplit=5)
            if "-" in first[0] and len(first) >= 5 and ":" in first[3]:  # a mapping's header line
                inside = len(first) == 6 and first[5].strip() == str(path.resolve())
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


@pytest.fixture
def sessions_file(tmp_path):
    path = tmp_path / "big.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE session_sources (session_id TEXT, user_id TEXT, channel_name TEXT)")
    rows = ((f"s{k:09d}", f"u{k % 997:0>60}", f"ch{k % 7}") for k in range(200_000))  # ≈ 20 MB
    con.executemany("INSERT INTO session_sources VALUES (?, ?, ?)", rows)
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize(
    "setting, whole_map_up_to, at_most_kb, at_least_kb",
    [
        ("1", None, 6_000, 0),  # a budget of 1 MiB, whatever the file's size
        (None, None, None, 15_000),  # the default for a small file (≤ WHOLE_MAP_UP_TO): mapped whole
        (None, 2**20, 6_000 + mapped_pages.DEFAULT_BUDGET_MB * 1024, 0),  # the default for a larger file
        ("off", 2**20, None, 15_000),  # never released
    ],
)
def test_a_scan_keeps_about_the_budget_mapped(
    sessions_file, monkeypatch, setting, whole_map_up_to, at_most_kb, at_least_kb
):
    if setting is not None:
        monkeypatch.setenv(mapped_pages.BUDGET_ENV, setting)
    else:
        monkeypatch.delenv(mapped_pages.BUDGET_ENV, raising=False)
    if whole_map_up_to is not None:
        monkeypatch.setattr(mapped_pages, "WHOLE_MAP_UP_TO", whole_map_up_to)
    con = open_database(sessions_file)
    try:
        rows = con.execute("SELECT channel_name, count(DISTINCT user_id) FROM session_sources GROUP BY 1").fetchall()
        assert len(rows) == 7 and all(n == 997 for _, n in rows)  # the scan's answer is unchanged
        resident = mapped_kb(sessions_file)
        assert resident >= at_least_kb  # without the release the whole table stays mapped
        if at_most_kb is not None:
            assert resident <= at_most_kb  # 1 MiB budget + the pages read in up to STEPS VM steps after it
    finally:
        con.close()


def test_unmapped_restores_the_map_size(sessions_file):
    con = open_database(sessions_file)
    try:
        with mapped_pages.unmapped(con):
            assert con.execute("PRAGMA mmap_size").fetchone()[0] == 0
            assert con.execute("SELECT count(*) FROM session_sources").fetchone()[0] == 200_000
        assert con.execute("PRAGMA mmap_size").fetchone()[0] > 0
    finally:
        con.close()


def test_the_default_budget_follows_the_file_size(sessions_file, monkeypatch):
    monkeypatch.delenv(mapped_pages.BUDGET_ENV, raising=False)
    size = sessions_file.stat().st_size  # ≈ 20 MB
    monkeypatch.setattr(mapped_pages, "WHOLE_MAP_UP_TO", size)
    assert mapped_pages.budget_bytes(str(sessions_file)) is None  # not larger: mapped whole
    monkeypatch.setattr(mapped_pages, "WHOLE_MAP_UP_TO", size - 1)
    assert mapped_pages.budget_bytes(str(sessions_file)) == mapped_pages.DEFAULT_BUDGET_MB * 2**20
    assert mapped_pages.budget_bytes(None) is None  # no file: nothing to release
    monkeypatch.setenv(mapped_pages.BUDGET_ENV, "off")
    assert mapped_pages.budget_bytes(str(sessions_file)) is None
    monkeypatch.setenv(mapped_pages.BUDGET_ENV, "2")
    assert mapped_pages.budget_bytes(None) == 2 * 2**20


@pytest.mark.parametrize("released", [True, False])
def test_random_reads_are_unmapped_only_where_pages_are_released(sessions_file, monkeypatch, released):
    monkeypatch.setenv(mapped_pages.BUDGET_ENV, "1" if released else "off")
    con = open_database(sessions_file)
    try:
        with mapped_pages.random_reads(con):
            assert (con.execute("PRAGMA mmap_size").fetchone()[0] == 0) is released
            assert con.execute("SELECT count(*) FROM session_sources").fetchone()[0] == 200_000
        assert con.execute("PRAGMA mmap_size").fetchone()[0] > 0
    finally:
        con.close()


def test_trimmed_releases_the_map_while_a_block_runs(sessions_file, monkeypatch):
    import mmap
    import time

    monkeypatch.setenv(mapped_pages.BUDGET_ENV, "1")
    mapped_pages.watch(str(sessions_file))
    with open(sessions_file, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:  # as SQLite maps
        total = sum(m[k] for k in range(0, len(m), 4096))  # every page resident
        assert mapped_kb(sessions_file) >= 15_000
        with mapped_pages.trimmed(every=0.01):
            time.sleep(0.1)
            assert mapped_kb(sessions_file) < 1_000  # handed back while the block runs
        assert sum(m[k] for k in range(0, len(m), 4096)) == total  # read again: the same bytes
