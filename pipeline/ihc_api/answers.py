"""Checking one answer against what was sent: which conversions are attributed, which failed and why.

A conversion is accepted only when
- every session sent for it came back exactly once, and nothing else came back for it;
- each of ``initializer``, ``holder``, ``closer``, ``ihc`` is a number (not a string, bool or null) in
  [0, 1];
- its ``ihc`` values sum to 1 within ``store.credit_sum_tolerance``: 1e-3 (±1e-4 observed), or the
  rounding bound n·0.5e-4 of its n non-zero 4-decimal values when that is larger (n > 20) — the
  same rule the store applies, so an accepted answer is always stored;
- the server did not name it in ``partialFailureErrors``.
Any other conversion of the request is failed with a reason; its rows are discarded, never half-kept.
A 206 is such an answer with some conversions failed; a 200 can be too (a session missing).

``partialFailureErrors`` has never been observed with content (spec §1.3), so its elements are read
leniently: an object naming the conversion under a key containing ``conversion`` (``conversion_id``,
``conversionId``, ...) with its reason under ``message``/``error``/``reason``, or any element (string
or object) whose text contains a conversion id that was sent, as a whole token.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..journey_index import CREDIT_COLUMNS, VALUE_COLUMNS
from ..store import CREDIT_SUM_TOLERANCE, credit_sum_tolerance
from .redact import one_line

SUM_TOLERANCE = CREDIT_SUM_TOLERANCE  # widened by store.credit_sum_tolerance for long journeys


@dataclass
class CheckedChunk:
    credits: pd.DataFrame  # CREDIT_COLUMNS, rows of accepted conversions only
    failed: pd.DataFrame  # conversion_id, reason
    unexpected_rows: int  # rows for conversions that were not sent (ignored)
    partial_errors: int  # elements of partialFailureErrors


def check_reply(sent: pd.DataFrame, payload: dict, secrets: tuple = ()) -> CheckedChunk:
    """``sent``: the (conversion_id, session_id) rows of the request, as strings.

    ``secrets`` are redacted from the server's failure reasons before they are cut to length.
    """
    sent_conv = sent["conversion_id"].astype(str).reset_index(drop=True)
    sent_keys = _keys(sent_conv, sent["session_id"].astype(str).reset_index(drop=True))
    sent_ids = pd.unique(sent_conv)
    reasons: dict[str, str] = {}  # conversion -> the first problem found (failures are rare)

    partial = payload.get("partialFailureErrors") or []
    if not isinstance(partial, list):
        partial = [partial]
    for conversion_id, reason in _partial_failures(partial, set(sent_ids), secrets):
        reasons.setdefault(conversion_id, f"partial failure reported by the API: {reason}")

    returned, unexpected_rows = _value_frame(payload.get("value"))
    if len(returned):
        known = isin(returned["conversion_id"], sent_ids)
        unexpected_rows += int((~known).sum())
        if not known.all():
            returned = returned[known].reset_index(drop=True)
    returned_conv = returned["conversion_id"]
    returned_keys = _keys(returned_conv, returned["session_id"])

    # sessions sent but not returned
    missing = ~isin(sent_keys, returned_keys)
    if missing.any():
        per_conversion = sent_conv.value_counts()
        for conversion_id, n in sent_conv[missing].value_counts(sort=False).items():
            reasons.setdefault(
                conversion_id,
                f"{n} of {per_conversion[conversion_id]} session(s) missing from the API's answer",
            )
    # sessions returned that were not sent for that conversion
    extra = ~isin(returned_keys, sent_keys)
    _add_reasons(reasons, returned_conv[extra], "the API returned a session that was not sent")
    # sessions returned more than once
    dup = returned_keys.duplicated(keep=False).to_numpy()
    _add_reasons(reasons, returned_conv[dup], "the API returned a session more than once")
    if len(returned):
        # values that are not numbers in [0, 1]
        bad = ~_valid_values(returned)
        _add_reasons(reasons, returned_conv[bad], "the API returned a value that is not a number in [0, 1]")
        # ihc sums per conversion
        ihc = pd.to_numeric(returned["ihc"], errors="coerce")
        sums = ihc.groupby(returned_conv, sort=False).sum()
        off = sums[(sums - 1.0).abs() > SUM_TOLERANCE]
        if len(off):
            nonzero = (ihc > 0).groupby(returned_conv, sort=False).sum().reindex(off.index)
            off = off[(off - 1.0).abs() > credit_sum_tolerance(nonzero.to_numpy())]
            for conversion_id, total in off.items():
                reasons.setdefault(conversion_id, f"ihc sums to {total:.4f}, not 1")

    if reasons:
        returned = returned[~isin(returned_conv, list(reasons))]
    credits = returned[CREDIT_COLUMNS].copy() if len(returned) else _empty_credits()
    credits = credits.astype({column: np.float64 for column in VALUE_COLUMNS})
    order = sent_ids[isin(sent_ids, list(reasons))]  # failures in the order sent
    failed = pd.DataFrame(
        {
            "conversion_id": pd.Series(order, dtype=str),
            "reason": pd.Series([reasons[c] for c in order], dtype=str),
        }
    )
    return CheckedChunk(credits.reset_index(drop=True), failed, unexpected_rows, len(partial))


def isin(values, universe) -> np.ndarray:
    """Boolean mask of ``values`` found in ``universe`` via a hash index (pandas' ``isin`` on Arrow
    strings converts the universe element by element)."""
    index = pd.Index(pd.unique(np.asarray(universe, dtype=object)), dtype=object)
    return index.get_indexer(np.asarray(values, dtype=object)) >= 0


def _keys(conversion_ids: pd.Series, session_ids: pd.Series) -> pd.Series:
    """One string per (conversion, session): hashable in one vectorised pass."""
    return conversion_ids.astype(str) + "\x1f" + session_ids.astype(str)


def _add_reasons(reasons: dict, conversion_ids: pd.Series, text: str) -> None:
    """Record ``text`` for each conversion that has no reason yet (the first problem found is kept)."""
    if len(conversion_ids):
        for conversion_id in pd.unique(conversion_ids):
            reasons.setdefault(conversion_id, text)


def _value_frame(value) -> tuple[pd.DataFrame, int]:
    """The ``value`` rows as a frame with string ids; rows that are not objects are counted apart."""
    if not isinstance(value, list) or not value:
        return _empty_returned(), 0
    objects = [row for row in value if isinstance(row, dict)]
    malformed = len(value) - len(objects)
    if not objects:
        return _empty_returned(), malformed
    frame = pd.DataFrame.from_records(objects)
    for column in ["conversion_id", "session_id", *VALUE_COLUMNS]:
        if column not in frame.columns:
            frame[column] = None
    frame = frame[["conversion_id", "session_id", *VALUE_COLUMNS]]
    ids_ok = _ids_ok(frame["conversion_id"]) & _ids_ok(frame["session_id"])
    malformed += int((~ids_ok).sum())
    frame = frame[ids_ok].reset_index(drop=True)
    frame["conversion_id"] = frame["conversion_id"].astype(str)
    frame["session_id"] = frame["session_id"].astype(str)
    return frame, malformed


def _ids_ok(values: pd.Series) -> np.ndarray:
    """Ids must be strings (or integers); checked element-wise only when the column is mixed."""
    if pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
        return values.notna().to_numpy()
    if pd.api.types.is_integer_dtype(values):
        return np.ones(len(values), dtype=bool)
    return values.map(lambda v: isinstance(v, (str, int)) and not isinstance(v, bool)).to_numpy(dtype=bool)


def _valid_values(frame: pd.DataFrame) -> np.ndarray:
    ok = np.ones(len(frame), dtype=bool)
    for column in VALUE_COLUMNS:
        values = frame[column]
        if pd.api.types.is_float_dtype(values) or pd.api.types.is_integer_dtype(values):
            numbers = values.to_numpy(dtype=np.float64)
        else:  # mixed column (strings, bools, nulls): check element by element
            is_number = values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).to_numpy(
                dtype=bool
            )
            numbers = np.where(is_number, pd.to_numeric(values.where(is_number), errors="coerce"), np.nan)
        with np.errstate(invalid="ignore"):
            ok &= np.isfinite(numbers) & (numbers >= 0.0) & (numbers <= 1.0)
    return ok


def _partial_failures(errors: list, sent_ids: set, secrets: tuple) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for element in errors:
        reason = _error_text(element, secrets)
        named = None
        if isinstance(element, dict):
            for key, value in element.items():
                if "conversion" in str(key).lower() and str(value) in sent_ids:
                    named = [str(value)]
                    break
        if named is None:
            text = element if isinstance(element, str) else json.dumps(element, default=str)
            named = [cid for cid in sent_ids if _mentions(text, cid)]
        found.extend((cid, reason) for cid in named)
    return found


def _mentions(text: str, conversion_id: str) -> bool:
    """``conversion_id`` appears in ``text`` as a whole token (not inside a longer id or word)."""
    if conversion_id not in text:
        return False
    return re.search(r"(?<![\w-])" + re.escape(conversion_id) + r"(?![\w-])", text) is not None


def _error_text(element, secrets: tuple) -> str:
    if isinstance(element, dict):
        for key in ("message", "error", "reason", "errorMessage", "detail"):
            if element.get(key):
                return one_line(str(element[key]), 200, secrets)
        return one_line(json.dumps(element, default=str), 200, secrets)
    return one_line(str(element), 200, secrets)


def _empty_returned() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in ["conversion_id", "session_id", *VALUE_COLUMNS]})


def _empty_credits() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "conversion_id": pd.Series([], dtype=str),
            "session_id": pd.Series([], dtype=str),
            **{c: pd.Series([], dtype=np.float64) for c in VALUE_COLUMNS},
        }
    )
