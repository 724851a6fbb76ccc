"""Whole-table scans of the input tables, shared by validation and the report, run concurrently.

Reading every session is the expensive part of a run, so each table is scanned once, by SQL that
aggregates inside SQLite, and the results serve every stage that needs them:

- ``session_profile``: the DISTINCT combinations of (channel, date, row ok?) over all sessions — a few
  hundred rows, where "row ok" means a valid time, 0/1 flags and ids present. Validation reads the
  dates and NULL channels off it and needs a counting query only when some row is not ok; the report
  takes its channel-days from it. DISTINCT keeps a tiny in-memory index, far cheaper than GROUP BY's
  sort of every row.
- ``cost_profile``: cost per channel-day, scanning the (fewer) cost rows and looking each session up;
  in threads, in ``COST_PARTS`` parts over the cost rows' rowid, one thread each, their fixed-point
  sums added (``_merged_costs``: the same rows as the one query, which the other modes run). It is the
  run's longest scan (0.75-0.9 s alone on the demo, 1.15-1.2 s beside the journeys), and its lookups
  of a session per cost row cannot be shared with the session profile's sequential pass (from that
  side, the GROUP BY sorts every session: 3 s); in two parts it takes 0.5 s alone. The command line
  keeps it one query in its child (``open_scans(fork=True)``): split there too (two children, same
  merge), a forced ``run`` was no faster on 2 cores, where the child is not on the critical path
  (demo: 1.28 against 1.27 s median wall, CPU 2.05 against 1.91 s; a 1.5M-session file 7.94 against
  7.65 s; bench/bench_forced_run.py, cpu-bench, 13 and 4 rounds);
- ``channel_days``: the DISTINCT (channel, date) of the sessions, all the report needs of the session
  profile (0.1 s against 0.3 s: no per-row checks); started instead of the session profile when
  validation is current (``REPORT_SCANS``: a forced run, or a report redone on unchanged inputs);
- ``cost_screen``: the cost rows, and how many of them are not a plain non-negative number with a
  session id (one cheap pass); only when some are does ``cost_checks`` count each problem.

Two scans run only on demand, in the thread that asks: ``cost_checks`` and ``without_earlier_sessions``
(conversions with no session of their user strictly before them). A run that already knows the latter
(the journeys query sees every converting user's sessions) hands it over with ``provide`` and it
never runs.

On a database file each eager scan gets its own read-only connection in its own thread; SQLite releases
Python's GIL while it works, so the scans overlap with the main thread. The command line does better
with ``open_scans(path, fork=True)``: the cost profile, the longest scan, in one child process with its
own SQLite and memory allocator (threads in one process contend there: +35% CPU for the same scans,
measured), which the CLI starts before it opens its own connection; the session profile and the cost
screen then run in the main process when validation asks for them, after the journeys. On a 2-core
machine a third process (the session profile in a child of its own) only made three share two cores:
1.32x the plain read against 1.15-1.17x (two interleaved cpu-bench runs of 7 and 9 rounds, real-shaped
demo), with less CPU too (1.47 s against 1.63 s). ``cancel`` interrupts scans that turn out not to be needed.
"""

from __future__ import annotations

import functools
import os
import pickle
import signal
import sqlite3
import sys
import threading
from contextlib import nullcontext
from typing import Callable, Optional, Union, cast

from .db import database_file, open_database
from .errors import InputError
from .mapped_pages import beyond_whole_map, random_reads
from .schema import channel_label
from .sums import MONEY_SCALE, sql_sum

# One boolean for what a session row can get wrong apart from its date, channel and id types (which
# are in the key themselves): a valid time, 0/1 flags. A row that fails shows up as a combination
# with row_ok = 0, a missing id as a type 'null'; validation then counts each problem with its own
# query (``row_ok``). The ids' NULL tests are left to their typeof: the same answer, 8% less CPU
# for the scan (0.167 s against 0.184 s, median of 7, real-shaped demo).
ROW_OK = """coalesce(
    time(event_time) IS event_time AND event_time < '24'
    AND holder_engagement IN (0, 1) AND closer_engagement IN (0, 1) AND impression_interaction IN (0, 1), 0)"""

SESSION_PROFILE_SQL = f"""
SELECT DISTINCT channel_name, event_date, {ROW_OK} AS row_ok, typeof(session_id), typeof(user_id)
FROM session_sources
"""
PROFILE_FIELDS = ["channel_name", "event_date", "row_ok", "session_id_type", "user_id_type"]

