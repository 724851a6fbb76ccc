"""The journey data type every floor above shares: journeys in, credit out.

Journeys come in the IHC API's session-record format (``JOURNEY_COLUMNS``), optionally with an ``ts``
column (int64 epoch seconds, UTC) that saves parsing the ``timestamp`` strings. A model never loops over
journeys in Python: it receives a ``JourneyIndex`` — the rows sorted by (journey, time, session_id) with
the group arrays every vectorised model needs — and returns ``Credits``: one value per row for each of
the ``PHASES`` ``initializer``, ``holder``, ``closer`` (NaN where the model has no phases) and ``ihc``
(the credit, summing to 1 per conversion); ``VALUE_COLUMNS`` are those four, ``CREDIT_COLUMNS`` the
ids and the four.

Because every model sees the rows in the same canonical order, results do not depend on the order in
which the rows arrived. Sessions with the same timestamp inside a journey are ordered by session_id.
This module imports only numpy (pandas and pyarrow when asked) and ``pipeline.errors``: it is the
ground floor under ``models/``, ``ihc/``, ``ihc_api/`` and ``journeys.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Optional

import numpy as np

from .errors import InputError

if TYPE_CHECKING:
    import pandas as pd

JOURNEY_COLUMNS = [
    "conversion_id",
    "session_id",
    "timestamp",
    "channel_label",
    "holder_engagement",
    "closer_engagement",
    "conversion",
    "impression_interaction",
]
FLAG_COLUMNS = ["holder_engagement", "closer_engagement", "conversion", "impression_interaction"]
PHASES = ("initializer", "holder", "closer")
VALUE_COLUMNS = [*PHASES, "ihc"]
CREDIT_COLUMNS = ["conversion_id", "session_id", *VALUE_COLUMNS]
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


ARROW_MIN_ROWS = 50_000  # above this, text is parsed with Arrow (10x faster than numpy's parser)


def timestamps_to_seconds(values) -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS' strings (optionally with ' +HHMM') → int64 epoch seconds, UTC."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(values) >= ARROW_MIN_ROWS:
        parsed = _arrow_seconds(values)
        if parsed is not None:
            return parsed
    texts = np.asarray(values, dtype=object)
    as_text = np.asarray(texts, dtype=str)
    if as_text.dtype.itemsize == 19 * 4:  # at most 19 characters: the plain format, parsed by numpy
        try:
            return as_text.astype("datetime64[s]").astype(np.int64)
        except ValueError:
            pass
    import pandas as pd

    parsed = pd.to_datetime(pd.Series(texts), format="mixed", utc=True, errors="coerce")
    if parsed.isna().any():
        bad = texts[parsed.isna().to_numpy()][0]
        raise InputError(f"timestamp {bad!r} is not 'YYYY-MM-DD HH:MM:SS'")
    return parsed.astype("datetime64[s, UTC]").astype("int64").to_numpy()


def _arrow_seconds(values) -> Optional[np.ndarray]:
    """The plain format parsed by Arrow's cast; None when it does not apply (then numpy/pandas)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        return None
    try:
        arr = pa.array(values, type=pa.string()) if not hasattr(values, "__arrow_array__") else pa.array(values)
        if pc.any(pc.not_equal(pc.utf8_length(arr), 19)).as_py():
            return None  # other lengths (time zones, dates only): the general path
        return pc.cast(arr, pa.timestamp("s")).to_numpy(zero_copy_only=False).astype(np.int64)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def seconds_to_timestamps(seconds: np.ndarray) -> np.ndarray:
    """int64 epoch seconds → 'YYYY-MM-DD HH:MM:SS' strings (object array)."""
    seconds = np.asarray(seconds, dtype=np.int64)
    if len(seconds) == 0:
        return np.zeros(0, dtype=object)
    text = seconds.astype("datetime64[s]").astype(str)
    return np.char.replace(text, "T", " ").astype(object)


