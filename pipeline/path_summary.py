"""Path summaries computed by the database: one row per distinct channel path of the users who did not
convert, with how many paths took it (``PathSummary``, what Markov and Shapley fit on).

The paths are exactly those of ``journeys.build_non_converting`` (docs/models.md): per user with no
conversion in the window, the sessions dated in the window, with ``lookback_days`` only those within
that many days before the user's last such session, in time order with ties broken by session_id.
Instead of bringing every session into Python (4.5M rows on the 10× demo), SQLite groups them by user
in one sort and returns only distinct paths.

How a path is written in SQL, whatever characters a channel name holds: each channel as ``hex()`` of
its text (digits and A-F only), joined with ','. SQLite before 3.44 cannot order a GROUP_CONCAT, and a
window function per session is 3-6× slower here, so the order is never taken from GROUP_CONCAT:
per user, one GROUP BY (one sort) concatenates the sessions as 'timestamp hex(session_id).hex(channel)'
elements in whatever order, and the order is rebuilt from the elements themselves (the timestamp has
a fixed width and hex keeps the byte order, so comparing elements compares (time, session_id)):
- one session (78% of the users on the 10× demo): the path is its channel;
- two sessions (17%): ``min``/``max`` of the two elements order them, and the lookback compares
  their two timestamps, in SQL;
- three or more (5%): the elements come to Python, where they are sorted, cut to the lookback and
  joined, vectorised with Arrow.
SQLite returns one short string per user, which Python counts without a Python-level loop
(``collections.Counter`` over the cursor, in C): a GROUP BY over those strings in SQLite costs a second
sort, measured 2× slower. Ordering all users in SQL (window functions, an ORDER BY under the GROUP
BY) measured 2-4× slower in SQLite 3.40 (which has no GROUP_CONCAT … ORDER BY).
Equal paths are then counted with pandas. Results do not depend on the order SQLite aggregates in.

On a database file, the non-converting paths are first tried without SQLite's GROUP BY: SQLite selects
the sessions and numpy groups them (``pipeline.arrow_paths``); the result is identical, and for input
that reading does not handle it hands back to the SQL above.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from operator import itemgetter
from typing import Optional
from urllib.parse import quote

import numpy as np

from . import arrow_paths
from .db import database_file
from .journeys import _CONVERSIONS_CTE, SESSION_TS
from .mapped_pages import unmapped
from .models.weighted_paths import PathSummary
from .progress import Progress, ensure
from .schema import channel_sql
from .window import Window

TS_LEN = 19  # 'YYYY-MM-DD HH:MM:SS', as validation guarantees
# One session as text that sorts like (time, session_id) and holds its channel.
ELEMENT = "ts || hex(sid) || '.' || ch"
CHUNK = 20_000  # users with 3 or more sessions ordered at once
LONG = "*"  # marks the unordered elements of a user with 3 or more sessions (a hex path has no '*')


def _tail(lookback: str, extra: str = "", extra_aggregate: str = "") -> str:
    """From the CTE ``s`` (u: the path's group, ts, sid, ch): one string per path — its hex path, or
    LONG + its unordered elements. ``lookback``: the SQL value cutting two-session paths to the
    lookback before their last session (NULL: no cut); ``extra`` columns are carried along."""
    return f"""
per_user AS (SELECT count(*) AS n, group_concat({ELEMENT}, ',') AS e{extra_aggregate} FROM s GROUP BY u),
pair AS (  -- a path's two sessions, in the order group_concat met them
    SELECT n, e{extra}, CASE WHEN n = 2 THEN substr(e, 1, instr(e, ',') - 1) END AS a,
                        CASE WHEN n = 2 THEN substr(e, instr(e, ',') + 1) END AS b
    FROM per_user),
ordered AS (SELECT n, e{extra}, min(a, b) AS x, max(a, b) AS y FROM pair)  -- x: the earlier one
SELECT CASE WHEN n = 1 THEN substr(e, instr(e, '.') + 1)
            WHEN n = 2 AND {lookback} IS NOT NULL
                       AND substr(x, 1, {TS_LEN}) < datetime(substr(y, 1, {TS_LEN}), {lookback})
                 THEN substr(y, instr(y, '.') + 1)
            WHEN n = 2 THEN substr(x, instr(x, '.') + 1) || ',' || substr(y, instr(y, '.') + 1)
            ELSE '{LONG}' || e END{extra}
FROM ordered
"""


NON_CONVERTING_SUMMARY_SQL = f"""
WITH {_CONVERSIONS_CTE},
s AS (
    SELECT s.user_id AS u, {SESSION_TS} AS ts, CAST(s.session_id AS TEXT) AS sid,
           hex({channel_sql("s.channel_name")}) AS ch
    FROM session_sources s
    WHERE s.user_id IS NOT NULL AND s.user_id NOT IN users
      AND (:first IS NULL OR s.event_date >= :first) AND (:end IS NULL OR s.event_date <= :end)),
{_tail(":lookback")}"""

# The converting journeys exactly as journeys.JOURNEYS_SQL selects them (sessions of the conversion's
# user strictly before it, with the lookback measured back from the conversion), one path per
# conversion with its revenue (NULL counts 0). The lookback is applied per session here already.
CONVERTING_SUMMARY_SQL = f"""
WITH conv AS MATERIALIZED (
    SELECT conv_id, user_id, conv_date || ' ' || conv_time AS conv_ts, coalesce(revenue, 0) AS revenue
    FROM conversions
    WHERE conv_id IS NOT NULL AND user_id IS NOT NULL
      AND (:start IS NULL OR conv_date >= :start) AND (:end IS NULL OR conv_date <= :end)),
users AS MATERIALIZED (SELECT DISTINCT user_id FROM conv),
s AS (
    SELECT c.conv_id AS u, {SESSION_TS} AS ts, CAST(s.session_id AS TEXT) AS sid,
           hex({channel_sql("s.channel_name")}) AS ch, c.revenue AS revenue
    FROM session_sources s CROSS JOIN conv c ON c.user_id = s.user_id  -- CROSS: sessions outer, scanned once
    WHERE s.user_id IN users AND {SESSION_TS} < c.conv_ts
      AND (:lookback IS NULL OR {SESSION_TS} >= datetime(c.conv_ts, :lookback))),
{_tail("NULL", ", revenue", ", max(revenue) AS revenue")}"""


def non_converting_summary(
    con: sqlite3.Connection, window: Window = Window(), progress: Optional[Progress] = None
) -> PathSummary:
    """The distinct paths of the users without a conversion in ``window`` and how many users took each
    (``non_conversions``); the same paths as ``journeys.build_non_converting``. On a database file they
    are grouped over Arrow columns (``arrow_paths``, 3× less CPU on the 10× demo); otherwise, or for
    input that reading hands back, summarised in SQL as below."""
    progress = ensure(progress)
    progress(0, 1, "journeys: summarising the paths that did not convert")
    with unmapped(con):  # the pages the journeys query left mapped: not resident under the summary's arrays
        counted = arrow_paths.counts(file, window) if (file := database_file(con)) else None
    if counted is not None:  # grouped over Arrow columns, lookback applied
        summary = summary_from_counts(counted, None)
    else:
        params = {**window.sql_params(), "first": window.start}
        reader = _sorting_connection(con)
        try:
            counted = Counter(map(itemgetter(0), reader.execute(NON_CONVERTING_SUMMARY_SQL, params)))
        finally:
            if reader is not con:
                reader.close()
        summary = summary_from_counts(counted, window.lookback_days)
    n_paths = int(summary.non_conversions.sum())
    progress(1, 1, f"journeys: {n_paths:,} paths without conversion, {summary.n_paths:,} distinct")
    return summary


def path_summary(
    con: sqlite3.Connection, window: Window = Window(), progress: Optional[Progress] = None
) -> PathSummary:
    """One row per distinct channel path of ``window``: how many converting journeys took it, how
    many non-converting paths, and the converting journeys' revenue (``value``). Converting journeys
    are those of ``journeys.build_journeys`` (conversions without an earlier session have no path);
    non-converting paths those of ``non_converting_summary``. ``PathSummary.channel_paths()`` fits
    on it exactly as on the journeys."""
    import pandas as pd

    progress = ensure(progress)
    null = non_converting_summary(con, window, progress)
    reader = _sorting_connection(con)
    try:
        rows = reader.execute(CONVERTING_SUMMARY_SQL, window.sql_params()).fetchall()
    finally:
        if reader is not con:
            reader.close()
    conv_keys = _resolve(np.array([r[0] for r in rows], dtype=object), None)
    hex_labels = np.array([str(label).encode("utf-8").hex().upper() for label in null.labels.tolist()], dtype=object)
    spans = zip(null.start.tolist(), null.length.tolist())
    hex_null = [",".join(hex_labels[null.codes[first : first + n]].tolist()) for first, n in spans]
    frame = pd.DataFrame(
        {
            "key": np.concatenate((conv_keys, np.array(hex_null, dtype=object))),
            "conversions": np.concatenate((np.ones(len(rows)), np.zeros(len(hex_null)))),
            "non_conversions": np.concatenate((np.zeros(len(rows)), null.non_conversions)),
            "value": np.concatenate((np.array([float(r[1]) for r in rows]), np.zeros(len(hex_null)))),
        }
    )
    return summary_from_frame(frame)


def summary_from_frame(frame) -> PathSummary:
    """Rows (key, conversions, non_conversions, value), a key possibly on several rows, summed per key
    (in key order) and decoded into a ``PathSummary``."""
    totals = frame.groupby("key", sort=True).sum()
    return _decode(
        totals.index.to_numpy(dtype=object),
        totals["non_conversions"].to_numpy(),
        totals["conversions"].to_numpy(),
        totals["value"].to_numpy(),
    )


def _sorting_connection(con: sqlite3.Connection) -> sqlite3.Connection:
    """A read-only connection to ``con``'s database file with SQLite's default temp store, or ``con``
    itself for a database without a file. The pipeline's connections keep temp b-trees in RAM
    (``db.tune``), where the GROUP BY's sort of every non-converting session would stay resident
    (+490 MB peak on the 10× demo); SQLite's default spills it to a temporary file. Only the input
    tables are read, which a run never writes, so both connections see the same rows."""
    files = {name: file for _, name, file in con.execute("PRAGMA database_list").fetchall()}
    if not files.get("main"):
        return con
    return sqlite3.connect(f"file:{quote(files['main'])}?mode=ro", uri=True, timeout=60)


def summary_from_counts(counted: dict, lookback_days: Optional[int]) -> PathSummary:
    """{hex path, or LONG + unordered elements: number of users} → PathSummary of non-converting paths."""
    import pandas as pd

    if not counted:
        return PathSummary.empty()
    keys = _resolve(np.array(list(counted), dtype=object), lookback_days)
    counts = np.fromiter(counted.values(), dtype=np.float64, count=len(counted))
    per_path = pd.Series(counts).groupby(keys, sort=True).sum()
    return _decode(per_path.index.to_numpy(dtype=object), per_path.to_numpy())


def _resolve(keys: np.ndarray, lookback_days: Optional[int]) -> np.ndarray:
    """The SQL's strings → hex paths: LONG + unordered elements are ordered (in place)."""
    long = np.fromiter((k.startswith(LONG) for k in keys.tolist()), dtype=bool, count=len(keys))
    rows = np.flatnonzero(long)
    for lo in range(0, len(rows), CHUNK):  # in chunks: Arrow's string kernels hold on to their memory
        part = rows[lo : lo + CHUNK]
        keys[part] = _order_elements(np.array([k[1:] for k in keys[part].tolist()], dtype=object), lookback_days)
    return keys


def _order_elements(elements: np.ndarray, lookback_days: Optional[int]) -> np.ndarray:
    """Per user, 'ts hexsid.hexchannel' elements joined by ',' in any order → the hex path in time
    order (ties by session_id), cut to ``lookback_days`` before the last session."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lists = pc.split_pattern(pa.array(elements.tolist(), type=pa.string()), ",")
    counts = np.diff(lists.offsets.to_numpy())
    user = np.repeat(np.arange(len(lists), dtype=np.int64), counts)
    parts = pc.split_pattern(lists.flatten(), ".").flatten()  # key, channel, key, channel, …
    key = parts.take(pa.array(np.arange(0, len(parts), 2)))
    channel = parts.take(pa.array(np.arange(1, len(parts), 2)))
    order = pc.sort_indices(
        pa.table({"user": user, "key": key}), sort_keys=[("user", "ascending"), ("key", "ascending")]
    )
    key, channel = key.take(order), channel.take(order)
    keep = None
    if lookback_days is not None:
        stamps = pc.cast(pc.utf8_slice_codeunits(key, 0, TS_LEN), pa.timestamp("s"))
        seconds = stamps.to_numpy(zero_copy_only=False).astype(np.int64)
        last = seconds[np.cumsum(counts) - 1]  # each user's latest session
        keep = seconds >= np.repeat(last, counts) - lookback_days * 86_400
        channel = channel.filter(pa.array(keep))
        counts = np.bincount(user[keep], minlength=len(lists))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), channel), ",")
    return np.asarray(joined.to_pylist(), dtype=object)


def _decode(
    hex_paths: np.ndarray,
    counts: np.ndarray,
    conversions: Optional[np.ndarray] = None,
    value: Optional[np.ndarray] = None,
) -> PathSummary:
    """Distinct hex paths and their counts → PathSummary (labels decoded once per channel)."""
    import pandas as pd

    pieces = [p.split(",") for p in hex_paths.tolist()]
    lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
    flat = np.array([h for p in pieces for h in p], dtype=object)
    hex_codes, hex_labels = pd.factorize(flat)
    labels = np.array([bytes.fromhex(h).decode("utf-8") for h in hex_labels.tolist()], dtype=object)
    order = np.argsort(labels.astype(str), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    start = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    zeros = np.zeros(len(hex_paths))
    return PathSummary(
        labels[order],
        rank[hex_codes],
        start,
        lengths,
        zeros if conversions is None else np.asarray(conversions, dtype=np.float64),
        counts.astype(np.float64),
        zeros if value is None else np.asarray(value, dtype=np.float64),
    )