# Cost per channel-day. GROUP BY sorts every cost row, so the rows stay narrow (the validation counts
# in the same query made the sort 35% slower than their own pass below).
COST_PROFILE_SQL = f"""
SELECT s.channel_name, s.event_date, {sql_sum("sc.cost", MONEY_SCALE)}, count(*)
FROM session_costs sc JOIN session_sources s ON s.session_id = sc.session_id
GROUP BY 1, 2
"""

# A cost row is fine when it has a session id and is a number >= 0. "cost + 0 = cost" is false for
# text and blobs (arithmetic reads them as numbers, the comparison does not), NULL fails coalesce.
COST_SCREEN_SQL = """
SELECT count(*), total(NOT coalesce(session_id IS NOT NULL AND cost >= 0 AND cost + 0 = cost, 0)),
       group_concat(DISTINCT typeof(session_id))
FROM session_costs
"""

COST_CHECKS_SQL = """
SELECT count(*), coalesce(sum(session_id IS NULL), 0), coalesce(sum(cost IS NULL), 0),
       coalesce(sum(cost IS NOT NULL AND typeof(cost) NOT IN ('integer', 'real')), 0),
       coalesce(sum(cost < 0), 0)
FROM session_costs
"""
COST_CHECK_FIELDS = ["rows", "null_session_id", "null_cost", "cost_not_number", "negative_cost"]

# Conversions (with a user, of any date) with no session of their user strictly before them: no run
# can attribute them, whatever its window. ``at_all`` is 1 when the user has no session at all. A run
# gets the same rows from its journeys query (journeys.JOURNEYS_SQL) and need not scan for them.
WITHOUT_EARLIER_SESSIONS_SQL = """
WITH cu AS MATERIALIZED (SELECT DISTINCT user_id FROM conversions WHERE user_id IS NOT NULL),
     first AS MATERIALIZED (
        SELECT user_id, min(event_date || ' ' || event_time) AS ts
        FROM session_sources WHERE user_id IN cu GROUP BY user_id)
SELECT c.conv_id, f.user_id IS NULL AS at_all
FROM conversions c LEFT JOIN first f ON f.user_id = c.user_id
WHERE c.user_id IS NOT NULL AND (f.user_id IS NULL OR f.ts >= c.conv_date || ' ' || c.conv_time)
ORDER BY c.conv_id
"""

# The cost profile's part: the same lookups and GROUP BY on some of the cost rows (``{part}``: a
# condition on ``sc.rowid``), the fixed-point sum left in integer units so that parts add exactly.
COST_PART_SQL = f"""
SELECT s.channel_name, s.event_date, sum(CAST(round((sc.cost) * {MONEY_SCALE}) AS INTEGER)), count(*)
FROM session_costs sc JOIN session_sources s ON s.session_id = sc.session_id
WHERE {{part}}
GROUP BY 1, 2
"""
# The parts: rowids up to a cut, and every other row (``IS NOT TRUE``: also a NULL or text value of a
# user's own column named rowid), so that the parts hold every cost row once whatever the column holds.
COST_PARTS = ("sc.rowid <= ?", "(sc.rowid <= ?) IS NOT TRUE")
SPLIT_FROM_ROWS = 20_000  # fewer cost rows (by rowid span): one query, threads would cost more than they save

# The channel-days of the sessions: what the report needs of the session profile.
CHANNEL_DAYS_SQL = "SELECT DISTINCT channel_name, event_date FROM session_sources"

SCANS = {  # started at once
    "session_profile": SESSION_PROFILE_SQL,
    "cost_profile": COST_PROFILE_SQL,
    "cost_screen": COST_SCREEN_SQL,
}
ON_DEMAND = {  # run when first asked for, unless provided
    "cost_checks": COST_CHECKS_SQL,
    "without_earlier_sessions": WITHOUT_EARLIER_SESSIONS_SQL,
}
ALL_SCANS = {**SCANS, **ON_DEMAND, "channel_days": CHANNEL_DAYS_SQL}
# What the report reads (validation current: nothing else is needed); started at once in its place.
REPORT_SCANS = ("channel_days", "cost_profile")
# With fork=True: the scans run in child processes, one per group; the others in the main process on
# first use. One child: the main process is busy for about as long (fingerprints, journeys, model,
# then the session profile) as the cost profile takes in the child (module doc).
FORK_GROUPS = (("cost_profile",),)
# A file beyond the whole map (``mapped_pages.beyond_whole_map``: over 256 MiB; the demo, 145 MB, runs
# faster with one child, 0.98x against 1.20x the read) keeps the session profile and cost screen in a
# second child: after the journeys, in the main process, they made the 30× linear run 72 s against
# 60.8-67.4 s (CPU 121 s against 94-106 s, cpu-bench).
LARGE_FILE_GROUPS = (("session_profile", "cost_screen"), ("cost_profile",))


