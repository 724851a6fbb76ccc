"""Before a run through the IHC API: how many conversions, sessions and requests it will send.

``estimate_run(conn, journeys, config)`` plans the run exactly as ``run.attribute_via_api`` does —
the same truncation to the session limit, the same ledger lookup (conversions an earlier run with
the same endpoint, conversion type and redistribution parameter already answered, with the same
content, are not sent again), the same packing into requests — but reads only: no table is created,
no request is made, the key is not needed. The one difference: a run also re-sends a "done"
conversion whose stored values turn out incomplete, which the estimate does not look for (so it may
say slightly less than the run sends; never more).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Optional

import pandas as pd

from .chunking import plan_chunks
from .config import ApiConfig, url_for_display
from .ledger import read_ledger, run_key
from .request_records import prepare_journeys


@dataclass(frozen=True)
class ApiEstimate:
    conversions: int  # conversions with at least one session in the window
    already_done: int  # answered by an earlier run (same content): not sent again
    kept_failed: int  # recorded as failed by an earlier run: not sent again unless retried
    to_send: int  # conversions this run sends: the quota it uses
    sessions: int  # session records it sends
    requests: int  # requests (chunks) it sends, without retries
    truncated_journeys: int  # journeys longer than the session limit, sent as their latest sessions
    max_journeys: int
    max_sessions: int

    def line(self) -> str:
        """The estimate in words, for the page and the CLI."""
        if self.conversions == 0:
            return "No conversion in these dates has a session before it: a run sends nothing."
        if self.to_send == 0:
            return (
                f"All {self.conversions:,} conversions were answered by an earlier run with this conversion type: "
                "a run sends nothing and uses no quota."
            )
        text = (
            f"A run sends {self.to_send:,} conversion{'s' if self.to_send != 1 else ''} "
            f"({self.sessions:,} sessions) in {self.requests:,} request{'s' if self.requests != 1 else ''} "
            f"of at most {self.max_journeys:,} conversions and {self.max_sessions:,} sessions each — "
            f"{self.to_send:,} conversion{'s' if self.to_send != 1 else ''} of your quota"
        )
        skipped = []
        if self.already_done:
            skipped.append(f"{self.already_done:,} already answered by an earlier run")
        if self.kept_failed:
            skipped.append(f"{self.kept_failed:,} that failed before (not retried)")
        if skipped:
            text += f"; not sent again: {' and '.join(skipped)}"
        if self.truncated_journeys:
            text += (
                f"; {self.truncated_journeys:,} journey{'s' if self.truncated_journeys != 1 else ''} longer than "
                f"{self.max_sessions:,} sessions are sent as their latest {self.max_sessions:,}"
            )
        return text + "."


def estimate_run(
    conn: sqlite3.Connection,
    journeys: pd.DataFrame,
    config: ApiConfig,
    *,
    force: bool = False,
    retry_failed: bool = False,
) -> ApiEstimate:
    """What ``attribute_via_api(conn, journeys, config, force=…, retry_failed=…)`` would send."""
    prepared = prepare_journeys(journeys, config.max_sessions)
    conversions = prepared.conversions
    done = failed = pd.Series(False, index=conversions.index)
    known = _ledger(conn, config) if not force else None
    if known is not None and len(known):
        state = conversions[["conversion_id", "h1", "h2"]].merge(known, on=["conversion_id", "h1", "h2"], how="left")
        done = (state["status"] == "done").fillna(False)
        failed = (state["status"] == "failed").fillna(False) & (not retry_failed)
    todo = conversions[~(done | failed).to_numpy()]
    sessions = todo["sessions_sent"].to_numpy()
    chunks = plan_chunks(sessions, config.max_journeys, config.max_sessions)
    return ApiEstimate(
        conversions=len(conversions),
        already_done=int(done.sum()),
        kept_failed=int(failed.sum()),
        to_send=len(todo),
        sessions=int(sessions.sum()),
        requests=len(chunks),
        truncated_journeys=len(prepared.truncated),
        max_journeys=config.max_journeys,
        max_sessions=config.max_sessions,
    )


def _ledger(conn: sqlite3.Connection, config: ApiConfig) -> Optional[pd.DataFrame]:
    """The ledger of this run key, or None when no run with it ever started (nothing is created)."""
    if not config.conv_type_id:
        return None
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"ihc_api_keys", "ihc_api_ledger"} <= tables:
        return None
    key = run_key(url_for_display(config.api_url), config.conv_type_id, config.redistribution_parameter)
    row = conn.execute("SELECT key_id FROM ihc_api_keys WHERE run_key = ?", (key,)).fetchone()
    return read_ledger(conn, int(row[0])) if row else None


def estimate_window(conn: sqlite3.Connection, window, config: ApiConfig, *, force: bool = False) -> ApiEstimate:
    """``estimate_run`` for the journeys of ``window`` (a ``pipeline.window.Window``) of this database,
    built as a run builds them (reading only)."""
    from ..journeys import build_journeys

    return estimate_run(conn, build_journeys(conn, window).frame, config, force=force)
