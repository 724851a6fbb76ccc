"""Journeys in batches of whole journeys: build, attribute and store them with memory bounded by the
batch size, not by the database.

A journey row costs ≈0.75 KB in Python (the query's tuple, its strings, the numpy columns, the
model's arrays, the rows handed to SQLite), so 2M conversions over 20M sessions do not fit a
machine whole. ``read_journeys`` reads the journeys query (``journeys.JOURNEYS_SQL``, ordered by
conversion) ``batch_rows()`` rows at a time and cuts after the last complete conversion: a journey
never straddles two batches, so every per-journey model gives exactly what it gives on all journeys
at once. Markov and Shapley fit once, on the database's path summary (``path_summary.path_summary``,
the same fit as on the journeys), and credit each batch with the fitted channel shares.

A database whose journeys fit in one batch (the demo: 3,740 rows; 10×: ~37k) is read in one go and
handled as before, in memory (``read_journeys`` returns ``journeys.Journeys``); a larger one gives a
``JourneyStream``, which ``save_stream`` writes batch by batch and ``attribute_in_batches`` reads
back from ``pipeline_journeys`` batch by batch. While streaming:

- the journeys query runs on the run's own connection with SQLite's temp store on disk (its ORDER BY
  sorts every pair; with temp b-trees in RAM that sort would hold the database's journeys in memory),
  so that its reads never hold a lock against the run's writes;
- the transaction's changed pages may spill to the file (``spilling``): kept in RAM until the commit,
  they would be ≈1 KB per journey row again. A spill takes the exclusive lock, so the run's own
  scans must have finished first (the runner waits for them).

What is still proportional to the database: SQLite's own page cache (64 MiB) and memory map (at most
``db.MMAP_BYTES``, file pages the system can drop), and the small per-run results (channel-days,
distinct paths).
"""

from __future__ import annotations

import os
import sqlite3
from bisect import bisect_right
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Union

import numpy as np

from . import journeys as jr
from .journey_index import JourneyIndex
from .progress import Progress, ensure
from .store import store_credits
from .window import Window

if TYPE_CHECKING:
    from .model_choice import ModelChoice
    from .scans import InputScans

BATCH_ENV = "ATTRIBUTION_JOURNEY_BATCH_ROWS"
MAX_BATCH_ROWS = 2**31 - 1  # (sqlite3's fetchmany takes a C int)
DEFAULT_BATCH_ROWS = 100_000  # journey rows per batch: ≈75 MB in Python; the 10× demo has ~37k
TEMP_STORE_DEFAULT = 0  # PRAGMA temp_store: temp b-trees in RAM up to the cache size, then in a file

ALL = object()  # ``_OrderedKeys.upto(ALL)``: every row that is left

STORED_SQL = (
    "SELECT conversion_id, session_id, timestamp, channel_label, holder_engagement,"
    " closer_engagement, impression_interaction FROM pipeline_journeys"
    " ORDER BY conversion_id, timestamp, session_id"
)
STORED_CONVERSIONS_SQL = "SELECT conversion_id, sessions FROM pipeline_journey_conversions ORDER BY conversion_id"


def batch_rows() -> int:
    """Journey rows per batch (``ATTRIBUTION_JOURNEY_BATCH_ROWS``, default 100,000; at most 2**31 - 1)."""
    try:
        return min(max(1, int(os.environ.get(BATCH_ENV, DEFAULT_BATCH_ROWS))), MAX_BATCH_ROWS)
    except ValueError:
        return DEFAULT_BATCH_ROWS


def streamed(journeys_record) -> bool:
    """The stored journeys (their stage record) are too many for one batch: read them in batches."""
    return journeys_record is not None and int(journeys_record.summary.get("sessions", 0)) > batch_rows()


# ---- whole groups of ordered rows ----------------------------------------------------------------


