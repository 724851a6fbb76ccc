"""The DuckDB engine: the SQLite engine's set work as DuckDB SQL over a ``duckdb:///file`` or a
``parquet:///folder`` (same numbers; parity tests in tests/test_engine_duckdb.py).

- ``validate(engine)``: the same findings as ``pipeline.validate`` (code, severity, count, message, in the
  same order) from aggregate queries: one pass over conversions, one over sessions, one over costs, plus a
  duplicate count per id column and the users-without-sessions anti-join. SQLite's checks translated:
  a date is bad unless it is exactly 'YYYY-MM-DD' and a real day; a time unless exactly 'HH:MM:SS' with
  HH < 24; a flag unless 0 or 1; a number column of a numeric type is always a number (a text column
  holds a non-number where ``TRY_CAST(x AS DOUBLE)`` fails, as SQLite's REAL affinity would keep it text).
- ``journey_batches(engine, window)``: each conversion's sessions strictly before it (same user; with
  ``lookback_days`` no more than that many days earlier, inclusive), sorted by conversion, time and
  session_id, streamed from one query as batches of WHOLE journeys (a journey never straddles two
  batches) in the columns ``pipeline.journeys.journey_columns`` builds — so every per-journey model runs
  on each batch unchanged. ``journeys(engine, window)`` gathers them into a ``journeys.Journeys``.
- ``channel_report(engine, credits)``: one row per channel-day of the sessions in range with cost (each
  session's cost once), credit and credit × revenue, summed in fixed point as ``pipeline.sums.sql_sum``
  does in SQLite: each term ``round(x * scale)`` with SQLite's round() (reproduced exactly, see
  ``_units``; DuckDB's own round is C's, which differs at 0.49999999999999994), cast to BIGINT, summed
  exactly (HUGEINT), and divided once as SQLite does (the integer as a double / the scale) — so the
  figures are bit-identical to the SQLite engine's ``channel_reporting``, whatever the row order.
- ``write_outputs(engine, credits, report)``: ``attribution_customer_journey`` and ``channel_reporting``
  with the challenge schema (VARCHAR/DOUBLE), as tables of the DuckDB file (staging tables renamed in
  one transaction) or as Parquet folders of those names (staging folder, then renamed into place).

Inputs are never modified: a Parquet source is read through views of an in-memory DuckDB; a DuckDB file
is opened read-only unless outputs are to be written.

Why plain DuckDB SQL rather than Ibis: the SQL of each stage already exists (SQLite), the translation is a
few functions (``_bad_date``, ``_units`` …), and DuckDB runs it directly. Bit-identity with SQLite needs
control of each term's rounding and of the final division, which plain SQL gives. Ibis is not installed
here and installing it would change the shared environment's pinned packages, so it was not measured; it
is worth measuring for the Spark and warehouse dialects (docs/engines.md).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from ..errors import InputError
from ..journeys import Journeys, journey_columns, sessions_per
from ..processes import pid_alive
from ..schema import REQUIRED_COLUMNS, channel_label, channel_sql, no_channel_sql
from ..sources import Source, check_local, duckdb_lock_holder, parquet_files, parse_source
from ..sums import CREDIT_SCALE, MONEY_SCALE
from ..validate import (
    BLANK,
    EXAMPLE_COLUMNS,
    EXAMPLES,
    FLAGS,
    MATCHED,
    TEXT_ROLES,
    ValidationReport,
    binary_column_finding,
    cost_coverage_findings,
    ids_clash,
    structure_findings,
    table_findings,
    type_mismatch_finding,
    without_earlier_sessions_finding,
)
from ..window import Window
from . import paths
from .columns import as_number, as_text, is_numeric, type_words

OUTPUT_TABLES = ("attribution_customer_journey", "channel_reporting")
BATCH_ROWS = 200_000  # journey rows fetched per batch (a batch holds whole journeys, so it may be larger)


@dataclass
class DuckEngine:
    """An open DuckDB connection over a source's tables (as tables or as views of Parquet files)."""

    source: Source
    con: Any  # duckdb.DuckDBPyConnection
    present: dict  # table → {column: DuckDB type} of the tables that exist
    # results that depend only on the input tables, computed once per open engine (inputs are never
    # written by the engine; an engine is opened per command): see ``_once``
    cache: dict = field(default_factory=dict)

    def sql(self, query: str, params=None) -> list[tuple]:
        return self.con.execute(query, params or {}).fetchall()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "DuckEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_engine(source: str | Source, *, write: bool = False, threads: Optional[int] = None) -> DuckEngine:
    """Open ``source`` (duckdb or parquet); tables may be missing (``validate`` reports that)."""
    import duckdb

    source = parse_source(source) if not isinstance(source, Source) else source
    if source.kind not in ("duckdb", "parquet"):
        raise InputError(f"{source.display()}: the DuckDB engine reads duckdb:///file or parquet:///folder")
    if source.kind == "duckdb" and source.file.is_file():
        with open(source.file, "rb") as f:
            if f.read(16) == b"SQLite format 3\x00":  # DuckDB would fetch its SQLite extension (offline: fails)
                raise source.error(
                    "is a SQLite database, not a DuckDB one: give its path (or sqlite:///…) to run it as it is, "
                    "or `convert` it to duckdb:///FILE.duckdb"
                )
    check_local(source, {})  # the file or folder exists and is readable
    if source.kind == "duckdb":
        try:
            con = duckdb.connect(str(source.file), read_only=not write)
        except duckdb.Error as exc:  # another process took the file since check_local
            held = duckdb_lock_holder(exc)
            if held is None:
                raise
            raise source.error(held) from None
    else:
        repair_parquet(source.file)  # a run killed inside its output swap: undone before anything reads
        con = duckdb.connect()
        _parquet_views(con, source, [*REQUIRED_COLUMNS, *OUTPUT_TABLES])
    con.execute("SET enable_progress_bar = false")
    _bound_memory(con)
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return DuckEngine(source, con, _present(con))


