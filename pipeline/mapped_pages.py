"""The pages SQLite reads through its memory map, handed back to the system's file cache as a scan goes.

A connection tuned by ``db.tune`` reads the first ``db.MMAP_BYTES`` of the database file through a
memory map: 10-15% less CPU per scan than copying each page into SQLite's cache (and 40% less for the
journeys query's lookups on the 10× demo). But every page touched through a map stays in the
process's resident memory as long as it is mapped, so one scan of a 1.4 GB file leaves ≈1 GB resident
in each process that scans it (a run: the main process and its scan children, 1.27 GB peak RSS on the
10× demo, for ≈0.25 GB of its own data).

``release_if_over`` — the progress handler of every connection ``db.tune`` sets up — tells the kernel
(``madvise(MADV_DONTNEED)``) that this process no longer needs the pages of the database files'
shared read-only maps, once more than ``BUDGET_BYTES`` of mapped file pages were touched since the
last release (``/proc/self/statm``'s shared pages: one read per call). The pages stay in the kernel's
page cache (as after a ``read()``), so the next access maps them again without reading the disk;
SQLite never writes through its map (writes use ``write()``), so nothing is lost. A budget rather than
a clock: lookups that come back to the same pages (the journeys query, the cost lookups) keep them
while they fit (releasing every 0.1 s instead cost the 10× run 30% more time, measured).

One statement that reads a whole table in a single step (``count(*)``: SQLite walks the b-tree inside
one instruction, no progress handler runs) is run ``unmapped``. Linux only; elsewhere a no-op.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

BUDGET_BYTES = 64 * 2**20  # mapped file pages a process keeps before they are released
MADV_DONTNEED = 4
STEPS = 20_000  # SQLite VM steps between two progress-handler calls (≈ 0.1-1 ms of work)
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

_files: set[str] = set()  # database files whose maps are released (resolved paths)
_lock = threading.Lock()
_floor = [0]  # shared resident pages right after the last release (libraries and other files)
_madvise = None


def watch(path: str) -> None:
    """Release the map pages of database file ``path`` from now on (``release_if_over``)."""
    if sys.platform.startswith("linux"):
        with _lock:
            _files.add(os.path.realpath(path))
            _floor[0] = _floor[0] or _shared_pages()


def release_if_over() -> int:
    """Release the mapped pages of the watched files once more than ``BUDGET_BYTES`` of shared file
    pages are resident beyond what was left after the last release; returns 0 (a SQLite progress
    handler's "go on")."""
    if _files and (_shared_pages() - _floor[0]) * PAGE > BUDGET_BYTES:
        release()
        _floor[0] = _shared_pages()
    return 0


@contextmanager
def unmapped(con: sqlite3.Connection) -> Iterator[None]:
    """``con``'s memory map released (``PRAGMA mmap_size = 0`` unmaps it) for the statements inside,
    then restored: for a statement that reads a whole b-tree in one step, and to hand back the pages
    an earlier statement left mapped. SQLite maps again on the next read that wants it."""
    row = con.execute("PRAGMA mmap_size").fetchone()  # no row for an in-memory database
    size = row[0] if row else 0
    if not size:
        yield
        return
    con.execute("PRAGMA mmap_size = 0")
    try:
        yield
    finally:
        con.execute(f"PRAGMA mmap_size = {int(size)}")


def _shared_pages() -> int:
    """This process's resident shared pages (file pages and shared memory), from /proc/self/statm."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[2])
    except (OSError, IndexError, ValueError):
        return 0


def release() -> None:
    """``madvise(MADV_DONTNEED)`` over every shared read-only map of a watched file in this process."""
    madvise = _libc_madvise()
    if madvise is None:
        return
    for start, length in _maps():
        madvise(start, length, MADV_DONTNEED)


def _maps() -> list[tuple[int, int]]:
    """(address, length) of this process's shared, read-only maps of the watched files."""
    found = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                # address perms offset dev inode path; SQLite maps with PROT_READ, MAP_SHARED
                if len(fields) == 6 and fields[1] == "r--s" and fields[5].rstrip("\n") in _files:
                    lo, hi = (int(x, 16) for x in fields[0].split("-"))
                    found.append((lo, hi - lo))
    except OSError:
        return []
    return found


def _libc_madvise():
    global _madvise
    if _madvise is None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.madvise
            fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
            fn.restype = ctypes.c_int
            _madvise = fn
        except (OSError, AttributeError):  # pragma: no cover - not Linux/glibc
            _madvise = False
    return _madvise or None
