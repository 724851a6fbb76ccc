"""Opening the analyst's database safely, transactions, and working on a copy.

``open_database`` refuses, with a one-line reason, what is not a usable SQLite file (missing, a
directory, a text file named .db, a truncated file) before any query runs. Connections are in autocommit
mode; every write goes through ``transaction`` so a crash leaves the previous state.

Bounded connections (for databases nobody vouches for, e.g. a dashboard upload): ``bound_queries(folder,
QueryBound(...))`` makes every connection that ``open_database`` opens on a file in that folder — in any
thread, and in forked children — carry a SQLite progress handler that stops its statements once the
connection is older than ``QueryBound.seconds``, once it has run ``QueryBound.max_steps`` virtual-machine
steps, or as soon as ``QueryBound.cancel()`` is called (the session ended). A stopped statement raises
``sqlite3.OperationalError('interrupted')``; ``sqlite_error_message`` turns it (and any other SQLite
error) into the one-line message the CLI and the dashboard show.
"""

from __future__ import annotations

import collections
import os
import re
import sqlite3
import stat
import struct
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from . import mapped_pages
from .errors import InputError, no_room, no_room_text

SQLITE_MAGIC = b"SQLite format 3\x00"
MMAP_BYTES = 1 << 30  # the first GiB of a database file is read through a memory map
BUSY_TIMEOUT_ENV = "ATTRIBUTION_BUSY_TIMEOUT"
DEFAULT_BUSY_TIMEOUT = 120.0  # a writer waits this long for another connection (our own readers too)


def check_sqlite_file(path: str | Path) -> Path:
    """Raise InputError unless ``path`` looks like a complete SQLite database file."""
    path = Path(path)
    not_a_file = not_a_regular_file(path)
    if not_a_file:
        raise InputError(f"{path}{not_a_file}, not a SQLite database file")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        header = fh.read(100)
    if size == 0:
        raise InputError(f"{path} is empty, not a SQLite database")
    if not header.startswith(SQLITE_MAGIC):
        raise InputError(f"{path} is not a SQLite database (it does not start with the SQLite header)")
    if len(header) < 100:
        raise InputError(f"{path} is truncated: the SQLite header is incomplete")
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    change_counter, pages = struct.unpack(">II", header[24:32])
    valid_for = struct.unpack(">I", header[92:96])[0]
    wal = Path(str(path) + "-wal")
    if pages and valid_for == change_counter and size < pages * page_size and not wal.exists():
        raise InputError(
            f"{path} is truncated or damaged: its header announces {pages * page_size:,} bytes, the file has {size:,}"
        )
    return path


def not_a_regular_file(path: Path) -> str:
    """Why ``path`` cannot be a database file although something is there (a directory, a FIFO, a socket,
    a device, a symbolic link that leads nowhere), as the words after its name; "" for a regular file or
    nothing at all. A FIFO is refused before it is opened: reading its header would wait for a writer
    for ever."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return " is a symbolic link that leads nowhere (broken, or a loop)" if path.is_symlink() else ""
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return " is a directory"
    if stat.S_ISFIFO(mode):
        return " is a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return " is a socket"
    return " is a device"


def open_database(path: str | Path, *, write: bool = False) -> sqlite3.Connection:
    """Open an existing SQLite file, read-only unless ``write``; never creates a file.

    A hot journal (``DB-journal`` left by a process killed while writing) is rolled back first by one
    read-write open, as SQLite does on the first read of a writable connection: a read-only
    connection cannot, and would refuse the file.

    A file inside a folder registered with ``bound_queries`` gets that folder's bound (see the module doc).
    """
    path = check_sqlite_file(path)
    try:
        try:
            con = _first_read(path, write)
        except sqlite3.DatabaseError as exc:
            # Only a read-only open of a file with a hot journal fails this way; the journal is
            # rolled back (a read-write open) and the file opened again. A journal that is not hot
            # (another connection's transaction in progress) is never touched: SQLite decides.
            if write or not is_read_only(exc) or not has_hot_journal(path):
                raise
            recover(path)
            con = _first_read(path, write)
    except sqlite3.DatabaseError as exc:
        raise InputError(_open_error(path, exc)) from None
    tune(con)
    bound = bound_for(path)
    if bound is not None:
        bound.attach(con)
    return con


def _first_read(path: Path, write: bool) -> sqlite3.Connection:
    # A long busy timeout: a writer waits for this process's own background reader to finish.
    con = _connect(path, "rw" if write else "ro")
    try:
        waiting_for_lock(con, "PRAGMA schema_version", path)
    except BaseException:
        con.close()
        raise
    return con


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    uri = f"file:{_uri_path(path)}?mode={mode}"
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=busy_timeout())


def busy_timeout() -> float:
    """Seconds to wait for another connection's lock (``ATTRIBUTION_BUSY_TIMEOUT``, default 120)."""
    try:
        return max(0.0, float(os.environ.get(BUSY_TIMEOUT_ENV, DEFAULT_BUSY_TIMEOUT)))
    except ValueError:
        return DEFAULT_BUSY_TIMEOUT