MEMORY_LIMIT = "500MB"  # DuckDB's buffer pool; ATTRIBUTION_DUCKDB_MEMORY overrides (e.g. "2GB")


def _bound_memory(con) -> None:
    """Keep DuckDB's memory bounded (its default is 80% of the machine): sorts, joins and aggregates
    beyond the limit spill to a temporary folder, and row order is never kept where a query does not
    ask for it (every query here that needs an order says ORDER BY)."""
    limit = os.environ.get("ATTRIBUTION_DUCKDB_MEMORY") or MEMORY_LIMIT
    con.execute("SET memory_limit = $limit", {"limit": limit})
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET temp_directory = $dir", {"dir": os.path.join(tempfile.gettempdir(), "pipeline-duckdb-spill")})


def _present(con) -> dict:
    present: dict = {}
    for table, column, dtype in con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall():
        present.setdefault(table, {})[column] = dtype
    return present


def _parquet_views(con, source: Source, tables) -> None:
    """A view per table over its Parquet files (tables without files get none)."""
    for table in tables:
        files = parquet_files(source, table)
        if files:
            check_local(source, {table: REQUIRED_COLUMNS.get(table, [])})  # one schema across parts
            listed = ", ".join(_literal(str(p)) for p in files)
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet([{listed}])")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ---- SQLite's value checks in DuckDB SQL ---------------------------------------------------------------


def _bad_date(c: str) -> str:
    return f"({c} IS NULL OR NOT coalesce(strftime(try_strptime({c}, '%Y-%m-%d'), '%Y-%m-%d') = {c}, false))"


def _bad_time(c: str) -> str:
    return f"NOT coalesce(regexp_full_match({c}, '([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]'), false)"


def _bad_flag(c: str) -> str:
    return f"({c} IS NULL OR {c} NOT IN (0, 1))"


def _not_number(c: str, dtype: str) -> str:
    return "false" if is_numeric(dtype) else f"({c} IS NOT NULL AND TRY_CAST({c} AS DOUBLE) IS NULL)"


# ---- validation ---------------------------------------------------------------------------------------


def validate(engine: DuckEngine, validator: Optional[type] = None) -> ValidationReport:
    """The findings of ``pipeline.validate.validate`` for this source; never writes. ``validator``: a
    subclass of ``_Validator`` for another SQL dialect (the Spark engine's)."""
    report = ValidationReport()
    if not _structure(engine, report) or not _column_types(engine, report):
        return report
    if validator is None:
        validator = _DuckValidator if isinstance(engine, DuckEngine) else _Validator
    v = validator(engine, report)
    last = v.conversions()
    v.without_earlier_sessions()
    v.sessions(last)
    v.costs()
    v.cost_coverage()
    return report


def _structure(engine: DuckEngine, report: ValidationReport) -> bool:
    found = structure_findings({t: set(engine.present[t]) for t in REQUIRED_COLUMNS if t in engine.present})
    report.findings.extend(found)
    return not found


def _column_types(engine: DuckEngine, report: ValidationReport) -> bool:
    """A typed engine holds one type per column, so what SQLite's validation finds value by value is here
    the column's type: a binary (BLOB) column where ids, dates, times or channel names belong (the value
    checks would cast its bytes to text and accept them, or fail on it), and matched id columns of two
    types (text against integer ids: SQLite never matches them; DuckDB would cast one to the other, or
    fail; a real id against an integer or text one: ``validate.ids_clash``). Both fatal, worded as
    ``pipeline.validate`` words them; False when there is one (the value checks then do not run)."""
    found = []
    for table, column in TEXT_ROLES:
        if type_words(engine.present[table][column]) == "binary (BLOB)":
            n = int(engine.sql(f"SELECT count({column}) FROM {table}")[0][0])
            distinct = f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL"
            examples = [r[0] for r in engine.sql(f"{distinct} ORDER BY 1 LIMIT {EXAMPLES}")]
            found.append(binary_column_finding(table, column, n, examples))
    for (ta, ca), (tb, cb) in MATCHED:
        a, b = type_words(engine.present[ta][ca]), type_words(engine.present[tb][cb])
        if ids_clash(a, b):
            found.append(type_mismatch_finding((ta, ca, a), (tb, cb, b)))
    report.findings.extend(found)
    return not found


