"""Fingerprints of the input tables: has anything in them changed since a stage ran?

Exact and cheap: the table's schema plus the raw bytes of every b-tree page of the table, listed in tree
order by SQLite's ``dbstat`` virtual table and read straight from the file inside one read transaction
(≈35 MB for the demo's three tables, ≈0.1 s). Any change to any row changes a page. The page bytes are
summarised by CRC-32 and Adler-32 together (64 bits, 4× faster than a cryptographic hash): the chance
that an edit keeps both is ~1e-19, and this guards staleness, not secrets. Where that is not possible — an in-memory database, a build of SQLite without ``dbstat``, a
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
import zlib
from typing import cast

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
    pages = con.execute("SELECT pgoffset, pgsize FROM dbstat WHERE name = ? ORDER BY path", (table,)).fetchall()
    crc, adler, total = 0, 1, 0
    with open(cast(str, database_file(con)), "rb") as fh:  # a file: see input_fingerprints
        fd = fh.fileno()
        for offset, size in _runs(pages):  # adjacent pages are read in one go
            chunk = os.pread(fd, size, offset)
            crc, adler, total = zlib.crc32(chunk, crc), zlib.adler32(chunk, adler), total + len(chunk)
    schema = hashlib.blake2b(_schema_sql(con, table), digest_size=8).hexdigest()
    return f"p:{schema}:{total:x}:{crc:08x}{adler:08x}"


def _runs(pages):
    start, length = None, 0
    for offset, size in pages:
        if start is not None and offset == start + length:
            length += size
            continue
        if start is not None:
            yield start, length
        start, length = offset, size
    if start is not None:
        yield start, length


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