class ScanCancelled(Exception):
    pass


class InputScans:
    """The scans of one database, started at once (threads) or computed on demand (in memory)."""

    def __init__(
        self,
        results: dict[str, Callable[[], list]],
        cancel: Callable[[], None] = lambda: None,
        started: tuple[str, ...] = (),
    ):
        self._results = results
        self._cancel = cancel
        self._started = frozenset(started)  # the scans started at once (the others run on demand)
        self._cache: dict[str, list] = {}
        self._computed: set[str] = set()  # the scans this object ran (not provided)

    @classmethod
    def _in_memory(cls, con: sqlite3.Connection) -> "InputScans":
        """Every scan on demand, on ``con`` itself (a database without a file)."""
        results: dict[str, Callable[[], list]] = {
            name: functools.partial(_fetch_all, con, sql) for name, sql in ALL_SCANS.items()
        }
        return cls(results)

    @classmethod
    def on_demand(cls, con: sqlite3.Connection) -> "InputScans":
        """Every scan on demand, in the asking thread (none started): for a run that has the eager
        scans' results already (``scan_store``) and may need the others."""
        path = database_file(con)
        return cls._in_memory(con) if path is None else cls(_on_demand(path, tuple(ALL_SCANS)))

    @classmethod
    def _threaded(cls, path: str, names: tuple[str, ...], cut: Optional[int] = None) -> "InputScans":
        """The scans ``names`` started at once, each in a thread on a read-only connection of its own;
        the cost profile in ``COST_PARTS`` threads split at rowid ``cut`` (None: one query)."""
        from concurrent.futures import ThreadPoolExecutor  # only here: the command line forks instead

        jobs: dict[str, tuple[str, tuple]] = {}
        for name in names:  # the cost profile first: the longest
            if name == "cost_profile" and cut is not None:
                jobs.update(
                    {f"cost_profile/{i}": (COST_PART_SQL.format(part=p), (cut,)) for i, p in enumerate(COST_PARTS)}
                )
            else:
                jobs[name] = (ALL_SCANS[name], ())
        pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="scan")
        readers: list[sqlite3.Connection] = []
        lock = threading.Lock()
        cancelled = threading.Event()

        def run(sql: str, params: tuple) -> list:
            if cancelled.is_set():
                raise ScanCancelled()
            reader = open_database(path)
            with lock:
                readers.append(reader)
            try:
                return _rows(reader, sql, params)
            except sqlite3.OperationalError:
                if cancelled.is_set():
                    raise ScanCancelled() from None
                raise
            finally:
                reader.close()

        futures = {job: pool.submit(run, sql, params) for job, (sql, params) in jobs.items()}
        pool.shutdown(wait=False)

        def cancel() -> None:
            cancelled.set()
            with lock:
                for reader in readers:
                    try:
                        reader.interrupt()
                    except sqlite3.ProgrammingError:  # already closed
                        pass

        results = _on_demand(path, [n for n in ALL_SCANS if n not in names])
        results.update({name: futures[name].result for name in names if name in futures})
        if "cost_profile" in names and cut is not None:
            parts = [futures[f"cost_profile/{i}"] for i in range(len(COST_PARTS))]
            results["cost_profile"] = lambda: _merged_costs([f.result() for f in parts])
        return cls(results, cancel, names)

    @classmethod
    def _forked(cls, path: str, groups=FORK_GROUPS) -> "InputScans":
        """The scans of ``groups`` in child processes, one per group; the others in this process on
        first use (see ``open_scans``)."""
        children = [_Child.start(path, names) for names in groups]
        by_name = {name: child for child in children for name in child.names}

        def cancel() -> None:
            for child in children:
                child.kill()

        results = _on_demand(path, [n for n in ALL_SCANS if n not in by_name])
        results.update({name: (lambda n=name: by_name[n].result(n)) for name in by_name})
        return cls(results, cancel, tuple(by_name))

    def cancel(self) -> None:
        """Stop scans still running (their results will not be needed)."""
        self._cancel()

    def provide(self, name: str, rows: list) -> None:
        """The result of scan ``name``, known otherwise (an on-demand scan then never runs)."""
        self._cache[name] = rows

    def _get(self, name: str) -> list:
        if name not in self._cache:
            self._cache[name] = self._results[name]()
            self._computed.add(name)
        return self._cache[name]

    def wait(self) -> None:
        """Wait for the scans started at once to finish reading (their results are kept)."""
        for name in sorted(self._started):
            self._get(name)

    def computed(self) -> dict[str, list]:
        """{name: rows} of the scans this object ran and finished (not those provided)."""
        return {name: self._cache[name] for name in self._computed}

    # ---- results -------------------------------------------------------------------------------
    def session_profile(self) -> list[dict]:
        return [dict(zip(PROFILE_FIELDS, row)) for row in self._get("session_profile")]

    def session_rows_ok(self) -> bool:
        """Every session has a valid time, 0/1 flags and both ids (else validation counts each problem)."""
        return all(
            row_ok and "null" not in (sid_type, uid_type)
            for _, _, row_ok, sid_type, uid_type in self._get("session_profile")
        )

    def channel_days(self) -> set[tuple[str, str]]:
        """Off the session profile when it is at hand or started, else off the cheaper channel-days
        scan when that is (run on demand: the session profile, which validation reads too)."""
        have = self._cache.keys() | self._started
        name = "channel_days" if "channel_days" in have and "session_profile" not in have else "session_profile"
        return {(channel_label(row[0]), row[1]) for row in self._get(name)}

    def channel_day_costs(self) -> dict[tuple[str, str], float]:
        costs: dict[tuple[str, str], float] = {}
        for channel, day, cost, _ in self._get("cost_profile"):
            key = (channel_label(channel), day)
            costs[key] = costs.get(key, 0.0) + cost
        return costs

    def matched_cost_rows(self) -> int:
        return sum(row[3] for row in self._get("cost_profile"))

    def cost_checks(self) -> dict[str, int]:
        rows, suspicious, _ = self._get("cost_screen")[0]
        if not suspicious:
            return dict.fromkeys(COST_CHECK_FIELDS, 0) | {"rows": rows}
        return dict(zip(COST_CHECK_FIELDS, self._get("cost_checks")[0]))

    def cost_id_types(self) -> set[str]:
        """The storage types of session_costs.session_id (NULL aside): {'text'}, {'integer'}, ..."""
        types = self._get("cost_screen")[0][2]
        return set(types.split(",")) - {"null"} if types else set()

    def without_earlier_sessions(self) -> list[tuple]:
        """(conv_id, user has no session at all) of the conversions no run can attribute."""
        return [(row[0], bool(row[1])) for row in self._get("without_earlier_sessions")]


