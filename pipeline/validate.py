"""Stage 1 — validate: can this file be attributed, and what in it deserves a warning?

Sessions and costs are read off the whole-table scans of ``scans.InputScans`` (shared with the report);
conversions, a small table, in one aggregate pass. A query that counts a problem and fetches examples
runs only when the problem is there. A finding has a severity: ``fatal`` stops any run before anything
is written; ``warning`` is reported and the run goes on with the documented treatment (e.g. a NULL
revenue counts 0).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Optional, cast

from .db import database_file, quote_ident, table_columns, table_exists
from .errors import InputError
from .labels import clip
from .mapped_pages import whole_scan
from .progress import Progress, ensure
from .scans import InputScans, open_scans
from .schema import NO_CHANNEL, NO_CHANNEL_WHAT, REQUIRED_COLUMNS, channel_sql, is_no_channel, no_channel_sql
from .window import is_iso_date

FATAL, WARNING = "fatal", "warning"
EXAMPLES = 3
FLAGS = ("holder_engagement", "closer_engagement", "impression_interaction")

# SQL predicates that are true for a *bad* value of column {c}.
# date() with a no-op modifier normalises what it parses ('2023-02-30' → '2023-03-02'; without a
# modifier SQLite returns it unchanged), so comparing with the original rejects anything but exactly
# 'YYYY-MM-DD' ('2023-9-1', ...). time() without a modifier rejects '10:00', '10:60:00', ' 10:00:00'
# and accepts only one invalid value, '24:00:00', hence "< '24'" (checked equal to the modifier form
# on 200k odd strings; it is the cheaper of the two per row).
BAD_DATE = "(date({c}, '+0 days') IS NOT {c} OR {c} IS NULL)"
BAD_TIME = "NOT coalesce(time({c}) IS {c} AND {c} < '24', 0)"  # as in scans.ROW_OK
BAD_FLAG = "({c} IS NULL OR {c} NOT IN (0, 1))"
NOT_NUMBER = "({c} IS NOT NULL AND typeof({c}) NOT IN ('integer', 'real'))"


def count(n: int, one: str, many: str) -> str:
    """'1 row has' / '3 rows have' — with thousands separators."""
    return f"{n:,} {one if n == 1 else many}"


# ---- the wording of the value checks, once for every engine ------------------------------------------
# Per table, in the order findings are reported: (code, severity, column, phrase(n, facts), examples?).
# An engine only counts (``counts[code]``) and fetches examples; ``table_findings`` words them. With a
# column, the message is "table.column: <phrase>", else the phrase is the whole message.


def _rows(what: str):
    return lambda n, facts: f"{count(n, 'row has', 'rows have')} {what}"


def _late(n: int, facts: dict) -> str:
    return (
        f"session_sources: {count(n, 'session is', 'sessions are')} dated after the last conversion date "
        f"({facts.get('last')}); they belong to no journey"
    )


def _orphans(n: int, facts: dict) -> str:
    return (
        f"session_costs: {count(n, 'cost belongs', 'costs belong')} to no session in session_sources and "
        f"{'is' if n == 1 else 'are'} not reported"
    )


def _blank_users(n: int, facts: dict) -> str:
    return (
        f"{count(n, 'conversion has', 'conversions have')} an empty user id and "
        f"{count(facts.get('sessions', 0), 'session has', 'sessions have')} it too: an empty id would join "
        "unrelated sessions into one user's journey; store NULL where there is no user"
    )


# SQL predicates over text of the empty (or blank) user ids that are ids nonetheless: a conversion's matches
# every session with the same empty id. ``{c}``: the column as text.
BLANK = "trim({c}) = ''"


_DUPLICATE = lambda n, facts: f"{count(n, 'value appears', 'values appear')} more than once (ids must be unique)"  # noqa: E731
WORDING: dict[str, list[tuple]] = {
    "conversions": [
        ("null_conv_id", FATAL, "conv_id", _rows("no id"), False),
        ("duplicate_conv_id", FATAL, "conv_id", _DUPLICATE, True),
        (
            "null_user_id", WARNING, "user_id",
            lambda n, f: f"{count(n, 'conversion has', 'conversions have')} no user and get no journey", False,
        ),
        ("blank_user_id", FATAL, "user_id", _blank_users, True),
        ("bad_conv_date", FATAL, "conv_date", _rows("no valid date (YYYY-MM-DD)"), True),
        ("bad_conv_time", FATAL, "conv_time", _rows("no valid time (HH:MM:SS)"), True),
        ("revenue_not_number", FATAL, "revenue", _rows("a revenue that is not a number"), True),
        (
            "null_revenue", WARNING, "revenue",
            lambda n, f: f"{count(n, 'conversion has', 'conversions have')} no revenue; counted as 0", False,
        ),
        ("negative_revenue", WARNING, "revenue", _rows("a negative revenue (refunds?); kept as is"), True),
    ],
    "session_sources": [
        ("null_session_id", FATAL, "session_id", _rows("no id"), False),
        ("duplicate_session_id", FATAL, "session_id", _DUPLICATE, True),
        ("sessions_after_last_conversion", WARNING, None, _late, True),
        (
            "null_user_id", WARNING, "user_id",
            lambda n, f: f"{count(n, 'session has', 'sessions have')} no user and belong to no journey", False,
        ),
        ("bad_event_date", FATAL, "event_date", _rows("no valid date (YYYY-MM-DD)"), True),
        ("bad_event_time", FATAL, "event_time", _rows("no valid time (HH:MM:SS)"), True),
        *[(f"bad_{flag}", FATAL, flag, _rows("a value other than 0 or 1"), True) for flag in FLAGS],
        (
            "blob_channel", FATAL, None,
            lambda n, f: f"session_sources.channel_name holds {count(n, 'binary (BLOB) value', 'binary (BLOB) values')}"
            " where a channel's name belongs; store the names as text",
            True,
        ),
        (
            "null_channel", WARNING, "channel_name",
            lambda n, f: f"{count(n, 'session has', 'sessions have')} no channel ({NO_CHANNEL_WHAT}); "
            f"reported as '{NO_CHANNEL}'",
            False,
        ),
    ],
    "session_costs": [
        ("null_session_id", FATAL, "session_id", _rows("no session id"), False),
        ("duplicate_session_id", FATAL, "session_id", _DUPLICATE, True),
        ("cost_not_number", FATAL, "cost", _rows("a cost that is not a number"), True),
        ("null_cost", WARNING, "cost", _rows("no cost; counted as 0"), False),
        ("negative_cost", FATAL, "cost", _rows("a negative cost"), True),
        ("orphan_cost", WARNING, None, _orphans, True),
    ],
}  # fmt: skip


# The column whose values a finding of bad values shows as examples, per table (every engine's listing).
EXAMPLE_COLUMNS: dict[str, dict[str, str]] = {
    "conversions": {
        "blank_user_id": "user_id",
        "bad_conv_date": "conv_date",
        "bad_conv_time": "conv_time",
        "revenue_not_number": "revenue",
        "negative_revenue": "revenue",
    },
    "session_sources": {
        "bad_event_date": "event_date",
        "bad_event_time": "event_time",
        **{f"bad_{f}": f for f in FLAGS},
    },
}


def table_findings(table: str, counts: dict, examples, **facts) -> list["Finding"]:
    """The findings of ``table`` from an engine's ``counts`` ({code: rows}; a missing code counts 0), in
    ``WORDING``'s order, with ``examples(code)`` (a list) asked only for a finding that has some."""
    out = []
    for code, severity, column, phrase, has_examples in WORDING[table]:
        n = int(counts.get(code) or 0)
        if n:
            text = phrase(n, facts)
            message = f"{table}.{column}: {text}" if column else text
            out.append(Finding(code, severity, message, n, list(examples(code)) if has_examples else []))
    return out