class _WholeGroups:
    """A cursor's rows, ordered by their first column, in lists of at least ``size`` rows (the last
    may have fewer) that end at a change of the first column."""

    def __init__(self, cursor: sqlite3.Cursor, size: int):
        self.cursor, self.size, self.done = cursor, size, False
        self._carry: list = []

    def __iter__(self) -> Iterator[list]:
        # (what is yielded is popped from a list, so that this frame holds no batch while the
        # consumer works on it: a batch's rows are freed as soon as the consumer drops them)
        out: list = []
        while not self.done:
            chunk = self.cursor.fetchmany(self.size)
            self.done = len(chunk) < self.size
            rows = self._carry + chunk if self._carry else chunk
            del chunk
            if self.done:
                self._carry = []
                if rows:
                    out.append(rows)
                    del rows
                    yield out.pop()
                return
            cut = len(rows)
            last = rows[-1][0]
            while cut and rows[cut - 1][0] == last:  # back over the last group (one journey)
                cut -= 1
            self._carry = rows[cut:]
            if cut:
                out.append(rows[:cut])
                del rows
                yield out.pop()


class _OrderedKeys:
    """Rows of a cursor ordered by their first column, handed out up to a key."""

    def __init__(self, cursor: sqlite3.Cursor, size: int):
        self.cursor, self.size = cursor, min(size, 10_000)
        self._rows: list = []
        self._done = False

    def upto(self, last) -> list:
        """The rows whose key is ≤ ``last`` (``ALL``: all that are left)."""
        while not self._done and (last is ALL or not self._rows or self._rows[-1][0] <= last):
            chunk = self.cursor.fetchmany(self.size)
            self._done = len(chunk) < self.size
            self._rows += chunk
        cut = len(self._rows) if last is ALL else bisect_right([r[0] for r in self._rows], last)
        taken, self._rows = self._rows[:cut], self._rows[cut:]
        return taken


# ---- building --------------------------------------------------------------------------------------


class JourneyStream:
    """The journeys of a window, more than one batch of them: iterate for ``journeys.Journeys`` of whole
    journeys in conversion order (once). ``close`` when done (the runner's stages do)."""

    def __init__(
        self, con: sqlite3.Connection, window: Window, groups: _WholeGroups, keys: _OrderedKeys, first, temp_store
    ):
        self.con, self.window, self._groups, self._keys = con, window, groups, keys
        self._first: Optional[list] = first
        self._temp_store = temp_store  # the connection's setting before the journeys query

    def __iter__(self) -> Iterator[jr.Journeys]:
        try:
            pending = [self._first] if self._first is not None else []
            self._first = None
            groups = iter(self._groups)
            while True:  # (no batch's rows stay referenced here while the consumer works)
                if not pending:
                    rows = next(groups, None)
                    if rows is None:
                        return
                    pending.append(rows)
                    del rows
                yield self._batch(pending.pop())
        finally:
            self.close()

    def _batch(self, rows: list) -> jr.Journeys:
        """(The last batch takes every conversion left: those after its last row have no session.)"""
        ids = [r[0] for r in self._keys.upto(ALL if self._groups.done else rows[-1][0])]
        return jr.journeys_from_rows(rows, np.array(ids, dtype=object), self.window)

    def close(self) -> None:
        self._groups.cursor.close()
        self._keys.cursor.close()
        _restore_temp_store(self.con, self._temp_store)


def read_journeys(
    con: sqlite3.Connection, window: Window = Window(), progress: Optional[Progress] = None, rows: Optional[int] = None
) -> Union[jr.Journeys, JourneyStream]:
    """The journeys of ``window``: all of them (``Journeys``) when they fit one batch of ``rows``
    (default ``batch_rows()``), else a ``JourneyStream`` of batches (reads only)."""
    progress = ensure(progress)
    size = rows or batch_rows()
    progress(0, 2, "journeys: selecting sessions strictly before each conversion")
    params = window.sql_params()
    temp_store = _temp_store_on_disk(con)
    try:
        groups = _WholeGroups(con.execute(jr.JOURNEYS_SQL, params), size)
        keys = _OrderedKeys(con.execute(jr.CONVERSIONS_SQL, params), size)
        first = next(iter(groups), None)
    except BaseException:
        _restore_temp_store(con, temp_store)
        raise
    if groups.done:
        groups.cursor.close()
        ids = [r[0] for r in keys.upto(ALL)]
        keys.cursor.close()
        _restore_temp_store(con, temp_store)
        journeys = jr.journeys_from_rows(first or [], np.array(ids, dtype=object), window)
        progress(2, 2, f"journeys: {len(journeys.columns['ts']):,} sessions in {len(ids):,} conversions")
        return journeys
    progress(1, 2, f"journeys: more than {size:,} sessions, in batches")
    return JourneyStream(con, window, groups, keys, first, temp_store)