class _Validator:
    """The checks, worded as ``pipeline.validate`` words them, over counts from aggregate queries. The SQL
    of each value check is a static method, so an engine with another dialect subclasses this and
    overrides only those (``pipeline.engines.spark``); its ``sql(query, params)`` takes ``$name``."""

    text, number, not_number = staticmethod(as_text), staticmethod(as_number), staticmethod(_not_number)
    bad_date, bad_time, bad_flag = staticmethod(_bad_date), staticmethod(_bad_time), staticmethod(_bad_flag)
    channel, no_channel = staticmethod(channel_sql), staticmethod(no_channel_sql)

    def __init__(self, engine: DuckEngine, report: ValidationReport):
        self.e, self.report = engine, report

    def t(self, table: str, column: str) -> str:
        return self.text(column, self.e.present[table][column])

    def examples(self, sql: str, params=None) -> list:
        return [r[0] for r in self.e.sql(sql + f" LIMIT {EXAMPLES}", params)]

    def word(self, table: str, counts: dict, listing: dict, **facts) -> None:
        """``validate.table_findings`` (the one wording) of this engine's ``counts``; ``listing``:
        {code: (query of the bad values, params)}."""
        self.report.findings.extend(table_findings(table, counts, lambda code: self.examples(*listing[code]), **facts))

    def counts(self, table: str, preds: dict[str, str], extra: Optional[dict] = None, params=None) -> dict:
        extra = extra or {}
        exprs = [f"count(*) FILTER (WHERE {p})" for p in preds.values()] + list(extra.values())
        row = self.e.sql(f"SELECT count(*), {', '.join(exprs)} FROM {table}", params)[0]
        self.report.rows[table] = int(row[0])
        return dict(zip([*preds, *extra], row[1:]))

    def counts_by_date(self, table: str, date: str, preds: dict[str, str], on_date: dict[str, str], params) -> dict:
        """As ``counts``, in two levels: the row predicates ``preds`` per distinct date (a cheap GROUP BY of
        a few hundred groups), then the predicates ``on_date`` over the date ``d`` once per date instead of
        once per row; plus the first and last valid date."""
        inner = ", ".join(f"count(*) FILTER (WHERE {p}) AS {k}" for k, p in preds.items())
        outer = [f"sum({k})" for k in preds] + [f"sum(n) FILTER (WHERE {p})" for p in on_date.values()]
        valid = f"CASE WHEN NOT {self.bad_date('d')} THEN d END"
        row = self.e.sql(
            f"SELECT sum(n), {', '.join(outer)}, min({valid}), max({valid}) FROM "
            f"(SELECT {date} AS d, count(*) AS n, {inner} FROM {table} GROUP BY 1)",
            params,
        )[0]
        self.report.rows[table] = int(row[0] or 0)
        counts = {k: int(v or 0) for k, v in zip([*preds, *on_date], row[1:-2])}
        return {**counts, "first": row[-2], "last_session": row[-1]}

    def duplicate_count(self, table: str, column: str) -> tuple[int, tuple]:
        """(values appearing more than once, (the query listing them, no params))."""
        having = f"FROM {table} WHERE {column} IS NOT NULL GROUP BY {column} HAVING count(*) > 1"
        return int(self.e.sql(f"SELECT count(*) FROM (SELECT 1 {having})")[0][0]), (f"SELECT {column} {having}", None)

    @staticmethod
    def listing(table: str, preds: dict[str, str], columns: dict[str, str]) -> dict:
        return {code: (f"SELECT {column} FROM {table} WHERE {preds[code]}", None) for code, column in columns.items()}

    def conversions(self) -> Optional[str]:
        t, types = "conversions", self.e.present["conversions"]
        date, time = self.t(t, "conv_date"), self.t(t, "conv_time")
        preds = {
            "null_conv_id": "conv_id IS NULL",
            "null_user_id": "user_id IS NULL",
            "blank_user_id": BLANK.format(c=self.t(t, "user_id")),
            "bad_conv_date": self.bad_date(date),
            "bad_conv_time": self.bad_time(time),
            "revenue_not_number": self.not_number("revenue", types["revenue"]),
            "null_revenue": "revenue IS NULL",
            "negative_revenue": f"{self.number('revenue', types['revenue'])} < 0",
        }
        valid = f"CASE WHEN NOT {self.bad_date(date)} THEN {date} END"
        c = self.counts(t, preds, {"first": f"min({valid})", "last": f"max({valid})"})
        self.report.coverage.update(conversions_from=c["first"], conversions_to=c["last"])
        c["duplicate_conv_id"], dup = self.duplicate_count(t, "conv_id")
        sessions = 0
        if c["blank_user_id"]:  # as pipeline.validate: only then are the sessions looked up
            blank = f"SELECT user_id FROM conversions WHERE {preds['blank_user_id']}"
            sessions = int(self.e.sql(f"SELECT count(*) FROM session_sources WHERE user_id IN ({blank})")[0][0])
            c["blank_user_id"] *= bool(sessions)
        self.word(t, c, {**self.listing(t, preds, EXAMPLE_COLUMNS[t]), "duplicate_conv_id": dup}, sessions=sessions)
        return c["last"]

    def without_earlier_sessions(self) -> None:
        rows = [(r[0], bool(r[1])) for r in self.e.sql(WITHOUT_EARLIER_SESSIONS_SQL)]
        finding = without_earlier_sessions_finding(rows)
        if finding is not None:
            self.report.findings.append(finding)

    def sessions(self, last: Optional[str]) -> None:
        t = "session_sources"
        date, time = self.t(t, "event_date"), self.t(t, "event_time")
        preds = {
            "null_session_id": "session_id IS NULL",
            "null_user_id": "user_id IS NULL",
            "bad_event_time": self.bad_time(time),
            "null_channel": self.no_channel(self.t(t, "channel_name")),
            **{f"bad_{f}": self.bad_flag(f) for f in FLAGS},
        }
        on_date = {"bad_event_date": self.bad_date("d"), "late": "d > $last"}
        c = self.counts_by_date(t, date, preds, on_date, {"last": last})
        preds["bad_event_date"] = self.bad_date(date)  # for the examples query
        self.report.coverage.update(sessions_from=c["first"], sessions_to=c["last_session"])
        # SQLite reports late sessions only when the last valid session date is after the last conversion
        late = c["late"] if last is not None and c["last_session"] is not None and c["last_session"] > last else 0
        c["sessions_after_last_conversion"] = late
        c["duplicate_session_id"], dup = self.duplicate_count(t, "session_id")
        listing = {
            **self.listing(t, preds, EXAMPLE_COLUMNS[t]),
            "duplicate_session_id": dup,
            "sessions_after_last_conversion": (
                f"SELECT session_id FROM session_sources WHERE {date} > $last",
                {"last": last},
            ),
        }
        self.word(t, c, listing, last=last)

    def costs(self) -> None:
        t, dtype = "session_costs", self.e.present["session_costs"]["cost"]
        preds = {
            "null_session_id": "session_id IS NULL",
            "null_cost": "cost IS NULL",
            "cost_not_number": self.not_number("cost", dtype),
            "negative_cost": f"{self.number('cost', dtype)} < 0",
        }
        c = self.counts(t, preds)
        rows = self.report.rows[t]
        c["duplicate_session_id"], dup = self.duplicate_count(t, "session_id")
        duplicates = c["duplicate_session_id"] or any(f.code == "duplicate_session_id" for f in self.report.findings)
        if not duplicates:  # with duplicate session ids (here or in session_sources) the matched count is meaningless
            c["orphan_cost"] = max(rows - c["null_session_id"] - self.matched_costs(), 0)
        listing = {
            **self.listing(t, preds, {"cost_not_number": "cost", "negative_cost": "cost"}),
            "duplicate_session_id": dup,
            "orphan_cost": (
                "SELECT sc.session_id FROM session_costs sc WHERE sc.session_id IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM session_sources s WHERE s.session_id = sc.session_id)",
                None,
            ),
        }
        self.word(t, c, listing)

    def matched_costs(self) -> int:
        """Cost rows whose session_id is a session's."""
        return int(
            self.e.sql("SELECT count(*) FROM session_costs sc JOIN session_sources s ON s.session_id = sc.session_id")[
                0
            ][0]
        )

    # The sessions are probed against the few converting users (a semi join), never gathered into a set
    # of all session users: 3.1 s instead of 4.2 s on the x10 demo (both under load).
    def cost_coverage(self) -> None:
        """``validate.cost_coverage_findings`` over this engine's channel-days and costs."""
        self.report.findings.extend(
            cost_coverage_findings(self.channel_days(self.e), self.channel_day_costs(self.e), self.credit_share)
        )

    def channel_days(self, engine) -> set[tuple[str, str]]:
        return channel_days(engine)

    def channel_day_costs(self, engine) -> dict[tuple[str, str], float]:
        return channel_day_costs(engine)

    def credit_share(self) -> dict[str, float]:
        """{channel: share of the stored credit} (``validate._credit_share``), {} before any attribution."""
        if "attribution_customer_journey" not in self.e.present:
            return {}
        rows = self.e.sql(
            f"SELECT {self.channel('s.channel_name')}, sum(a.ihc) FROM attribution_customer_journey a"
            " JOIN session_sources s ON s.session_id = a.session_id GROUP BY 1"
        )
        total = sum(v for _, v in rows)
        return {c: v / total for c, v in rows} if total else {}


