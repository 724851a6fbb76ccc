"""Journeys → the session records the API receives, in a fixed order, with truncation and fingerprints;
and the one check of a received record that both API stand-ins apply (``record_problem``).

``prepare_journeys`` checks and normalises the journeys once (ids as strings, timestamps as
``'YYYY-MM-DD HH:MM:SS'`` strings, flags as 0/1 integers), orders them canonically (conversion by first
appearance, then time, then session_id, as ``JourneyIndex`` does), marks which rows are sent, and
computes a content fingerprint per conversion.

Truncation: a journey with more sessions than the per-request session limit cannot be sent whole. It is
sent as its most recent ``max_sessions`` sessions; the earlier ones are not sent and get 0 in every
phase (the model's inactivity cut would zero most of them anyway). Such journeys are counted as warnings.

Fingerprint: each row is hashed (pandas' SipHash, two keys → 128 bits) over the eight record fields
plus its sent/not-sent mark; a conversion's fingerprint is the wrapping sum of its rows' hashes, so it
does not depend on row order. It changes when any of the conversion's sessions changes, is added or
removed, or when truncation changes which sessions are sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pandas as pd

from ..errors import InputError
from ..journey_index import FLAG_COLUMNS, JOURNEY_COLUMNS, JourneyIndex, seconds_to_timestamps

TIMESTAMP_PATTERN = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}( [+-]\d{4})?"
TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)

# What a session record of a request must hold (spec §1.2): ids, channel and timestamp as non-empty
# strings, the flags as 0/1 integers; ``conversion`` and ``impression_interaction`` count 0 when absent.
RECORD_OPTIONAL = ("conversion", "impression_interaction")
RECORD_REQUIRED = tuple(c for c in JOURNEY_COLUMNS if c not in RECORD_OPTIONAL)
RECORD_TEXT = ("conversion_id", "session_id", "channel_label", "timestamp")
RECORD_FLAGS = ("holder_engagement", "closer_engagement", *RECORD_OPTIONAL)


def record_problem(record: Any) -> Optional[tuple[str, Optional[str], Any]]:
    """The first reason a received session record cannot be parsed, as ``(kind, field, value)``, or
    None. Kinds: ``not_object``, ``missing``, ``not_text``, ``bad_timestamp``, ``not_flag``. The one
    rule both stand-ins apply; each words (and answers) it in its own protocol: ``ihc-local`` lists the
    record in ``partialFailureErrors`` (206), ``ihc-local-server`` refuses the request with 406, the
    status the API documents for "error in parsing a customer journey" (spec §1.4)."""
    if not isinstance(record, dict):
        return ("not_object", None, record)
    for name in RECORD_REQUIRED:
        if record.get(name) is None:
            return ("missing", name, None)
    for name in RECORD_TEXT:
        value = record[name]
        if not isinstance(value, str) or not value:
            return ("not_text", name, value)
    if not TIMESTAMP_RE.fullmatch(record["timestamp"]):
        return ("bad_timestamp", "timestamp", record["timestamp"])
    for name in RECORD_FLAGS:
        value = record.get(name, 0)
        if type(value) is not int or value not in (0, 1):
            return ("not_flag", name, value)
    return None


_HASH_KEYS = ("ihc-api-ledger-A", "ihc-api-ledger-B")  # 16 characters each, as pandas requires


@dataclass
class PreparedJourneys:
    """Rows in canonical order plus one row per conversion.

    ``rows``: the eight record columns (normalised) and ``sent`` (bool). ``conversions``: columns
    ``conversion_id``, ``start``, ``sessions``, ``sessions_sent`` (rows ``start .. start+sessions-1``
    of ``rows``; the sent ones are the last ``sessions_sent``), ``h1``, ``h2`` (int64 fingerprint).
    """

    rows: pd.DataFrame
    conversions: pd.DataFrame

    @property
    def n_conversions(self) -> int:
        return len(self.conversions)

    @property
    def truncated(self) -> pd.DataFrame:
        c = self.conversions
        return c[c["sessions_sent"] < c["sessions"]]

    def fingerprint(self) -> str:
        """128-bit fingerprint of the whole input (order free), as 32 hex digits."""
        h1 = self.conversions["h1"].to_numpy(dtype=np.int64).view(np.uint64)
        h2 = self.conversions["h2"].to_numpy(dtype=np.int64).view(np.uint64)
        return f"{int(h1.sum(dtype=np.uint64)):016x}{int(h2.sum(dtype=np.uint64)):016x}"


def prepare_journeys(journeys: pd.DataFrame, max_sessions: int) -> PreparedJourneys:
    """Check, normalise, order, truncate and fingerprint; bad input raises ``InputError``."""
    frame = _normalise(journeys)
    if len(frame) == 0:
        empty_rows = frame.assign(sent=np.zeros(0, dtype=bool))
        empty = pd.DataFrame(
            {
                "conversion_id": pd.Series([], dtype=str),
                "start": np.zeros(0, np.int64),
                "sessions": np.zeros(0, np.int64),
                "sessions_sent": np.zeros(0, np.int64),
                "h1": np.zeros(0, np.int64),
                "h2": np.zeros(0, np.int64),
            }
        )
        return PreparedJourneys(empty_rows, empty)

    index = JourneyIndex.from_frame(frame)
    rows = index.frame[JOURNEY_COLUMNS].reset_index(drop=True)
    sent = index.pos >= index.rows_in_journey - max_sessions
    rows = rows.assign(sent=sent)

    h1 = _row_hash(rows, _HASH_KEYS[0])
    h2 = _row_hash(rows, _HASH_KEYS[1])
    conversions = pd.DataFrame(
        {
            "conversion_id": rows["conversion_id"].to_numpy()[index.start],
            "start": index.start.astype(np.int64),
            "sessions": index.length.astype(np.int64),
            "sessions_sent": np.minimum(index.length, max_sessions).astype(np.int64),
            "h1": np.add.reduceat(h1, index.start).view(np.int64),
            "h2": np.add.reduceat(h2, index.start).view(np.int64),
        }
    )
    return PreparedJourneys(rows, conversions)


def _row_hash(rows: pd.DataFrame, key: str) -> np.ndarray:
    hashed = pd.util.hash_pandas_object(rows, index=False, hash_key=key, categorize=False)
    return hashed.to_numpy(dtype=np.uint64)


def _normalise(journeys: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(journeys, pd.DataFrame):
        raise InputError("journeys must be a DataFrame in the API record format")
    columns = set(journeys.columns)
    missing = [c for c in JOURNEY_COLUMNS if c not in columns and not (c == "timestamp" and "ts" in columns)]
    if missing:
        raise InputError(f"journeys lack column(s) for the IHC API: {', '.join(missing)}")
    frame = pd.DataFrame(index=pd.RangeIndex(len(journeys)))
    for column in ("conversion_id", "session_id", "channel_label"):
        values = journeys[column].reset_index(drop=True)
        if values.isna().any():
            raise InputError(f"journeys: {column} is empty in {int(values.isna().sum())} row(s)")
        frame[column] = values.astype(str)
    frame["timestamp"] = _timestamps(journeys)
    for column in FLAG_COLUMNS:
        frame[column] = _flag(journeys[column].reset_index(drop=True), column)
    frame = frame[JOURNEY_COLUMNS]
    duplicated = frame.duplicated(["conversion_id", "session_id"])
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        raise InputError(
            f"journeys: session {first['session_id']!r} appears twice in conversion "
            f"{first['conversion_id']!r}; the API answers one row per (conversion, session)"
        )
    return frame


def _timestamps(journeys: pd.DataFrame) -> pd.Series:
    if "timestamp" not in journeys.columns:
        seconds = journeys["ts"].to_numpy(dtype=np.int64)
        return pd.Series(seconds_to_timestamps(seconds), dtype=str)
    values = journeys["timestamp"].reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(values):
        if values.isna().any():
            raise InputError("journeys: timestamp is empty in some rows")
        return values.dt.strftime("%Y-%m-%d %H:%M:%S").astype(str)
    if values.isna().any():
        raise InputError(f"journeys: timestamp is empty in {int(values.isna().sum())} row(s)")
    text = values.astype(str)
    bad = ~text.str.fullmatch(TIMESTAMP_PATTERN)
    if bad.any():
        raise InputError(
            f"journeys: timestamp {text[bad].iloc[0]!r} is not 'YYYY-MM-DD HH:MM:SS' (optionally followed by ' +HHMM')"
        )
    return text


def _flag(values: pd.Series, column: str) -> np.ndarray:
    if values.isna().any():
        raise InputError(f"journeys: {column} is empty in {int(values.isna().sum())} row(s)")
    try:
        numbers = pd.to_numeric(values).to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise InputError(f"journeys: {column} must be 0 or 1") from None
    if not np.isin(numbers, (0.0, 1.0)).all():
        bad = numbers[~np.isin(numbers, (0.0, 1.0))][0]
        raise InputError(f"journeys: {column} must be 0 or 1, found {bad:g}")
    return numbers.astype(np.int64)