def _on_demand(path: str, names=tuple(ON_DEMAND)) -> dict[str, Callable[[], list]]:
    """Scans run in the asking thread, each on a read-only connection of its own."""

    def here(sql: str) -> list:
        con = open_database(path)
        try:
            # temp b-trees past the cache go to a file: on demand, these scans group every converting
            # user (a streamed run's, ~350 MB in RAM on 400k conversions); a demo's fit in the cache
            con.execute("PRAGMA temp_store = 0")
            return _rows(con, sql)
        finally:
            con.close()

    return {name: functools.partial(here, ALL_SCANS[name]) for name in names}


def open_scans(
    source: Union[sqlite3.Connection, str, os.PathLike], *, fork: bool = False, names: tuple[str, ...] = tuple(SCANS)
) -> InputScans:
    """The one way to start the scans (this module imports only the standard library, so the CLI can
    start SQLite reading before Python loads numpy).

    ``source`` a connection: the eager scans start in threads, each on a read-only connection of its
    own (for a database without a file, every scan runs on demand on ``con``). ``fork``: ``source`` is
    a path, and the scans of ``FORK_GROUPS`` (``LARGE_FILE_GROUPS`` for a file ``beyond_whole_map``)
    run in child processes, one per group (the others on demand in this process); only for a single-threaded
    process that holds no SQLite connection to the file (see ``can_fork``): a child inherits the
    parent's memory, including SQLite's bookkeeping of locks. ``names``: the scans threads start at
    once (``SCANS``, or ``REPORT_SCANS`` when validation is current); the others run on demand. The
    structure is not checked here (``validate.start_scans`` does that)."""
    if fork:
        path = os.fspath(cast(Union[str, os.PathLike], source))
        return InputScans._forked(path, LARGE_FILE_GROUPS if beyond_whole_map(path) else FORK_GROUPS)
    assert isinstance(source, sqlite3.Connection), "a connection, or a path with fork=True"
    path = database_file(source)
    if path is None:
        return InputScans._in_memory(source)
    return InputScans._threaded(path, names, _cost_cut(source) if "cost_profile" in names else None)