# As scans.WITHOUT_EARLIER_SESSIONS_SQL: conversions with no session of their user strictly before them.
WITHOUT_EARLIER_SESSIONS_SQL = """
WITH cu AS (SELECT DISTINCT user_id FROM conversions WHERE user_id IS NOT NULL),
     first AS (
        SELECT s.user_id, min(s.event_date || ' ' || s.event_time) AS ts
        FROM session_sources s SEMI JOIN cu ON cu.user_id = s.user_id GROUP BY 1)
SELECT c.conv_id, f.user_id IS NULL AS at_all
FROM conversions c LEFT JOIN first f ON f.user_id = c.user_id
WHERE c.user_id IS NOT NULL AND (f.user_id IS NULL OR f.ts >= c.conv_date || ' ' || c.conv_time)
ORDER BY c.conv_id NULLS FIRST
"""


class _DuckValidator(_Validator):
    """``_Validator`` with two DuckDB-only shortcuts (the other dialects keep the plain queries; same
    counts). Measured on the x10 demo (64-hex ids; see ``duplicate_count`` and ``channel_day_costs``)."""

    def duplicate_count(self, table: str, column: str) -> tuple[int, tuple]:
        """Grouping 64-bit hashes of the ids first: when no hash repeats, no id does (equal ids have
        equal hashes), and that answer is exact; only when one repeats (a real duplicate or, rarely, a
        collision) are the ids themselves grouped. Grouping the hashes instead of the 64-hex texts:
        session_sources on the x10 demo 1.6–1.7 → 1.1–1.2 s CPU, session_costs 0.6–1.0 → 0.5 s (warm).
        A DuckDB file only: over Parquet files (x30, 500 MB) this aggregate ran out of memory where the
        grouping of the texts spills."""
        if self.e.source.kind != "duckdb":
            return super().duplicate_count(table, column)
        repeated = self.e.sql(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {column} IS NOT NULL"
            f" GROUP BY hash({column}) HAVING count(*) > 1)"
        )[0][0]
        if not repeated:
            having = f"FROM {table} WHERE {column} IS NOT NULL GROUP BY {column} HAVING count(*) > 1"
            return 0, (f"SELECT {column} {having}", None)
        return super().duplicate_count(table, column)

    def matched_costs(self) -> int:
        """From the costs ⋈ sessions join the report needs anyway (``_cost_join``), not a second join."""
        return sum(int(n) for *_, n in _cost_join(self.e))


