"""An engine run's journey-sized part as a SQLite file, so everything that reads a run (the report with
its intervals, ``export --intervals`` and ``--by conversion-date``, ``report-html``, the dashboard's
Report and Journeys pages) reads it with the SQLite engine's own code and gives its numbers.

The engine keeps the set work: it builds the journeys (``journey_batches``) and joins the stored credit
to its sessions. What comes into Python and the file is journey- or conversion-sized, never the whole
session table:

| table in the file | from the engine |
|---|---|
| ``channel_reporting`` | the stored report (``stored_report``): channel-days |
| ``attribution_customer_journey`` | the stored credit: one row per session in a journey |
| ``session_sources`` | only the sessions that have credit (the join is done by the engine) |
| ``conversions`` | every conversion (conversion-sized) |
| ``pipeline_journeys``, ``pipeline_journey_conversions`` | the journeys of the stored run's window, streamed |
| ``pipeline_attribution``, ``pipeline_unattributed`` | the credit with the stored run's model; conversions without a session |
| ``pipeline_stages`` | the engine's stage records, re-keyed to this file so ``status`` says what the engine says |

``session_costs`` stays empty: every cost the report shows is already in ``channel_reporting``.
Validation is the engine's own (stored with its run), not a check of this file.

Rows are copied as the engine stores them (no sum is taken outside SQLite), so the fixed-point sums of
the report and the intervals' resampling meet the very same rows as on the SQLite engine: the CSV is
byte-identical (tests/test_engine_extract.py).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Iterable, Optional

from .errors import InputError
from .progress import Progress, ensure
from .schema import INPUT_DDL, NO_SESSION_REASON, REQUIRED_COLUMNS, ensure_output_tables
from .window import Window

NEEDS = ("run_record", "stored_report", "journey_batches", "fingerprint")
BATCH = 50_000

CREDITED_SESSIONS_SQL = (
    "SELECT {columns} FROM session_sources WHERE session_id IN (SELECT session_id FROM attribution_customer_journey)"
)


def _plain(value):
    """An engine value as SQLite stores it in the SQLite engine's tables (dates and times as text)."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _rows(rows: Iterable[tuple]) -> Iterable[tuple]:
    return (tuple(_plain(v) for v in row) for row in rows)


def extract_run(
    source,
    target: str | Path,
    engine: Optional[str] = None,
    engine_options: Optional[dict] = None,
    progress: Optional[Progress] = None,
) -> Path:
    """Write the stored run of ``source`` (a URL or ``sources.Source``) to the new SQLite file ``target``
    (written aside, then renamed: never half-written). InputError when the source has no run yet."""
    from .engines.run import open_run, stage_records

    progress = ensure(progress)
    target = Path(target)
    mod, eng = open_run(source, engine, engine_options, write=False, needs=NEEDS)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        with eng:
            records = stage_records(mod.run_record(eng))
            report = mod.stored_report(eng)
            if report is None or "attribute" not in records or "journeys" not in records:
                raise InputError(f"{eng.source.display()}: nothing is attributed yet: run `run` first")
            fingerprint = mod.fingerprint(eng)
            con = sqlite3.connect(tmp)
            try:
                _fill(con, mod, eng, records, report, progress)
                con.commit()  # the tables' fingerprints are of the file as committed
                _stage_records(con, records, fingerprint)
                con.commit()
            finally:
                con.close()
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    progress(100, 100, "extract: done")
    return target


def _fill(con: sqlite3.Connection, mod, eng, records: dict, report: list, progress: Progress) -> None:
    from .journeys import CONVERSIONS_SQL, JOURNEY_COLUMNS

    con.executescript(INPUT_DDL)
    ensure_output_tables(con)
    progress(5, 100, "extract: channel report")
    con.executemany("INSERT INTO channel_reporting VALUES (?, ?, ?, ?, ?)", _rows(report))
    progress(10, 100, "extract: conversions")
    cols = REQUIRED_COLUMNS["conversions"]
    con.executemany(
        f"INSERT OR IGNORE INTO conversions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        _rows(eng.sql(f"SELECT {', '.join(cols)} FROM conversions")),
    )
    progress(20, 100, "extract: credit")
    con.executemany(
        "INSERT INTO attribution_customer_journey (conv_id, session_id, ihc) VALUES (?, ?, ?)",
        _rows(eng.sql("SELECT conv_id, session_id, ihc FROM attribution_customer_journey")),
    )
    model = records["attribute"].params.get("model", "")
    run_id = records["attribute"].run_id
    con.execute(
        "INSERT INTO pipeline_attribution (conv_id, session_id, ihc, model)"
        " SELECT conv_id, session_id, ihc, ? FROM attribution_customer_journey",
        (model,),
    )
    progress(35, 100, "extract: sessions with credit")
    cols = REQUIRED_COLUMNS["session_sources"]
    con.executemany(
        f"INSERT OR IGNORE INTO session_sources ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        _rows(eng.sql(CREDITED_SESSIONS_SQL.format(columns=", ".join(cols)))),
    )
    progress(50, 100, "extract: journeys")
    window = Window(**records["journeys"].params)
    for batch in mod.journey_batches(eng, window):
        con.executemany(
            "INSERT OR IGNORE INTO pipeline_journeys (conversion_id, session_id, timestamp, channel_label,"
            " holder_engagement, closer_engagement, conversion, impression_interaction)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            zip(*(_as_list(batch[c]) for c in JOURNEY_COLUMNS)),
        )
    # Every conversion of the window, with its number of journey sessions (0: none before it).
    con.execute("CREATE TEMP TABLE window_conversions (conv_id TEXT PRIMARY KEY)")
    con.execute(f"INSERT INTO temp.window_conversions {CONVERSIONS_SQL}", window.sql_params())
    con.execute(
        "INSERT INTO pipeline_journey_conversions (conversion_id, sessions)"
        " SELECT w.conv_id, (SELECT count(*) FROM pipeline_journeys j WHERE j.conversion_id = w.conv_id)"
        " FROM temp.window_conversions w"
    )
    con.execute(
        "INSERT INTO pipeline_unattributed (conv_id, reason, model, run_id)"
        " SELECT conversion_id, ?, ?, ? FROM pipeline_journey_conversions WHERE sessions = 0",
        (NO_SESSION_REASON, model, run_id),
    )
    progress(95, 100, "extract: stage records")


def _as_list(values) -> list:
    return [_plain(v) for v in (values.tolist() if hasattr(values, "tolist") else list(values))]


def _stage_records(con: sqlite3.Connection, records: dict, fingerprint: str) -> None:
    """The engine's stage records, keyed to this file's tables: a stage done on the engine is done here,
    a stale one stale (its inputs do not match)."""
    from dataclasses import replace

    from .fingerprint import input_fingerprints
    from .status import current_inputs, digest, write_record, write_run_line

    fingerprints = input_fingerprints(con)
    kept: dict = {}
    for stage in ("validate", "journeys", "attribute", "report"):
        rec = records.get(stage)
        if rec is None:
            continue
        inputs = current_inputs(stage, fingerprints, kept)
        if rec.inputs.get("fingerprint") != fingerprint:
            inputs = {name: "changed on the engine" for name in inputs}
        ours = replace(rec, inputs=inputs, output=digest(stage, rec.params, inputs))
        write_record(con, ours)
        write_run_line(con, ours)
        kept[stage] = ours
