"""Fingerprints of the input tables: has anything in them changed since a stage ran?

Exact and cheap: the table's schema plus the raw bytes of every b-tree page of the table, listed in tree
order by SQLite's ``dbstat`` virtual table and read straight from the file inside one read transaction
(≈35 MB for the demo's three tables, ≈0.1 s). Any change to any row changes a page. The page bytes are
summarised by CRC-32 and Adler-32 together (64 bits, 4× faster than a cryptographic hash): the chance
that an edit keeps both is ~1e-19, and this guards staleness, not secrets.

Where pages cannot be read — an in-memory database, a build of SQLite without ``dbstat``, a database in
WAL mode (its latest pages may sit in the -wal file) — and for an input that is a VIEW (its pages are
its SQL only; the rows it returns live in other tables), the fingerprint is a hash of every value of
every row, with its type, in a deterministic order (a view's rows sorted by all its columns): exact
too, ≈1 s per 450k sessions. Every input table is also checked: the product's own tables must pass
``PRAGMA integrity_check`` (a file copied without its hot journal must not look up to date).

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
from .errors import InputError
from .schema import INPUT_TABLES

OUTPUT_TABLES = ("attribution_customer_journey", "channel_reporting")
OWN_PREFIXES = ("pipeline_", "ihc_api_")

MISSING = "missing"
ROW_BATCH = 20_000


def input_fingerprints(con: sqlite3.Connection, tables=INPUT_TABLES) -> dict[str, str]:
    """{table: fingerprint} for the input tables, all read from one consistent snapshot.
    InputError if the product's own tables are damaged (see ``check_own_tables``)."""
    with read_snapshot(con):
        check_own_tables(con)
        pages = _pages_readable(con)
        return {t: _fingerprint(con, t, pages) for t in tables}


def _fingerprint(con: sqlite3.Connection, table: str, pages: bool) -> str:
    if not table_exists(con, table):
        return MISSING
    if pages and not _is_view(con, table):
        return _page_hash(con, table)
    return _row_hash(con, table)


def check_own_tables(con: sqlite3.Connection) -> None:
    """``PRAGMA integrity_check`` of the tables the product wrote (outputs, stage records, API ledger):
    a file copied without its hot journal, or restored half-written, keeps input fingerprints that
    match while its results are half-changed. ``quick_check`` is not enough: a half-applied DELETE
    leaves well-formed pages whose rows are missing from the table's index, which only
    ``integrity_check`` compares. The input tables need no check here: any changed page changes
    their fingerprint. ≈6 ms on the demo database after a run (the whole file: ≈70 ms quick_check)."""
    own = [
        name
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if name in OUTPUT_TABLES or name.startswith(OWN_PREFIXES)
    ]
    for name in own:
        problems = [row[0] for row in con.execute(f"PRAGMA integrity_check({quote_ident(name)})").fetchmany(3)]
        if problems != ["ok"]:
            raise InputError(
                f"{database_file(con) or 'the database'} is damaged (table {name}: {problems[0]}); restore it "
                "from a backup, or copy it again together with its -journal file"
            )


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


def _is_view(con: sqlite3.Connection, table: str) -> bool:
    row = con.execute("SELECT type FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    return row is not None and row[0] == "view"


def _has_rowid(con: sqlite3.Connection, table: str) -> bool:
    try:
        con.execute(f"SELECT rowid FROM {quote_ident(table)} LIMIT 0")
    except sqlite3.OperationalError:
        return False
    return True


def _row_hash(con: sqlite3.Connection, table: str) -> str:
    """A hash of every value of every row, with its type (1, 1.0, '1' and '01' differ), read in a
    deterministic order: a table by rowid; a view (or a table without rowid) sorted by all its
    columns with binary collation, so the same rows give the same hash whatever order the view's
    query returns them in. Exact; ≈1 s per 450k rows (the page hash: ≈0.1 s for the demo)."""
    columns = [quote_ident(c) for c in table_columns(con, table)]
    if not _is_view(con, table) and _has_rowid(con, table):
        order = "rowid"
    else:
        order = ", ".join(f"{c} COLLATE BINARY" for c in columns)
    digest = hashlib.blake2b(_schema_sql(con, table), digest_size=16)
    cursor = con.execute(f"SELECT {', '.join(columns)} FROM {quote_ident(table)} ORDER BY {order}")
    rows = 0
    while batch := cursor.fetchmany(ROW_BATCH):
        digest.update(repr(batch).encode())
        rows += len(batch)
    kind = "v" if _is_view(con, table) else "r"
    return f"{kind}:{rows:x}:{digest.hexdigest()}"