@dataclass
class Finding:
    code: str
    severity: str
    message: str
    count: int = 0
    examples: list = field(default_factory=list)

    def line(self) -> str:
        ex = f" (e.g. {', '.join(repr(e) for e in self.examples)})" if self.examples else ""
        return f"{self.severity}: {self.message}{ex}"


# ---- the findings in an analyst's words (the dashboard and the HTML report; the CLI keeps ``line``) ----
TABLE_NOUNS = {
    "conversions": ("conversion", "conversions"),
    "session_sources": ("session", "sessions"),
    "session_costs": ("cost row", "cost rows"),
}
ROW_NOUNS = {"row", "rows", "conversion", "conversions", "session", "sessions", "cost", "costs"}
_PREFIX = re.compile(r"^(conversions|session_sources|session_costs)(?:\.([A-Za-z_]\w*))?: ")
_LEADING_COUNT = re.compile(r"^([\d,]+) ([a-z]+)\b")
_COLUMN_FIRST = re.compile(r"^(conversions|session_sources|session_costs)\.[A-Za-z_]")


def share_text(n: int, total: int) -> str:
    """'2.6%', '<0.1%' for a share too small to show (never '0.0%' for rows that are there)."""
    share = n / total
    return "<0.1%" if share < 0.001 else f"{share:.1%}"