def _temp_store_on_disk(con: sqlite3.Connection) -> Optional[int]:
    """SQLite's default temp store (a sort larger than the cache spills to a file) while the journeys
    query runs; returns the setting before (None: unchanged, inside a transaction SQLite refuses)."""
    if con.in_transaction:
        return None
    (before,) = con.execute("PRAGMA temp_store").fetchone()
    con.execute(f"PRAGMA temp_store = {TEMP_STORE_DEFAULT}")
    return int(before)


def _restore_temp_store(con: sqlite3.Connection, before: Optional[int]) -> None:
    """(Inside a transaction the setting stays on disk for this connection: slower sorts, never wrong.)"""
    if before is not None and before != TEMP_STORE_DEFAULT and not con.in_transaction:
        con.execute(f"PRAGMA temp_store = {before}")


# ---- storing ---------------------------------------------------------------------------------------


@contextmanager
def spilling(con: sqlite3.Connection) -> Iterator[None]:
    """Inside: the transaction's changed pages may be written to the file before the commit (kept
    in RAM, they would grow with the database); the setting it had is restored after."""
    (before,) = con.execute("PRAGMA cache_spill").fetchone()
    con.execute("PRAGMA cache_spill = ON")
    try:
        yield
    finally:
        con.execute(f"PRAGMA cache_spill = {'ON' if before else 'OFF'}")


def save_stream(con: sqlite3.Connection, stream: JourneyStream, progress: Optional[Progress] = None) -> dict:
    """Replace the stored journeys set by ``stream``'s batches (inside the caller's transaction);
    returns the set's summary (``Journeys.summary`` of all batches together)."""
    progress = ensure(progress)
    totals = {"conversions": 0, "with_sessions": 0, "without_sessions": 0, "sessions": 0, "max_length": 0}
    first_dates = []
    with spilling(con):
        jr.clear_journeys(con)
        for journeys in stream:
            jr.append_journeys(con, journeys)
            part = journeys.summary()
            for key in totals:
                totals[key] = max(totals[key], part[key]) if key == "max_length" else totals[key] + part[key]
            if part["first_session_date"] is not None:
                first_dates.append(part["first_session_date"])
            progress(1, 2, f"journeys: {totals['sessions']:,} sessions in {totals['conversions']:,} conversions")
            del journeys  # (not alive while the next batch is read)
    (distinct,) = con.execute("SELECT count(DISTINCT session_id) FROM pipeline_journeys").fetchone()
    progress(2, 2, f"journeys: {totals['sessions']:,} sessions in {totals['conversions']:,} conversions")
    keys = ["conversions", "with_sessions", "without_sessions", "sessions"]
    return {
        **{k: totals[k] for k in keys},
        "distinct_sessions": int(distinct),
        "max_length": totals["max_length"],
        "first_session_date": min(first_dates) if first_dates else None,
    }


def stored_batches(con: sqlite3.Connection, window: Window, rows: Optional[int] = None) -> Iterator[jr.Journeys]:
    """The stored journeys set (``pipeline_journeys``), in batches of whole journeys."""
    size = rows or batch_rows()
    groups_cursor, keys_cursor = con.execute(STORED_SQL), con.execute(STORED_CONVERSIONS_SQL)
    try:
        groups, keys = _WholeGroups(groups_cursor, size), _OrderedKeys(keys_cursor, size)
        out: list = []  # (popped when yielded: this frame holds no batch while the consumer works)
        for batch in groups:
            conv = keys.upto(ALL if groups.done else batch[-1][0])
            out.append(_stored(batch, conv, window))
            del batch, conv
            yield out.pop()
        rest = keys.upto(ALL)  # conversions after the last journey row (0 sessions)
        if rest:
            yield _stored([], rest, window)
    finally:
        groups_cursor.close()
        keys_cursor.close()


def _stored(rows: list, conversions: list, window: Window) -> jr.Journeys:
    ids, counts = jr.object_columns(conversions, 2)
    columns = jr.journey_columns(jr.object_columns(rows, len(jr.ROW_COLUMNS)))
    return jr.Journeys(columns, ids, counts.astype(np.int64), window)


