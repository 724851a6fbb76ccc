"""A private working folder per dashboard session: which database it works on, and writing it safely.

Each browser session of the dashboard gets its own ``Workspace``: a fresh temporary folder (mode 700).
Its database comes from

- the built-in demo (``cached_demo``): built once per generator size and code version into a cache
  folder, already run with the default options so a first-time user sees a full report at once. The
  session *shares* that cached file read-only (copy-on-write): nothing is copied on a page load; the
  first write (a run) copies it into the folder as ``current.db``. The cached file is never opened for
  writing;
- an upload (``Workspace.use_upload``): the uploaded bytes are streamed into the workspace and checked
  (SQLite at all? validation fatal?) before they replace ``current.db``; a refused file leaves the
  previous database in place. The analyst's own file is never touched. Every query on an upload (the
  check, the pages' reads, the runs, in any thread or forked child) is bounded in time and work by
  ``pipeline.db.bound_queries`` and stopped when the workspace is closed (the session ended).

``Workspace.run`` runs the pipeline on a copy of the database and swaps the copy in only when the run
succeeded, so an error leaves the previous results exactly as they were. One run at a time per
workspace: a second ``run`` while one is going raises ``RunInProgress``. The copy is made ahead when it
can be (``Workspace.prepare_copy``: ``spare.db``, made in the background while the analyst reads the page,
used by the run if the database has not changed since) and keeps the source's input fingerprints
(``copy_db_file``), so a run starts without copying 149 MB or hashing its pages.

Clean-up and room: the folder is removed when the workspace is closed or garbage-collected, at
interpreter exit, and by ``sweep`` — folders of dead processes, and (given ``is_live``, the dashboard's
"is this session still connected") folders of sessions gone for more than ``SESSION_GRACE_SECONDS``.
``make_room`` keeps the folders under ``ATTRIBUTION_WORKSPACE_MAX_MB`` in total: it evicts the oldest
abandoned sessions' folders and otherwise refuses the new upload or copy with ``WorkspaceFull``.

No Streamlit here: the dashboard calls these functions, the tests call them directly.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Optional

from .db import (
    QueryBound,
    bound_queries,
    check_sqlite_file,
    copy_database,
    open_database,
    read_snapshot,
    sqlite_error_message,
)
from .demo import write_demo_db
from .demo_size import DemoSize
from .errors import InputError
from .fingerprint import adopt_inputs, known_inputs
from .processes import pid_alive
from .progress import Progress, ensure
from .validate import ValidationReport, validate

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
CACHE_ENV = "ATTRIBUTION_CACHE_DIR"  # where the built demo database is kept (default: .work/cache)
WORKSPACE_ENV = "ATTRIBUTION_WORKSPACE_DIR"  # parent of the per-session folders (default: system temp)
WORKSPACE_PREFIX = "ws-"
OWNER_FILE = "owner.pid"
SESSION_FILE = "session"  # the dashboard session id that owns the folder; its mtime: last seen alive
CURRENT = "current.db"
SPARE = "spare.db"  # the next run's copy, made ahead (``Workspace.prepare_copy``)
CHUNK = 8 * 1024 * 1024
QUERY_SECONDS_ENV = "ATTRIBUTION_UPLOAD_QUERY_SECONDS"  # bound of a connection reading an upload
RUN_SECONDS_ENV = "ATTRIBUTION_UPLOAD_RUN_SECONDS"  # bound of a run's connections on an upload
MAX_MB_ENV = "ATTRIBUTION_WORKSPACE_MAX_MB"  # total size of all sessions' folders
GRACE_ENV = "ATTRIBUTION_SESSION_GRACE_SECONDS"
QUERY_SECONDS = 60.0
# Work bound of a connection on an upload, in SQLite VM steps (rows read, compared, written), whatever
# the clock: an endless view stops after the same work on a fast machine as on a slow one. Per byte of
# the file: the busiest connection of an upload plus a run (linear or Markov) on the 47.5 MB demo ran
# 21.4M steps (0.45 per byte), so 20 per byte leaves a margin of 44×; never less than MIN_QUERY_STEPS
# (≈2-6 s of a recursive view on this 2-core machine).
QUERY_STEPS_PER_BYTE = 20
MIN_QUERY_STEPS = 50_000_000
QUERY_STEPS_ENV = "ATTRIBUTION_UPLOAD_QUERY_STEPS"  # the work bound in steps, instead of the per-byte rule
RUN_SECONDS = 1800.0
MAX_MB = 4096.0
SESSION_GRACE_SECONDS = 120.0  # as Streamlit's server.disconnectedSessionTTL: a closed tab's session lives on
SIDE_FILES = ("-wal", "-shm", "-journal")


class RunInProgress(InputError):
    """A run was asked for while this workspace's previous run is still going."""


