"""A private working folder per dashboard session: which database it works on, and writing it safely.

Each browser session of the dashboard gets its own ``Workspace``: a fresh temporary folder holding
``current.db``, the database that session sees. It is filled from

- the built-in demo (``cached_demo``): built once per generator size and code version into a cache
  folder, already run with the default options so a first-time user sees a full report at once, then
  *copied* into the workspace — the cached file is never opened for writing;
- an upload (``Workspace.use_upload``): the uploaded bytes are streamed into the workspace and checked
  (SQLite at all? validation fatal?) before they replace ``current.db``; a refused file leaves the
  previous database in place. The analyst's own file stays on their machine and is never touched.

``Workspace.run`` runs the pipeline on a copy of ``current.db`` and swaps the copy in only when the run
succeeded, so an error leaves the previous results exactly as they were. The folder is removed when the
workspace is closed or garbage-collected (the dashboard session ended) and at interpreter exit;
``sweep`` removes folders left behind by processes that died.

No Streamlit here: the dashboard calls these functions, the tests call them directly.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sqlite3
import tempfile
import time
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

from .db import check_sqlite_file, copy_database, open_database
from .demo import write_demo_db
from .demo_size import DemoSize
from .errors import InputError
from .progress import Progress, ensure
from .validate import ValidationReport, validate

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
CACHE_ENV = "ATTRIBUTION_CACHE_DIR"  # where the built demo database is kept (default: .work/cache)
WORKSPACE_ENV = "ATTRIBUTION_WORKSPACE_DIR"  # parent of the per-session folders (default: system temp)
WORKSPACE_PREFIX = "ws-"
OWNER_FILE = "owner.pid"
CURRENT = "current.db"
CHUNK = 8 * 1024 * 1024


class UploadRefused(InputError):
    """The uploaded file cannot be used; ``report`` carries the validation findings when there are any."""

    def __init__(self, message: str, report: Optional[ValidationReport] = None):
        super().__init__(message)
        self.report = report


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
    write-ahead log may hold recent pages. Written under a temporary name, then renamed."""
    source, target = Path(source), Path(target)
    if Path(str(source) + "-wal").exists() or _is_wal(source):
        return copy_database(source, target)
    tmp = target.with_name(target.name + ".partial")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
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
        self.db_path = self.root / CURRENT
        self.source: Optional[Source] = None
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.root), True)

    @classmethod
    def create(cls, base: Optional[Path] = None) -> "Workspace":
        base = Path(base or os.environ.get(WORKSPACE_ENV) or Path(tempfile.gettempdir()) / "attribution-dashboard")
        base.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=WORKSPACE_PREFIX, dir=base))
        os.chmod(root, 0o700)
        (root / OWNER_FILE).write_text(str(os.getpid()))
        return cls(root)

    # ---- state ---------------------------------------------------------------------------------
    @property
    def has_database(self) -> bool:
        return self.db_path.exists()

    def fingerprint(self) -> str:
        """Changes whenever ``current.db`` is replaced or written; cheap (a stat), unique per workspace.
        Keys the dashboard's caches, so one session's cached results never serve another's."""
        if not self.has_database:
            return f"{self.root}:none"
        st = self.db_path.stat()
        return f"{self.db_path}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"

    def connect(self) -> sqlite3.Connection:
        """A read-only connection to the current database (close it when done)."""
        if not self.has_database:
            raise InputError("no database is loaded yet")
        return open_database(self.db_path)

    # ---- filling it ----------------------------------------------------------------------------
    def use_demo(self, demo_path: Path, size: Optional[DemoSize] = None) -> Source:
        """Work on a copy of the (cached) demo database."""
        copy_db_file(Path(demo_path), self.db_path)
        detail = ""
        if size is not None:
            detail = (
                f"generated: {size.sessions:,} sessions, {size.conversions:,} conversions, "
                f"{size.days} days, seed {size.seed}"
            )
        self.source = Source("demo", "Demo database", self.db_path.stat().st_size, detail)
        return self.source

    def use_file(self, path: Path) -> ValidationReport:
        """Work on a copy of a database file on the server's disk (validated like an upload)."""
        with open(path, "rb") as fh:
            return self.use_upload(Path(path).name, fh)

    def use_upload(self, name: str, data: "BinaryIO | bytes", progress: Optional[Progress] = None) -> ValidationReport:
        """Take an uploaded file: copy it in, check it, and make it the current database.

        Raises ``UploadRefused`` (an ``InputError``) with a readable reason — not SQLite, truncated,
        missing tables, fatal validation findings — and then keeps the previous database.
        """
        progress = ensure(progress)
        incoming = self.root / "incoming.db"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(incoming) + suffix).unlink(missing_ok=True)
        progress(0, 3, f"copying {name} into the working folder")
        try:
            size = _write_stream(data, incoming)
            label = _display_name(name)
            try:
                check_sqlite_file(incoming)
            except InputError as exc:
                raise UploadRefused(str(exc).replace(str(incoming), label)) from None
            progress(1, 3, f"validating {label}")
            try:
                con = open_database(incoming)
            except InputError as exc:
                raise UploadRefused(str(exc).replace(str(incoming), label)) from None
            try:
                report = validate(con)
            except sqlite3.DatabaseError as exc:
                raise UploadRefused(f"{label} cannot be read as a SQLite database ({exc})") from None
            finally:
                con.close()
            if report.fatal:
                n = len(report.fatal)
                raise UploadRefused(
                    f"{label} cannot be attributed: {n} fatal problem{'s' if n > 1 else ''} "
                    f"(first: {report.fatal[0].message})",
                    report,
                )
            progress(2, 3, f"{label} accepted")
            for suffix in ("-wal", "-shm", "-journal"):
                Path(str(self.db_path) + suffix).unlink(missing_ok=True)
            os.replace(incoming, self.db_path)
            self.source = Source("upload", label, size, "uploaded")
            progress(3, 3, f"{label} loaded")
            return report
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(incoming) + suffix).unlink(missing_ok=True)

    # ---- writing it safely ---------------------------------------------------------------------
    @contextlib.contextmanager
    def writable_copy(self) -> Iterator[sqlite3.Connection]:
        """A write connection to a copy of ``current.db``; the copy replaces it only if the block
        finishes without an exception. On an error the previous database stays exactly as it was."""
        if not self.has_database:
            raise InputError("no database is loaded yet")
        work = self.root / "next.db"
        copy_db_file(self.db_path, work)
        con = None
        try:
            con = open_database(work, write=True)
            yield con
            con.close()
            con = None
            os.replace(work, self.db_path)
        finally:
            if con is not None:
                con.close()
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(work) + suffix).unlink(missing_ok=True)

    def run(self, options, progress: Optional[Progress] = None, in_place: bool = False):
        """``runner.run_pipeline`` on a copy, swapped in on success; returns ``(RunResult, seconds)``
        where seconds include the copy.

        ``in_place`` writes ``current.db`` directly instead (each stage is still one transaction, so a
        failing stage keeps the previous report and attribution): for the IHC API, whose resumable
        ledger must keep the chunks already answered when a later chunk fails."""
        from .runner import run_pipeline

        started = time.perf_counter()
        if in_place:
            con = open_database(self.db_path, write=True)
            try:
                result = run_pipeline(con, options, progress)
            finally:
                con.close()
        else:
            with self.writable_copy() as con:
                result = run_pipeline(con, options, progress)
        return result, time.perf_counter() - started

    def database_bytes(self) -> bytes:
        """The current (enriched) database as bytes, for a download."""
        return self.db_path.read_bytes()

    # ---- cleaning up ---------------------------------------------------------------------------
    def close(self) -> None:
        """Delete the folder and everything in it."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive


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


def sweep(base: Optional[Path] = None, max_age_hours: float = 24.0) -> list[Path]:
    """Remove workspace folders whose owning process is gone, or untouched for ``max_age_hours``."""
    base = Path(base or os.environ.get(WORKSPACE_ENV) or Path(tempfile.gettempdir()) / "attribution-dashboard")
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    now = time.time()
    for folder in base.glob(WORKSPACE_PREFIX + "*"):
        if not folder.is_dir():
            continue
        try:
            pid = int((folder / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            pid = None
        stale = pid is None or not _alive(pid)
        try:
            age_h = (now - max(p.stat().st_mtime for p in [folder, *folder.iterdir()])) / 3600
        except OSError:
            age_h = 0.0
        if stale or age_h > max_age_hours:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    "Source",
    "UploadRefused",
    "Workspace",
    "cached_demo",
    "copy_db_file",
    "demo_cache_path",
    "demo_size_from_env",
    "sweep",
]
