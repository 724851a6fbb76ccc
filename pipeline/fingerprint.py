"""Fingerprints of the input tables: has anything in them changed since a stage ran?

Exact and cheap: the table's schema plus the raw bytes of every b-tree page of the table, listed in tree
order by SQLite's ``dbstat`` virtual table and read straight from the file inside one read transaction
(≈30 MB for the 450k-session demo table, hashed in tens of milliseconds). Any change to any row changes
a page. Where that is not possible — an in-memory database, a build of SQLite without ``dbstat``, a
database in WAL mode whose latest pages may still sit in the -wal file — the fingerprint falls back to
an SQL checksum that reads every column of every row (slower, and blind only to edits that keep every
aggregate equal).

A fingerprint can change without a content change (VACUUM rewrites pages): that only makes a stage
stale and redone, it can never make stale results look current.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3

from .db import database_file, quote_ident, read_snapshot, table_columns, table_exists
from .schema import INPUT_TABLES

MISSING = "missing"


def input_fingerprints(con: sqlite3.Connection, tables=INPUT_TABLES) -> dict[str, str]:
    """{table: fingerprint} for the input tables, all read from one consistent snapshot."""
    with read_snapshot(con):
        method = _page_hash if _pages_readable(con) else _sql_checksum
        return {t: method(con, t) if table_exists(con, t) else MISSING for t in tables}


def _pages_readable(con: sqlite3.Connection) -> bool:
    path = database_file(con)
    if not path or not os.path.exists(path):
        return False
    if con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        return False
    try:
        con.execute("SELECT 1 FROM dbstat LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


def _schema_sql(con: sqlite3.Connection, table: str) -> bytes:
    row = con.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    return (row[0] or "").encode() if row else b""


def _page_hash(con: sqlite3.Connection, table: str) -> str:
    pages = con.execute(
        "SELECT pgoffset, pgsize FROM dbstat WHERE name = ? ORDER BY path", (table,)
    ).fetchall()
    digest = hashlib.blake2b(_schema_sql(con, table), digest_size=16)
    with open(database_file(con), "rb") as fh:
        fd = fh.fileno()
        # Coalesce runs of adjacent pages into one read each.
        run_start, run_len = None, 0
        for offset, size in pages:
            if run_start is not None and offset == run_start + run_len:
                run_len += size
                continue
            if run_start is not None:
                digest.update(os.pread(fd, run_len, run_start))
            run_start, run_len = offset, size
        if run_start is not None:
            digest.update(os.pread(fd, run_len, run_start))
    return "p:" + digest.hexdigest()


def _sql_checksum(con: sqlite3.Connection, table: str) -> str:
    """Aggregates over every column of every row, position-weighted so moved values count too."""
    parts = ["count(*)"]
    for col in table_columns(con, table):
        c = quote_ident(col)
        parts += [
            f"total(length({c}))",
            f"total(unicode({c}) * (rowid % 7919))",
            f"total(unicode(substr({c}, -1)) * (rowid % 104729))",
            f"total(unicode(substr({c}, length({c}) / 2 + 1)) * (rowid % 15485863))",
            f"total(CASE WHEN typeof({c}) IN ('integer', 'real') THEN {c} * (rowid % 611953) END)",
            f"sum(typeof({c}) = 'null')",
        ]
    row = con.execute(f"SELECT {', '.join(parts)} FROM {quote_ident(table)}").fetchone()
    digest = hashlib.blake2b(_schema_sql(con, table) + repr(row).encode(), digest_size=16)
    return "s:" + digest.hexdigest()