# ---- journeys -----------------------------------------------------------------------------------------


def _journeys_sql(engine: DuckEngine) -> tuple[str, str]:
    """(journey rows, conversions in the window) queries; parameters $start, $end, $lookback_days."""
    s, c = engine.present["session_sources"], engine.present["conversions"]
    s_ts = f"{as_text('s.event_date', s['event_date'])} || ' ' || {as_text('s.event_time', s['event_time'])}"
    conv = f"""
    conv AS (
        SELECT conv_id, user_id, {as_text("conv_date", c["conv_date"])} || ' ' || {as_text("conv_time", c["conv_time"])} AS conv_ts
        FROM conversions
        WHERE conv_id IS NOT NULL
          AND ($start IS NULL OR {as_text("conv_date", c["conv_date"])} >= $start)
          AND ($end IS NULL OR {as_text("conv_date", c["conv_date"])} <= $end))"""
    rows = f"""
    WITH {conv},
    pairs AS (
        SELECT c.conv_id, s.session_id, {s_ts} AS ts_text, {channel_sql("s.channel_name")} AS channel,
               s.holder_engagement AS h, s.closer_engagement AS cl, s.impression_interaction AS i, c.conv_ts
        FROM session_sources s JOIN conv c ON c.user_id = s.user_id)
    SELECT conv_id, session_id, ts_text, channel, h, cl, i FROM pairs
    WHERE ts_text < conv_ts
      AND ($lookback_days IS NULL
           OR ts_text >= strftime(try_strptime(conv_ts, '%Y-%m-%d %H:%M:%S') - to_days(CAST($lookback_days AS INTEGER)),
                                  '%Y-%m-%d %H:%M:%S'))
    ORDER BY conv_id, ts_text, session_id
    """
    conversions = f"WITH {conv} SELECT conv_id FROM conv ORDER BY conv_id"
    return rows, conversions


def _params(window: Window) -> dict:
    return {"start": window.start, "end": window.end, "lookback_days": window.lookback_days}


def journey_batches(engine: DuckEngine, window: Window = Window(), batch_rows: int = BATCH_ROWS) -> Iterator[dict]:
    """The journeys of ``window`` as batches of whole journeys: each a dict of ``journey_columns`` (the
    session-record columns + ``ts``), rows sorted by conversion, time and session_id. One query; DuckDB
    sorts (spilling to disk if it must) and hands over ``batch_rows`` at a time."""
    rows_sql, _ = _journeys_sql(engine)
    reader = engine.con.sql(rows_sql, params=_params(window)).to_arrow_reader(batch_rows)
    carry = None
    for batch in reader:
        if batch.num_rows == 0:
            continue
        table = batch if carry is None else _concat(carry, batch)
        conv = table.column(0).to_numpy(zero_copy_only=False)
        # rows are sorted by conversion: those of the last one may continue in the next batch, keep them back
        others = np.flatnonzero(conv != conv[-1])
        whole = int(others[-1]) + 1 if len(others) else 0
        if whole:
            yield _columns(table.slice(0, whole))
        carry = table.slice(whole)
    if carry is not None and carry.num_rows:
        yield _columns(carry)


def _concat(a, b):
    import pyarrow as pa

    return pa.Table.from_batches([*_batches(a), *_batches(b)])


def _batches(x):
    return x.to_batches() if hasattr(x, "to_batches") else [x]


def _columns(table) -> dict:
    """Arrow rows (conv_id, session_id, ts_text, channel, h, c, i) → the columns journeys.py builds."""
    raw = [np.asarray(table.column(i).to_numpy(zero_copy_only=False), dtype=object) for i in range(7)]
    return journey_columns(raw)


def journeys(engine: DuckEngine, window: Window = Window()) -> Journeys:
    """All journeys of ``window`` gathered in one ``Journeys`` (for parity with the SQLite engine)."""
    from ..journey_index import JOURNEY_COLUMNS

    parts = list(journey_batches(engine, window))
    names = [*JOURNEY_COLUMNS, "ts"]
    if parts:
        columns = {n: np.concatenate([p[n] for p in parts]) for n in names}
    else:
        columns = journey_columns([np.zeros(0, dtype=object) for _ in range(7)])
    _, conv_sql = _journeys_sql(engine)
    params = {"start": window.start, "end": window.end}
    conv_ids = np.asarray([r[0] for r in engine.sql(conv_sql, params)], dtype=object)
    return Journeys(columns, conv_ids, sessions_per(conv_ids, columns["conversion_id"]), window)


# ---- the channel report ---------------------------------------------------------------------------------


def _units(expr: str, scale: int) -> str:
    """``CAST(round((expr) * scale) AS INTEGER)`` with SQLite's round(): beyond ±2**52 a double has no
    fraction and is kept; below, ``trunc(x ± 0.5)`` (so 0.49999999999999994 → 1, as SQLite says, where
    C's round says 0). Checked equal to SQLite on edge values in tests/test_engine_duckdb.py."""
    v = f"(({expr}) * {scale})"
    return (
        f"CAST(CASE WHEN abs({v}) > 4503599627370496.0 THEN {v} ELSE sign({v}) * trunc(abs({v}) + 0.5) END AS BIGINT)"
    )