def plain_sentence(finding: "Finding", rows: Optional[dict] = None) -> str:
    """One sentence for the analyst, without the stage/table prefix and without example ids:
    "51 conversions (2.6%) have no session of their user before them and cannot be attributed."
    A count of rows gets its table's noun and its share of the table (``rows``: the report's row
    counts); a fatal finding names its column, since the file has to be fixed there. ``line`` stays the
    command line's format (orchestrators parse it)."""
    text, table, column = finding.message, None, None
    prefix = _PREFIX.match(text)
    if prefix:
        table, column = prefix.group(1), prefix.group(2)
        text = text[prefix.end() :]
    lead = _LEADING_COUNT.match(text)
    if table and lead and lead.group(2) in ROW_NOUNS:
        n = int(lead.group(1).replace(",", ""))
        noun = lead.group(2)
        if noun in ("row", "rows"):
            noun = TABLE_NOUNS[table][0 if n == 1 else 1]
        total = int((rows or {}).get(table) or 0)
        share = f" ({share_text(n, total)})" if 0 < n <= total else ""
        text = f"{n:,} {noun}{share}{text[lead.end() :]}"
    if column and finding.severity == FATAL and column not in text:
        text += f" — column {column} of {table}"
    text = text.rstrip(". ")
    # a channel's name (cost_on_some_days) or a column (session_costs.session_id) starts as written
    if finding.code != "cost_on_some_days" and not _COLUMN_FIRST.match(text):
        text = text[:1].upper() + text[1:]
    return text + "."


