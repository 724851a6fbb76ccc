"""Running the stages against a database: skip what is up to date, one transaction per stage.

Each ``*_stage`` function is what the CLI command of the same name does: it checks the stage's status,
computes (reading only), then writes its output and its status record in one transaction. ``run_pipeline``
chains validate → journeys → attribute → report. While the stages before the report work, the report's
expensive half (cost per channel-day over every session) is computed on a second connection in a
second thread: SQLite releases Python's GIL while it scans, so the two run on two cores.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Optional

import pandas as pd

from . import journeys as jr
from .db import database_file, open_database, transaction
from .errors import InputError, PipelineError
from .fingerprint import input_fingerprints
from .models import available_models, get_model
from .progress import Progress, ensure, scaled
from .report import build_report, channel_day_costs, write_report
from .schema import ensure_output_tables
from .status import (
    DONE,
    StageRecord,
    current_inputs,
    digest,
    evaluate,
    now_iso,
    read_records,
    write_record,
)
from .store import store_credits
from .validate import ValidationReport, validate

NO_SESSION_REASON = "no session before the conversion"


def default_model() -> str:
    """``ihc`` (the offline IHC model) where available, else ``linear``."""
    return "ihc" if "ihc" in available_models() else "linear"


@dataclass
class RunOptions:
    window: jr.Window = field(default_factory=jr.Window)
    model: Optional[str] = None  # None: default_model()
    params: dict = field(default_factory=dict)
    force: bool = False


@dataclass
class StageOutcome:
    stage: str
    skipped: bool
    record: StageRecord
    message: str


@dataclass
class RunResult:
    validation: ValidationReport
    outcomes: list[StageOutcome]
    seconds: float

    def lines(self) -> list[str]:
        return [o.message for o in self.outcomes]


class Context:
    """One database's fingerprints and stage records, shared by the stages of one command."""

    def __init__(self, con: sqlite3.Connection, progress: Optional[Progress] = None):
        self.con = con
        self.progress = ensure(progress)
        self.run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
        self.fingerprints = input_fingerprints(con)
        self.records = read_records(con)
        self.journeys: Optional[jr.Journeys] = None

    def up_to_date(self, stage: str, params: dict) -> bool:
        rec = self.records.get(stage)
        if rec is None or rec.params != params:
            return False
        return evaluate(self.fingerprints, self.records, [*_chain(stage)])[stage].state == DONE

    def new_record(self, stage: str, params: dict, rows: int, summary: dict, started: float, t0: str) -> StageRecord:
        inputs = current_inputs(stage, self.fingerprints, self.records)
        return StageRecord(
            stage, self.run_id, params, inputs, digest(stage, params, inputs), rows, summary,
            t0, round(time.perf_counter() - started, 3),
        )

    def commit(self, record: StageRecord, write) -> None:
        """Write a stage's output (``write(con)``), its record and its run-log line atomically."""
        with transaction(self.con):
            ensure_output_tables(self.con)
            write(self.con)
            write_record(self.con, record)
            self.con.execute(
                "INSERT OR REPLACE INTO pipeline_runs (run_id, stage, status, params, rows, message,"
                " started_at, seconds) VALUES (?, ?, 'done', ?, ?, NULL, ?, ?)",
                (record.run_id, record.stage, digest(record.params), record.rows, record.started_at, record.seconds),
            )
        self.records[record.stage] = record


def _chain(stage: str) -> list[str]:
    order = ["journeys", "attribute", "report"]
    return order[: order.index(stage) + 1] if stage in order else [stage]


# ---- stages ------------------------------------------------------------------------------------


def validate_stage(ctx: Context, progress: Optional[Progress] = None) -> ValidationReport:
    """Validation of the current inputs; reused from the last run when no input table changed.
    A fatal finding raises InputError before anything is written."""
    inputs = current_inputs("validate", ctx.fingerprints, ctx.records)
    rec = ctx.records.get("validate")
    if rec is not None and rec.inputs == inputs:
        report = ValidationReport.from_dict(rec.summary)
    else:
        started, t0 = time.perf_counter(), now_iso()
        report = validate(ctx.con, progress)
        report.raise_if_fatal()
        record = ctx.new_record("validate", {}, sum(report.rows.values()), report.to_dict(), started, t0)
        ctx.commit(record, lambda con: None)
    report.raise_if_fatal()
    return report


