"""The non-converting paths counted over Arrow columns: SQLite selects, numpy groups.

``path_summary.non_converting_summary``'s SQL groups every non-converting session by user inside SQLite,
which has no hash aggregate: a sort of 4.5M sessions plus a string per session on the 10× demo (23 s
CPU). Here SQLite only selects the sessions (the same date rules) and hands them over as Arrow batches
through ADBC's SQLite driver (``adbc-driver-sqlite``, as ``pipeline.convert`` reads); each batch drops
the converting users (Arrow's ``is_in``, for SQLite's ``NOT IN users``) and is cut down at once to
narrow columns — the user id's bytes as 64-bit words, the session time as epoch seconds, the rowid, a
channel code — and the grouping is done on those with numpy, no Python loop per session or user:

- users are grouped by a 64-bit hash of their id's words, sorted; every row's words are then compared
  with the row before it in the same hash run, so two users sharing a hash are seen, never merged;
  rows sorted by (user, time);
- sessions of one user at the same second are ordered by session_id, then channel, as the SQL orders
  them (``'ts' || hex(session_id) || '.' || hex(channel)``): their session ids are read back by rowid,
  only for those rows;
- with ``lookback_days``, a path keeps the sessions within that many days before the user's last one;
- each path (≤ ``_fits`` sessions) becomes one integer in base (channels + 1), so equal paths are equal
  integers, counted with ``np.unique``; longer paths are joined as strings by Arrow and counted there.

The result is the SQL's own intermediate, {hex path: number of users}, which ``summary_from_counts``
turns into the same ``PathSummary``. Whenever a value is not what this reading assumes — a user id that
is not text or longer than MAX_ID_BYTES, a row without session_id, a time not exactly 'YYYY-MM-DD HH:MM:SS' on a real day, a
declared collation, a table without rowid, any error from the driver — ``counts`` returns None and the
SQL path runs instead, so the result never depends on which path ran (tests/test_arrow_paths.py
compares both on random database files).
"""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import quote

import numpy as np

from .journeys import _CONVERSIONS_CTE, SESSION_TS
from .schema import NO_CHANNEL
from .window import Window

BATCH_ROWS = 65_536
SEPARATORS = [4, 7, 10, 13, 16]  # 'YYYY-MM-DD HH:MM:SS'
SEPARATOR_BYTES = np.frombuffer(b"-- ::", dtype=np.uint8)
DIGITS = [i for i in range(19) if i not in SEPARATORS]
DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)

# The rows of NON_CONVERTING_SUMMARY_SQL's CTE ``s`` before its "NOT IN users", which is applied to
# the batches (SQLite probes a b-tree per session for it: 40% of the read). A user id that is not text
# reads as NULL (SQLite groups 5 and '5' apart, and 5 and 5.0 together; text keys cannot say that), and
# so does a row without session_id (the SQL path drops its element): either sends the run to the SQL path.
ROWS_SQL = f"""
SELECT iif(typeof(s.user_id) = 'text' AND s.session_id IS NOT NULL, s.user_id, NULL) AS u, {SESSION_TS} AS ts,
       s.rowid AS r, CAST(coalesce(nullif(s.channel_name, ''), '{NO_CHANNEL}') AS BLOB) AS ch
FROM session_sources s
WHERE s.user_id IS NOT NULL
  AND (:first IS NULL OR s.event_date >= :first) AND (:end IS NULL OR s.event_date <= :end)
  AND (:lo IS NULL OR s.user_id >= :lo) AND (:hi IS NULL OR s.user_id < :hi)
"""
USERS_SQL = f"WITH {_CONVERSIONS_CTE} SELECT user_id, typeof(user_id) = 'text' FROM users"
# count(*) reads every page of the smallest b-tree (0.8 s CPU at 10×); max - min of rowid reads two
# leaves. Rows beyond a bound are counted instead (the arrays' address space is reserved up front).
SPAN_SQL = "SELECT (SELECT max(rowid) FROM session_sources) - (SELECT min(rowid) FROM session_sources) + 1"
MAX_SPAN = 1 << 28
# The rows are read in parts of users, ``user_id`` ranges cut at ids sampled by rowid, so that one part's
# arrays (and their sort) stay within PART_BYTES; users never straddle two parts, so the parts' counts
# add up. SQLite's comparison orders every value (numbers < text < blobs), so the ranges cover each
# row exactly once whatever the ids hold. A part costs one more pass of SQLite over the table (0.45 s
# on the 10× demo), without Arrow or numpy work for the other parts' rows.
# Parts of PART_BYTES, unless that makes more than FEW_PARTS: then parts of up to MAX_PART_BYTES, as
# few as that allows (30× demo: 5 parts instead of 10, the summary 26.6 s → 17.5 s, its peak RSS
# 364 → 569 MB; the 10× demo keeps 4 parts of 160 MiB, within its 500 MB target).
PART_BYTES = 160 * 2**20
FEW_PARTS = 4
MAX_PART_BYTES = 384 * 2**20
ROW_BYTES = 20 + 48  # seconds, rowid, channel code; the sort's index and user arrays (+ the key words)
SAMPLE_ROWS = 2_000
ROWID_RANGE_SQL = "SELECT (SELECT min(rowid) FROM session_sources), (SELECT max(rowid) FROM session_sources)"
SAMPLE_SQL = """
SELECT user_id FROM session_sources
WHERE rowid IN (SELECT value FROM json_each(:ids)) AND typeof(user_id) = 'text'
"""
SCHEMA_SQL = "SELECT group_concat(sql, ' ') FROM sqlite_master WHERE name IN ('session_sources', 'conversions')"

