"""Table definitions: the analyst's input tables, the two output tables, and the product's own tables.

The two output tables keep the exact schema of the original challenge. Everything more the product keeps
(phase values, which conversions could not be attributed, stage status, the run log) lives in tables of
its own whose names start with ``pipeline_``.
"""

from __future__ import annotations

import sqlite3

# How a session without a channel is reported: channel_name NULL, empty or blank (only whitespace).
# One rule, in SQL (``channel_sql``, SQLite and DuckDB alike) and in Python (``channel_label``); a name
# with real text keeps its surrounding spaces.
NO_CHANNEL = "(not set)"
NO_CHANNEL_WHAT = "NULL, empty or blank"  # how findings say which names count as no channel
# The reason stored in pipeline_unattributed for a conversion with no session before it (every engine).
NO_SESSION_REASON = "no session before the conversion"
# ASCII whitespace and the Unicode spaces a spreadsheet leaves behind (no-break, en/em/thin, ideographic)
BLANK = " \t\n\r\x0b\x0c\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def channel_sql(column: str) -> str:
    """SQL for the channel a session is reported under: ``column``, or NO_CHANNEL when it is NULL,
    empty or blank (SQLite and DuckDB both trim these characters)."""
    return f"(CASE WHEN nullif(trim({column}, '{BLANK}'), '') IS NULL THEN '{NO_CHANNEL}' ELSE {column} END)"


def no_channel_sql(column: str) -> str:
    """SQL true when ``column`` is no channel (NULL, empty or blank)."""
    return f"(nullif(trim({column}, '{BLANK}'), '') IS NULL)"


def is_no_channel(name) -> bool:
    return name is None or (isinstance(name, str) and not name.strip(BLANK))


def channel_label(name):
    """The channel ``name`` is reported under (``channel_sql`` in Python)."""
    return NO_CHANNEL if is_no_channel(name) else name


# What validate() requires; extra tables and columns are allowed and left alone.
REQUIRED_COLUMNS: dict[str, list[str]] = {
    "session_sources": [
        "session_id",
        "user_id",
        "event_date",
        "event_time",
        "channel_name",
        "holder_engagement",
        "closer_engagement",
        "impression_interaction",
    ],
    "conversions": ["conv_id", "user_id", "conv_date", "conv_time", "revenue"],
    "session_costs": ["session_id", "cost"],
}
INPUT_TABLES = list(REQUIRED_COLUMNS)

INPUT_DDL = """
CREATE TABLE session_sources (
    session_id TEXT PRIMARY KEY, user_id TEXT, event_date TEXT, event_time TEXT, channel_name TEXT,
    holder_engagement INTEGER, closer_engagement INTEGER, impression_interaction INTEGER);
CREATE TABLE conversions (
    conv_id TEXT PRIMARY KEY, user_id TEXT, conv_date TEXT, conv_time TEXT, revenue REAL);
CREATE TABLE session_costs (session_id TEXT PRIMARY KEY, cost REAL);
"""

OUTPUT_DDL = """
CREATE TABLE IF NOT EXISTS attribution_customer_journey (
    conv_id TEXT NOT NULL, session_id TEXT NOT NULL, ihc REAL NOT NULL,
    PRIMARY KEY (conv_id, session_id));
CREATE TABLE IF NOT EXISTS channel_reporting (
    channel_name TEXT NOT NULL, date TEXT NOT NULL, cost REAL NOT NULL, ihc REAL NOT NULL,
    ihc_revenue REAL NOT NULL, PRIMARY KEY (channel_name, date));
"""

# The product's own tables.
OWN_DDL = """
CREATE TABLE IF NOT EXISTS pipeline_journeys (
    conversion_id TEXT NOT NULL, session_id TEXT NOT NULL, timestamp TEXT NOT NULL,
    channel_label TEXT NOT NULL, holder_engagement INTEGER NOT NULL, closer_engagement INTEGER NOT NULL,
    conversion INTEGER NOT NULL, impression_interaction INTEGER NOT NULL,
    PRIMARY KEY (conversion_id, session_id));
-- Conversions of the current journeys set (with or without earlier sessions): what 'attribute' covers.
CREATE TABLE IF NOT EXISTS pipeline_journey_conversions (
    conversion_id TEXT PRIMARY KEY, sessions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pipeline_attribution (
    conv_id TEXT NOT NULL, session_id TEXT NOT NULL, initializer REAL, holder REAL, closer REAL,
    ihc REAL NOT NULL, model TEXT NOT NULL, PRIMARY KEY (conv_id, session_id));
CREATE TABLE IF NOT EXISTS pipeline_unattributed (
    conv_id TEXT PRIMARY KEY, reason TEXT NOT NULL, model TEXT NOT NULL, run_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pipeline_stages (
    stage TEXT PRIMARY KEY, run_id TEXT NOT NULL, params TEXT NOT NULL, inputs TEXT NOT NULL,
    output TEXT NOT NULL, rows INTEGER NOT NULL, summary TEXT NOT NULL,
    started_at TEXT NOT NULL, seconds REAL NOT NULL);
-- The input fingerprints as of this file's change counter after the product's last commit (fingerprint.py).
CREATE TABLE IF NOT EXISTS pipeline_input_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), change_counter INTEGER NOT NULL, file_id TEXT NOT NULL,
    fingerprints TEXT NOT NULL);
-- The run's input scans, keyed by the input fingerprints and the scan's SQL (scan_store.py).
CREATE TABLE IF NOT EXISTS pipeline_input_scans (
    name TEXT PRIMARY KEY, key TEXT NOT NULL, rows TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pipeline_runs (
    run_id TEXT NOT NULL, stage TEXT NOT NULL, status TEXT NOT NULL, params TEXT NOT NULL,
    rows INTEGER, message TEXT, started_at TEXT NOT NULL, seconds REAL,
    PRIMARY KEY (run_id, stage));
"""


def ensure_output_tables(con: sqlite3.Connection) -> None:
    """Create the output and product tables where missing (inside the caller's transaction)."""
    for statement in (OUTPUT_DDL + OWN_DDL).split(";"):
        if statement.strip():
            con.execute(statement)