def journeys_stage(ctx: Context, window: jr.Window, force: bool = False, progress: Optional[Progress] = None) -> StageOutcome:
    params = window.as_params()
    if not force and ctx.up_to_date("journeys", params):
        rec = ctx.records["journeys"]
        return StageOutcome("journeys", True, rec, f"journeys: up to date ({_count(rec)}), reused")
    started, t0 = time.perf_counter(), now_iso()
    journeys = jr.build_journeys(ctx.con, window, progress)
    summary = journeys.summary()
    summary["first_session_date"] = (
        str(journeys.frame["timestamp"].min())[:10] if len(journeys.frame) else None
    )
    record = ctx.new_record("journeys", params, len(journeys.frame), summary, started, t0)
    ctx.commit(record, lambda con: jr.save_journeys(con, journeys))
    ctx.journeys = journeys
    return StageOutcome("journeys", False, record, f"journeys: built ({_count(record)}) in {record.seconds:.2f}s")


def attribute_stage(
    ctx: Context,
    model_name: Optional[str] = None,
    params: Optional[dict] = None,
    force: bool = False,
    progress: Optional[Progress] = None,
) -> StageOutcome:
    model_name = model_name or default_model()
    model = get_model(model_name)
    resolved = model.resolve_params(params)
    stage_params = {"model": model_name, "params": resolved}
    jrec = ctx.records.get("journeys")
    if jrec is None:
        raise InputError("there are no journeys yet: run `journeys` first (or `run`)")
    jstate = evaluate(ctx.fingerprints, ctx.records, ["journeys"])["journeys"]
    if jstate.state != DONE:
        raise InputError(f"the stored journeys are stale ({jstate.reason}): run `journeys` again (or `run`)")
    if not force and ctx.up_to_date("attribute", stage_params):
        rec = ctx.records["attribute"]
        return StageOutcome("attribute", True, rec, f"attribute: up to date ({model_name}, {rec.rows:,} rows), reused")
    started, t0 = time.perf_counter(), now_iso()
    window = jr.Window(**jrec.params)
    journeys = ctx.journeys if ctx.journeys is not None else jr.load_journeys(ctx.con, window)
    non_converting = (
        jr.build_non_converting(ctx.con, window, progress) if model.needs_non_converting else None
    )
    credits = model.attribute(journeys.frame, resolved, non_converting=non_converting, progress=progress)
    unattributed = pd.DataFrame({"conversion_id": journeys.without_sessions, "reason": NO_SESSION_REASON})
    summary = {
        "model": model_name,
        "conversions_attributed": int(credits["conversion_id"].nunique()),
        "not_attributed": {NO_SESSION_REASON: int(len(unattributed))},
    }
    record = ctx.new_record("attribute", stage_params, len(credits), summary, started, t0)
    ctx.commit(
        record,
        lambda con: store_credits(
            con, credits, journeys.conversions["conversion_id"], model=model_name,
            run_id=ctx.run_id, unattributed=unattributed,
        ),
    )
    return StageOutcome(
        "attribute", False, record,
        f"attribute: {summary['conversions_attributed']:,} conversions attributed with {model_name}"
        f" ({len(unattributed):,} without an earlier session) in {record.seconds:.2f}s",
    )


