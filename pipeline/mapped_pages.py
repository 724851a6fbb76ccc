"""The pages SQLite reads through its memory map, handed back to the system's file cache as a scan goes.

A connection tuned by ``db.tune`` reads the first ``db.MMAP_BYTES`` of the database file through a
memory map: 10-15% less CPU per scan than copying each page into SQLite's cache (and 40% less for the
journeys query's lookups on the 10× demo). But every page touched through a map stays in the
process's resident memory as long as it is mapped, so one scan of a 1.4 GB file leaves ≈1 GB resident
in each process that scans it (a run: the main process and its scan children, 1.27 GB peak RSS on the
10× demo, for ≈0.25 GB of its own data).

For a database file larger than ``WHOLE_MAP_UP_TO`` (256 MiB: the 10× demo and up, not the demo),
``release_if_over`` — then the progress handler of every connection ``db.tune`` sets up — tells the
kernel (``madvise(MADV_DONTNEED)``) that this process no longer needs the pages of the database files'
shared read-only maps, once more than ``DEFAULT_BUDGET_MB`` (64 MiB) of file pages became resident
since the last release (``/proc/self/statm``). ``ATTRIBUTION_MAP_BUDGET_MB`` sets another budget for
every file (a number of MiB) or turns the release off (``off``: the whole map stays, as before). The
pages stay in the kernel's page cache (as after a ``read()``), so the next access maps them again
without reading the disk; SQLite never writes through its map (writes use ``write()``), so nothing is
lost. One statement that reads a whole b-tree in a single step (``count(*)``: no progress handler
runs inside it) is run ``unmapped`` then (``whole_scan``), and so is the one scan that looks rows up
all over the file (``random_reads``: the cost scan, one session lookup per cost row).

Why that split (measured on the 10× demo, idle machine, ``cpu-bench``): a sequential scan faults each
page in once whether or not pages are released, so releasing costs it little; but released pages come
back one page fault each, and each fault maps the 16 pages around it (the kernel's fault-around), so
lookups over a working set larger than the budget fault almost every time — the cost scan went from
74k to 3.5M page faults (a whole ``run --model linear`` with every statement released: 169k → 3.9M
faults, 1.3 s → 15.3 s of system time, 1.4× the wall time). Read unmapped, into SQLite's own 64 MiB cache with pread(), the same scan takes 10.5 s
instead of 8.7 s standalone and keeps no file pages. A whole run, ``run --model linear`` on the 10×
demo: peak RSS 1268 MB → 338 MB, wall 13.4 s → 13.5-16.6 s in two benches (the cost scan is the
run's longest path).
Linux only; elsewhere a no-op.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from contextlib import contextmanager, nullcontext
from typing import Iterator, Optional

BUDGET_ENV = "ATTRIBUTION_MAP_BUDGET_MB"  # a number: that budget for every file; "off": never released
DEFAULT_BUDGET_MB = 64  # unset: the budget of a file larger than WHOLE_MAP_UP_TO
WHOLE_MAP_UP_TO = 256 * 2**20  # unset: a file up to this size stays mapped whole (the demo: no change)
MADV_DONTNEED = 4
STEPS = 20_000  # SQLite VM steps between two progress-handler calls (≈ 0.1-1 ms of work)
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

_files: set[str] = set()  # database files whose maps are released (resolved paths)
_lock = threading.Lock()
_floor = [0]  # shared resident pages right after the last release (libraries and other files)
_madvise = None
_budget = [0]
_statm: list = [0, None]  # [pid, open descriptor of its statm]


def budget_bytes(path: Optional[str] = None) -> Optional[int]:
    """Mapped file pages a process keeps of database file ``path`` before they are released, or None:
    the map is never released. ``ATTRIBUTION_MAP_BUDGET_MB`` a number: that many MiB, whatever the
    file; "off" (or anything not a number): never; unset: ``DEFAULT_BUDGET_MB`` for a file larger than
    ``WHOLE_MAP_UP_TO`` (``path`` None: no file known, never). Not Linux: never."""
    if not sys.platform.startswith("linux"):
        return None
    setting = os.environ.get(BUDGET_ENV)
    if setting is None:
        return DEFAULT_BUDGET_MB * 2**20 if path is not None and beyond_whole_map(path) else None
    try:
        mb = float(setting)
    except ValueError:
        return None
    return int(mb * 2**20) if mb >= 0 else None


def beyond_whole_map(path: str) -> bool:
    """Whether database file ``path`` is larger than ``WHOLE_MAP_UP_TO`` (False if it cannot be read):
    a file whose map's pages are released by default, and whose scans the command line spreads over
    two children (``scans.LARGE_FILE_GROUPS``)."""
    try:
        return os.path.getsize(path) > WHOLE_MAP_UP_TO
    except OSError:
        return False


def watched(con: sqlite3.Connection) -> bool:
    """Whether the map pages of ``con``'s database file are released (``watch``)."""
    # the main database's file, as db.database_file reads it (db imports this module, not the reverse)
    path = next((file for _, name, file in con.execute("PRAGMA database_list") if name == "main"), None)
    return path is not None and path != "" and os.path.realpath(path) in _files