TIES_SQL = """
SELECT s.rowid, CAST(s.session_id AS BLOB), CAST(coalesce(nullif(s.channel_name, ''), '{none}') AS BLOB)
FROM session_sources s WHERE s.rowid IN (SELECT value FROM json_each(:ids))
""".replace("{none}", NO_CHANNEL)
VERIFY_ROWS = 1 << 20  # rows of user keys compared at once
MAX_ID_BYTES = 64  # user ids up to this long are grouped as numbers (longer: the SQL path)
MIX = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
        0x94D049BB133111EB,
        0xBF58476D1CE4E5B9,
        0x2545F4914F6CDD1D,
    ],
    dtype=np.uint64,
)


class NotPlain(Exception):
    """A value this reading does not handle: the SQL path runs instead."""


def counts(path: str, window: Window) -> Optional[dict]:
    """{hex path: number of users} of the users without a conversion in ``window`` (as the SQL path
    counts them, lookback applied), read from the database file ``path``; None when the SQL path must
    run instead (see the module's docstring)."""
    try:
        import adbc_driver_sqlite.dbapi as adbc
    except ImportError:  # pragma: no cover - a dependency (requirements.txt)
        return None
    try:
        con = adbc.connect(f"file:{quote(path)}?mode=ro")
    except Exception:  # noqa: BLE001 - anything the driver cannot open: the SQL path explains it
        return None
    try:
        counted: dict[str, int] = {}
        for lo, hi in _parts(con):
            columns = _read(con, window, lo, hi)
            if columns is not None:
                for path, n in _count_paths(con, columns, window.lookback_days).items():
                    counted[path] = counted.get(path, 0) + n
        return counted
    except NotPlain:
        return None
    except Exception:  # noqa: BLE001 - driver errors (type mismatch, locks, ...): the SQL path decides
        return None
    finally:
        con.close()


def _execute(con, sql: str, params: Optional[dict] = None):
    """ADBC binds by position: ``:name`` placeholders become ``?`` with their values in order."""
    names = re.findall(r":(\w+)", sql)
    cursor = con.cursor()
    cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
    cursor.execute(re.sub(r":(\w+)", "?", sql), [(params or {})[n] for n in names])
    return cursor


