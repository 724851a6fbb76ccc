"""Stage 4 — store: write a run's credit into the output tables in one transaction.

The rows of the conversions covered by this run replace any earlier rows of those conversions — in
``attribution_customer_journey`` (challenge schema: conv_id, session_id, ihc) and in the product's
``pipeline_attribution`` (plus the phase values and the model) — and nothing else changes. Conversions
the run could not attribute (no earlier session, an API failure) lose their earlier rows and are listed
in ``pipeline_unattributed`` with the reason, so a report never mixes an old model's credit in silently.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable, Mapping, Sequence

import numpy as np

from .errors import PipelineError
from .journey_index import PHASES
from .schema import ensure_output_tables

CREDIT_SUM_TOLERANCE = 1e-3
# The IHC API rounds each value to 4 decimals, so n non-zero values can sum to 1 ± n·0.5e-4
# legitimately: the tolerance widens to that bound for long journeys (n > 20). One rule, shared by the
# API client's answer check (ihc_api.checking) and the store, so what one accepts the other stores.
ROUNDING_SLACK = 0.5e-4
FLOAT_EPS = 1e-9  # the sum itself is computed in floating point


def credit_sum_tolerance(nonzero):
    """How far from 1 a conversion's credit may sum, given its number of non-zero values (array ok)."""
    return np.maximum(CREDIT_SUM_TOLERANCE, ROUNDING_SLACK * np.asarray(nonzero, dtype=np.float64)) + FLOAT_EPS


def check_credits(conversion_ids: np.ndarray, ihc: np.ndarray) -> None:
    """Refuse to store credit that is negative, missing or does not sum to 1 per conversion
    (within ``credit_sum_tolerance``)."""
    if len(ihc) == 0:
        return
    ihc = np.asarray(ihc, dtype=np.float64)
    if not np.isfinite(ihc).all() or (ihc < -1e-12).any():
        raise PipelineError("the model produced negative or missing credit; nothing was stored")
    ids, inverse = np.unique(np.asarray(conversion_ids, dtype=object), return_inverse=True)
    sums = np.bincount(inverse, weights=ihc, minlength=len(ids))
    nonzero = np.bincount(inverse, weights=(ihc > 0).astype(np.float64), minlength=len(ids))
    off = np.flatnonzero(np.abs(sums - 1.0) > credit_sum_tolerance(nonzero))
    if len(off):
        raise PipelineError(
            f"credit of {len(off)} conversion(s) does not sum to 1 (e.g. {ids[off[0]]}: "
            f"{sums[off[0]]:.6f}); nothing was stored"
        )


def store_credits(
    con: sqlite3.Connection,
    credits: Mapping[str, Sequence],
    covered: Iterable[str],
    *,
    model: str,
    run_id: str,
    unattributed: Iterable[tuple[str, str]] = (),
) -> int:
    """Replace the rows of ``covered`` conversions by ``credits``; call inside a transaction.

    ``credits`` maps CREDIT_COLUMNS to equal-length sequences (a DataFrame works); phases may be NaN
    (stored NULL) for models without phases. ``unattributed``: (conversion_id, reason) pairs.
    Returns the number of rows written.
    """
    conv = np.asarray(credits["conversion_id"], dtype=object)
    ihc = np.asarray(credits["ihc"], dtype=np.float64)
    check_credits(conv, ihc)
    ensure_output_tables(con)
    con.execute("CREATE TEMP TABLE IF NOT EXISTS run_conversions (conv_id TEXT PRIMARY KEY)")
    con.execute("DELETE FROM temp.run_conversions")
    con.executemany("INSERT OR IGNORE INTO temp.run_conversions VALUES (?)", ((c,) for c in covered))
    for table in ("attribution_customer_journey", "pipeline_attribution", "pipeline_unattributed"):
        con.execute(f"DELETE FROM {table} WHERE conv_id IN (SELECT conv_id FROM temp.run_conversions)")
    conv_l = conv.tolist()
    sess_l = np.asarray(credits["session_id"], dtype=object).tolist()
    ihc_l = ihc.tolist()
    con.executemany(
        "INSERT INTO attribution_customer_journey (conv_id, session_id, ihc) VALUES (?, ?, ?)",
        zip(conv_l, sess_l, ihc_l),
    )
    phases = [_nullable(credits[p]) for p in PHASES]
    con.executemany(
        "INSERT INTO pipeline_attribution (conv_id, session_id, initializer, holder, closer, ihc, model)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        zip(conv_l, sess_l, *phases, ihc_l, [model] * len(conv_l)),
    )
    con.executemany(
        "INSERT OR REPLACE INTO pipeline_unattributed (conv_id, reason, model, run_id) VALUES (?, ?, ?, ?)",
        ((c, r, model, run_id) for c, r in unattributed),
    )
    con.execute("DELETE FROM temp.run_conversions")
    return len(conv_l)


def _nullable(values) -> list:
    """Floats with NaN as None, so SQLite stores NULL (models without phases)."""
    arr = np.asarray(values, dtype=np.float64)
    if not np.isnan(arr).any():
        return arr.tolist()
    out = arr.astype(object)
    out[np.isnan(arr)] = None
    return out.tolist()
