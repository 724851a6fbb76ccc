"""Whole-table scans of the input tables, shared by validation and the report, run concurrently.

Reading every session is the expensive part of a run, so each table is scanned once, by SQL that
aggregates inside SQLite, and the results serve every stage that needs them:

- ``session_profile``: the DISTINCT combinations of (channel, date, the three flags, whether the time
  is valid, whether ids are NULL) over all sessions — a few hundred rows. Validation reads the dates,
  flags and NULLs off it (exact: any invalid value shows up as its own combination) and needs a slower
  counting query only when something is wrong; the report takes its channel-days from it. DISTINCT
  keeps a tiny in-memory index, far cheaper than GROUP BY's sort of every row.
- ``cost_profile``: cost per channel-day, scanning the (fewer) cost rows and looking each session up;
- ``cost_checks``: the cost table's validation counts (one cheap pass);
- ``users_without_sessions``: conversions whose user has no session at all.

On a database file each scan gets its own read-only connection in its own thread; SQLite releases
Python's GIL while it works, so the scans use both cores and overlap with the main thread. ``cancel``
interrupts scans that turn out not to be needed.
"""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from .schema import NO_CHANNEL

SESSION_PROFILE_SQL = """
SELECT DISTINCT channel_name, event_date, holder_engagement, closer_engagement, impression_interaction,
       (time(event_time, '+0 seconds') IS event_time AND event_time IS NOT NULL) AS time_ok,
       session_id IS NULL AS null_id, user_id IS NULL AS null_user
FROM session_sources
"""
PROFILE_FIELDS = ["channel_name", "event_date", "holder_engagement", "closer_engagement",
                  "impression_interaction", "time_ok", "null_id", "null_user"]

# Cost per channel-day. GROUP BY sorts every cost row, so the rows stay narrow (the validation counts
# in the same query made the sort 35% slower than their own pass below).
COST_PROFILE_SQL = """
SELECT s.channel_name, s.event_date, total(sc.cost), count(*)
FROM session_costs sc JOIN session_sources s ON s.session_id = sc.session_id
GROUP BY 1, 2
"""

COST_CHECKS_SQL = """
SELECT count(*), coalesce(sum(session_id IS NULL), 0), coalesce(sum(cost IS NULL), 0),
       coalesce(sum(cost IS NOT NULL AND typeof(cost) NOT IN ('integer', 'real')), 0),
       coalesce(sum(cost < 0), 0)
FROM session_costs
"""

USERS_WITHOUT_SESSIONS_SQL = """
WITH cu AS MATERIALIZED (SELECT DISTINCT user_id FROM conversions WHERE user_id IS NOT NULL),
     seen AS MATERIALIZED (SELECT DISTINCT user_id FROM session_sources WHERE user_id IN cu)
SELECT conv_id FROM conversions WHERE user_id IS NOT NULL AND user_id NOT IN seen
"""

SCANS = {
    "session_profile": SESSION_PROFILE_SQL,
    "cost_profile": COST_PROFILE_SQL,
    "cost_checks": COST_CHECKS_SQL,
    "users_without_sessions": USERS_WITHOUT_SESSIONS_SQL,
}


class ScanCancelled(Exception):
    pass


class InputScans:
    """The scans of one database, started at once (threads) or computed on demand (in memory)."""

    def __init__(self, results: dict[str, Callable[[], list]], cancel: Callable[[], None] = lambda: None):
        self._results = results
        self._cancel = cancel
        self._cache: dict[str, list] = {}

    @classmethod
    def start(cls, con: sqlite3.Connection) -> "InputScans":
        from .db import database_file

        path = database_file(con)
        if path is None:
            return cls({name: (lambda sql=sql: con.execute(sql).fetchall()) for name, sql in SCANS.items()})
        return cls._threaded(path)

    @classmethod
    def _threaded(cls, path: str) -> "InputScans":
        from .db import open_database

        pool = ThreadPoolExecutor(max_workers=len(SCANS), thread_name_prefix="scan")
        readers: list[sqlite3.Connection] = []
        lock = threading.Lock()
        cancelled = threading.Event()

        def run(sql: str) -> list:
            if cancelled.is_set():
                raise ScanCancelled()
            reader = open_database(path)
            with lock:
                readers.append(reader)
            try:
                return reader.execute(sql).fetchall()
            except sqlite3.OperationalError:
                if cancelled.is_set():
                    raise ScanCancelled() from None
                raise
            finally:
                reader.close()

        futures: dict[str, Future] = {name: pool.submit(run, sql) for name, sql in SCANS.items()}
        pool.shutdown(wait=False)

        def cancel() -> None:
            cancelled.set()
            with lock:
                for reader in readers:
                    try:
                        reader.interrupt()
                    except sqlite3.ProgrammingError:  # already closed
                        pass

        return cls({name: f.result for name, f in futures.items()}, cancel)

    def cancel(self) -> None:
        """Stop scans still running (their results will not be needed)."""
        self._cancel()

    def _get(self, name: str) -> list:
        if name not in self._cache:
            self._cache[name] = self._results[name]()
        return self._cache[name]

    # ---- results -------------------------------------------------------------------------------
    def session_profile(self) -> list[dict]:
        return [dict(zip(PROFILE_FIELDS, row)) for row in self._get("session_profile")]

    def channel_days(self) -> set[tuple[str, str]]:
        return {(row[0] if row[0] is not None else NO_CHANNEL, row[1]) for row in self._get("session_profile")}

    def channel_day_costs(self) -> dict[tuple[str, str], float]:
        costs: dict[tuple[str, str], float] = {}
        for channel, day, cost, _ in self._get("cost_profile"):
            key = (channel if channel is not None else NO_CHANNEL, day)
            costs[key] = costs.get(key, 0.0) + cost
        return costs

    def matched_cost_rows(self) -> int:
        return sum(row[3] for row in self._get("cost_profile"))

    def cost_checks(self) -> dict[str, int]:
        names = ["rows", "null_session_id", "null_cost", "cost_not_number", "negative_cost"]
        return dict(zip(names, self._get("cost_checks")[0]))

    def users_without_sessions(self) -> list[str]:
        return [row[0] for row in self._get("users_without_sessions")]


def start_scans(con: sqlite3.Connection) -> InputScans:
    """Check the tables and columns exist (InputError otherwise), then start the scans. Importing
    only the standard library, so the CLI can start SQLite reading before Python loads numpy."""
    from .validate import check_structure

    check_structure(con).raise_if_fatal()
    return InputScans.start(con)