def _fetch(con, sql: str, params: Optional[dict] = None) -> list:
    cursor = _execute(con, sql, params)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def _parts(con) -> list[tuple[Optional[str], Optional[str]]]:
    """[(lo, hi)]: the user_id ranges ``lo <= user_id < hi`` (None: unbounded) read one at a time, cut
    at quantiles of ids sampled at evenly spaced rowids, as many as PART_BYTES asks."""
    import json

    low, high = _fetch(con, ROWID_RANGE_SQL)[0]
    if low is None:
        return [(None, None)]
    step = max(1, (high - low + 1) // SAMPLE_ROWS)
    ids = sorted(u for (u,) in _fetch(con, SAMPLE_SQL, {"ids": json.dumps(list(range(low, high + 1, step)))}))
    if not ids:
        return [(None, None)]
    words = -(-max(len(u.encode("utf-8")) for u in ids) // 8) + 1
    total = (high - low + 1) * (ROW_BYTES + 8 * words)
    part_bytes = min(MAX_PART_BYTES, max(PART_BYTES, -(-total // FEW_PARTS)))
    n_parts = min(len(ids), -(-total // part_bytes))
    pivots = sorted({ids[len(ids) * k // n_parts] for k in range(1, n_parts)})
    bounds: list[Optional[str]] = [None, *pivots, None]
    return list(zip(bounds[:-1], bounds[1:]))


def _read(con, window: Window, lo: Optional[str] = None, hi: Optional[str] = None) -> Optional[list]:
    """[user keys, seconds, rowids, channel codes, channel labels as bytes] of the rows of the users
    ``lo <= user_id < hi`` (None: unbounded), or None when there are none. A user key is a row of the
    id's bytes as 64-bit words, its length the last word."""
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = _fetch(con, SCHEMA_SQL)[0][0] or ""
    if "collate" in schema.lower():
        raise NotPlain("a collation other than BINARY may apply")  # SQLite compares the ids with it
    users = _fetch(con, USERS_SQL, window.sql_params())
    if not all(plain for _, plain in users):
        raise NotPlain("a converting user id that is not text")
    converting = pa.array([u for u, _ in users], type=pa.string())
    span = _fetch(con, SPAN_SQL)[0][0] or 0  # ≥ the number of rows, read off the b-tree's two ends
    rows = _Rows(span if span <= MAX_SPAN else _fetch(con, "SELECT count(*) FROM session_sources")[0][0])
    labels: dict[bytes, int] = {}
    cursor = _execute(con, ROWS_SQL, {**window.sql_params(), "first": window.start, "lo": lo, "hi": hi})
    try:
        for batch in cursor.fetch_record_batch():
            if batch.num_rows == 0:
                continue
            u, ts, r, ch = batch.columns
            if u.null_count or ts.null_count or r.null_count or ch.null_count:
                raise NotPlain("a NULL or non-text value")
            if not pa.types.is_string(u.type) or not pa.types.is_string(ts.type) or not pa.types.is_integer(r.type):
                raise NotPlain("unexpected column types")
            if len(converting):  # SQLite's "user_id NOT IN users", on text values
                keep = pc.invert(pc.is_in(u, value_set=converting))
                u, ts, r, ch = (pc.filter(c, keep) for c in (u, ts, r, ch))
                if len(u) == 0:
                    continue
            encoded = pc.dictionary_encode(ch.cast(pa.binary()))
            to_global = np.array(
                [labels.setdefault(v, len(labels)) for v in encoded.dictionary.to_pylist()], dtype=np.int32
            )
            rows.add(_id_words(u), _seconds(ts), r.to_numpy(), to_global[encoded.indices.to_numpy()])
    finally:
        cursor.close()
    if not rows.n:
        return None
    names = sorted(labels, key=labels.__getitem__)
    return [*rows.columns(), names]


class _Rows:
    """The narrow columns, filled batch by batch into arrays sized for the table's rows (their
    pages are only taken when written): no list of chunks to join, so the peak is one copy of the
    data. The user keys widen when a batch has a longer id (zero words go between an id's words and
    its length word)."""

    def __init__(self, capacity: int):
        self.capacity, self.n = capacity, 0
        self.seconds = np.empty(capacity, dtype=np.int64)
        self.rowids = np.empty(capacity, dtype=np.int64)
        self.channels = np.empty(capacity, dtype=np.int32)
        self.keys: Optional[np.ndarray] = None

    def add(self, ids, seconds: np.ndarray, rowids: np.ndarray, channels: np.ndarray) -> None:
        lo, hi = self.n, self.n + len(seconds)
        if hi > self.capacity:
            raise NotPlain("rows were added while reading")
        self.seconds[lo:hi], self.rowids[lo:hi], self.channels[lo:hi] = seconds, rowids, channels
        if self.keys is None or self.keys.shape[1] < ids.shape[1]:
            wider = np.empty((self.capacity, ids.shape[1]), dtype=np.uint64)
            if self.keys is not None:
                wider[:lo] = _widen(self.keys[:lo], ids.shape[1])
            self.keys = wider
        self.keys[lo:hi] = _widen(ids, self.keys.shape[1])
        self.n = hi

    def columns(self) -> list:
        assert self.keys is not None
        n = self.n
        return [self.keys[:n], self.seconds[:n], self.rowids[:n], self.channels[:n]]


def _widen(words: np.ndarray, width: int) -> np.ndarray:
    """Key words padded to ``width`` words: zeros before the last (length) word."""
    if words.shape[1] == width:
        return words
    return np.insert(words, [words.shape[1] - 1] * (width - words.shape[1]), 0, axis=1)


def _id_words(u) -> np.ndarray:
    """A batch's user ids as a (rows, words) uint64 matrix of their bytes, zero-padded, with the length
    as the last word. NotPlain for an id longer than MAX_ID_BYTES (the SQL path groups those)."""
    offsets = np.frombuffer(u.buffers()[1], dtype=np.int32)[u.offset : u.offset + len(u) + 1].astype(np.int64)
    lengths = np.diff(offsets)
    width = int(lengths.max())
    if width > MAX_ID_BYTES:
        raise NotPlain("a user id longer than MAX_ID_BYTES")
    words = -(-width // 8)
    data = np.frombuffer(u.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    matrix = np.zeros((len(u), words * 8 + 8), dtype=np.uint8)
    if (lengths == width).all():
        matrix[:, :width] = data.reshape(len(u), width)
    else:
        rows = np.repeat(np.arange(len(u)), lengths)
        matrix[rows, np.arange(len(data)) - np.repeat(offsets[:-1] - offsets[0], lengths)] = data
    matrix[:, -8:] = lengths.astype("<u8").view(np.uint8).reshape(-1, 8)
    return matrix.view(np.uint64)


def _seconds(ts) -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS' text (a real day and time) → epoch seconds, vectorised over the text's
    bytes; NotPlain for anything else. For such text, text order is time order."""
    offsets = np.frombuffer(ts.buffers()[1], dtype=np.int32)[ts.offset : ts.offset + len(ts) + 1]
    if len(offsets) < 2 or (np.diff(offsets) != 19).any():
        raise NotPlain("a session time not 19 characters long")
    text = np.frombuffer(ts.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(-1, 19)
    if not (text[:, SEPARATORS] == SEPARATOR_BYTES).all() or ((text[:, DIGITS] - np.uint8(48)) > 9).any():
        raise NotPlain("a session time not in the 'YYYY-MM-DD HH:MM:SS' format")

    def number(first: int, width: int) -> np.ndarray:
        value = text[:, first].astype(np.int64) - 48
        for k in range(first + 1, first + width):
            value = value * 10 + (text[:, k] - 48)
        return value

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second = number(11, 2), number(14, 2), number(17, 2)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    days_in = np.where(month_ok, DAYS_IN_MONTH[np.clip(month, 1, 12)], 0) + (leap & (month == 2))
    if not (month_ok & (day >= 1) & (day <= days_in) & (hour < 24) & (minute < 60) & (second < 60)).all():
        raise NotPlain("a session time that is not a real day and time")
    # days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468
    return days * 86_400 + hour * 3_600 + minute * 60 + second


def _group_users(keys: np.ndarray, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, user): the rows sorted by (user, time) and each sorted row's user number. Users are
    sorted by a 64-bit hash of their key words, and every row's key is then compared with the row's
    before it in the same hash run: a hash shared by two users (2**-64 per pair) sends the run to the
    SQL path, never merges them."""
    if keys.shape[1] == 1:
        hashed = keys[:, 0]
    else:
        hashed = np.zeros(len(keys), dtype=np.uint64)
        for k in range(keys.shape[1]):  # word by word: no temporary as big as the keys
            hashed += keys[:, k] * MIX[k % len(MIX)]
        hashed ^= hashed >> np.uint64(31)
        hashed *= np.uint64(0xBF58476D1CE4E5B9)
        hashed ^= hashed >> np.uint64(29)
    by_hash = np.argsort(hashed.view(np.int64))
    sorted_hash = hashed[by_hash]
    same = sorted_hash[1:] == sorted_hash[:-1]
    del hashed, sorted_hash
    if keys.shape[1] > 1:  # within a run of one hash, every key equals the one before it (in slices)
        for lo in range(0, len(same), VERIFY_ROWS):
            ordered = keys[by_hash[lo : lo + VERIFY_ROWS + 1]]
            if (same[lo : lo + VERIFY_ROWS] & (ordered[1:] != ordered[:-1]).any(axis=1)).any():
                raise NotPlain("two user ids with one hash")
    run = np.cumsum(np.r_[False, ~same])
    n_users = int(run[-1]) + 1
    span = int(seconds.max() - seconds.min()) + 1
    if span >= 2**40 or n_users >= 2**22:
        order = np.lexsort((seconds[by_hash], run))
    else:
        order = np.argsort((run << 40) | (seconds[by_hash] - seconds.min()))
    return by_hash[order], run[order]


def _count_paths(con, columns: list, lookback_days: Optional[int]) -> dict:
    """{hex path: users} from ``_read``'s columns (the list is emptied: each array is freed once used)."""
    keys, seconds, rowid, channel, names = columns
    columns.clear()
    order, user = _group_users(keys, seconds)
    del keys
    seconds, rowid, channel = seconds[order], rowid[order], channel[order].astype(np.int64)
    del order
    _order_ties(con, user, seconds, rowid, channel)
    n = len(user)
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    if lookback_days is not None:
        last = seconds[np.r_[starts[1:], n] - 1]  # each user's latest session (sorted by time)
        keep = seconds >= np.repeat(last, np.diff(np.r_[starts, n])) - lookback_days * 86_400
        user, channel = user[keep], channel[keep]
        n = len(user)
        starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    lengths = np.diff(np.r_[starts, n])
    hex_names = [name.hex().upper() for name in names]
    counted: dict[str, int] = {}
    short = lengths <= _fits(len(names))
    if short.any():
        # digit (code + 1) at position p of its path times base**p: one integer per path, unique
        base = np.int64(len(names) + 1)
        position = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)
        in_short = np.repeat(short, lengths)
        terms = (channel[in_short] + 1) * base ** position[in_short]
        keys = np.add.reduceat(terms, _short_starts(lengths[short]))
        _, first, count = np.unique(keys, return_index=True, return_counts=True)
        short_starts, short_lengths = starts[short][first], lengths[short][first]
        for s, k, c in zip(short_starts.tolist(), short_lengths.tolist(), count.tolist()):
            counted[",".join(hex_names[x] for x in channel[s : s + k].tolist())] = c
    if (~short).any():
        counted.update(_long_paths(channel, starts[~short], lengths[~short], hex_names))
    return counted


def _short_starts(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)


def _fits(n_channels: int) -> int:
    """The longest path whose base-(channels + 1) number fits in 63 bits."""
    base, length, value = n_channels + 1, 0, 1
    while value * base < 2**63:
        value, length = value * base, length + 1
    return length


def _long_paths(channel: np.ndarray, starts: np.ndarray, lengths: np.ndarray, hex_names: list) -> dict:
    """{hex path: users} of the paths too long for one integer, joined and counted by Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ends = np.cumsum(lengths)
    rows = np.repeat(starts - (ends - lengths), lengths) + np.arange(int(ends[-1]))
    offsets = pa.array(np.concatenate(([0], ends)).astype(np.int64))
    values = pa.array(hex_names, type=pa.large_string()).take(pa.array(channel[rows]))
    joined = pc.binary_join(pa.LargeListArray.from_arrays(offsets, values), pa.scalar(",", pa.large_string()))
    vc = pc.value_counts(joined)
    return dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))


def _order_ties(con, user, seconds, rowid, channel) -> None:
    """Sessions of one user at the same second, in (session_id, channel) byte order, as the SQL path
    orders them; in place. Their session ids are read back by rowid (ties are rare)."""
    tied_next = (user[1:] == user[:-1]) & (seconds[1:] == seconds[:-1])
    if not tied_next.any():
        return
    import json

    import pyarrow as pa
    import pyarrow.compute as pc

    tied = np.flatnonzero(np.r_[tied_next, False] | np.r_[False, tied_next])
    group = np.cumsum(~np.r_[False, tied_next][tied])  # a group starts where a row is not tied to the one before
    found = _fetch(con, TIES_SQL, {"ids": json.dumps(rowid[tied].tolist())})
    if len(found) != len(np.unique(rowid[tied])):
        raise NotPlain("rowids changed while reading")
    by_rowid = {r: (sid, ch) for r, sid, ch in found}
    sid = [by_rowid[r][0] for r in rowid[tied].tolist()]
    ch = [by_rowid[r][1] for r in rowid[tied].tolist()]
    if any(v is None for v in sid):
        raise NotPlain("a NULL session_id")
    perm = pc.sort_indices(
        pa.table({"g": group, "sid": pa.array(sid, type=pa.binary()), "ch": pa.array(ch, type=pa.binary())}),
        sort_keys=[("g", "ascending"), ("sid", "ascending"), ("ch", "ascending")],
    ).to_numpy()
    for column in (user, seconds, rowid, channel):
        column[tied] = column[tied][perm]