class WorkspaceFull(InputError):
    """The folders of all sessions would exceed ``ATTRIBUTION_WORKSPACE_MAX_MB`` even after evicting
    every abandoned session's folder."""


class UploadRefused(InputError):
    """The uploaded file cannot be used; ``report`` carries the validation findings when there are any."""

    def __init__(self, message: str, report: Optional[ValidationReport] = None, headline: str = ""):
        super().__init__(message)
        self.report = report
        # the message without its first problem, for a face that lists every problem below it
        self.headline = headline or message


# ---- the demo database, built once -------------------------------------------------------------


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or REPO_DIR / ".work" / "cache")


def code_version() -> str:
    """A digest of the library's source and profiles: a cached demo built by other code is rebuilt."""
    h = hashlib.blake2b(digest_size=8)
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.suffix in (".py", ".json", ".toml") and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(PACKAGE_DIR)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def demo_cache_path(size: DemoSize, cache_dir: Optional[Path] = None) -> Path:
    """Where the demo of ``size`` built by this version of the code lives."""
    shape = "-short" if size.short_ids else ""
    key = f"s{size.sessions}-c{size.conversions}-d{size.days}-r{size.seed}{shape}-{code_version()}"
    return Path(cache_dir or default_cache_dir()) / f"demo-{key}.db"


def cached_demo(
    size: DemoSize = DemoSize(), cache_dir: Optional[Path] = None, progress: Optional[Progress] = None
) -> Path:
    """The demo database of ``size``, generated and run with the default options once, then reused.

    Built under a file lock, so two sessions (or two servers) starting together build it once; written
    under a temporary name and renamed, so a crash never leaves a half-built cache file.
    """
    from .runner import RunOptions, run_pipeline

    path = demo_cache_path(size, cache_dir)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    progress = ensure(progress)
    with _file_lock(path.with_suffix(".lock")):
        if path.exists():  # built by someone else while we waited
            return path
        tmp = path.with_name(path.stem + ".building.db")
        tmp.unlink(missing_ok=True)
        progress(0, 3, "demo: generating the demo database")
        write_demo_db(tmp, size)
        progress(1, 3, "demo: running the pipeline with the default model")
        con = open_database(tmp, write=True)
        try:
            run_pipeline(con, RunOptions())
        finally:
            con.close()
        os.replace(tmp, path)
        progress(3, 3, "demo: ready")
    return path


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---- copying a database file -------------------------------------------------------------------


def copy_db_file(source: Path, target: Path) -> Path:
    """Copy a database: a plain file copy when it is self-contained, SQLite's backup API when a
    write-ahead log may hold recent pages. Written under a temporary name, then renamed.

    The plain copy is taken inside a read transaction of the source (no commit can land half-way
    through it), and the copy keeps the input fingerprints the source holds for that state
    (``fingerprint.known_inputs`` / ``adopt_inputs``): the run on the copy does not hash its pages again."""
    source, target = Path(source), Path(target)
    if Path(str(source) + "-wal").exists() or _is_wal(source):
        return copy_database(source, target)
    tmp = target.with_name(target.name + ".partial")
    try:
        con = open_database(source)
        try:
            with read_snapshot(con):
                con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # takes the shared lock
                known = known_inputs(con)
                shutil.copyfile(source, tmp)
        finally:
            con.close()
        if known is not None:
            adopt_inputs(tmp, known)
        os.replace(tmp, target)
    except BaseException:
        _unlink_db(tmp)
        raise
    return target