def waiting_for_lock(con: sqlite3.Connection, sql: str, path=None, step: float = 1.0) -> None:
    """Execute ``sql`` (a first read, or BEGIN IMMEDIATE), waiting as long as the connection's busy
    timeout for another process's lock and saying so on stderr every ``step`` seconds meanwhile;
    then the statement's "database is locked" error is raised. The busy timeout is left as it was."""
    limit_ms = con.execute("PRAGMA busy_timeout").fetchone()[0]
    limit, waited = limit_ms / 1000, 0.0
    if limit <= step:
        con.execute(sql).fetchall()
        return
    con.execute(f"PRAGMA busy_timeout = {int(step * 1000)}")
    try:
        while True:
            try:
                con.execute(sql).fetchall()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or waited + step > limit + 1e-9:
                    raise
                waited += step
                sys.stderr.write(
                    f"waiting for another process to release {path or 'the database'}: {waited:g} s of {limit:g} s\n"
                )
                sys.stderr.flush()
    finally:
        con.execute(f"PRAGMA busy_timeout = {limit_ms}")


def read_only_message(path=None) -> str:
    return f"{path or 'the database'} is read-only; use --output-db COPY.db to write the results to a copy"


def has_hot_journal(path: str | Path) -> bool:
    """A non-empty rollback journal beside the file: possibly hot (an interrupted write)."""
    journal = Path(str(path) + "-journal")
    try:
        return journal.stat().st_size > 0
    except OSError:
        return False


def recover(path: Path) -> None:
    """Roll a hot journal back: the first read of a read-write connection does it (under SQLite's
    locks, so a journal of a transaction still in progress elsewhere is left alone)."""
    try:
        con = _connect(path, "rw")
        try:
            con.execute("PRAGMA schema_version").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        if is_read_only(exc):
            raise InputError(
                f"{path} was left half-written by an interrupted process and is read-only, so its journal "
                f"cannot be rolled back: make it writable (or copy it with its -journal file) and try again"
            ) from None
        raise InputError(_open_error(path, exc)) from None


def is_read_only(exc: BaseException) -> bool:
    text = str(exc)
    return "readonly" in text or "read-only" in text


def _open_error(path: Path, exc: sqlite3.DatabaseError) -> str:
    if is_read_only(exc):
        return f"{path} is read-only and needs a write to open ({exc}); make it writable"
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return locked_message(path)
    return f"{path} cannot be opened as a SQLite database: {exc}"


def locked_message(path: str | Path | None) -> str:
    where = f"{path}" if path else "the database"
    return (
        f"another process holds {where} (waited {busy_timeout():g} s); try again when it has finished"
        f" (or raise {BUSY_TIMEOUT_ENV})"
    )


# ---- bounded connections (untrusted databases) --------------------------------------------------

PROGRESS_STEPS = 10_000  # the handler runs every this many SQLite VM steps (≈ 50-100 µs of work)


