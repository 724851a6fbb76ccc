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

``StageBook`` is one command's view of a database: the fingerprints and records read once, the stage
states evaluated once (again only after a stage wrote), and the unit of work that writes a stage's
output, its record and its run-log line together.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator, Optional

from .db import table_exists, transaction
from .fingerprint import change_counter, input_fingerprints, input_state, remember_inputs
from .schema import ensure_output_tables

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


def write_run_line(con: sqlite3.Connection, record: StageRecord) -> None:
    """The stage's line in the run log ``pipeline_runs``; call beside ``write_record``."""
    con.execute(
        "INSERT OR REPLACE INTO pipeline_runs (run_id, stage, status, params, rows, message,"
        " started_at, seconds) VALUES (?, ?, 'done', ?, ?, NULL, ?, ?)",
        (record.run_id, record.stage, digest(record.params), record.rows, record.started_at, record.seconds),
    )


def current_inputs(stage: str, fingerprints: dict[str, str], records: dict[str, StageRecord]) -> dict:
    """The inputs ``stage`` would read now: table fingerprints and the upstream stage's output id."""
    inputs: dict[str, Optional[str]] = {t: fingerprints[t] for t in TABLE_INPUTS[stage]}
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


def validation_current(fingerprints: dict[str, str], records: dict[str, StageRecord]) -> bool:
    """The stored validation was made on the input tables as they are now (its summary holds)."""
    rec = records.get("validate")
    return rec is not None and rec.inputs == current_inputs("validate", fingerprints, records)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


class StageBook:
    """The stage states of one database for one command, decided once, and its unit of work.

    It reads the input fingerprints and the stored records once; ``state`` evaluates every stage once
    and again only after a stage wrote a new record. ``commit`` writes a stage's output, its record and
    its run-log line in one transaction; ``defer`` keeps a record for the next commit; ``together``
    makes the stages inside commit as one transaction (or not at all). Each commit also stores the
    fingerprints with the change counter the file will carry after it, when no other commit came
    between the fingerprints and it (``fingerprint.remember_inputs``: the next command's fast path).
    """

    def __init__(self, con: sqlite3.Connection):
        self.con = con
        self.run_id = new_run_id()
        self.fingerprints, self._counter = input_state(con)  # counter: the file's, as fingerprinted
        self.records = read_records(con)
        self._after: Optional[int] = None  # the counter after the open write transaction commits
        self._wrote = False  # the open write transaction wrote a stage
        self.pending: list[StageRecord] = []  # records written with the next commit
        self._in_chain = False  # inside ``together``: stage commits join it
        self._states: Optional[dict[str, StageStatus]] = None

    # ---- what is up to date -------------------------------------------------------------------
    def state(self, stage: str) -> StageStatus:
        """The stage's status now (``evaluate`` over every stage, once per change of the records)."""
        if self._states is None:
            self._states = evaluate(self.fingerprints, self.records)
        return self._states[stage]

    def up_to_date(self, stage: str, params: dict) -> bool:
        rec = self.records.get(stage)
        return rec is not None and rec.params == params and self.state(stage).state == DONE

    def validation_current(self) -> bool:
        return validation_current(self.fingerprints, self.records)

    def new_record(self, stage: str, params: dict, rows: int, summary: dict, started: float, t0: str) -> StageRecord:
        """The record of a stage that began at ``started`` (perf_counter) / ``t0`` (now_iso)."""
        inputs = current_inputs(stage, self.fingerprints, self.records)
        return StageRecord(
            stage,
            self.run_id,
            params,
            inputs,
            digest(stage, params, inputs),
            rows,
            summary,
            t0,
            round(time.perf_counter() - started, 3),
        )

    # ---- the unit of work ---------------------------------------------------------------------
    def commit(self, record: StageRecord, write: Callable[[sqlite3.Connection], object]) -> None:
        """Write a stage's output (``write(con)``), its record and its run-log line atomically."""
        if self._in_chain:
            self._write(record, write)
        else:
            with self._transaction():
                self._write(record, write)
        self.pending.clear()
        self._remember(record)

    def _write(self, record: StageRecord, write) -> None:
        ensure_output_tables(self.con)
        write(self.con)
        for rec in [*self.pending, record]:
            write_record(self.con, rec)
            write_run_line(self.con, rec)
        remember_inputs(self.con, self._after, self.fingerprints)
        self._wrote = True

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction; once its writes commit, the file's counter is known (``_after``) only
        if nothing else committed since the fingerprints were read: the counter read under the write
        lock, before anything is written, is still the fingerprinted one (our commit adds 1)."""
        start, self._counter = self._counter, None  # unknown until the commit succeeds
        with transaction(self.con):
            now = change_counter(self.con)
            self._after = (now + 1) & 0xFFFFFFFF if now is not None and now == start else None
            self._wrote = False
            yield
        self._counter = self._after if self._wrote else start  # (a transaction that wrote nothing)

    def _remember(self, record: StageRecord) -> None:
        self.records[record.stage] = record
        self._states = None

    @contextmanager
    def together(self) -> Iterator["StageBook"]:
        """The stages inside commit together, or not at all: one transaction (one sync to disk)
        for the whole chain, and a failure in any stage leaves every earlier result as it was."""
        records, pending = dict(self.records), list(self.pending)
        try:
            with self._transaction():
                self._in_chain = True
                yield self
        except BaseException:
            self.records, self.pending, self._states = records, pending, None
            raise
        finally:
            self._in_chain = False

    def defer(self, record: StageRecord) -> None:
        """Keep a record to write with the next stage's commit (one transaction, one fsync, fewer)."""
        self.pending.append(record)
        self._remember(record)

    def flush(self) -> None:
        """Write a deferred record no stage's commit took along."""
        if self.pending:
            last = self.pending.pop()
            self.commit(last, lambda con: None)