def _is_wal(path: Path) -> bool:
    """Header bytes 18-19 are 2 for a database in WAL mode."""
    with open(path, "rb") as fh:
        header = fh.read(20)
    return len(header) == 20 and header[18] == 2


# ---- the per-session folder --------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where the workspace's database came from, for display."""

    kind: str  # "demo" | "upload"
    name: str  # file name (upload) or "Demo database"
    size_bytes: int = 0
    detail: str = ""  # e.g. the demo's generator parameters


class Workspace:
    """One dashboard session's private folder and the database it works on."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.own_path = self.root / CURRENT
        self.source: Optional[Source] = None
        self._shared: Optional[Path] = None  # the cached demo, read-only, until the first write
        self._run_lock = threading.Lock()
        self._bound: Optional[QueryBound] = None
        self.spare_path = self.root / SPARE
        self._spare_lock = threading.Lock()  # held while the spare is made or taken
        self._spare_of: Optional[tuple] = None  # the identity of the database the spare copies
        self._finalizer = weakref.finalize(self, _remove_folder, str(self.root))
        _OPEN[str(self.root)] = self

    @classmethod
    def create(cls, base: Optional[Path] = None, session_id: Optional[str] = None) -> "Workspace":
        """A new folder under ``base``; ``session_id`` (the dashboard session) is what ``sweep`` asks
        ``is_live`` about."""
        base = workspace_base(base)
        base.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=WORKSPACE_PREFIX, dir=base))
        os.chmod(root, 0o700)
        (root / OWNER_FILE).write_text(str(os.getpid()))
        (root / SESSION_FILE).write_text(session_id or "")
        return cls(root)

    # ---- state ---------------------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        """The database this session sees: its own ``current.db``, or the shared demo until a write."""
        if self._shared is not None and not self.own_path.exists():
            return self._shared
        return self.own_path

    @property
    def shares_demo(self) -> bool:
        return self.db_path != self.own_path

    @property
    def has_database(self) -> bool:
        return self.db_path.exists()

    def fingerprint(self) -> str:
        """Changes whenever the database is replaced or written; cheap (a stat), unique per workspace.
        Keys the dashboard's caches, so one session's cached results never serve another's."""
        if not self.has_database:
            return f"{self.root}:none"
        st = self.db_path.stat()
        return f"{self.root}:{self.db_path.name}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"

    def connect(self) -> sqlite3.Connection:
        """A read-only connection to the current database (close it when done)."""
        if not self.has_database:
            raise InputError("no database is loaded yet")
        return open_database(self.db_path)

    def touch(self) -> None:
        """Mark the session as seen now (``sweep`` and ``make_room`` spare recently seen folders)."""
        with contextlib.suppress(OSError):
            os.utime(self.root / SESSION_FILE)

    # ---- filling it ----------------------------------------------------------------------------
    def use_demo(self, demo_path: Path, size: Optional[DemoSize] = None) -> Source:
        """Work on the (cached) demo database: shared read-only, copied in only by the first write."""
        demo_path = Path(demo_path)
        check_sqlite_file(demo_path)
        self._set_bound(None)
        _unlink_db(self.own_path)
        self.discard_spare()
        self._shared = demo_path
        detail = ""
        if size is not None:
            detail = (
                f"generated: {size.sessions:,} sessions, {size.conversions:,} conversions, "
                f"{size.days} days, seed {size.seed}"
            )
        self.source = Source("demo", "Demo database", demo_path.stat().st_size, detail)
        return self.source

    def use_file(self, path: Path) -> ValidationReport:
        """Work on a copy of a database file on the server's disk (validated like an upload)."""
        with open(path, "rb") as fh:
            return self.use_upload(Path(path).name, fh)

    def use_upload(self, name: str, data: "BinaryIO | bytes", progress: Optional[Progress] = None) -> ValidationReport:
        """Take an uploaded file: copy it in, check it, and make it the current database.

        Raises ``UploadRefused`` (an ``InputError``) with a readable reason — not SQLite, truncated,
        missing tables, fatal validation findings, queries that take too long — and then keeps the
        previous database. ``WorkspaceFull`` when there is no room for it.
        """
        progress = ensure(progress)
        incoming = self.root / "incoming.db"
        _unlink_db(incoming)
        label = _display_name(name)
        make_room(_data_size(data), keep=self.root)
        progress(0, 3, f"copying {name} into the working folder")
        previous_bound = self._bound
        bound = upload_bound()
        try:
            size = _write_stream(data, incoming)
            bound.max_steps = upload_bound(file_bytes=size).max_steps
            try:
                check_sqlite_file(incoming)
            except InputError as exc:
                raise UploadRefused(str(exc).replace(str(incoming), label)) from None
            progress(1, 3, f"validating {label}")
            self._set_bound(bound)  # from here on, every query on the file is bounded
            try:
                con = open_database(incoming)
            except InputError as exc:
                raise UploadRefused(str(exc).replace(str(incoming), label)) from None
            try:
                report = validate(con)
            except sqlite3.DatabaseError as exc:
                raise UploadRefused(f"{label}: {sqlite_error_message(exc, bound)}") from None
            finally:
                con.close()
            if report.fatal:
                n = len(report.fatal)
                problems = f"{n} fatal problem{'s' if n > 1 else ''}"
                raise UploadRefused(
                    f"{label} cannot be attributed: {problems} (first: {report.fatal[0].message})",
                    report,
                    headline=f"{label} cannot be attributed: {problems}, listed below.",
                )
            progress(2, 3, f"{label} accepted")
            _unlink_db(self.own_path, only_side_files=True)
            os.replace(incoming, self.own_path)
            self._shared = None
            self.discard_spare()
            self.source = Source("upload", label, size, "uploaded")
            progress(3, 3, f"{label} loaded")
            return report
        except BaseException:
            self._set_bound(previous_bound)  # the previous database stays, and so does its bound
            raise
        finally:
            _unlink_db(incoming)

    def _set_bound(self, bound: Optional[QueryBound]) -> None:
        self._bound = bound
        bound_queries(self.root, bound)

    # ---- writing it safely ---------------------------------------------------------------------
    @contextlib.contextmanager
    def writable_copy(self) -> Iterator[sqlite3.Connection]:
        """A write connection to a copy of the database; the copy replaces ``current.db`` only if the
        block finishes without an exception and wrote something. On an error the previous database stays
        exactly as it was. A shared demo is copied here: the session's first write."""
        if not self.has_database:
            raise InputError("no database is loaded yet")
        source = self.db_path
        work = self.root / f"next-{uuid.uuid4().hex[:8]}.db"  # never shared with another run
        if not self._take_spare(work):
            make_room(source.stat().st_size, keep=self.root)
            copy_db_file(source, work)
        copied = _identity(work)
        con = None
        try:
            con = open_database(work, write=True)
            # The copy is this session's temporary file (removed with the folder, and by ``sweep`` after a
            # crash): its commits need not wait for the disk. Without this, the run's commit synced the
            # whole 149 MB just copied (still in the page cache) to disk. A killed process still leaves
            # the copy consistent (the journal is written first); only an OS crash could tear it, and
            # the session is gone then anyway.
            con.execute("PRAGMA synchronous = OFF")
            yield con
            wrote = con.total_changes > 0
            con.close()
            con = None
            # A run that wrote nothing (every stage up to date) leaves the database as it was: the copy is
            # dropped, and a shared demo stays shared (a reload then loses nothing, and the page does not
            # say it would). Any write shows in the rows changed or in the file (its size, modification
            # time or change counter: a schema change counts no rows).
            if wrote or _identity(work) != copied:
                os.replace(work, self.own_path)
                self._shared = None
        finally:
            if con is not None:
                con.close()
            _unlink_db(work)

    def _materialize(self) -> None:
        """Copy a shared demo into the folder (before writing it in place)."""
        if self.shares_demo:
            if not self._take_spare(self.own_path):
                make_room(self.db_path.stat().st_size, keep=self.root)
                copy_db_file(self.db_path, self.own_path)
            self._shared = None

    # ---- the next run's copy, made ahead ------------------------------------------------------
    def prepare_copy(self) -> Optional[threading.Thread]:
        """Make the next run's copy of the database (``spare.db``) in a background thread, while the
        analyst reads the page: a run then starts on it instead of copying (0.05–0.9 s for the demo's
        149 MB, depending on how much the disk has still to write). Returns the thread, or None when
        there is nothing to do: a spare of the database as it is now exists or is being made, a run
        is going, or there is no room for it without evicting anyone (``room_for``; ``make_room``
        discards spares before anything else)."""
        if not self.has_database or self.running or self.closed:
            return None
        if not self._spare_lock.acquire(blocking=False):
            return None  # being made (or taken) now
        try:
            source = self.db_path
            ident = _identity(source)
            if ident is None or (self._spare_of == ident and self.spare_path.exists()):
                return None
            if not room_for(_bytes(source), base=self.root.parent):
                return None
            self._spare_of = None
            thread = threading.Thread(target=self._make_spare, args=(source, ident), name="spare-copy", daemon=True)
            thread.start()
            return thread
        finally:
            self._spare_lock.release()

    def _make_spare(self, source: Path, ident: tuple) -> None:
        with self._spare_lock:
            _unlink_db(self.spare_path)
            try:
                copy_db_file(source, self.spare_path)  # keeps the source's fingerprints
            except Exception:  # noqa: BLE001 - only a head start: the run copies on its own
                _unlink_db(self.spare_path)
                return
            if _identity(source) == ident:  # nothing wrote the database meanwhile
                self._spare_of = ident
            else:
                _unlink_db(self.spare_path)

    def _take_spare(self, target: Path) -> bool:
        """Move the spare to ``target`` if it is a copy of the database as it is now (waits for a spare
        being made); else discard it. False: the caller copies."""
        with self._spare_lock:
            ident, self._spare_of = self._spare_of, None
            if ident is None or ident != _identity(self.db_path):
                _unlink_db(self.spare_path)
                return False
            try:
                os.replace(self.spare_path, target)
            except OSError:  # discarded meanwhile (``make_room``)
                return False
            return True

    def discard_spare(self) -> None:
        """Remove the spare copy (the database was replaced, or the room is needed)."""
        self._spare_of = None
        _unlink_db(self.spare_path)

    def run(self, options, progress: Optional[Progress] = None, in_place: bool = False):
        """``runner.run_pipeline`` on a copy, swapped in on success; returns ``(RunResult, seconds)``
        where seconds include the copy.

        ``in_place`` writes ``current.db`` directly instead (each stage is still one transaction, so a
        failing stage keeps the previous report and attribution): for the IHC API, whose resumable
        ledger must keep the chunks already answered when a later chunk fails.

        One run at a time: ``RunInProgress`` if this workspace's previous run has not finished. A
        SQLite error from the database (a trigger that aborts a write, a bound that stopped a query)
        becomes an ``InputError`` with the CLI's one-line message.
        """
        from .runner import run_pipeline

        if not self._run_lock.acquire(blocking=False):
            raise RunInProgress("a run is already in progress in this session: wait for it to finish")
        read_bound = self._bound
        try:
            if read_bound is not None:  # an upload: a run may take longer than a page's read
                self._set_bound(upload_bound(_env_seconds(RUN_SECONDS_ENV, RUN_SECONDS), _bytes(self.db_path)))
            started = time.perf_counter()
            try:
                if in_place:
                    self._materialize()
                    con = open_database(self.own_path, write=True)
                    try:
                        result = run_pipeline(con, options, progress)
                    finally:
                        con.close()
                else:
                    with self.writable_copy() as con:
                        result = run_pipeline(con, options, progress)
            except sqlite3.DatabaseError as exc:
                raise InputError(sqlite_error_message(exc, self._bound)) from None
            return result, time.perf_counter() - started
        finally:
            if read_bound is not None and not read_bound.cancelled:
                self._set_bound(upload_bound(file_bytes=_bytes(self.db_path)))
            self._run_lock.release()

    @property
    def running(self) -> bool:
        return self._run_lock.locked()

    def database_bytes(self) -> bytes:
        """The current (enriched) database as bytes, for a download."""
        return self.db_path.read_bytes()

    def public_text(self, text: str) -> str:
        """``text`` (an error, a traceback) with server paths replaced by neutral names, to show."""
        return hide_paths(text, {str(self.root): "<session folder>"})

    # ---- cleaning up ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every query on the database, delete the folder and everything in it."""
        if self._bound is not None:
            self._bound.cancel()
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive or not self.root.exists()


