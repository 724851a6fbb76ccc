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

The fast path (the up-to-date run): SQLite adds 1 to the file change counter (header bytes 24–27) in
every transaction it commits in rollback-journal mode, whatever program commits it and whatever its
journal mode (in exclusive locking mode, only in the first commit under the lock: enough to leave the
stored value). When the product commits a stage, it also stores in that transaction, in
``pipeline_input_state``, the input fingerprints it computed, the file's identity (device and inode: a
commit writes in place) and the change counter the file will carry after that commit (the counter read
under the transaction's write lock, + 1) — only if the counter had not moved since the fingerprints
were computed. At the next read,
if the file is that file and its counter is that value, no transaction was committed since ours, so the
inputs are the ones fingerprinted and the stored fingerprints are used (≈1 ms instead of ≈0.1 s).

Where the counter does not tell, every read takes the full fingerprint: WAL mode (header bytes 18/19
not 1, or a ``-wal`` file beside the database: a WAL commit moves the counter only when it changes
the first page, checkpointed or not), a counter not marked valid by the last commit (bytes 92–95),
and any other file than the one the state was stored in — a copy, including a file copied without its
hot journal (the half-written pages of an unfinished transaction keep the old counter) and a copy
edited as often as the original (equal counters). A hot journal beside the file is rolled back before
the read (``db.open_database``), which restores the contents and the counter together. An input that
is a VIEW is never taken from the stored state (its rows may change without a commit: ``date('now')``).
A copy keeps them (``known_inputs`` / ``adopt_inputs``): a byte copy of a file taken under a read
transaction of the source has the source's inputs, so the fingerprints the source holds for its current
counter are stored in the copy (with the copy's identity, in one commit) instead of hashing the copy's
pages again (≈0.1 s on the demo, on the path of every dashboard run).
Not covered: bytes of an input table rewritten in place by something that bypasses SQLite and keeps
the header (a hex editor, a deleted hot journal, a journal-less copy of this file taken mid-write and
copied back over it); the page hash would see those.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
import zlib
from pathlib import Path
from typing import Optional, cast

from .db import (
    SQLITE_MAGIC,
    database_file,
    open_database,
    quote_ident,
    read_snapshot,
    table_columns,
    table_exists,
    transaction,
)
from .errors import InputError
from .schema import INPUT_TABLES

OUTPUT_TABLES = ("attribution_customer_journey", "channel_reporting")
OWN_PREFIXES = ("pipeline_", "ihc_api_")

MISSING = "missing"
ROW_BATCH = 20_000
STATE_TABLE = "pipeline_input_state"  # the fast path's stored state (see the module doc)


def input_fingerprints(con: sqlite3.Connection, tables=INPUT_TABLES) -> dict[str, str]:
    """{table: fingerprint} for the input tables, all read from one consistent snapshot.
    InputError if the product's own tables are damaged (see ``check_own_tables``)."""
    return input_state(con, tables)[0]


def input_state(con: sqlite3.Connection, tables=INPUT_TABLES) -> tuple[dict[str, str], Optional[int]]:
    """(``input_fingerprints``, the file change counter they were read at), the counter None where
    it does not tell whether the file changed (see ``change_counter``). The stored fingerprints are
    used when the counter is the one stored with them (the fast path, module doc)."""
    with read_snapshot(con):
        check_own_tables(con)  # (its first query takes the snapshot's shared lock: the header holds still)
        counter = change_counter(con)
        known = _stored_fingerprints(con, counter, _file_id(con)) if counter is not None else None
        if known is not None and all(t in known for t in tables):
            return {t: known[t] for t in tables}, counter
        pages = _pages_readable(con)
        return {t: _fingerprint(con, t, pages) for t in tables}, counter


def change_counter(con: sqlite3.Connection) -> Optional[int]:
    """The database file's change counter, read from its header; call while holding a lock (inside a
    read snapshot after its first query, or a write transaction). None where it does not count every
    commit: no file, WAL mode (header bytes 18/19, or a -wal file beside it), or a counter not marked
    valid (bytes 92–95) by the last rollback-mode commit."""
    path = database_file(con)
    if not path or os.path.exists(path + "-wal"):
        return None
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError:
        return None
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC) or header[18:20] != b"\x01\x01":
        return None
    counter, valid_for = struct.unpack(">I", header[24:28])[0], struct.unpack(">I", header[92:96])[0]
    return counter if counter == valid_for else None


def remember_inputs(con: sqlite3.Connection, counter: Optional[int], fingerprints: dict[str, str]) -> None:
    """Inside the write transaction that records a stage: store ``fingerprints`` as the inputs of
    this file once its change counter is ``counter`` (the one it will carry after this commit), or
    with None forget any stored state. The caller guarantees both (``status.StageBook``)."""
    con.execute(f"DELETE FROM {STATE_TABLE}")
    file_id = _file_id(con)
    # A VIEW's rows can change without a commit (date('now'), random()): its fingerprint is never stored.
    views = any(value.startswith("v:") for value in fingerprints.values())
    if counter is not None and file_id is not None and not views:
        con.execute(
            f"INSERT INTO {STATE_TABLE} (id, change_counter, file_id, fingerprints) VALUES (1, ?, ?, ?)",
            (counter, file_id, json.dumps(fingerprints, sort_keys=True)),
        )


def known_inputs(con: sqlite3.Connection, tables=INPUT_TABLES) -> Optional[dict[str, str]]:
    """The input fingerprints the file behind ``con`` holds for its current state (the fast path's
    stored ones), or None where they would have to be computed. Call inside a read snapshot that has
    taken its lock (the caller copies the file under that same lock: ``adopt_inputs``)."""
    counter = change_counter(con)
    known = _stored_fingerprints(con, counter, _file_id(con)) if counter is not None else None
    if known is None or not all(t in known for t in tables):
        return None
    return {t: known[t] for t in tables}


def adopt_inputs(path: "str | Path", fingerprints: dict[str, str]) -> bool:
    """Store ``fingerprints`` as the inputs of the database file at ``path``, a byte copy of a file
    whose ``known_inputs`` they were, taken under that file's read lock: the copy's own identity and the
    change counter of this commit make the next read of the copy take the fast path. False (nothing
    stored) where the counter does not tell (WAL mode, counter not valid). For a copy nobody uses yet
    (the caller renames it into place after): its commit is not synced to disk, as the copy was not."""
    con = open_database(path, write=True)
    try:
        con.execute("PRAGMA synchronous = OFF")
        if not table_exists(con, STATE_TABLE):
            return False
        with transaction(con):
            now = change_counter(con)  # under the write lock: our commit adds 1
            if now is None:
                return False
            remember_inputs(con, (now + 1) & 0xFFFFFFFF, fingerprints)
        return True
    finally:
        con.close()


def _file_id(con: sqlite3.Connection) -> Optional[str]:
    """Which file this is (device and inode), or None without a file."""
    path = database_file(con)
    try:
        st = os.stat(path) if path else None
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}" if st else None


def _stored_fingerprints(con: sqlite3.Connection, counter: int, file_id: Optional[str]) -> Optional[dict[str, str]]:
    if file_id is None or not table_exists(con, STATE_TABLE):
        return None
    row = con.execute(
        f"SELECT fingerprints FROM {STATE_TABLE} WHERE change_counter = ? AND file_id = ?", (counter, file_id)
    ).fetchone()
    return json.loads(row[0]) if row else None


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
