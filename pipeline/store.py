"""Stage 4 — store: write a run's credit into the output tables in one transaction.

The rows of the conversions covered by this run replace any earlier rows of those conversions — in
``attribution_customer_journey`` (challenge schema: conv_id, session_id, ihc) and in the product's
``pipeline_attribution`` (plus the phase values and the model) — and nothing else changes. Conversions
the run could not attribute (no earlier session, an API failure) lose their earlier rows and are listed
in ``pipeline_unattributed`` with the reason, so a report never mixes an old model's credit in silently.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable, Optional

import numpy as np
import pandas as pd

from .errors import PipelineError
from .schema import ensure_output_tables

CREDIT_SUM_TOLERANCE = 1e-3  # the API's values are rounded to 4 decimals per session


def check_credits(credits: pd.DataFrame, tolerance: float = CREDIT_SUM_TOLERANCE) -> None:
    """Refuse to store credit that is negative, missing or does not sum to 1 per conversion."""
    if credits.empty:
        return
    ihc = credits["ihc"].to_numpy(dtype=np.float64)
    if not np.isfinite(ihc).all() or (ihc < -1e-12).any():
        raise PipelineError("the model produced negative or missing credit; nothing was stored")
    sums = credits.groupby("conversion_id", sort=False)["ihc"].sum()
    off = sums[(sums - 1.0).abs() > tolerance]
    if len(off):
        raise PipelineError(
            f"credit of {len(off)} conversion(s) does not sum to 1 (e.g. {off.index[0]}: "
            f"{off.iloc[0]:.6f}); nothing was stored"
        )


def store_credits(
    con: sqlite3.Connection,
    credits: pd.DataFrame,
    covered: Iterable[str],
    *,
    model: str,
    run_id: str,
    unattributed: Optional[pd.DataFrame] = None,
) -> int:
    """Replace the rows of ``covered`` conversions by ``credits``; call inside a transaction.

    ``credits`` has CREDIT_COLUMNS; ``unattributed`` has (conversion_id, reason). Returns rows written.
    """
    check_credits(credits)
    ensure_output_tables(con)
    con.execute("CREATE TEMP TABLE IF NOT EXISTS run_conversions (conv_id TEXT PRIMARY KEY)")
    con.execute("DELETE FROM temp.run_conversions")
    con.executemany(
        "INSERT OR IGNORE INTO temp.run_conversions VALUES (?)", ((c,) for c in covered)
    )
    for table in ("attribution_customer_journey", "pipeline_attribution", "pipeline_unattributed"):
        con.execute(f"DELETE FROM {table} WHERE conv_id IN (SELECT conv_id FROM temp.run_conversions)")
    conv = credits["conversion_id"].to_numpy(dtype=object).tolist()
    sess = credits["session_id"].to_numpy(dtype=object).tolist()
    ihc = credits["ihc"].to_numpy(dtype=np.float64).tolist()
    con.executemany(
        "INSERT INTO attribution_customer_journey (conv_id, session_id, ihc) VALUES (?, ?, ?)",
        zip(conv, sess, ihc),
    )
    phases = [_nullable(credits[p]) for p in ("initializer", "holder", "closer")]
    con.executemany(
        "INSERT INTO pipeline_attribution (conv_id, session_id, initializer, holder, closer, ihc, model)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        zip(conv, sess, *phases, ihc, [model] * len(conv)),
    )
    if unattributed is not None and len(unattributed):
        con.executemany(
            "INSERT OR REPLACE INTO pipeline_unattributed (conv_id, reason, model, run_id) VALUES (?, ?, ?, ?)",
            (
                (c, r, model, run_id)
                for c, r in zip(unattributed["conversion_id"].tolist(), unattributed["reason"].tolist())
            ),
        )
    con.execute("DELETE FROM temp.run_conversions")
    return len(conv)


def _nullable(column: pd.Series) -> list:
    """Floats with NaN as None, so SQLite stores NULL (models without phases)."""
    values = column.astype("float64")
    return values.astype(object).where(values.notna(), None).tolist()