_OPEN: "weakref.WeakValueDictionary[str, Workspace]" = weakref.WeakValueDictionary()


def _remove_folder(root: str) -> None:
    bound_queries(root, None)
    shutil.rmtree(root, ignore_errors=True)


def upload_bound(seconds: Optional[float] = None, file_bytes: int = 0) -> QueryBound:
    """The bound of queries on an upload of ``file_bytes``: in time (``ATTRIBUTION_UPLOAD_QUERY_SECONDS``,
    default 60 s) and in work (``QUERY_STEPS_PER_BYTE`` SQLite steps per byte, at least ``MIN_QUERY_STEPS``;
    ``ATTRIBUTION_UPLOAD_QUERY_STEPS`` sets the steps instead)."""
    seconds = _env_seconds(QUERY_SECONDS_ENV, QUERY_SECONDS) if seconds is None else seconds
    steps = max(MIN_QUERY_STEPS, QUERY_STEPS_PER_BYTE * int(file_bytes))
    value = os.environ.get(QUERY_STEPS_ENV)
    if value:
        if not value.isdigit() or int(value) <= 0:
            raise InputError(f"{QUERY_STEPS_ENV}={value!r} must be a whole number of steps, more than 0")
        steps = int(value)
    return QueryBound(seconds, "the upload's queries", max_steps=steps)


