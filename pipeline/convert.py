"""``convert``: move an analyst's SQLite file to a Parquet folder, a DuckDB file or a Postgres database,
through Arrow (to Postgres: ADBC's COPY, staged tables swapped in one transaction,
``pipeline.engines.postgres.load_tables``).

The three input tables (all their columns), and with ``outputs=True`` also ``attribution_customer_journey``
and ``channel_reporting`` when present, are read with ADBC's SQLite driver (``adbc-driver-sqlite``) as
Arrow record batches and written without a Python loop over rows: ``pyarrow.parquet`` for a Parquet folder
(``NAME.parquet`` per table), DuckDB's Arrow scan for a DuckDB file. Measured on the x10 demo (4.5M
sessions, 2 shared cores): ADBC → Parquet 5.7 s wall / 194 MB peak; a chunked ``sqlite3`` cursor → Arrow
24.5 s / 390 MB; DuckDB's ``sqlite_scanner`` is not in the duckdb wheel (it would be downloaded, and the
network is closed), so it is not an option offline.
To a DuckDB file (idle machine, x10): 7.97 s wall / 11.2 s CPU / 763 MB peak, the SQLite read ahead on a
thread of its own (``prefetched``) while DuckDB writes on one thread (``_to_duckdb`` says why).

Types round-trip exactly: each column's Arrow type follows its declared SQLite affinity (TEXT → string,
INTEGER → int64, REAL → float64; dates and times stay 'YYYY-MM-DD' / 'HH:MM:SS' text, ids stay text, flags
stay integers). ADBC infers a column's type from its first batch, so a typed sentinel row leads the query
(and is dropped) — a column that starts with NULLs is still typed by its declaration. A value that does not
fit its column's type (text in an INTEGER column, say) stops the conversion with a one-line InputError:
``validate`` names such values; fix them first.

Atomic: everything is written to a staging file/folder beside the target, then renamed into place; an
existing target is refused unless ``overwrite`` (it is then replaced only after the new one is complete).
The SQLite file is opened read-only and never modified.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generator, Iterator, Optional

from .errors import InputError, no_room, no_room_text
from .progress import Progress, ensure
from .schema import INPUT_TABLES
from .sources import Source, parse_source

OUTPUT_TABLES = ["attribution_customer_journey", "channel_reporting"]
BATCH_ROWS = 131_072  # rows per Arrow batch read from SQLite
ROW_GROUP_ROWS = 1 << 20  # rows per Parquet row group


@dataclass
class ConvertResult:
    target: str  # display form
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def convert(
    db: str | os.PathLike,
    target: str | Source,
    *,
    outputs: bool = False,
    overwrite: bool = False,
    progress: Optional[Progress] = None,
) -> ConvertResult:
    """Copy the input tables (and with ``outputs`` the output tables) of SQLite file ``db`` to ``target``
    (``parquet:///folder`` or ``duckdb:///file.duckdb``)."""
    progress = ensure(progress)
    started = time.perf_counter()
    source = parse_source(db) if not isinstance(db, Source) else db
    if source.kind != "sqlite":
        raise InputError(f"{source.display()}: convert reads a SQLite file (give its path or sqlite:///path.db)")
    dest = parse_source(target) if not isinstance(target, Source) else target
    if dest.kind not in ("parquet", "duckdb", "postgres"):
        raise InputError(
            f"{dest.display()}: convert writes parquet:///folder, duckdb:///file.duckdb or postgres://…/database"
        )
    from .db import check_sqlite_file, open_database, table_exists

    check_sqlite_file(source.file)
    if dest.kind != "postgres" and dest.file.resolve() == source.file.resolve():
        raise InputError(f"{dest.display()}: the target is the source file itself")
    if dest.kind != "postgres" and dest.file.exists() and not overwrite:
        raise dest.error("already exists; pass --overwrite to replace it")
    con = open_database(source.file)
    try:
        tables = []
        for table in INPUT_TABLES:
            if not table_exists(con, table):
                raise InputError(f"{source.display()}: table {table} is missing")
            tables.append((table, _declared_types(con, table)))
            _check_storage_classes(con, source, table, tables[-1][1])
        if outputs:
            tables += [(t, _declared_types(con, t)) for t in OUTPUT_TABLES if table_exists(con, t)]
    finally:
        con.close()
    if dest.kind == "postgres":
        from .engines.postgres import load_tables

        result = ConvertResult(dest.display())
        reader = _Reader(source)
        try:
            result.rows = load_tables(dest, ((t, reader.batches(t, types)) for t, types in tables), overwrite, progress)
        finally:
            reader.close()
        result.seconds = time.perf_counter() - started
        return result
    dest.file.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{dest.file.name}.converting-", dir=dest.file.parent)
        if dest.kind == "parquet"
        else tempfile.mkstemp(prefix=f".{dest.file.name}.converting-", suffix=".duckdb", dir=dest.file.parent)[1]
    )
    result = ConvertResult(dest.display())
    try:
        if dest.kind == "duckdb":
            staging.unlink()  # DuckDB creates the file itself
        else:
            umask = os.umask(0)
            os.umask(umask)
            staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the target gets ordinary rights
        reader = _Reader(source)
        duck = None
        if dest.kind == "duckdb":
            import duckdb

            duck = duckdb.connect(str(staging))
            duck.execute("SET threads = 1")  # see _to_duckdb
        try:
            for i, (table, types) in enumerate(tables):
                progress(i, len(tables), f"convert: {table}")
                batches = prefetched(reader.batches(table, types))
                try:
                    if duck is not None:
                        result.rows[table] = _to_duckdb(duck, table, batches)
                    else:
                        result.rows[table] = _to_parquet(staging / f"{table}.parquet", batches)
                finally:
                    batches.close()  # the reading thread ends before the reader is closed
        finally:
            reader.close()
            if duck is not None:
                duck.close()
        _swap(staging, dest.file, overwrite)
    except BaseException as exc:
        _remove(staging)
        if dest.kind == "duckdb":
            _remove(Path(str(staging) + ".wal"))
        words = no_room(exc) if isinstance(exc, Exception) else ""
        if words:  # a full disk or a file-size limit: nothing was written
            raise dest.error(no_room_text(words)) from None
        raise
    result.seconds = time.perf_counter() - started
    progress(len(tables), len(tables), f"convert: {sum(result.rows.values()):,} rows in {result.seconds:.1f} s")
    return result