def fixed(total, scale: int) -> float:
    """A fixed-point sum (an exact integer; None for no value) back to a float, divided once as SQLite's
    ``sum(...) / 1e12`` does: the integer as a double, divided by the scale as a double."""
    return float(int(total or 0)) / float(scale)


def channel_day_costs(engine: DuckEngine) -> dict[tuple[str, str], float]:
    """{(channel, date): cost} of every channel-day with matched cost, as ``scans.InputScans.
    channel_day_costs``: a fixed-point sum per (channel_name as stored, date), then NULL channel and a
    literal '(not set)' merged (two terms: the float sum of two is the same in either order)."""
    costs: dict[tuple[str, str], float] = {}
    for channel, day, units, _ in _cost_join(engine):
        key = (channel_label(channel), day)
        costs[key] = costs.get(key, 0.0) + fixed(units, MONEY_SCALE)
    return costs


def _cost_join(engine: DuckEngine) -> list[tuple]:
    """(channel_name as stored, date, fixed-point cost, cost rows) per channel-day of session_costs ⋈
    session_sources: the one join of costs with sessions, which validation (the cost coverage, the
    matched-cost count) and the report both read — computed once per open engine (``_once``)."""

    def query() -> list[tuple]:
        s, cost_type = engine.present["session_sources"], engine.present["session_costs"]["cost"]
        date = as_text("s.event_date", s["event_date"])
        return engine.sql(
            f"SELECT s.channel_name, {date}, sum({_units(as_number('sc.cost', cost_type), MONEY_SCALE)}), count(*)"
            " FROM session_costs sc JOIN session_sources s ON s.session_id = sc.session_id GROUP BY 1, 2"
        )

    return _once(engine, "cost_join", query)


def _once(engine, key: str, compute):
    """``compute()`` once per open engine (an engine without a ``cache``, e.g. Postgres's, computes it
    each time). Only for results of the input tables, which no engine function writes."""
    cache = getattr(engine, "cache", None)
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def channel_days(engine: DuckEngine) -> set[tuple[str, str]]:
    """Every (channel, date) of the sessions (NULL channel as '(not set)')."""
    s = engine.present["session_sources"]
    date = as_text("event_date", s["event_date"])
    return {
        (ch, day)
        for ch, day in engine.sql(f"SELECT DISTINCT {channel_sql('channel_name')}, {date} FROM session_sources")
    }


def channel_report(
    engine: DuckEngine, credits=None, start: Optional[str] = None, end: Optional[str] = None
) -> list[tuple]:
    """Rows (channel_name, date, cost, ihc, ihc_revenue) sorted by date and channel, as
    ``report.build_report``: every channel-day with sessions in range; ``credits`` (an Arrow table or a
    mapping with conv_id, session_id, ihc) or, without it, the source's ``attribution_customer_journey``."""
    import pyarrow as pa

    s = engine.present["session_sources"]
    date = as_text("s.event_date", s["event_date"])
    revenue = as_number("c.revenue", engine.present["conversions"]["revenue"])
    in_range = f"($start IS NULL OR {date} >= $start) AND ($end IS NULL OR {date} <= $end)"
    if credits is not None:
        table = (
            credits
            if isinstance(credits, pa.Table)
            else pa.table({k: credits[k] for k in ("conv_id", "session_id", "ihc")})
        )
        engine.con.register("_credits", table)
        credit_table: Optional[str] = "_credits"
    elif "attribution_customer_journey" in engine.present:
        credit_table = "attribution_customer_journey"
    else:
        credit_table = None
    credit_cte = (
        f"""credit AS (
        SELECT {channel_sql("s.channel_name")} AS channel, {date} AS day,
               sum({_units("a.ihc", CREDIT_SCALE)}) AS ihc,
               sum({_units(f"a.ihc * coalesce({revenue}, 0)", MONEY_SCALE)}) AS ihc_revenue
        FROM {credit_table} a
        JOIN session_sources s ON s.session_id = a.session_id
        JOIN conversions c ON c.conv_id = a.conv_id
        WHERE {in_range}
        GROUP BY 1, 2)"""
        if credit_table
        else "credit AS (SELECT NULL::VARCHAR AS channel, NULL::VARCHAR AS day, 0::HUGEINT AS ihc, "
        "0::HUGEINT AS ihc_revenue WHERE false)"
    )
    sql = f"""
    WITH days AS (
        SELECT DISTINCT {channel_sql("s.channel_name")} AS channel, {date} AS day
        FROM session_sources s WHERE {in_range}),
    {credit_cte}
    SELECT d.channel, d.day, credit.ihc, credit.ihc_revenue
    FROM days d LEFT JOIN credit ON credit.channel = d.channel AND credit.day = d.day
    ORDER BY d.day, d.channel
    """
    try:
        rows = engine.sql(sql, {"start": start, "end": end})
    finally:
        if credits is not None:
            engine.con.unregister("_credits")
    costs = channel_day_costs(engine)
    return [
        (ch, day, costs.get((ch, day), 0.0))
        + ((fixed(ihc, CREDIT_SCALE), fixed(rev, MONEY_SCALE)) if ihc is not None else (0.0, 0.0))
        for ch, day, ihc, rev in rows
    ]


# ---- writing the outputs back ---------------------------------------------------------------------------