def _identity(path: Path) -> Optional[tuple]:
    """Which state of the database file ``path`` is: its identity, size, modification time and change
    counter (a commit in place changes the counter; a replaced file has another inode). None: no file."""
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError:
        return None
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, header[24:28], header[92:96])


def _bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise InputError(f"{name}={value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise InputError(f"{name}={value!r} must be more than 0")
    return seconds


def _unlink_db(path: Path, only_side_files: bool = False) -> None:
    for suffix in SIDE_FILES if only_side_files else ("", *SIDE_FILES):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _data_size(data: "BinaryIO | bytes") -> int:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data)
    size = getattr(data, "size", None)
    if isinstance(size, int):
        return size
    try:
        here = data.tell()
        data.seek(0, os.SEEK_END)
        end = data.tell()
        data.seek(here)
        return end
    except (AttributeError, OSError, ValueError):
        return 0


def hide_paths(text: str, extra: Optional[dict] = None) -> str:
    """Replace the server's paths (the app's folder, Python's, the temp folder, home) in ``text``."""
    names = {
        **(extra or {}),
        str(REPO_DIR): "<app>",
        sys.prefix: "<python>",
        sys.base_prefix: "<python>",
        tempfile.gettempdir(): "<tmp>",
        str(Path.home()): "~",
    }
    out = str(text)
    for path, name in sorted(names.items(), key=lambda kv: len(kv[0]), reverse=True):
        if path and len(path) > 1:
            out = out.replace(path, name)
    return out