@dataclass
class JourneyIndex:
    """Journeys sorted canonically, with the per-row and per-journey arrays models work on.

    Rows are sorted by journey, then time, then session_id; ``journey[i]`` is the journey number
    (0..n_journeys-1) of row i, ``start``/``length`` describe each journey's block of rows.
    ``column(name)`` gives a column as a numpy array; ``frame`` the same rows as a DataFrame (built
    on first use, so models that need only arrays never pay for pandas).
    """

    columns: dict  # column name → numpy array, in canonical order (JOURNEY_COLUMNS + ts)
    ts: np.ndarray  # int64 epoch seconds per row
    journey: np.ndarray  # int64 journey number per row
    start: np.ndarray  # int64 first row of each journey
    length: np.ndarray  # int64 rows per journey

    @classmethod
    def from_frame(cls, journeys) -> "JourneyIndex":
        """From a DataFrame (or a mapping of columns) in the session-record format, any row order."""
        names = list(journeys.columns) if hasattr(journeys, "columns") else list(journeys)
        missing = [c for c in JOURNEY_COLUMNS if c not in names and c != "timestamp"]
        if "timestamp" not in names and "ts" not in names:
            missing.append("timestamp")
        if missing:
            raise InputError(f"journeys lack column(s): {', '.join(missing)}")
        cols = {c: _as_array(journeys[c]) for c in names}
        return cls.from_columns(cols)

    @classmethod
    def from_columns(cls, cols: dict) -> "JourneyIndex":
        """From columns (numpy arrays) in any row order; sorted canonically unless they already are."""
        cols = dict(cols)
        ts = cols["ts"].astype(np.int64) if "ts" in cols else timestamps_to_seconds(cols["timestamp"])
        cols["ts"] = ts
        if "timestamp" not in cols:
            cols["timestamp"] = seconds_to_timestamps(ts)
        if len(ts):
            order = _canonical_order(cols["conversion_id"], ts, cols["session_id"])
            if order is not None:
                cols = {k: v[order] for k, v in cols.items()}
        return cls.from_sorted(cols)

    @classmethod
    def from_sorted(cls, cols: dict, journey_codes: Optional[np.ndarray] = None) -> "JourneyIndex":
        """From columns already sorted so that each journey's rows are contiguous and in time order
        (with ``ts``); computes the group arrays. Callers with another tie rule use this directly;
        ``journey_codes`` (one integer per journey, per row) saves comparing conversion_id strings."""
        ts = np.asarray(cols["ts"], dtype=np.int64)
        n = len(ts)
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(cols, ts, empty, empty, empty)
        conv = cols["conversion_id"] if journey_codes is None else journey_codes
        boundary = np.empty(n, dtype=bool)
        boundary[0] = True
        boundary[1:] = _ne(conv[1:], conv[:-1])
        start = np.flatnonzero(boundary)
        length = np.diff(np.append(start, n))
        journey = np.cumsum(boundary) - 1
        return cls(cols, ts, journey, start, length)

    # ---- derived arrays, computed on first use -------------------------------------------------
    @property
    def n_rows(self) -> int:
        return len(self.ts)

    @property
    def n_journeys(self) -> int:
        return len(self.start)

    def column(self, name: str) -> np.ndarray:
        return self.columns[name]

    @cached_property
    def frame(self):
        import pandas as pd

        return pd.DataFrame({c: self.columns[c] for c in [*JOURNEY_COLUMNS, "ts"] if c in self.columns})

    @cached_property
    def pos(self) -> np.ndarray:
        """0-based position of each row inside its journey."""
        return np.arange(self.n_rows, dtype=np.int64) - self.start[self.journey]

    @cached_property
    def rows_in_journey(self) -> np.ndarray:
        """Length of each row's journey, per row."""
        return self.length[self.journey]

    @cached_property
    def is_first(self) -> np.ndarray:
        return self.pos == 0

    @cached_property
    def is_last(self) -> np.ndarray:
        return self.pos == self.rows_in_journey - 1

    @cached_property
    def hours(self) -> np.ndarray:
        """Timestamps in hours since the earliest session (float64, exact to the second)."""
        if self.n_rows == 0:
            return np.zeros(0)
        return (self.ts - self.ts.min()) / 3600.0

    def flag(self, column: str) -> np.ndarray:
        return np.asarray(self.columns[column]).astype(np.int8)

    @cached_property
    def channel_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """(code per row, channel labels) with labels sorted, so codes are stable across runs."""
        import pandas as pd

        codes, labels = pd.factorize(self.columns["channel_label"], sort=True)
        return codes.astype(np.int64), np.asarray(labels, dtype=object)

    def journey_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-row array over each journey."""
        if self.n_rows == 0:
            return np.zeros(0, dtype=np.float64)
        return np.add.reduceat(values, self.start)

    def normalise(self, weights: np.ndarray) -> np.ndarray:
        """Scale per-row weights to sum to 1 in each journey; journeys with no weight get 0."""
        totals = self.journey_sum(weights.astype(np.float64))
        per_row = totals[self.journey]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(per_row > 0, weights / np.where(per_row > 0, per_row, 1.0), 0.0)


def _as_array(values):
    """A frame column as an array the index can take and compare: numbers as numpy; text as stored
    (Arrow-backed text stays in Arrow — turning millions of strings into Python objects is the slow
    part of reading a DataFrame)."""
    kind = getattr(getattr(values, "dtype", None), "kind", "O")
    if kind in "biuf":
        return np.asarray(values)
    return values.array if hasattr(values, "array") else np.asarray(values)


def _ne(a, b) -> np.ndarray:
    """Element-wise a != b as a numpy bool array (a, b numpy or Arrow-backed arrays)."""
    return np.asarray(a != b, dtype=bool)


def _canonical_order(conv: np.ndarray, ts: np.ndarray, session_ids: np.ndarray):
    """The permutation to (journey, time, session_id) order, or None when rows are already in it
    (the journeys stage delivers them sorted; checking costs one pass, sorting needs pandas)."""
    if _is_canonical(conv, ts, session_ids):
        return None
    import pandas as pd

    codes = pd.factorize(conv, sort=False)[0].astype(np.int64)
    order = stable_journey_time_order(codes, ts)
    return _break_timestamp_ties(order, codes, ts, session_ids)


def stable_journey_time_order(codes: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Stable argsort by (journey code, ts). One combined int64 key sorts with timsort, near linear
    on the usual input (journeys contiguous, sessions in time order); lexsort when it could overflow."""
    span = int(ts.max()) - int(ts.min()) + 1
    if span > 0 and len(codes) * span < 2**62:
        return np.argsort(codes * span + (ts - ts.min()), kind="stable")
    return np.lexsort((ts, codes))