@dataclass
class QueryBound:
    """Limits for every connection opened on a registered folder's files.

    ``seconds``: a connection's statements stop once it has been open this long; ``max_steps``: or once
    its statements ran this many VM steps (work, whatever the clock); ``what``: names the database in
    the message (e.g. "the upload's queries"). ``cancel()`` stops every statement now and from now on.
    """

    seconds: float
    what: str = "the queries"
    max_steps: Optional[int] = None
    fired: Optional[str] = None  # the message of the first stop, for ``sqlite_error_message``
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self, reason: str = "the session ended") -> None:
        self._stop(f"{self.what} were stopped: {reason}")
        self._cancelled.set()

    def _stop(self, message: str) -> None:
        """Remember why statements stop (the first reason wins), here and for ``sqlite_error_message``."""
        self.fired = self.fired or message
        _STOPPED.local.fired = self.fired
        _STOPPED.recent.append(self)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def attach(self, con: sqlite3.Connection) -> None:
        """Install the progress handler on ``con`` (its clock starts now)."""
        deadline = time.monotonic() + self.seconds
        steps = [0]
        cancelled = self._cancelled

        def check() -> int:
            mapped_pages.release_if_over()  # (this handler replaces tune's)
            if cancelled.is_set():
                _STOPPED.local.fired = self.fired
                return 1
            steps[0] += PROGRESS_STEPS
            if time.monotonic() > deadline:
                self._stop(
                    f"{self.what} took longer than {self.seconds:g} s: stopped (a view or trigger in the "
                    "database may never finish, e.g. a recursive view)"
                )
                return 1
            if self.max_steps is not None and steps[0] > self.max_steps:
                self._stop(
                    f"{self.what} did more than {self.max_steps:,} steps of work: stopped (a view or trigger "
                    "in the database may never finish, e.g. a recursive view)"
                )
                return 1
            return 0

        con.set_progress_handler(check, PROGRESS_STEPS)


_BOUNDS: dict[str, QueryBound] = {}
# Re-entrant: a workspace's finaliser (``bound_queries(folder, None)``) can run in the middle of any
# allocation, garbage collection included, inside a thread that already holds the lock; a plain Lock
# deadlocked the whole process there (seen in the full test suite: every scan thread waiting on it).
_BOUNDS_LOCK = threading.RLock()


class _Stopped:
    """Why the last bounded statement stopped: in this thread, and the last few anywhere (scan threads
    and forked children re-raise their errors in the thread that started them)."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.recent: collections.deque = collections.deque(maxlen=16)


_STOPPED = _Stopped()


def bound_queries(folder: str | Path, bound: Optional[QueryBound]) -> None:
    """Bound every connection ``open_database`` opens on a file in ``folder`` (None: no bound)."""
    key = str(Path(folder).resolve())
    with _BOUNDS_LOCK:
        if bound is None:
            _BOUNDS.pop(key, None)
        else:
            _BOUNDS[key] = bound


def cancel_all(reason: str = "the server is shutting down") -> None:
    """Stop every bounded statement now (the process is exiting: SIGTERM must not wait for them)."""
    with _BOUNDS_LOCK:
        bounds = list(_BOUNDS.values())
    for bound in bounds:
        bound.cancel(reason)


try:  # run before the interpreter joins non-daemon threads (a thread stuck in a query would block exit)
    threading._register_atexit(cancel_all)  # type: ignore[attr-defined]
except (AttributeError, RuntimeError):  # pragma: no cover - other interpreters
    import atexit

    atexit.register(cancel_all)


def bound_for(path: str | Path) -> Optional[QueryBound]:
    """The bound registered for ``path``'s folder, if any."""
    if not _BOUNDS:
        return None
    folder = str(Path(path).resolve().parent)  # file-system work outside the lock
    with _BOUNDS_LOCK:
        return _BOUNDS.get(folder)