def _write_stream(data: "BinaryIO | bytes", target: Path) -> int:
    with open(target, "wb") as out:
        if isinstance(data, (bytes, bytearray, memoryview)):
            out.write(data)
        else:
            if hasattr(data, "seek"):
                data.seek(0)
            shutil.copyfileobj(data, out, CHUNK)
        return out.tell()


def _display_name(name: str) -> str:
    """The uploaded file's base name only (browsers may send a path)."""
    base = Path(str(name).replace("\\", "/")).name.strip()
    return base or "the uploaded file"


def workspace_base(base: Optional[Path] = None) -> Path:
    return Path(base or os.environ.get(WORKSPACE_ENV) or Path(tempfile.gettempdir()) / "attribution-dashboard")


def _folders(base: Path) -> list[Path]:
    return [f for f in base.glob(WORKSPACE_PREFIX + "*") if f.is_dir()] if base.is_dir() else []


def _owner(folder: Path) -> tuple[Optional[int], str]:
    try:
        pid: Optional[int] = int((folder / OWNER_FILE).read_text().strip())
    except (OSError, ValueError):
        pid = None
    try:
        session = (folder / SESSION_FILE).read_text().strip()
    except OSError:
        session = ""
    return pid, session


def _seen_age(folder: Path, now: float) -> float:
    """Seconds since the folder's session was last seen (its session file's mtime; else the folder's)."""
    for path in (folder / SESSION_FILE, folder):
        with contextlib.suppress(OSError):
            return now - path.stat().st_mtime
    return 0.0