def _is_canonical(conv, ts, session_ids) -> bool:
    if len(conv) < 2:
        return True
    same = ~_ne(conv[1:], conv[:-1])
    if not (same | np.asarray(conv[1:] > conv[:-1], dtype=bool)).all():  # sorted ids: contiguous journeys
        return False
    later = ts[1:] > ts[:-1]
    tie = same & (ts[1:] == ts[:-1])
    if not (~same | later | tie).all():
        return False
    if not tie.any():
        return True
    rows = np.flatnonzero(tie)
    return bool(np.asarray(session_ids[rows + 1] > session_ids[rows], dtype=bool).all())


def _break_timestamp_ties(order, codes, ts, session_ids) -> np.ndarray:
    """Within a journey, sessions sharing a timestamp are ordered by session_id (row-order free)."""
    c, t = codes[order], ts[order]
    tied = (c[1:] == c[:-1]) & (t[1:] == t[:-1])
    if not tied.any():
        return order
    in_tie = np.zeros(len(order), dtype=bool)
    in_tie[1:] |= tied
    in_tie[:-1] |= tied
    positions = np.flatnonzero(in_tie)
    rows = order[positions]
    sids = np.asarray(session_ids[rows], dtype=str)  # only the tied rows
    sub = np.lexsort((sids, ts[rows], codes[rows]))
    order = order.copy()
    order[positions] = rows[sub]
    return order


@dataclass(frozen=True)
class Credits:
    """Per-row results of a model, aligned with ``JourneyIndex.frame``."""

    ihc: np.ndarray
    initializer: Optional[np.ndarray] = None
    holder: Optional[np.ndarray] = None
    closer: Optional[np.ndarray] = None

    def phase(self, name: str, n: int) -> np.ndarray:
        """A phase's values, NaN for models without phases."""
        value = getattr(self, name)
        return np.full(n, np.nan) if value is None else np.asarray(value, dtype=np.float64)

    def to_frame(self, index: JourneyIndex) -> "pd.DataFrame":
        import pandas as pd

        nan = np.full(index.n_rows, np.nan)
        return pd.DataFrame(
            {
                "conversion_id": index.column("conversion_id"),
                "session_id": index.column("session_id"),
                "initializer": nan if self.initializer is None else self.initializer,
                "holder": nan if self.holder is None else self.holder,
                "closer": nan if self.closer is None else self.closer,
                "ihc": self.ihc,
            }
        )


def as_index(journeys) -> JourneyIndex:
    return journeys if isinstance(journeys, JourneyIndex) else JourneyIndex.from_frame(journeys)
