"""Calibrated IHC profiles kept in the analyst's own database: table ``pipeline_ihc_profiles``.

One row per name (``name``, ``created_at``, ``profile_json``: the profile document, ``fidelity_json``:
the held-out fidelity measured when it was fitted, ``notes_json``: what was fitted and what was kept).
Saving a name again replaces it. The pipeline model ``ihc`` takes such a profile as its ``profile``
parameter in document form (``stored_profile(conn, name)``), so a stage record holds the profile itself
and a run never depends on a file.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from typing import Optional

from ..errors import InputError
from .profile import Profile, profile_from_dict

DDL = """CREATE TABLE IF NOT EXISTS pipeline_ihc_profiles (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    profile_json TEXT NOT NULL,
    fidelity_json TEXT,
    notes_json TEXT)"""


def _exists(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pipeline_ihc_profiles'")
    return row.fetchone() is not None


def save_profile(
    conn: sqlite3.Connection,
    profile: Profile,
    fidelity: Optional[dict] = None,
    notes: Optional[list] = None,
) -> None:
    """Store (or replace) ``profile`` under its name, in one transaction."""
    if not profile.name.strip():
        raise InputError("a stored IHC profile needs a name")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(DDL)
        conn.execute(
            "INSERT OR REPLACE INTO pipeline_ihc_profiles VALUES (?, ?, ?, ?, ?)",
            (
                profile.name,
                stamp,
                json.dumps(profile.to_dict(), sort_keys=True),
                None if fidelity is None else json.dumps(fidelity, sort_keys=True),
                None if notes is None else json.dumps(list(notes)),
            ),
        )
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def stored_profiles(conn: sqlite3.Connection) -> list[dict]:
    """Every stored profile, newest first: name, created_at, profile (document), fidelity, notes."""
    if not _exists(conn):
        return []
    rows = conn.execute(
        "SELECT name, created_at, profile_json, fidelity_json, notes_json FROM pipeline_ihc_profiles "
        "ORDER BY created_at DESC, name"
    ).fetchall()
    return [
        {
            "name": name,
            "created_at": created,
            "profile": json.loads(doc),
            "fidelity": json.loads(fid) if fid else None,
            "notes": json.loads(notes) if notes else [],
        }
        for name, created, doc, fid, notes in rows
    ]


def stored_profile(conn: sqlite3.Connection, name: str) -> dict:
    """The document of the stored profile ``name`` (validated)."""
    for row in stored_profiles(conn):
        if row["name"] == name:
            profile_from_dict(row["profile"], f"stored profile {name!r}")
            return row["profile"]
    raise InputError(f"no stored IHC profile named {name!r} in this database")