# ---- attributing -----------------------------------------------------------------------------------


def attribute_in_batches(
    con: sqlite3.Connection,
    choice: "ModelChoice",
    window: Window,
    run_id: str,
    no_session_reason: str,
    credit_columns: Callable[[jr.Journeys], dict],
    progress: Optional[Progress] = None,
) -> tuple[int, int, dict]:
    """Attribute the stored journeys with a local model and store the credit, batch by batch (inside
    the caller's transaction). ``credit_columns``: a batch's credit columns with a per-journey model
    (``runner.credit_columns``); Markov and Shapley fit once here instead. Returns (rows written,
    conversions attributed, {reason: count})."""
    progress = ensure(progress)
    model = choice.model
    assert model is not None, "a local model"
    shares = _fitted_shares(con, choice, window, progress) if model.needs_non_converting else None
    n = attributed = done = 0
    (total,) = con.execute("SELECT count(*) FROM pipeline_journey_conversions").fetchone()
    reasons: dict[str, int] = {}
    with spilling(con):
        for journeys in stored_batches(con, window):
            unattributed = [(c, no_session_reason) for c in journeys.without_sessions.tolist()]
            if unattributed:
                reasons[no_session_reason] = reasons.get(no_session_reason, 0) + len(unattributed)
            if shares is None:
                columns = credit_columns(journeys)
            else:
                columns = _share_columns(journeys.index, *shares)
            store_credits(
                con,
                columns,
                journeys.conversion_ids.tolist(),
                model=choice.name,
                run_id=run_id,
                unattributed=unattributed,
            )
            n += len(columns["ihc"])
            attributed += len(np.unique(columns["conversion_id"])) if len(columns["ihc"]) else 0
            done += len(journeys.conversion_ids)
            progress(done, max(total, 1), f"attribute: {done:,} conversions with {choice.name}")
            del journeys, columns, unattributed  # (not alive while the next batch is read)
    return n, attributed, reasons


def _fitted_shares(con, choice: "ModelChoice", window: Window, progress: Progress) -> tuple[np.ndarray, np.ndarray]:
    """(channel labels, shares) of Markov or Shapley fitted once on the window's path summary (the
    converting journeys and the paths that did not convert), as ``models.markov``/``shapley`` fit."""
    from .models.markov import fit_markov
    from .models.shapley import fit_shapley
    from .path_summary import path_summary

    model = choice.model
    assert model is not None
    params = model.resolve_params(choice.params)
    paths = path_summary(con, window, progress).channel_paths()
    if model.name == "markov":
        share = fit_markov(paths, params["order"], params["collapse_repeats"], progress).share
    elif model.name == "shapley":
        share = fit_shapley(paths, params["max_coalition_size"], params["worth"]).share
    else:
        raise AssertionError(f"no batched fit for model {model.name!r}")
    return np.asarray(paths.labels, dtype=object), np.asarray(share, dtype=np.float64)


def _share_columns(index: JourneyIndex, labels: np.ndarray, shares: np.ndarray) -> dict:
    """A batch's credit from fitted channel shares (``channel_paths.credit_by_channel_share``)."""
    import pandas as pd

    from .journey_index import PHASES
    from .models.channel_paths import channel_paths, credit_by_channel_share

    paths = channel_paths(index, None)
    batch_shares = np.zeros(paths.n_channels)
    at = pd.Index(labels).get_indexer(pd.Index(paths.labels))
    batch_shares[at >= 0] = shares[at[at >= 0]]
    ihc = credit_by_channel_share(index, paths.converting, batch_shares, paths.n_channels)
    n = index.n_rows
    return {
        "conversion_id": index.column("conversion_id"),
        "session_id": index.column("session_id"),
        **{p: np.full(n, np.nan) for p in PHASES},
        "ihc": np.asarray(ihc, dtype=np.float64),
    }


def finish_scans(scans: Optional["InputScans"]) -> None:
    """Wait for the run's whole-table scans to finish reading (their results are kept): a streamed
    run's transaction may spill to the file, which takes the exclusive lock their reads hold off."""
    if scans is not None:
        scans.wait()  # those started at once, and those the report reads next
        scans.channel_days()
        scans.channel_day_costs()