def sqlite_error_message(exc: BaseException, bound: Optional[QueryBound] = None, path=None) -> str:
    """The one-line message for a SQLite error raised while working on the analyst's database, the
    same on the command line and the dashboard.

    A statement stopped by a ``QueryBound`` says why (too long, too much work, session ended); a
    read-only file, a lock held too long and a damaged file say so and what to do (``path`` names the
    file); any other error is "the database could not be read: …" with SQLite's own words (a trigger's
    RAISE(ABORT, 'why') message included).
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    if is_read_only(exc):
        return read_only_message(path)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return locked_message(path)
    if "malformed" in text:
        return f"{path or 'the database'} is damaged ({text}); restore it from a backup (with its -journal file)"
    if "interrupted" in text:
        here = getattr(_STOPPED.local, "fired", None)
        if bound is not None and bound.fired:
            return bound.fired
        if here:
            return here
        for recent in reversed(_STOPPED.recent):
            if recent.fired:
                return recent.fired
    words = no_room(exc)
    if words:  # SQLITE_FULL, or a file-size limit: the transaction is rolled back, the file as it was
        return f"{path or 'the database'}: {no_room_text(words)}"
    bad_text = _NOT_UTF8.search(text)
    if bad_text:  # SQLite keeps any bytes as TEXT; Python reads text as UTF-8
        return (
            f"the database could not be read: column {bad_text[1]} holds text that is not UTF-8 "
            f"({bad_text[2]}); store the text as UTF-8 (e.g. export the table again with UTF-8 encoding)"
        )
    return f"the database could not be read: {text}"


# sqlite3's words for a TEXT value that is not UTF-8: "Could not decode to UTF-8 column 'x' with text 'y'"
_NOT_UTF8 = re.compile(r"Could not decode to UTF-8 column ('[^']*') with text ('.*')")


def tune(con: sqlite3.Connection) -> None:
    """Settings for scans over large tables: a larger page cache, temp b-trees in RAM, and the file
    memory-mapped. Reads through the map skip copying each page into SQLite's cache: a fresh ``run``
    on the demo database spends 13% less CPU and 12% less time (median of 15 alternated runs; the
    gain is in the concurrent scans, not in one scan alone). Mapped pages count in the process's
    resident memory but belong to the OS's file cache; writes still go through write()."""
    con.execute("PRAGMA cache_size = -65536")  # 64 MiB
    con.execute("PRAGMA temp_store = MEMORY")
    con.execute("PRAGMA foreign_keys = OFF")
    con.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    path = database_file(con)
    if path and mapped_pages.budget_bytes(path) is not None:  # a large file: release the map's pages
        mapped_pages.watch(path)
        con.set_progress_handler(mapped_pages.release_if_over, mapped_pages.STEPS)


def _uri_path(path: Path) -> str:
    from urllib.parse import quote

    return quote(str(path.resolve()))


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception (including KeyboardInterrupt)."""
    try:
        waiting_for_lock(con, "BEGIN IMMEDIATE", database_file(con))
    except sqlite3.OperationalError as exc:
        if is_read_only(exc):
            raise InputError(read_only_message(database_file(con))) from None
        if "locked" in str(exc):
            raise InputError(locked_message(database_file(con))) from None
        raise
    try:
        yield con
        con.execute("COMMIT")  # may fail (the file stays busy): the transaction is then rolled back
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


@contextmanager
def no_cache_spill(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Inside: a write transaction keeps its changed pages in memory until it commits, instead of
    writing some to the file early (which takes the exclusive lock, waiting for every reader)."""
    con.execute("PRAGMA cache_spill = OFF")
    try:
        yield con
    finally:
        con.execute("PRAGMA cache_spill = ON")


@contextmanager
def read_snapshot(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: every query inside sees the same state of the database."""
    if con.in_transaction:
        yield con
        return
    con.execute("BEGIN")
    try:
        yield con
    finally:
        con.execute("COMMIT")


def copy_database(source: str | Path, target: str | Path) -> Path:
    """Copy ``source`` to ``target`` with SQLite's backup API (consistent even while in use).

    The copy is written next to the target and renamed into place, so a failure leaves no half file.
    The caller checks the target first (``outputs.check_output_db``: not the input, no directory, no
    existing file unless overwriting); errors here name the target.
    """
    source = check_sqlite_file(source)
    target = Path(target)
    if target.resolve() == source.resolve():
        raise InputError("--output-db must name a different file than the input database")
    tmp = target.with_name(target.name + ".partial")
    src = open_database(source)
    try:
        tmp.unlink(missing_ok=True)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            dst.close()
        os.replace(tmp, target)
    except (OSError, sqlite3.Error) as exc:
        _unlink_quietly(tmp)
        _unlink_quietly(Path(f"{tmp}-journal"))  # the backup's own journal, left when a write failed
        words = no_room(exc)
        if words:
            raise InputError(f"cannot write --output-db {target}: {no_room_text(words)}") from None
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"cannot write --output-db {target}: {reason}") from None
    except BaseException:
        _unlink_quietly(tmp)
        _unlink_quietly(Path(f"{tmp}-journal"))
        raise
    finally:
        src.close()
    return target


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def table_columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in con.execute(f"PRAGMA table_info({quote_ident(table)})")]


def table_exists(con: sqlite3.Connection, table: str) -> bool:
    row = con.execute("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (table,)).fetchone()
    return row is not None


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def database_file(con: sqlite3.Connection) -> str | None:
    """Path of the main database file, or None for an in-memory database."""
    for _, name, file in con.execute("PRAGMA database_list"):
        if name == "main":
            return file or None
    return None