def report_stage(
    ctx: Context,
    start: Optional[str] = None,
    end: Optional[str] = None,
    force: bool = False,
    progress: Optional[Progress] = None,
    costs: Optional[Future] = None,
) -> StageOutcome:
    params = {"start": start, "end": end}
    if ctx.records.get("attribute") is None:
        raise InputError("nothing is attributed yet: run `attribute` first (or `run`)")
    if not force and ctx.up_to_date("report", params):
        rec = ctx.records["report"]
        return StageOutcome("report", True, rec, f"report: up to date ({rec.rows:,} channel-days), reused")
    started, t0 = time.perf_counter(), now_iso()
    precomputed = None
    if costs is not None:
        precomputed = costs.result()
        keep = (precomputed["date"] >= (start or "")) & (precomputed["date"] <= (end or "9999"))
        precomputed = precomputed[keep].reset_index(drop=True)
    report = build_report(ctx.con, start, end, progress, costs=precomputed)
    summary = {
        "channel_days": len(report),
        "cost": round(float(report["cost"].sum()), 2),
        "ihc": round(float(report["ihc"].sum()), 4),
        "ihc_revenue": round(float(report["ihc_revenue"].sum()), 2),
    }
    record = ctx.new_record("report", params, len(report), summary, started, t0)
    ctx.commit(record, lambda con: write_report(con, report, start, end))
    return StageOutcome("report", False, record, f"report: {len(report):,} channel-days rebuilt in {record.seconds:.2f}s")


def _count(rec: StageRecord) -> str:
    s = rec.summary
    return f"{s.get('sessions', rec.rows):,} sessions, {s.get('conversions', 0):,} conversions"


# ---- the whole chain ---------------------------------------------------------------------------


def run_pipeline(con: sqlite3.Connection, options: RunOptions = RunOptions(), progress: Optional[Progress] = None) -> RunResult:
    """validate → journeys → attribute → report, skipping stages that are up to date."""
    started = time.perf_counter()
    progress = ensure(progress)
    window = options.window
    model_name = options.model or default_model()
    get_model(model_name)  # an unknown model is a usage error before any work
    ctx = Context(con, progress)
    prefetch = _start_cost_prefetch(con, ctx, window, options.force)
    try:
        validation = validate_stage(ctx, scaled(progress, 0, 10, 100))
        outcomes = [journeys_stage(ctx, window, options.force, scaled(progress, 10, 15, 100))]
        outcomes.append(
            attribute_stage(ctx, model_name, options.params, options.force, scaled(progress, 25, 55, 100))
        )
        start, end = report_range(window, ctx.records["journeys"].summary)
        outcomes.append(
            report_stage(ctx, start, end, options.force, scaled(progress, 80, 20, 100), costs=prefetch)
        )
    finally:
        if prefetch is not None:
            prefetch.cancel()
    progress(100, 100, "done")
    return RunResult(validation, outcomes, time.perf_counter() - started)


def report_range(window: jr.Window, journeys_summary: dict) -> tuple[Optional[str], Optional[str]]:
    """The session dates whose report rows a run may change: from the earliest session of its
    journeys (or the window start, if earlier) to the window end; unbounded where the window is."""
    start = window.start
    first = journeys_summary.get("first_session_date")
    if start is not None and first is not None:
        start = min(start, first)
    return start, window.end


def _start_cost_prefetch(con, ctx: Context, window: jr.Window, force: bool) -> Optional[Future]:
    """Compute cost per channel-day in a second thread when the report will be rebuilt."""
    path = database_file(con)
    if path is None:
        return None
    rec = ctx.records.get("report")
    if not force and rec is not None and all(
        s.state == DONE for s in evaluate(ctx.fingerprints, ctx.records).values()
    ):
        return None  # everything current: the report will most likely be reused
    first = None
    if window.start is not None and window.lookback_days is not None:
        first = (date.fromisoformat(window.start) - timedelta(days=window.lookback_days)).isoformat()
    elif window.start is not None:
        first = None  # journeys may reach back to the first session
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cost-prefetch")

    def work() -> pd.DataFrame:
        reader = open_database(path)
        try:
            return channel_day_costs(reader, first, window.end)
        finally:
            reader.close()

    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future


__all__ = [
    "Context", "RunOptions", "RunResult", "StageOutcome", "PipelineError",
    "attribute_stage", "default_model", "journeys_stage", "report_stage", "run_pipeline", "validate_stage",
]