def output_tables(credits, report: list[tuple]):
    """The two output tables as Arrow tables with the challenge schema."""
    import pyarrow as pa

    acj = pa.table(
        {
            "conv_id": pa.array(np.asarray(credits["conv_id"], dtype=object), pa.string()),
            "session_id": pa.array(np.asarray(credits["session_id"], dtype=object), pa.string()),
            "ihc": pa.array(np.asarray(credits["ihc"], dtype=np.float64), pa.float64()),
        }
    )
    cols: list = list(zip(*report)) if report else [[] for _ in range(5)]
    rep = pa.table(
        {
            "channel_name": pa.array(cols[0], pa.string()),
            "date": pa.array(cols[1], pa.string()),
            "cost": pa.array(cols[2], pa.float64()),
            "ihc": pa.array(cols[3], pa.float64()),
            "ihc_revenue": pa.array(cols[4], pa.float64()),
        }
    )
    return {"attribution_customer_journey": acj, "channel_reporting": rep}


def write_outputs(engine: DuckEngine, credits, report: list[tuple], record: Optional[dict] = None) -> dict[str, int]:
    """Replace ``attribution_customer_journey`` and ``channel_reporting`` of the source (a failure leaves
    the previous outputs as they were: one transaction in a DuckDB file, staged then swapped in a Parquet
    folder), with ``record`` (a run's record,
    ``engines.run``): a DuckDB file swaps it in the outputs' transaction; a Parquet folder removes the old
    record before its first rename and writes the new one after the last (``_write_parquet``), so a run
    cut short in between is never taken as up to date. The engine must be open with ``write=True`` for a
    DuckDB file."""
    tables = output_tables(credits, report)
    if engine.source.kind == "duckdb":
        _write_duckdb(engine, tables, record)
    else:
        _write_parquet(engine.source, tables, record)
        _parquet_views(engine.con, engine.source, OUTPUT_TABLES)
    engine.present = _present(engine.con)
    return {name: t.num_rows for name, t in tables.items()}


DDL = {  # the outputs' columns and keys, as the warehouses create them (``warehouse.create_sql``)
    "attribution_customer_journey": "conv_id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, ihc DOUBLE NOT NULL, "
    "PRIMARY KEY (conv_id, session_id)",
    "channel_reporting": "channel_name VARCHAR NOT NULL, date VARCHAR NOT NULL, cost DOUBLE NOT NULL, "
    "ihc DOUBLE NOT NULL, ihc_revenue DOUBLE NOT NULL, PRIMARY KEY (channel_name, date)",
}
# A DuckDB file's credit table has no PRIMARY KEY: DuckDB holds a key's index (ART) in memory, and 8M
# credit rows of 64-hex ids ran out of the 500 MB limit ("could not allocate block"); without the key
# they were written in 2.6 s. The pairs are unique by construction: a duplicate id in the inputs stops a
# run at validation (docs/engines.md).
FILE_DDL = {**DDL, "attribution_customer_journey": DDL["attribution_customer_journey"].split(", PRIMARY KEY")[0]}


def _write_duckdb(engine: DuckEngine, tables: dict, record: Optional[dict] = None) -> None:
    """The outputs and their run record replaced in one transaction: a failure rolls it back, and so
    does DuckDB when it opens a file whose writer was killed. The tables were staged outside the
    transaction, as ``_staging_NAME``; a killed run left them in the file until the next run."""
    con = engine.con
    for name, table in tables.items():  # outside the transaction: an aborted one refuses unregister
        con.register(f"_out_{name}", table)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            for name in tables:
                con.execute(f"DROP TABLE IF EXISTS {name}")
                con.execute(f"CREATE TABLE {name} ({FILE_DDL[name]})")
                con.execute(f"INSERT INTO {name} SELECT * FROM _out_{name}")
            if record is not None:  # the record that says these outputs are up to date, in the same transaction
                con.execute(f"CREATE OR REPLACE TABLE {RECORD_TABLE} (record VARCHAR)")
                con.execute(f"INSERT INTO {RECORD_TABLE} VALUES (?)", [record_text(record)])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")  # the previous outputs stay
            raise
    finally:
        for name in tables:
            con.unregister(f"_out_{name}")
    con.execute("CHECKPOINT")


def _write_parquet(source: Source, tables: dict, record: Optional[dict] = None) -> None:
    """Each table written whole into a staging folder, then swapped in by two renames per table (the old
    folder aside, the new one in). The run record is removed before the first rename and written after
    the last, so a run cut short in between is not taken as up to date. A process killed between a
    folder's two renames leaves the previous one aside as ``.NAME.replaced-PID``: ``repair_parquet`` (run
    when a Parquet source is opened) puts it back; staging folders of dead processes are removed."""
    import pyarrow.parquet as pq

    pid = os.getpid()
    staged = {}
    try:
        for name, table in tables.items():
            folder = Path(tempfile.mkdtemp(prefix=f".{name}.staging-{pid}-", dir=source.file))
            folder.chmod(source.file.stat().st_mode & 0o777)  # mkdtemp makes it private
            staged[name] = folder
            pq.write_table(table, folder / "part-0.parquet")
        _remove(source.file / RECORD_FILE)  # from here until the new record, no run is up to date
        for name, folder in staged.items():
            target = source.file / name
            single = source.file / f"{name}.parquet"
            old = source.file / f".{name}.replaced-{pid}"
            if target.exists():
                os.replace(target, old)
            os.replace(folder, target)
            folder.mkdir()  # nothing left to clean up below
            _remove(old)
            _remove(single)  # a single-file form of the table would shadow the new folder
        if record is not None:
            _write_record_file(source.file, record_text(record))
    finally:
        for folder in staged.values():
            _remove(folder)