def _cost_cut(con: sqlite3.Connection) -> Optional[int]:
    """The rowid that splits the cost rows in two for the cost profile's parts; None: one query (few
    rows, or a table without an integer rowid: a VIEW, WITHOUT ROWID, an input error)."""
    try:
        low, high = con.execute("SELECT min(rowid), max(rowid) FROM session_costs").fetchone()
    except sqlite3.Error:
        return None
    if not (isinstance(low, int) and isinstance(high, int)) or high - low < SPLIT_FROM_ROWS:
        return None
    return (low + high) // 2


def _merged_costs(parts: list[list]) -> list:
    """The cost profile's rows from its parts' (``COST_PART_SQL``): grouped and divided by SQLite as
    the one query does, so the rows are the same to the last bit (the units are integers, their sum
    does not depend on the parts)."""
    mem = sqlite3.connect(":memory:")
    try:
        mem.execute("CREATE TABLE part (channel, day, units, n)")  # no affinity: values stay as read
        mem.executemany("INSERT INTO part VALUES (?, ?, ?, ?)", [row for rows in parts for row in rows])
        return mem.execute(
            f"SELECT channel, day, coalesce(sum(units), 0) / {float(MONEY_SCALE)!r}, sum(n) FROM part GROUP BY 1, 2"
        ).fetchall()
    finally:
        mem.close()


def _rows(con: sqlite3.Connection, sql: str, params: tuple = ()) -> list:
    """The rows of scan ``sql``; the cost scan's lookups (one session per cost row, all over the file)
    read unmapped when the map's pages are released (``mapped_pages.random_reads``)."""
    costly = sql == COST_PROFILE_SQL or sql.startswith(COST_PART_SQL[:60])
    with random_reads(con) if costly else nullcontext():
        return con.execute(sql, params).fetchall()


def _fetch_all(con: sqlite3.Connection, sql: str) -> list:
    return con.execute(sql).fetchall()


def can_fork() -> bool:
    """Child processes are safe here: Linux (fork), and no other thread in this process."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and threading.active_count() == 1


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int) -> None:
    """In a forked child: the kernel kills it (SIGKILL) when its parent dies, even by kill -9, so a
    killed run leaves no scan reading on. Linux only (prctl through ctypes); the check of the parent
    closes the race of a parent that died before the call."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


class _Child:
    """One child process running some scans and sending their rows back through a pipe."""

    def __init__(self, pid: int, fd: int, names):
        self.pid, self.fd, self.names = pid, fd, tuple(names)
        self.rows: Optional[dict] = None

    @classmethod
    def start(cls, path: str, names) -> "_Child":
        read_fd, write_fd = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: run the scans, send the rows, leave without running any cleanup
            code, payload = 0, None  # type: tuple[int, object]
            try:
                _die_with_parent(parent)
                os.close(read_fd)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                con = open_database(path)
                payload = ("ok", {name: _rows(con, ALL_SCANS[name]) for name in names})
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                payload, code = ("error", type(exc).__name__, str(exc)), 1
            try:
                with os.fdopen(write_fd, "wb") as out:
                    pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
            finally:
                os._exit(code)
        os.close(write_fd)
        return cls(pid, read_fd, names)

    def result(self, name: str) -> list:
        if self.rows is None:
            with os.fdopen(self.fd, "rb") as pipe:
                data = pipe.read()
            os.waitpid(self.pid, 0)
            self.pid = 0
            if not data:
                raise ScanCancelled()
            payload = pickle.loads(data)
            if payload[0] == "error":
                kind, message = payload[1], payload[2]
                if kind == "InputError":
                    raise InputError(message)
                raise sqlite3.DatabaseError(f"{message} ({kind} while scanning)")
            self.rows = payload[1]
        return self.rows[name]

    def kill(self) -> None:
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = 0
            try:
                os.close(self.fd)
            except OSError:
                pass
