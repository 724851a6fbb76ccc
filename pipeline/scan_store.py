"""The run's input scans stored in the database, reused while the input tables are unchanged.

The whole-table scans of ``scans.py`` (validation's and the report's: the session profile, the cost per
channel-day, the cost screen and checks, the conversions without an earlier session) depend only on the
input tables. A run stores each scan it ran in ``pipeline_input_scans``, in the transaction that writes
its report (a run that fails or is killed stores none: SQLite rolls the whole transaction back), keyed
by the input fingerprints and the scan's SQL text. The next run that needs the scans (another model,
window or lookback: the report is redone; the inputs not) reads them instead of scanning every session
again, when the key is the same: same inputs, same query. A changed input table changes its
fingerprint and so the key: the stored rows are then ignored, and replaced after the scan.

Not stored: a result with a BLOB value (JSON has none; such input is rare and gets validation's
attention anyway), a result of more than ``MAX_ROWS`` rows (the conversions without an earlier session
of a very large database: the text would outweigh the scan), and any result while an input is a VIEW
(its rows may change without a commit, and its fingerprint is never stored either) or missing.

A forced run ("Recompute every stage", ``--force``) scans again: an analyst who forces a recompute
expects one; its fresh results replace the stored ones.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Optional

from .db import table_exists
from .fingerprint import MISSING
from .scans import ALL_SCANS, SCANS, InputScans

TABLE = "pipeline_input_scans"
MAX_ROWS = 100_000


def scan_key(fingerprints: dict[str, str], sql: str) -> Optional[str]:
    """The key of scan ``sql`` on inputs of ``fingerprints``; None where it must not be stored (an
    input is a VIEW or missing)."""
    return scan_keys(fingerprints).get(sql)


def scan_keys(fingerprints: dict[str, str]) -> dict[str, str]:
    """{SQL text: key} of every scan of ``ALL_SCANS`` on inputs of ``fingerprints``, computed once per
    load or save (empty where nothing may be stored). The key hashes the JSON text
    ``[[[table, fingerprint], ...], sql]``; the fingerprints' part is encoded and hashed once."""
    if not fingerprints or any(fp == MISSING or fp.startswith("v:") for fp in fingerprints.values()):
        return {}
    head = hashlib.blake2b(f"[{json.dumps(sorted(fingerprints.items()))}, ".encode(), digest_size=16)
    keys = {}
    for sql in ALL_SCANS.values():
        h = head.copy()
        h.update(f"{json.dumps(sql)}]".encode())
        keys[sql] = h.hexdigest()
    return keys


def load(con: sqlite3.Connection, fingerprints: dict[str, str]) -> dict[str, list]:
    """{scan name: rows} of the stored scans whose key matches these inputs."""
    if not table_exists(con, TABLE):
        return {}
    keys = scan_keys(fingerprints)
    found = {}
    for name, key, rows in con.execute(f"SELECT name, key, rows FROM {TABLE}"):
        sql = ALL_SCANS.get(name)
        if sql is not None and key is not None and key == keys.get(sql):
            found[name] = [tuple(row) for row in json.loads(rows)]
    return found


def _text(rows: list) -> Optional[str]:
    """The rows as JSON, or None when they must not be stored (too many; a BLOB)."""
    if len(rows) > MAX_ROWS:
        return None
    try:
        return json.dumps(rows, allow_nan=True, separators=(",", ":"))
    except TypeError:  # bytes: a BLOB value
        return None


def save(con: sqlite3.Connection, fingerprints: dict[str, str], results: dict[str, list]) -> None:
    """Store ``results`` ({scan name: rows}, scanned on inputs of ``fingerprints``) inside the caller's
    write transaction (the table exists: ``schema.ensure_output_tables``). A result that may not be
    stored removes any stored one of its name."""
    keys = scan_keys(fingerprints)
    for name, rows in results.items():
        sql = ALL_SCANS.get(name)
        key = keys.get(sql) if sql is not None else None
        text = _text(rows) if key is not None else None
        if text is None:
            con.execute(f"DELETE FROM {TABLE} WHERE name = ?", (name,))
        else:
            con.execute(f"INSERT OR REPLACE INTO {TABLE} (name, key, rows) VALUES (?, ?, ?)", (name, key, text))


def open_stored_scans(
    con: sqlite3.Connection, fingerprints: dict[str, str], names: tuple[str, ...] = tuple(SCANS)
) -> InputScans:
    """The run's scans: the stored ones that match these inputs, and those of ``names`` (the scans the
    run reads: ``scans.SCANS``, or ``scans.REPORT_SCANS`` when validation is current) not stored
    started as usual (``validate.start_scans``); when every one is stored, none is started and the
    rest run on demand. The session profile stands for the channel-days. The structure is checked
    either way (InputError)."""
    from .validate import check_structure, start_scans

    stored = load(con, fingerprints)
    have = stored.keys() | ({"channel_days"} if "session_profile" in stored else set())
    missing = tuple(name for name in names if name not in have)
    if not missing:
        check_structure(con).raise_if_fatal()
        scans = InputScans.on_demand(con)
    else:
        scans = start_scans(con, names=missing)
    for name, rows in stored.items():
        scans.provide(name, rows)
    return scans