def _remove(folder: Path) -> None:
    ws = _OPEN.get(str(folder))
    if ws is not None:
        ws.close()  # stops its queries too
    else:
        _remove_folder(str(folder))


def _abandoned(folder: Path, now: float, is_live: Optional[Callable[[str], bool]], grace: float) -> bool:
    """Its process is gone, or its session is not live and was last seen more than ``grace`` s ago."""
    pid, session = _owner(folder)
    if pid is None or not pid_alive(pid):
        return True
    if pid != os.getpid():
        return False  # another live server's session: not ours to judge
    if is_live is not None and session and is_live(session):
        with contextlib.suppress(OSError):
            os.utime(folder / SESSION_FILE)
        return False
    return _seen_age(folder, now) > grace


def sweep(
    base: Optional[Path] = None,
    max_age_hours: float = 24.0,
    is_live: Optional[Callable[[str], bool]] = None,
    grace_seconds: Optional[float] = None,
) -> list[Path]:
    """Remove folders whose owning process is gone, untouched for ``max_age_hours``, or — with
    ``is_live(session_id)`` — whose session has not been live for ``grace_seconds`` (default
    ``ATTRIBUTION_SESSION_GRACE_SECONDS``, 120 s). A removed folder's open queries are stopped."""
    base = workspace_base(base)
    grace = _env_seconds(GRACE_ENV, SESSION_GRACE_SECONDS) if grace_seconds is None else grace_seconds
    removed: list[Path] = []
    now = time.time()
    for folder in _folders(base):
        pid, _ = _owner(folder)
        stale = pid is None or not pid_alive(pid)
        if not stale and is_live is not None and pid == os.getpid():
            stale = _abandoned(folder, now, is_live, grace)
        try:
            age_h = (now - max(p.stat().st_mtime for p in [folder, *folder.iterdir()])) / 3600
        except OSError:
            age_h = 0.0
        if stale or age_h > max_age_hours:
            _remove(folder)
            removed.append(folder)
    return removed


_LIVENESS: dict[str, Callable[[str], bool]] = {}


def set_liveness(is_live: Optional[Callable[[str], bool]]) -> None:
    """How ``make_room`` tells a connected session from an abandoned one (the dashboard sets it)."""
    _LIVENESS.clear()
    if is_live is not None:
        _LIVENESS["is_live"] = is_live


def folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def room_for(needed: int, base: Optional[Path] = None, max_bytes: Optional[int] = None) -> bool:
    """Whether ``needed`` more bytes fit under the cap on all sessions' folders without evicting any
    folder, and the disk keeps at least as much again free: for what is only a head start (a spare copy)."""
    base = workspace_base(base)
    if max_bytes is None:
        max_bytes = int(_env_seconds(MAX_MB_ENV, MAX_MB) * 1e6)
    total = sum(folder_bytes(f) for f in _folders(base))
    try:
        free = shutil.disk_usage(base).free
    except OSError:
        return False
    return total + needed <= max_bytes and free >= 2 * needed