@contextmanager
def whole_scan(con: sqlite3.Connection) -> Iterator[None]:
    """The context for a statement that reads a whole b-tree in one step (no progress handler runs
    inside it), when pages are released: ``unmapped``, and inside a transaction also ``trimmed``.
    SQLite keeps the file mapped while the transaction holds a page it read through the map, and
    then copies even the pages it reads "unmapped" out of that map (30× run: the validation's
    ``count(*)`` in the stage's write transaction left 1 GiB resident)."""
    if not watched(con):
        yield
        return
    with unmapped(con), trimmed() if con.in_transaction else nullcontext():
        yield


@contextmanager
def trimmed(every: float = 0.02) -> Iterator[None]:
    """A thread ``release``-ing the watched maps every ``every`` seconds while the block runs (SQLite
    releases the GIL while it works); the pages of a read-only shared map fault back from the page
    cache if read again."""
    done = threading.Event()

    def trim() -> None:
        while not done.wait(every):
            release()

    thread = threading.Thread(target=trim, name="map-trim", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        release()


def random_reads(con: sqlite3.Connection):
    """The context for a statement that looks rows up all over the file (``scans.COST_PROFILE_SQL``:
    one session per cost row): ``unmapped`` when pages are released, else nothing. Released pages
    come back one page fault each, and each fault maps the 16 pages around (the kernel's
    fault-around), so lookups over a file larger than the budget fault nearly every time: on the
    10× demo the cost scan went from 74k to 3.5M faults (+15 s of system time). Unmapped, SQLite
    reads each page it misses in its own cache with pread(): +2 s for that scan, and nothing of the
    file stays resident."""
    return unmapped(con) if watched(con) else nullcontext()


def watch(path: str) -> None:
    """Release the map pages of database file ``path`` from now on (``release_if_over``)."""
    budget = budget_bytes(path)
    if budget is not None:
        with _lock:
            _budget[0] = budget
            _files.add(os.path.realpath(path))
            _floor[0] = _floor[0] or _shared_pages()


def release_if_over() -> int:
    """Release the mapped pages of the watched files once more than the budget of shared file
    pages are resident beyond what was left after the last release; returns 0 (a SQLite progress
    handler's "go on")."""
    if _files and (_shared_pages() - _floor[0]) * PAGE > _budget[0]:
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
    """This process's resident shared pages (file pages and shared memory), from /proc/self/statm
    (kept open: 2 µs a read instead of 13; opened again in a forked child, whose /proc/self differs)."""
    pid = os.getpid()
    try:
        if _statm[0] != pid:
            if _statm[1] is not None:
                os.close(_statm[1])
            _statm[:] = [pid, os.open(f"/proc/{pid}/statm", os.O_RDONLY)]
        return int(os.pread(_statm[1], 128, 0).split()[2])
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
