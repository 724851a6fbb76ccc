"""The IHC web API (``--model ihc-api``) on an engine source: the engine builds the journeys, the
SQLite API path (``ihc_api.attribute_via_api``) sends them, and the engine writes the credit back.

The API path keeps its resumable ledger (the chunks answered, per run key and journey fingerprint) in
SQLite tables. On an engine source those tables live in a local SQLite **work file** that holds the
ledger only (never the API key, never the input tables):

| source | work file |
|---|---|
| ``duckdb:///DIR/NAME`` | ``DIR/.NAME.ihc-api.db`` (beside the file) |
| ``parquet:///DIR/NAME`` | ``DIR/.NAME.ihc-api.db`` (beside the folder) |
| a server source (``postgres://…``, warehouses) | ``$XDG_CACHE_HOME/attribution-pipeline/ihc-api/<hash>.db`` (``~/.cache`` without it); ``<hash>``: the source URL without its secrets |

An interrupted run (a fatal API error, Ctrl-C) leaves every answered chunk in the work file; the next
``run`` sends only what is missing, exactly as on a SQLite file. Deleting the work file only costs
re-sending.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..progress import Progress
from ..window import Window

SUFFIX = ".ihc-api.db"


def ledger_path(source) -> Path:
    """The work file that keeps the API ledger of ``source`` (a ``sources.Source``)."""
    if source.path is not None:
        path = Path(source.path)
        return path.parent / f".{path.name}{SUFFIX}"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    digest = hashlib.sha256(source.display().encode("utf-8")).hexdigest()[:20]
    return Path(base) / "attribution-pipeline" / "ihc-api" / f"{digest}{SUFFIX}"


def _journey_index(mod, eng, window: Window):
    """Every journey of the window (the engine's ``journeys``: its batches gathered), as one
    ``JourneyIndex``; None when there is none."""
    from ..journey_index import JourneyIndex

    columns = mod.journeys(eng, window).columns
    return JourneyIndex.from_columns(columns) if len(columns["conversion_id"]) else None


def api_credit(
    mod,
    eng,
    choice,
    window: Window,
    *,
    force: bool = False,
    retry_failed: bool = False,
    progress: Optional[Progress] = None,
):
    """The API's credit for the window's journeys on ``eng``.

    Returns (columns {conv_id, session_id, ihc, ts} of the credited sessions, journey facts
    {sessions, first_ts, seconds reading them}, [(conversion_id, reason)] of the conversions the API did not attribute,
    extra summary {"api": …, "warnings": […]}). Raises as ``attribute_via_api`` does, after the
    answered chunks are committed to the work file.
    """
    from ..ihc_api import attribute_via_api

    started = time.perf_counter()
    index = _journey_index(mod, eng, window)
    read_seconds = time.perf_counter() - started
    if index is None:
        empty = {
            k: np.zeros(0, dtype={"ihc": np.float64, "ts": np.int64}.get(k, object))
            for k in ("conv_id", "session_id", "ihc", "ts")
        }
        return empty, {"sessions": 0, "first_ts": None, "seconds": read_seconds}, [], {}
    path = ledger_path(eng.source)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    try:
        result = attribute_via_api(
            con, index.frame, choice.api, force=force, retry_failed=retry_failed, progress=progress
        )
    finally:
        con.close()
    credits = result.credits
    # each credited session's time, from the journeys (the API answers ids and values only)
    frame = index.frame[["conversion_id", "session_id", "ts"]]
    timed = credits[["conversion_id", "session_id", "ihc"]].merge(frame, on=["conversion_id", "session_id"], how="left")
    columns = {
        "conv_id": timed["conversion_id"].to_numpy(dtype=object),
        "session_id": timed["session_id"].to_numpy(dtype=object),
        "ihc": timed["ihc"].to_numpy(dtype=np.float64),
        "ts": timed["ts"].to_numpy(dtype=np.int64),
    }
    failed = list(zip(result.failed["conversion_id"].tolist(), result.failed["reason"].tolist()))
    extra = {"api": result.summary.as_dict(), "warnings": list(result.warnings)}
    journeys = {"sessions": index.n_rows, "first_ts": int(np.min(index.ts)), "seconds": read_seconds}
    return columns, journeys, failed, extra