def _discard_spares(folders: list[Path]) -> int:
    """Remove every session's spare copy (``Workspace.prepare_copy``): the bytes freed."""
    freed = 0
    for folder in folders:
        ws = _OPEN.get(str(folder))
        for suffix in ("", ".partial"):
            spare = folder / (SPARE + suffix)
            with contextlib.suppress(OSError):
                size = spare.stat().st_size
                spare.unlink()
                freed += size
        if ws is not None:
            ws._spare_of = None
    return freed


def make_room(
    needed: int, keep: Optional[Path] = None, base: Optional[Path] = None, max_bytes: Optional[int] = None
) -> list[Path]:
    """Make sure ``needed`` more bytes fit under the cap on all sessions' folders
    (``ATTRIBUTION_WORKSPACE_MAX_MB``, default 4096): evict abandoned sessions' folders, oldest seen
    first (never ``keep``); raise ``WorkspaceFull`` when even that is not enough. Returns the evicted.
    Spare copies (``Workspace.prepare_copy``) go first, before any folder."""
    base = workspace_base(base if base is not None else (Path(keep).parent if keep else None))
    if max_bytes is None:
        max_bytes = int(_env_seconds(MAX_MB_ENV, MAX_MB) * 1e6)
    folders = _folders(base)
    sizes = {f: folder_bytes(f) for f in folders}
    total = sum(sizes.values())
    evicted: list[Path] = []
    if total + needed <= max_bytes:
        return evicted
    total -= _discard_spares(folders)
    sizes = {f: folder_bytes(f) for f in folders}
    if total + needed <= max_bytes:
        return evicted
    now = time.time()
    grace = _env_seconds(GRACE_ENV, SESSION_GRACE_SECONDS)
    is_live = _LIVENESS.get("is_live")
    keep_key = str(Path(keep).resolve()) if keep else None
    candidates = [
        f for f in folders if str(f.resolve()) != keep_key and sizes[f] and _abandoned(f, now, is_live, grace)
    ]
    for folder in sorted(candidates, key=lambda f: _seen_age(f, now), reverse=True):
        if total + needed <= max_bytes:
            break
        _remove(folder)
        total -= sizes[folder]
        evicted.append(folder)
    if total + needed > max_bytes:
        raise WorkspaceFull(
            f"the dashboard's working space is full: {total / 1e6:,.0f} MB of {max_bytes / 1e6:,.0f} MB are "
            f"in use by open sessions and {needed / 1e6:,.1f} MB more are needed; try again later, or ask "
            f"the administrator to raise {MAX_MB_ENV}"
        )
    return evicted


def demo_size_from_env(environ=None) -> DemoSize:
    """The demo size, overridable for tests and small machines: ATTRIBUTION_DEMO_SESSIONS,
    ATTRIBUTION_DEMO_CONVERSIONS, ATTRIBUTION_DEMO_DAYS, ATTRIBUTION_DEMO_SEED; ATTRIBUTION_DEMO_SHORT_IDS=1
    for the old short ids instead of the real data's hex ids (benchmarks compare the two)."""
    environ = os.environ if environ is None else environ
    size = DemoSize()
    changes = {}
    for field in ("sessions", "conversions", "days", "seed"):
        value = environ.get(f"ATTRIBUTION_DEMO_{field.upper()}")
        if value:
            try:
                changes[field] = int(value)
            except ValueError:
                raise InputError(f"ATTRIBUTION_DEMO_{field.upper()}={value!r} is not a whole number") from None
    short = environ.get("ATTRIBUTION_DEMO_SHORT_IDS", "")
    if short not in ("", "0", "1"):
        raise InputError(f"ATTRIBUTION_DEMO_SHORT_IDS={short!r} must be 0 or 1")
    return replace(size, **changes, short_ids=short == "1")


__all__ = [
    "RunInProgress",
    "Source",
    "UploadRefused",
    "Workspace",
    "WorkspaceFull",
    "cached_demo",
    "copy_db_file",
    "demo_cache_path",
    "demo_size_from_env",
    "hide_paths",
    "make_room",
    "room_for",
    "set_liveness",
    "sweep",
]