# ---- reading: ADBC, typed by the declared affinity ----------------------------------------------------


def _affinity(declared: str) -> str:
    """SQLite's column affinity rules (https://sqlite.org/datatype3.html §3.1)."""
    d = (declared or "").upper()
    if "INT" in d:
        return "integer"
    if any(word in d for word in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if "BLOB" in d or not d:
        return "blob"
    if any(word in d for word in ("REAL", "FLOA", "DOUB")):
        return "real"
    return "numeric"


SENTINEL = {"integer": "0", "text": "''", "real": "0.0"}  # typed values that lead the query
EXPECTED_ARROW = {"integer": "int64", "text": "string", "real": "double"}


def _declared_types(con, table: str) -> list[tuple[str, str]]:
    from .db import quote_ident

    return [(row[1], _affinity(row[2])) for row in con.execute(f"PRAGMA table_info({quote_ident(table)})")]


def _check_storage_classes(con, source: Source, table: str, types: list[tuple[str, str]]) -> None:
    """A required column without a declared text, integer or real type may hold values of several
    storage classes, which Arrow cannot: ADBC would widen them (integer ids 7 become text '7', which
    then match text ids that SQLite never matches; integer ids beside real ones would all become reals,
    which SQLite's validation refuses as mixed). Such a column stops the conversion with one line
    naming it (``validate`` counts them); a BLOB where text belongs is left to the read, which refuses
    it in any column (``_check_blobs``). One pass over the table, only when it has such a column (a
    file made with typed columns, as the demo and ``schema.INPUT_DDL``, has none)."""
    from .db import quote_ident
    from .schema import REQUIRED_COLUMNS
    from .validate import ID_COLUMNS, TEXT_ROLES, TYPE_WORDS

    loose = [name for name, affinity in types if affinity in ("blob", "numeric") and name in REQUIRED_COLUMNS[table]]
    if not loose:
        return
    kinds = ", ".join(f"typeof({quote_ident(c)})" for c in loose)
    rows = con.execute(f"SELECT DISTINCT {kinds} FROM {quote_ident(table)}").fetchall()
    for i, column in enumerate(loose):
        seen = {row[i] for row in rows} - {"null", *(["blob"] if (table, column) in TEXT_ROLES else [])}
        words = " and ".join(TYPE_WORDS.get(k, k) for k in sorted(seen))
        if (table, column) in ID_COLUMNS and seen == {"integer", "real"}:  # one Arrow column of reals: 7 → 7.0
            raise InputError(
                f"{source.display()}: {table}.{column} holds ids of mixed types ({words}), which the conversion "
                "would turn into real numbers; `validate` names them — store them all as integers first"
            )
        if len(seen) > 1 and seen != {"integer", "real"}:
            raise InputError(
                f"{source.display()}: {table}.{column} holds values of mixed types ({words}), which one Arrow "
                "column cannot keep; `validate` names them — store them as one type (text) first"
            )


def _check_blobs(source: Source, table: str, columns: list[str], bits) -> None:
    """``bits``: per row, bit i set where ``columns[i]`` holds a BLOB — none may."""
    import pyarrow.compute as pc

    if not pc.max(bits).as_py():
        return
    column = next(c for i, c in enumerate(columns) if pc.max(pc.bit_wise_and(bits, 1 << i)).as_py())
    from .validate import TEXT_ROLES

    raise InputError(
        f"{source.display()}: {table}.{column} holds binary (BLOB) values where {TEXT_ROLES[(table, column)]} "
        "belong; `validate` names them — store them as text first"
    )


def _check_utf8(source: Source, table: str, batch) -> None:
    """SQLite stores any bytes as TEXT; DuckDB refuses text that is not UTF-8 (a traceback), and a Parquet
    reader would fail on it later: refused here, naming the column."""
    import pyarrow as pa

    for name, column in zip(batch.schema.names, batch.columns):
        if pa.types.is_string(column.type):
            try:
                column.validate(full=True)
            except pa.ArrowInvalid:
                raise InputError(
                    f"{source.display()}: {table}.{name} holds text that is not UTF-8; re-encode it as UTF-8 first"
                ) from None


class _Reader:
    def __init__(self, source: Source):
        import adbc_driver_sqlite.dbapi as adbc

        self.source = source
        uri = f"file:{source.file.resolve()}?mode=ro"
        self.con = adbc.connect(uri)

    def batches(self, table: str, types: list[tuple[str, str]]):
        """The table's rows as Arrow record batches, each column typed by its affinity."""
        import pyarrow as pa

        from .db import quote_ident
        from .validate import TEXT_ROLES

        t = quote_ident(table)
        sentinel = ", ".join(SENTINEL.get(aff, "NULL") for _, aff in types)
        columns = ", ".join(quote_ident(name) for name, _ in types)
        names = [name for name, _ in types]
        # Once a batch has typed a column as text, ADBC reads a later BLOB in it as text: the bytes of
        # b'Display' would become 'Display', which SQLite never matches. So a bit per column where text
        # belongs, set on a row whose value there is a BLOB, rides along in the same pass (checked per
        # batch, then dropped).
        text_roles = [name for name in names if (table, name) in TEXT_ROLES]
        if text_roles:
            bits = " | ".join(f"((typeof({quote_ident(n)}) = 'blob') << {i})" for i, n in enumerate(text_roles))
            sentinel, columns = f"{sentinel}, 0", f"{columns}, {bits}"
        sql = f"SELECT {sentinel} UNION ALL SELECT * FROM (SELECT {columns} FROM {t})"
        cursor = self.con.cursor()
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
        try:
            cursor.execute(sql)
            stream = cursor.fetch_record_batch()
            first = True
            for batch in stream:
                if first:
                    batch = batch.slice(1)
                if text_roles:
                    _check_blobs(self.source, table, text_roles, batch.column(len(names)))
                if first:
                    self._check_types(table, types, batch)
                    first = False
                named = pa.RecordBatch.from_arrays(batch.columns[: len(names)], names=names)
                _check_utf8(self.source, table, named)
                yield named
        except OSError as exc:  # ADBC's type errors arrive as OSError ("Type mismatch in column N")
            message = str(exc).splitlines()[0]
            if "Type mismatch" in message:
                raise InputError(
                    f"{self.source.display()}: table {table} has a value that does not fit its column's type "
                    f"({message.removeprefix('[SQLite] ')}); `validate` lists such values, fix them first"
                ) from None
            raise InputError(f"{self.source.display()}: could not read table {table}: {message}") from None
        finally:
            cursor.close()

    def _check_types(self, table: str, types: list[tuple[str, str]], batch) -> None:
        """Within a batch ADBC widens a column of mixed values to text: refuse that for a typed column."""
        for (name, affinity), column in zip(types, batch.columns):
            expected = EXPECTED_ARROW.get(affinity)
            if expected is not None and str(column.type) != expected:
                raise InputError(
                    f"{self.source.display()}: table {table} has a value that does not fit its column's type "
                    f"({name} is declared {affinity.upper()} but holds {column.type} values); `validate` "
                    "lists such values, fix them first"
                )

    def close(self) -> None:
        self.con.close()


# ---- writing -------------------------------------------------------------------------------------------


def _to_parquet(path: Path, batches) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer, rows = None, 0
    pending: list = []
    pending_rows = 0

    def flush():
        nonlocal writer, pending, pending_rows
        table = pa.Table.from_batches(pending)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        pending, pending_rows = [], 0

    schema = None
    try:
        for batch in batches:
            schema = batch.schema
            pending.append(batch)
            pending_rows += batch.num_rows
            rows += batch.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                flush()
        if pending or writer is None:
            if not pending and schema is not None:
                pending = [pa.RecordBatch.from_pylist([], schema=schema)]
            if pending:
                flush()
    finally:
        if writer is not None:
            writer.close()
    return rows


def prefetched(batches: Iterator, depth: int = 4) -> Generator:
    """``batches`` read ahead on a thread of their own (at most ``depth`` waiting), so reading SQLite
    (ADBC, which releases the GIL) and writing the target overlap on two cores. An error of the reader is
    raised here; stopping early (the writer failed) stops the reader before this generator returns."""
    import queue
    import threading

    done = object()
    waiting: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(done)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(exc)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="convert-read", daemon=True)
    reader.start()
    try:
        while True:
            item = waiting.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def _to_duckdb(con, table: str, batches) -> int:
    """``CREATE TABLE … AS`` from the Arrow batches, on one DuckDB thread (the connection's setting). With
    several threads DuckDB's order-preserving parallel insert doubled the x10 file (711 MB against 360 MB)
    and more than doubled the CPU time (15.7 s against 6.4 s, from an in-memory Arrow table, measured);
    without order preservation it is as fast, but the rows would no longer be in the SQLite file's order
    (validation's examples come in that order). So one thread writes, in order, while the other core
    reads SQLite (``prefetched``)."""
    import pyarrow as pa

    from .db import quote_ident

    reader = None
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        return 0

    def chained():
        yield first
        yield from batches

    reader = pa.RecordBatchReader.from_batches(first.schema, chained())
    con.register("_convert_input", reader)
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"CREATE TABLE {quote_ident(table)} AS SELECT * FROM _convert_input")
    finally:
        con.unregister("_convert_input")
    return con.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchall()[0][0]


def _swap(staging: Path, target: Path, overwrite: bool) -> None:
    """Put the complete ``staging`` in ``target``'s place; an old target goes only after that."""
    if not target.exists():
        os.replace(staging, target)
        return
    if not overwrite:  # appeared while converting
        raise InputError(f"{target} appeared while converting; pass --overwrite to replace it")
    old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)
        raise
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