_LEFTOVER = re.compile(rf"^\.({'|'.join(OUTPUT_TABLES)})\.(staging|replaced)-(\d+)(?:-|$)")


def repair_parquet(folder: Path) -> None:
    """Undo what a process killed inside ``_write_parquet`` left in ``folder``: an output folder it had
    moved aside goes back in place (when nothing replaced it), its staging folders are removed. Only
    leftovers of processes no longer alive are touched (a run going on beside is left alone); a folder
    this process may not write is left as it is."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        m = _LEFTOVER.match(entry.name)
        if m is None or pid_alive(int(m.group(3))):
            continue
        name, kind = m.group(1), m.group(2)
        try:
            if kind == "replaced" and not (folder / name).exists() and not (folder / f"{name}.parquet").exists():
                os.replace(entry, folder / name)  # the previous outputs, whole, back in place
            else:
                _remove(entry)
        except OSError:
            pass


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


# ---- what a run needs beyond the stages (pipeline.engines.run) -------------------------------------------


def conversion_count(engine: DuckEngine, window: Window = Window()) -> int:
    """The conversions of ``window`` (with an id), those a run attributes or explains."""
    _, conv_sql = _journeys_sql(engine)
    return int(engine.sql(f"SELECT count(*) FROM ({conv_sql})", {"start": window.start, "end": window.end})[0][0])


def path_summary(engine: DuckEngine, window: Window = Window()):
    """The ``PathSummary`` of ``window`` for Markov and Shapley (``engines.paths.path_summary``, the one
    implementation every engine runs), the non-converting users in passes over user buckets of
    ``paths.PATH_BUCKET_SESSIONS`` sessions: DuckDB cannot spill an ordered aggregate, so each pass must
    fit within its memory limit."""
    return paths.path_summary(engine, window, paths.PATH_BUCKET_SESSIONS)


def fingerprint(engine: DuckEngine) -> str:
    """What the input tables are, for staleness (docs/engines.md): a Parquet source by its files'
    names, sizes and modification times (nanoseconds); a DuckDB file by the content of each input
    table — its row count and the sum of a hash of every row (order-independent) — since the file's own
    size and time change whenever the outputs are written."""
    import hashlib

    parts: list = []
    if engine.source.kind == "parquet":
        for table in REQUIRED_COLUMNS:
            for path in parquet_files(engine.source, table):
                st = path.stat()
                parts.append((str(path.relative_to(engine.source.file)), st.st_size, st.st_mtime_ns))
    else:
        for table in REQUIRED_COLUMNS:
            if table not in engine.present:
                parts.append((table, None))
                continue
            columns = ", ".join(f'"{c}"' for c in engine.present[table])
            parts.append((table, *engine.sql(f"SELECT count(*), sum(hash({columns})::HUGEINT) FROM {table}")[0]))
    return hashlib.sha256(repr(parts).encode()).hexdigest()


RECORD_TABLE = "pipeline_run_record"  # in a DuckDB file: one row, the last run's record as JSON
RECORD_FILE = "_pipeline_run.json"  # in a Parquet folder


def run_record(engine: DuckEngine) -> Optional[dict]:
    """The record the last successful run stored with the outputs (None: none, or unreadable)."""
    import json

    if engine.source.kind == "parquet":
        path = engine.source.file / RECORD_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (OSError, ValueError):
            return None
    if RECORD_TABLE not in engine.present:
        return None
    return record_of(engine.sql(f"SELECT record FROM {RECORD_TABLE}"))


def record_of(rows: list) -> Optional[dict]:
    """The run record in the rows of ``SELECT record FROM pipeline_run_record`` (every engine's table
    of it): None when there is no row or its text is no JSON."""
    import json

    try:
        return json.loads(rows[0][0]) if rows else None
    except (TypeError, ValueError):
        return None


def record_text(record: dict) -> str:
    """The run record as every engine stores it: JSON text, keys sorted."""
    import json

    return json.dumps(record, sort_keys=True, default=str)


def _write_record_file(folder: Path, text: str) -> None:
    """The record file of a Parquet folder, written aside then renamed (never half-written)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{RECORD_FILE}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, folder.stat().st_mode & 0o666)
        os.replace(tmp, folder / RECORD_FILE)
    except BaseException:
        _remove(Path(tmp))
        raise


def write_run_record(engine: DuckEngine, record: dict) -> None:
    """Store ``record`` beside the outputs, replacing the previous one atomically (a DuckDB table in one
    transaction; a file written aside, then renamed)."""
    text = record_text(record)
    if engine.source.kind == "parquet":
        _write_record_file(engine.source.file, text)
        return
    con = engine.con
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE OR REPLACE TABLE {RECORD_TABLE} (record VARCHAR)")
        con.execute(f"INSERT INTO {RECORD_TABLE} VALUES (?)", [text])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("CHECKPOINT")
    engine.present = _present(con)


def stored_report(engine: DuckEngine, start: Optional[str] = None, end: Optional[str] = None) -> Optional[list[tuple]]:
    """The stored ``channel_reporting`` rows (channel_name, date, cost, ihc, ihc_revenue) in range,
    sorted by date then channel (None: no report stored)."""
    if "channel_reporting" not in engine.present:
        return None
    return engine.sql(
        "SELECT channel_name, date, cost, ihc, ihc_revenue FROM channel_reporting"
        " WHERE ($start IS NULL OR date >= $start) AND ($end IS NULL OR date <= $end) ORDER BY date, channel_name",
        {"start": start, "end": end},
    )