@dataclass
class ValidationReport:
    findings: list[Finding] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, Optional[str]] = field(default_factory=dict)

    @property
    def fatal(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == FATAL]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    def coverage_line(self) -> str:
        """'sessions 2023-09-01 … 2023-09-10; conversions …', 'none' where a table has no valid date."""
        cov = self.coverage

        def span(kind: str) -> str:
            first, last = cov.get(f"{kind}_from"), cov.get(f"{kind}_to")
            return f"{kind} {first} … {last}" if first else f"{kind}: none with a valid date"

        return f"{span('sessions')}; {span('conversions')}"

    @property
    def ok(self) -> bool:
        return not self.fatal

    def raise_if_fatal(self) -> None:
        if self.fatal:
            first = self.fatal[0]
            more = f" (+{len(self.fatal) - 1} more fatal finding(s); see `validate`)" if len(self.fatal) > 1 else ""
            raise InputError(first.line().removeprefix("fatal: ") + more)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "coverage": self.coverage,
            "findings": [asdict(f) for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ValidationReport":
        return cls(
            findings=[Finding(**f) for f in data.get("findings", [])],
            rows=dict(data.get("rows", {})),
            coverage=dict(data.get("coverage", {})),
        )


class _Checker:
    def __init__(self, con: sqlite3.Connection, report: ValidationReport):
        self.con, self.report = con, report

    def column_counts(
        self, table: str, checks: dict[str, str], extra: Optional[dict[str, str]] = None, params=None
    ) -> dict:
        """One pass over ``table`` counting rows matching each predicate, plus ``extra`` aggregates."""
        extra = extra or {}
        t = quote_ident(table)
        exprs = [f"coalesce(sum({pred}), 0)" for pred in checks.values()] + list(extra.values())
        row = self.con.execute(f"SELECT count(*), {', '.join(exprs)} FROM {t}", params or {}).fetchone()
        self.report.rows[table] = row[0]
        return dict(zip([*checks, *extra], row[1:]))

    def examples(self, sql: str, params=()) -> list:
        """Distinct values (one bad value repeated on many rows is shown once), at most EXAMPLES."""
        return [r[0] for r in self.con.execute(f"SELECT DISTINCT * FROM ({sql}) LIMIT {EXAMPLES}", params)]

    def duplicate_count(self, table: str, column: str) -> tuple[int, str]:
        """(values appearing more than once, the query listing them); 0 under a unique index."""
        t, c = quote_ident(table), quote_ident(column)
        listing = f"SELECT {c} FROM {t} WHERE {c} IS NOT NULL GROUP BY {c} HAVING count(*) > 1"
        if _has_unique_index(self.con, table, column):
            return 0, listing
        return self.con.execute(f"SELECT count(*) FROM ({listing})").fetchone()[0], listing

    def word(self, table: str, counts: dict, listing: dict, **facts) -> None:
        """``table_findings`` of ``counts``; ``listing``: {code: (query of the bad values, params)}."""
        self.report.findings.extend(table_findings(table, counts, lambda code: self.examples(*listing[code]), **facts))


def _listing(table: str, preds: dict[str, str], columns: dict[str, str]) -> dict[str, tuple]:
    """{code: (query of the values behind the code, no params)} for bad-value codes."""
    return {
        code: (f"SELECT {quote_ident(columns[code])} FROM {quote_ident(table)} WHERE {pred}", ())
        for code, pred in preds.items()
        if code in columns
    }


def validate(
    con: sqlite3.Connection, progress: Optional[Progress] = None, scans: Optional[InputScans] = None
) -> ValidationReport:
    """Check the three input tables; never writes. ``scans`` may carry scans already started."""
    progress = ensure(progress)
    report = ValidationReport()
    check = _Checker(con, report)
    if not _structure(con, check):
        return report
    scans = scans or open_scans(con)
    # Scans computed in this process first, while scans in other threads or processes still run.
    progress(0, 4, "validate: the conversions")
    last_conversion = _conversions(con, check)
    progress(1, 4, "validate: the ids, and the users without sessions")
    _id_types(con, check, scans)
    _without_earlier_sessions(check, scans)
    progress(2, 4, "validate: the sessions")
    _sessions(con, check, last_conversion, scans)
    progress(3, 4, "validate: the costs")
    _costs(con, check, scans)
    _cost_coverage(con, check, scans)
    progress(
        4,
        4,
        f"validate: {count(len(report.fatal), 'fatal problem', 'fatal problems')}, "
        f"{count(len(report.warnings), 'warning', 'warnings')}",
    )
    return report


def current_validation(con: sqlite3.Connection) -> ValidationReport:
    """The stored validation when no input table changed since it ran (``status.validation_current``,
    the runner's rule for reusing it), else a fresh one. Reads only."""
    from .fingerprint import input_fingerprints
    from .status import read_records, validation_current

    records = read_records(con)
    if validation_current(input_fingerprints(con), records):
        return ValidationReport.from_dict(records["validate"].summary)
    return validate(con)


def check_structure(con: sqlite3.Connection) -> ValidationReport:
    """Only the cheap part: required tables and columns (before any scan can run)."""
    report = ValidationReport()
    _structure(con, _Checker(con, report))
    return report


def start_scans(con: sqlite3.Connection, *, fork: bool = False, names: Optional[tuple[str, ...]] = None) -> InputScans:
    """Check the tables and columns exist (InputError otherwise), then start the whole-table scans
    (``scans.open_scans``; ``names``: those to start, default ``scans.SCANS``). ``fork``: in child
    processes, on the file behind ``con``, which is closed first (a child must not inherit a
    connection to it)."""
    check_structure(con).raise_if_fatal()
    if not fork:
        return open_scans(con) if names is None else open_scans(con, names=names)
    path = database_file(con)
    con.close()
    return open_scans(cast(str, path), fork=True)


def _has_unique_index(con, table: str, column: str) -> bool:
    for _, name, unique, *_ in con.execute(f"PRAGMA index_list({quote_ident(table)})"):
        if unique:
            cols = [r[2] for r in con.execute(f"PRAGMA index_info({quote_ident(name)})")]
            if cols == [column]:
                return True
    return False


def _structure(con, check: _Checker) -> bool:
    present = {t: set(table_columns(con, t)) for t in REQUIRED_COLUMNS if table_exists(con, t)}
    found = structure_findings(present)
    check.report.findings.extend(found)
    return not found


def structure_findings(present: dict) -> list[Finding]:
    """Missing tables and columns (fatal), worded once for every engine; ``present``: {table: its
    columns} of the input tables that exist."""
    out = []
    for table, required in REQUIRED_COLUMNS.items():
        if table not in present:
            out.append(
                Finding("missing_table", FATAL, f"table {table} is missing (it needs columns {', '.join(required)})")
            )
            continue
        missing = [c for c in required if c not in present[table]]
        if missing:
            out.append(
                Finding("missing_column", FATAL, f"table {table} lacks column(s) {', '.join(missing)}", len(missing))
            )
    return out


def _sessions(con, check: _Checker, last_conversion: Optional[str], scans: InputScans) -> None:
    """Reads problems off the session profile (distinct value combinations); counts and examples come
    from a query over the table only for a kind of problem that is actually there."""
    t = "session_sources"
    profile = scans.session_profile()
    with whole_scan(con):  # count(*) walks the whole b-tree in one step (mapped_pages)
        check.report.rows[t] = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
    dates = {row["event_date"] for row in profile}
    good_dates = sorted(d for d in dates if is_iso_date(d))
    check.report.coverage.update(
        sessions_from=good_dates[0] if good_dates else None, sessions_to=good_dates[-1] if good_dates else None
    )
    rows_ok = scans.session_rows_ok()  # time, flags, ids: counted one by one if not
    present = {
        "null_session_id": not rows_ok,
        "null_user_id": not rows_ok,
        "bad_event_date": len(good_dates) < len(dates),
        "bad_event_time": not rows_ok,
        "null_channel": any(is_no_channel(r["channel_name"]) for r in profile),
        "blob_channel": any(isinstance(r["channel_name"], bytes) for r in profile),
        **{f"bad_{f}": not rows_ok for f in FLAGS},
        "late": last_conversion is not None and bool(good_dates) and good_dates[-1] > last_conversion,
    }
    preds = {
        "null_session_id": "session_id IS NULL",
        "null_user_id": "user_id IS NULL",
        "bad_event_date": BAD_DATE.format(c="event_date"),
        "bad_event_time": BAD_TIME.format(c="event_time"),
        "null_channel": no_channel_sql("channel_name"),
        "blob_channel": "typeof(channel_name) = 'blob'",
        **{f"bad_{f}": BAD_FLAG.format(c=f) for f in FLAGS},
        "late": "event_date > :last",
    }
    wanted = {k: v for k, v in preds.items() if present[k]}
    counts = dict.fromkeys(preds, 0)
    if wanted:
        counts.update(check.column_counts(t, wanted, params={"last": last_conversion}))
    counts["duplicate_session_id"], dup = check.duplicate_count(t, "session_id")
    counts["sessions_after_last_conversion"] = counts.pop("late")
    columns = {**EXAMPLE_COLUMNS[t], "blob_channel": "channel_name"}  # a BLOB: only SQLite stores one as text
    listing = {
        **_listing(t, {k: v for k, v in preds.items() if k in columns}, columns),
        "duplicate_session_id": (dup, ()),
        "sessions_after_last_conversion": (
            "SELECT session_id FROM session_sources WHERE event_date > ?",
            (last_conversion,),
        ),
    }
    check.word(t, counts, listing, last=last_conversion)


def _conversions(con, check: _Checker) -> Optional[str]:
    """Checks conversions (a small table: one direct pass); returns the last valid conversion date."""
    t = "conversions"
    preds = {
        "null_conv_id": "conv_id IS NULL",
        "null_user_id": "user_id IS NULL",
        "blank_user_id": f"typeof(user_id) = 'text' AND {BLANK.format(c='user_id')}",
        "bad_conv_date": BAD_DATE.format(c="conv_date"),
        "bad_conv_time": BAD_TIME.format(c="conv_time"),
        "revenue_not_number": NOT_NUMBER.format(c="revenue"),
        "null_revenue": "revenue IS NULL",
        "negative_revenue": "revenue < 0",
    }
    valid = f"CASE WHEN NOT {BAD_DATE.format(c='conv_date')} THEN conv_date END"
    counts = check.column_counts(t, preds, {"first": f"min({valid})", "last": f"max({valid})"})
    check.report.coverage.update(conversions_from=counts["first"], conversions_to=counts["last"])
    counts["duplicate_conv_id"], dup = check.duplicate_count(t, "conv_id")
    sessions = 0
    if counts["blank_user_id"]:  # rare: only then are the sessions looked up
        blank = f"SELECT user_id FROM conversions WHERE {preds['blank_user_id']}"
        sessions = con.execute(f"SELECT count(*) FROM session_sources WHERE user_id IN ({blank})").fetchone()[0]
        counts["blank_user_id"] *= bool(sessions)  # without such a session they only get no journey
    columns = EXAMPLE_COLUMNS[t]
    listing = {**_listing(t, {k: v for k, v in preds.items() if k in columns}, columns), "duplicate_conv_id": (dup, ())}
    check.word(t, counts, listing, sessions=sessions)
    return counts["last"]


def _costs(con, check: _Checker, scans: InputScans) -> None:
    t = "session_costs"
    counts = scans.cost_checks()
    check.report.rows[t] = counts["rows"]
    counts = dict(counts)
    counts["duplicate_session_id"], dup = check.duplicate_count(t, "session_id")
    duplicates = counts["duplicate_session_id"] or any(f.code == "duplicate_session_id" for f in check.report.findings)
    if not duplicates:  # with duplicate session ids (here or in session_sources) the matched count is meaningless
        counts["orphan_cost"] = max(counts["rows"] - counts["null_session_id"] - scans.matched_cost_rows(), 0)
    listing = {
        "duplicate_session_id": (dup, ()),
        "cost_not_number": (f"SELECT cost FROM {t} WHERE {NOT_NUMBER.format(c='cost')}", ()),
        "negative_cost": (f"SELECT cost FROM {t} WHERE cost < 0", ()),
        "orphan_cost": (
            "SELECT sc.session_id FROM session_costs sc WHERE sc.session_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM session_sources s WHERE s.session_id = sc.session_id)",
            (),
        ),
    }
    check.word(t, counts, listing)


def _without_earlier_sessions(check: _Checker, scans: InputScans) -> None:
    """Conversions no run can attribute, counted as a run counts them: no session of their user
    strictly before them (a look-back window can leave out more; the run says how many)."""
    finding = without_earlier_sessions_finding(scans.without_earlier_sessions())
    if finding is not None:
        check.report.findings.append(finding)


def without_earlier_sessions_finding(rows: list[tuple]) -> Optional[Finding]:
    """The warning for ``(conv_id, user has no session at all)`` rows, None when there are none."""
    if not rows:
        return None
    n, at_all = len(rows), sum(1 for _, a in rows if a)
    detail = f" ({at_all:,} of them: the user has no session at all)" if at_all else ""
    whose = "no session of its user before it" if n == 1 else "no session of their user before them"
    return Finding(
        "conversion_without_sessions",
        WARNING,
        f"conversions: {count(n, 'conversion has', 'conversions have')} {whose}{detail} and cannot be attributed",
        n,
        [c for c, _ in rows[:EXAMPLES]],
    )


CREDIT_SHARE_SQL = f"""
SELECT {channel_sql("s.channel_name")}, total(a.ihc)
FROM attribution_customer_journey a JOIN session_sources s ON s.session_id = a.session_id
GROUP BY 1
"""


def _cost_coverage(con, check: _Checker, scans: InputScans) -> None:
    check.report.findings.extend(
        cost_coverage_findings(scans.channel_days(), scans.channel_day_costs(), lambda: _credit_share(con))
    )


def cost_coverage_findings(channel_days, channel_day_costs: dict, credit_share) -> list[Finding]:
    """Cost that is missing where the report would not show it: a channel with sessions and no cost at
    all (its CPO reads 0 and its ROAS empty, as if it were free), and a paid channel without cost on
    some of its days (those days look unusually cheap). ``channel_days``: (channel, date) with
    sessions; ``channel_day_costs``: {(channel, date): cost}; ``credit_share()``: {channel: share of the
    stored credit}, asked only when needed. Every engine reads these off its own scans."""
    out = []
    days: dict[str, set[str]] = {}
    # a session without a date, or with a binary (BLOB) channel name, is a fatal finding of its own
    for channel, day in channel_days:
        if day is not None and isinstance(channel, str):
            days.setdefault(channel, set()).add(day)
    paid_days: dict[str, set[str]] = {}
    for (channel, day), cost in channel_day_costs.items():
        if cost > 0 and isinstance(channel, str):
            paid_days.setdefault(channel, set()).add(day)
    unpaid = sorted(c for c in days if c not in paid_days)
    if unpaid:
        share = credit_share()
        names = ", ".join(f"{clip(c)} {share[c]:.1%}" if c in share else clip(c) for c in unpaid)
        # the basis of the percentages before them: after them, a reader took them for the share of
        # sessions the Data page's channel table shows just below (after the colon: the part before
        # it names the finding, the same whether a share is known or not)
        of = "by share of the last attribution's credit, " if share else ""
        out.append(
            Finding(
                "channel_without_cost",
                WARNING,
                f"session_costs: {count(len(unpaid), 'channel has', 'channels have')} sessions but no cost at all: "
                f"{of}{names}; if one is paid, its cost is missing: the report shows no CPO for it (—) and the "
                "Blended CPO tile counts its conversions as free",
                len(unpaid),
            )
        )
    for channel in sorted(paid_days):
        missing = sorted(days.get(channel, set()) - paid_days[channel])
        if missing:
            out.append(
                Finding(
                    "cost_on_some_days",
                    WARNING,
                    f"session_costs: {clip(channel)} has cost on {len(paid_days[channel] & days[channel]):,} of its "
                    f"{len(days[channel]):,} days with sessions; the {count(len(missing), 'day', 'days')} without "
                    f"cost will look cheaper than {'it was' if len(missing) == 1 else 'they were'}",
                    len(missing),
                    missing[:EXAMPLES],
                )
            )
    return out


def _credit_share(con) -> dict[str, float]:
    """{channel: share of the stored credit} from the last attribution, {} before any."""
    if not table_exists(con, "attribution_customer_journey"):
        return {}
    rows = con.execute(CREDIT_SHARE_SQL).fetchall()
    total = sum(v for _, v in rows)
    return {c: v / total for c, v in rows} if total else {}


# Id columns, and the pairs of columns a join matches (by exact stored value: 1 is not '1', '007' is not 7).
ID_COLUMNS = [
    ("conversions", "conv_id"),
    ("conversions", "user_id"),
    ("session_sources", "session_id"),
    ("session_sources", "user_id"),
    ("session_costs", "session_id"),
]
MATCHED = [
    (("conversions", "user_id"), ("session_sources", "user_id")),
    (("session_costs", "session_id"), ("session_sources", "session_id")),
]


TYPE_WORDS = {"blob": "binary (BLOB)"}  # SQLite's typeof() names, where an analyst would not know them


def _type_words(types: set) -> str:
    """The one type in ``types`` in words: 'text', 'integer', 'binary (BLOB)'."""
    (kind,) = types
    return TYPE_WORDS.get(kind, kind)


def _id_types(con, check: _Checker, scans: InputScans) -> None:
    """Ids are matched by their exact stored value, so one column must hold one storage type, and
    matched columns the same one: integer 1 never equals text '1' (or '007'), and SQLite's column
    affinity would otherwise match '007' with 7 in one query and not in another. Both are fatal,
    named with counts per type and an example of each. Sessions' and costs' types come off the
    scans; conversions (a small table) are read here."""
    profile = scans.session_profile()
    types = {
        ("session_sources", "session_id"): {r["session_id_type"] for r in profile} - {"null"},
        ("session_sources", "user_id"): {r["user_id_type"] for r in profile} - {"null"},
        ("session_costs", "session_id"): scans.cost_id_types(),
    }
    for column in ("conv_id", "user_id"):
        c = quote_ident(column)
        types[("conversions", column)] = {
            r[0] for r in con.execute(f"SELECT DISTINCT typeof({c}) FROM conversions WHERE {c} IS NOT NULL")
        }
    for table, column in ID_COLUMNS:
        if types[(table, column)] == {"blob"}:
            c, t = quote_ident(column), quote_ident(table)
            n = con.execute(f"SELECT count({c}) FROM {t}").fetchone()[0]
            examples = check.examples(f"SELECT {c} FROM {t} WHERE {c} IS NOT NULL")
            check.report.findings.append(binary_column_finding(table, column, n, examples))
        if len(types[(table, column)]) > 1:
            c, t = quote_ident(column), quote_ident(table)
            per_type = con.execute(
                f"SELECT typeof({c}), count(*), min({c}) FROM {t} WHERE {c} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1"
            ).fetchall()
            kinds = ", ".join(f"{n:,} {TYPE_WORDS.get(kind, kind)}" for kind, n, _ in per_type)
            check.report.findings.append(
                Finding(
                    f"mixed_{column}_types",
                    FATAL,
                    f"{table}.{column}: ids of mixed types ({kinds}); ids are matched by their exact stored "
                    "value (1 is not '1'), so store them all as text or all as integers",
                    sum(n for _, n, _ in per_type),
                    [example for _, _, example in per_type][:EXAMPLES],
                )
            )
    for (ta, ca), (tb, cb) in MATCHED:
        a, b = types[(ta, ca)], types[(tb, cb)]
        if len(a) == 1 and len(b) == 1 and ids_clash(_type_words(a), _type_words(b)):
            check.report.findings.append(type_mismatch_finding((ta, ca, _type_words(a)), (tb, cb, _type_words(b))))


EXACT_NUMBERS = {"integer", "decimal"}  # kinds of ids compared as the same number by every engine


def ids_clash(a: str, b: str) -> bool:
    """Whether matched id columns holding ids of kinds ``a`` and ``b`` (in words: 'text', 'integer',
    'real', …) are refused — every engine's rule. Ids are matched by their exact stored value: text
    against a number never matches in SQLite (1 is not '1', '007' is not 7) while a typed engine casts
    one to the other (and matches '007' with 7, or fails on 'u1'); a real (floating-point) id against
    an integer or text one is an integer id an export turned into a number with decimals: 7.0 stands for 7
    only while ids are short (past 2^53 two ids become one), so it is refused rather than matched when it
    happens to be whole. Integers against decimals (a warehouse's NUMBER) are the same exact number. A
    column of binary (BLOB) ids has its own finding (one cause, one line)."""
    return a != b and "binary (BLOB)" not in (a, b) and not {a, b} <= EXACT_NUMBERS


def type_mismatch_finding(a: tuple[str, str, str], b: tuple[str, str, str]) -> Finding:
    """Matched id columns of two types: ``a``, ``b`` = (table, column, type in words) — every engine's."""
    (ta, ca, wa), (tb, cb, wb) = a, b
    if "real" in (wa, wb) and "text" not in (wa, wb):
        why = (
            "ids are matched by their exact stored value and a real (floating-point) number is no id (past 15 "
            "digits two ids become one); store both as integers"
        )
    else:
        why = (
            "they never match (ids are matched by their exact stored value, 1 is not '1'); store both as the same type"
        )
        if "real" in (wa, wb):
            why += " (text, or integers: a real (floating-point) number is no id)"
    return Finding(f"{ca}_type_mismatch", FATAL, f"{ta}.{ca} holds {wa} ids and {tb}.{cb} {wb} ids: {why}")


# What belongs in each input column that must not be binary (BLOB): ids, dates, times, a channel's name.
TEXT_ROLES: dict[tuple[str, str], str] = {
    **{key: "ids" for key in ID_COLUMNS},
    ("session_sources", "event_date"): "dates (YYYY-MM-DD)",
    ("session_sources", "event_time"): "times (HH:MM:SS)",
    ("session_sources", "channel_name"): "channel names",
    ("conversions", "conv_date"): "dates (YYYY-MM-DD)",
    ("conversions", "conv_time"): "times (HH:MM:SS)",
}


def binary_column_finding(table: str, column: str, n: int, examples: list) -> Finding:
    """Fatal: ``table.column`` holds only binary (BLOB) values (``n`` of them) where text belongs — a
    column of BLOB ids in SQLite, or a column of a binary type in a typed engine (DuckDB, Parquet, …).
    A BLOB is never equal to the text of the same bytes, and no date, time or channel name is one."""
    role = TEXT_ROLES[(table, column)]
    store = "as text or integers" if role == "ids" else "as text"
    return Finding(
        f"binary_{column}",
        FATAL,
        f"{table}.{column} holds {count(n, 'binary (BLOB) value', 'binary (BLOB) values')} where {role} belong; "
        f"store them {store}",
        n,
        list(examples)[:EXAMPLES],
    )
