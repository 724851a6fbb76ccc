"""Stage status: what each stage produced, from which inputs, and whether it is still current.

Each stage, when it finishes, records in ``pipeline_stages`` (in the same transaction as its output):
its parameters, its inputs (fingerprints of the input tables it read and the output id of the stage
before it), an output id, row counts and timing. A stage is

- ``missing``: never ran on this database;
- ``stale``: an input changed since (a table edited, the stage before it redone) or a stage before it
  is stale or missing;
- ``done``: up to date.

``run`` skips a stage that is done with the same parameters — the original scripts' "journeys exist?
then reuse" made correct — and ``--force`` redoes it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

from .db import table_exists
from .fingerprint import input_fingerprints

STAGES = ["journeys", "attribute", "report"]
# What each stage reads: input tables and the stage before it.
TABLE_INPUTS = {
    "validate": ["session_sources", "conversions", "session_costs"],
    "journeys": ["session_sources", "conversions"],
    "attribute": [],
    "report": ["session_sources", "conversions", "session_costs"],
}
UPSTREAM = {"validate": None, "journeys": None, "attribute": "journeys", "report": "attribute"}

DONE, STALE, MISSING = "done", "stale", "missing"


@dataclass
class StageRecord:
    stage: str
    run_id: str
    params: dict
    inputs: dict
    output: str
    rows: int
    summary: dict = field(default_factory=dict)
    started_at: str = ""
    seconds: float = 0.0


@dataclass
class StageStatus:
    stage: str
    state: str
    reason: str
    record: Optional[StageRecord]


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def digest(*parts) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def read_records(con: sqlite3.Connection) -> dict[str, StageRecord]:
    if never_ran(con):
        return {}
    records = {}
    for stage, run_id, params, inputs, output, rows, summary, started, seconds in con.execute(
        "SELECT stage, run_id, params, inputs, output, rows, summary, started_at, seconds FROM pipeline_stages"
    ):
        records[stage] = StageRecord(
            stage,
            run_id,
            json.loads(params),
            json.loads(inputs),
            output,
            rows,
            json.loads(summary),
            started,
            seconds,
        )
    return records


def never_ran(con: sqlite3.Connection) -> bool:
    """This product never ran a stage on the database behind ``con``: everything will be computed."""
    return not table_exists(con, "pipeline_stages")


def write_record(con: sqlite3.Connection, record: StageRecord) -> None:
    """Record a finished stage; call inside the transaction that wrote the stage's output."""
    con.execute(
        "INSERT OR REPLACE INTO pipeline_stages (stage, run_id, params, inputs, output, rows, summary,"
        " started_at, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.stage,
            record.run_id,
            json.dumps(record.params, sort_keys=True),
            json.dumps(record.inputs, sort_keys=True),
            record.output,
            int(record.rows),
            json.dumps(record.summary, sort_keys=True, default=str),
            record.started_at,
            float(record.seconds),
        ),
    )


def current_inputs(stage: str, fingerprints: dict[str, str], records: dict[str, StageRecord]) -> dict:
    """The inputs ``stage`` would read now: table fingerprints and the upstream stage's output id."""
    inputs = {t: fingerprints[t] for t in TABLE_INPUTS[stage]}
    upstream = UPSTREAM[stage]
    if upstream:
        rec = records.get(upstream)
        inputs[upstream] = rec.output if rec else None
    return inputs


def evaluate(fingerprints: dict[str, str], records: dict[str, StageRecord], stages=STAGES) -> dict[str, StageStatus]:
    """Status of each stage given the current fingerprints and the stored records."""
    result: dict[str, StageStatus] = {}
    for stage in stages:
        rec = records.get(stage)
        upstream = UPSTREAM.get(stage)
        if rec is None:
            result[stage] = StageStatus(stage, MISSING, "never run", None)
            continue
        changed = [
            name
            for name, value in current_inputs(stage, fingerprints, records).items()
            if rec.inputs.get(name) != value
        ]
        if upstream and upstream in result and result[upstream].state != DONE:
            result[stage] = StageStatus(stage, STALE, f"{upstream} is {result[upstream].state}", rec)
        elif changed:
            what = ", ".join(f"{name} was redone" if name in UPSTREAM else f"{name} changed" for name in changed)
            result[stage] = StageStatus(stage, STALE, what, rec)
        else:
            result[stage] = StageStatus(stage, DONE, "up to date", rec)
    return result


def status(con: sqlite3.Connection) -> dict[str, StageStatus]:
    """Status of every stage of the database behind ``con`` (reads only)."""
    return evaluate(input_fingerprints(con), read_records(con))
