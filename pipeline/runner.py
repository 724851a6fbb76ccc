"""Running the stages against a database: skip what is up to date, one transaction per stage.

Each ``*_stage`` function is what the CLI command of the same name does: it checks the stage's status,
computes (reading only), then writes its output and its status record in one transaction.
``run_pipeline`` chains validate → journeys → attribute → report. The whole-table scans that validation
and the report share (``scans.InputScans``) start first, on their own connections and threads (or child
processes), while the main thread fingerprints the inputs, builds the journeys and, for a local model,
computes the credit; they are interrupted if it turns out that nothing needs them. A local model's
three stages commit in one transaction, which validation decides: nothing is committed unless it
passes (its journeys and credit may already be written, uncommitted, while the scans run).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import journeys as jr
from .db import no_cache_spill, transaction
from .errors import InputError
from .fingerprint import input_fingerprints
from .journey_index import CREDIT_COLUMNS, PHASES
from .models import available_models, get_model
from .progress import Progress, ensure, forward_only, scaled
from .report import build_report, write_report
from .scans import InputScans
from .schema import ensure_output_tables
from .status import DONE, StageRecord, current_inputs, digest, evaluate, never_ran, now_iso, read_records, write_record
from .store import store_credits
from .validate import ValidationReport, start_scans, validate

NO_SESSION_REASON = "no session before the conversion"
CHAIN = ["journeys", "attribute", "report"]
API_MODEL = "ihc-api"  # attribution through the IHC web API (pipeline.ihc_api), not a registry model
API_DESCRIPTION = "IHC through Haensel AMS's web API (needs IHC_API_KEY and IHC_CONV_TYPE_ID)."


def default_model() -> str:
    """``ihc`` (the offline IHC model) where available, else ``linear``."""
    return "ihc" if "ihc" in available_models() else "linear"


def model_names() -> list[str]:
    """Every model a run accepts: the registry's and the IHC API."""
    return [*available_models(), API_MODEL]


@dataclass
class RunOptions:
    window: jr.Window = field(default_factory=jr.Window)
    model: Optional[str] = None  # None: default_model()
    params: dict = field(default_factory=dict)
    force: bool = False
    api_config: Optional[object] = None  # pipeline.ihc_api.ApiConfig, for model "ihc-api"
    retry_failed: bool = False  # ihc-api: re-send conversions an earlier run recorded as failed

    def check(self) -> None:
        """Usage errors (unknown model, bad parameters, missing API key) before any work."""
        name = self.model or default_model()
        if name == API_MODEL:
            if self.api_config is None:
                from .ihc_api import load_config

                self.api_config = load_config()
            self.api_config.require()
        else:
            get_model(name).resolve_params(self.params)


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
    """One database's fingerprints, stage records and scans, shared by the stages of one command."""

    def __init__(
        self, con: sqlite3.Connection, progress: Optional[Progress] = None, scans: Optional[InputScans] = None
    ):
        self.con = con
        self.progress = ensure(progress)
        self.run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
        self.fingerprints = input_fingerprints(con)
        self.records = read_records(con)
        self._scans = scans
        self.journeys: Optional[jr.Journeys] = None
        self.pending: list[StageRecord] = []  # records written with the next commit
        self._in_chain = False  # inside ``one_transaction``: stage commits join it
        self.precomputed: Optional[tuple] = None  # (journeys, model, params, columns): see _credits_meanwhile
        # {stage: (started_at, seconds)} of work done ahead of the stage (while validation scanned): a
        # stage that uses it counts that time in its record, as if it had done the work itself.
        self.ahead: dict[str, tuple[str, float]] = {}

    @property
    def scans(self) -> InputScans:
        return self.start_scans()

    def start_scans(self) -> InputScans:
        """The whole-table scans, started on first use (InputError if a table or column is missing)."""
        if self._scans is None:
            self._scans = start_scans(self.con)
        return self._scans

    def cancel_scans(self) -> None:
        if self._scans is not None:
            self._scans.cancel()

    def up_to_date(self, stage: str, params: dict) -> bool:
        rec = self.records.get(stage)
        if rec is None or rec.params != params:
            return False
        chain = CHAIN[: CHAIN.index(stage) + 1] if stage in CHAIN else [stage]
        return evaluate(self.fingerprints, self.records, chain)[stage].state == DONE

    def validation_cached(self) -> bool:
        rec = self.records.get("validate")
        return rec is not None and rec.inputs == current_inputs("validate", self.fingerprints, self.records)

    def new_record(self, stage: str, params: dict, rows: int, summary: dict, started: float, t0: str) -> StageRecord:
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

    def commit(self, record: StageRecord, write) -> None:
        """Write a stage's output (``write(con)``), its record and its run-log line atomically."""
        if self._in_chain:
            self._write(record, write)
        else:
            with transaction(self.con):
                self._write(record, write)
        self.pending.clear()
        self.records[record.stage] = record

    def _write(self, record: StageRecord, write) -> None:
        ensure_output_tables(self.con)
        write(self.con)
        for rec in [*self.pending, record]:
            write_record(self.con, rec)
            self.con.execute(
                "INSERT OR REPLACE INTO pipeline_runs (run_id, stage, status, params, rows, message,"
                " started_at, seconds) VALUES (?, ?, 'done', ?, ?, NULL, ?, ?)",
                (rec.run_id, rec.stage, digest(rec.params), rec.rows, rec.started_at, rec.seconds),
            )

    @contextmanager
    def one_transaction(self):
        """The stages inside commit together, or not at all: one transaction (one sync to disk)
        for the whole chain, and a failure in any stage leaves every earlier result as it was."""
        records, pending = dict(self.records), list(self.pending)
        try:
            with transaction(self.con):
                self._in_chain = True
                yield self
        except BaseException:
            self.records, self.pending = records, pending
            raise
        finally:
            self._in_chain = False

    def defer(self, record: StageRecord) -> None:
        """Keep a record to write with the next stage's commit (one transaction, one fsync, fewer)."""
        self.pending.append(record)
        self.records[record.stage] = record

    def flush(self) -> None:
        if self.pending:
            last = self.pending.pop()
            self.commit(last, lambda con: None)


# ---- stages ------------------------------------------------------------------------------------


def validate_stage(ctx: Context, progress: Optional[Progress] = None, defer: bool = False) -> ValidationReport:
    """Validation of the current inputs, reused when no input table changed since it last passed.
    A fatal finding raises InputError before anything is written. ``defer``: its record goes into
    the next stage's transaction (``ctx.flush`` writes it if no stage follows)."""
    if ctx.validation_cached():
        report = ValidationReport.from_dict(ctx.records["validate"].summary)
    else:
        started, t0 = time.perf_counter(), now_iso()
        report = validate(ctx.con, progress, ctx.scans)
        report.raise_if_fatal()
        record = ctx.new_record("validate", {}, sum(report.rows.values()), report.to_dict(), started, t0)
        if defer:
            ctx.defer(record)
        else:
            ctx.commit(record, lambda con: None)
    report.raise_if_fatal()
    return report


def journeys_stage(
    ctx: Context,
    window: jr.Window,
    force: bool = False,
    progress: Optional[Progress] = None,
    prebuilt: Optional[jr.Journeys] = None,
) -> StageOutcome:
    """``prebuilt``: the same window's journeys, already read (run_pipeline reads them while the
    validation scans run)."""
    params = window.as_params()
    if not force and ctx.up_to_date("journeys", params):
        rec = ctx.records["journeys"]
        return StageOutcome("journeys", True, rec, f"journeys: up to date ({_count(rec)}), reused")
    started, t0 = time.perf_counter(), now_iso()
    journeys = prebuilt if prebuilt is not None else jr.build_journeys(ctx.con, window, progress)
    if prebuilt is not None:
        started, t0 = _count_ahead(ctx, "journeys", started, t0)
    record = ctx.new_record("journeys", params, len(journeys.columns["ts"]), journeys.summary(), started, t0)
    ctx.commit(record, lambda con: jr.save_journeys(con, journeys))
    ctx.journeys = journeys
    return StageOutcome("journeys", False, record, f"journeys: built ({_count(record)}) in {record.seconds:.2f}s")


def attribute_stage(
    ctx: Context,
    model_name: Optional[str] = None,
    params: Optional[dict] = None,
    force: bool = False,
    progress: Optional[Progress] = None,
    api_config=None,
    retry_failed: bool = False,
) -> StageOutcome:
    model_name = model_name or default_model()
    if model_name == API_MODEL:
        model, resolved = None, _api_params(api_config)
    else:
        model = get_model(model_name)
        resolved = model.resolve_params(params)
    stage_params = {"model": model_name, "params": resolved}
    jrec = ctx.records.get("journeys")
    if jrec is None:
        raise InputError("there are no journeys yet: run `journeys` first (or `run`)")
    jstate = evaluate(ctx.fingerprints, ctx.records, ["journeys"])["journeys"]
    if jstate.state != DONE:
        raise InputError(f"the stored journeys are stale ({jstate.reason}): run `journeys` again (or `run`)")
    if not force and not retry_failed and ctx.up_to_date("attribute", stage_params):
        rec = ctx.records["attribute"]
        return StageOutcome("attribute", True, rec, f"attribute: up to date ({model_name}, {rec.rows:,} rows), reused")
    started, t0 = time.perf_counter(), now_iso()
    window = jr.Window(**jrec.params)
    journeys = ctx.journeys if ctx.journeys is not None else jr.load_journeys(ctx.con, window)
    unattributed = [(c, NO_SESSION_REASON) for c in journeys.without_sessions.tolist()]
    if model is None:
        columns, failed, extra = _attribute_via_api(ctx, journeys, api_config, force, retry_failed, progress)
        unattributed += failed
    else:
        columns, extra = _precomputed(ctx, journeys, model_name, resolved), {}
        if columns is None:
            columns = _attribute_with_model(ctx, model, resolved, journeys, window, progress)
        else:
            started, t0 = _count_ahead(ctx, "attribute", started, t0)
    n = len(columns["ihc"])
    attributed = len(np.unique(columns["conversion_id"])) if n else 0
    reasons: dict[str, int] = {}
    for _, reason in unattributed:
        reasons[reason] = reasons.get(reason, 0) + 1
    summary = {"model": model_name, "conversions_attributed": attributed, "not_attributed": reasons, **extra}
    record = ctx.new_record("attribute", stage_params, n, summary, started, t0)
    ctx.commit(
        record,
        lambda con: store_credits(
            con,
            columns,
            journeys.conversion_ids.tolist(),
            model=model_name,
            run_id=ctx.run_id,
            unattributed=unattributed,
        ),
    )
    why = "; ".join(f"{k}: {v:,}" for k, v in reasons.items()) or "none"
    return StageOutcome(
        "attribute",
        False,
        record,
        f"attribute: {attributed:,} conversions attributed with {model_name}"
        f" (not attributed — {why}) in {record.seconds:.2f}s",
    )


def _attribute_with_model(ctx, model, params, journeys, window, progress) -> dict:
    non_converting = jr.build_non_converting(ctx.con, window, progress) if model.needs_non_converting else None
    index = journeys.index
    credits = model.credits(index, params, non_converting=non_converting, progress=progress)
    n = index.n_rows
    return {
        "conversion_id": index.column("conversion_id"),
        "session_id": index.column("session_id"),
        **{p: credits.phase(p, n) for p in PHASES},
        "ihc": np.asarray(credits.ihc, dtype=np.float64),
    }


def _count_ahead(ctx: Context, stage: str, started: float, t0: str) -> tuple[float, str]:
    """(started, started_at) of a stage moved back to when its work began ahead of it."""
    if stage not in ctx.ahead:
        return started, t0
    at, seconds = ctx.ahead.pop(stage)
    return started - seconds, at


def _precomputed(ctx: Context, journeys: jr.Journeys, model_name: str, params: dict) -> Optional[dict]:
    pre = ctx.precomputed
    ctx.precomputed = None
    if pre is not None and pre[0] is journeys and pre[1] == model_name and pre[2] == params:
        return pre[3]
    return None


def _api_params(api_config) -> dict:
    """What identifies an API run in the stage record: never the key."""
    if api_config is None:
        raise InputError("model ihc-api needs the IHC API settings (IHC_API_KEY, IHC_CONV_TYPE_ID)")
    api_config.require()
    from .ihc_api.config import url_for_display

    return {
        "conv_type_id": api_config.conv_type_id,
        "api_url": url_for_display(api_config.api_url),
        "redistribution_parameter": api_config.redistribution_parameter,
    }


def _attribute_via_api(ctx, journeys, api_config, force, retry_failed, progress):
    """Credit from the IHC API (resumable: chunks commit as they arrive, in the API's own tables)."""
    from .ihc_api import attribute_via_api

    result = attribute_via_api(
        ctx.con, journeys.frame, api_config, force=force, retry_failed=retry_failed, progress=progress
    )
    credits = result.credits
    columns = {c: credits[c].to_numpy() for c in CREDIT_COLUMNS}
    failed = list(zip(result.failed["conversion_id"].tolist(), result.failed["reason"].tolist()))
    extra = {"api": result.summary.as_dict(), "warnings": list(result.warnings)}
    return columns, failed, extra


def report_stage(
    ctx: Context,
    start: Optional[str] = None,
    end: Optional[str] = None,
    force: bool = False,
    progress: Optional[Progress] = None,
) -> StageOutcome:
    params = {"start": start, "end": end}
    if ctx.records.get("attribute") is None:
        raise InputError("nothing is attributed yet: run `attribute` first (or `run`)")
    if not force and ctx.up_to_date("report", params):
        rec = ctx.records["report"]
        return StageOutcome("report", True, rec, f"report: up to date ({rec.rows:,} channel-days), reused")
    started, t0 = time.perf_counter(), now_iso()
    rows = build_report(ctx.con, start, end, progress, ctx.scans)
    summary = {
        "channel_days": len(rows),
        "cost": round(sum(r[2] for r in rows), 2),
        "ihc": round(sum(r[3] for r in rows), 4),
        "ihc_revenue": round(sum(r[4] for r in rows), 2),
    }
    record = ctx.new_record("report", params, len(rows), summary, started, t0)
    ctx.commit(record, lambda con: write_report(con, rows, start, end))
    return StageOutcome("report", False, record, f"report: {len(rows):,} channel-days rebuilt in {record.seconds:.2f}s")


def _count(rec: StageRecord) -> str:
    s = rec.summary
    return f"{s.get('sessions', rec.rows):,} sessions, {s.get('conversions', 0):,} conversions"


# ---- the whole chain ---------------------------------------------------------------------------


def run_pipeline(
    con: sqlite3.Connection,
    options: RunOptions = RunOptions(),
    progress: Optional[Progress] = None,
    scans: Optional[InputScans] = None,
) -> RunResult:
    """validate → journeys → attribute → report, skipping stages that are up to date.

    The whole-table scans start at once with ``force`` or on a database this product never ran on
    (everything will be computed), otherwise once the fingerprints show something must be; ``scans``:
    already started by the caller (``validate.start_scans``)."""
    started = time.perf_counter()
    progress = forward_only(progress)  # a stage redone after an early start must not move the bar back
    window = options.window
    model_name = options.model or default_model()
    try:
        options.check()  # usage errors before any work
        if scans is None and (options.force or never_ran(con)):
            scans = start_scans(con)  # everything will be computed: start reading at once
    except BaseException:
        if scans is not None:
            scans.cancel()
        raise
    ctx = None
    try:
        ctx = Context(con, progress, scans)
        local = model_name != API_MODEL
        rebuild = options.force or not ctx.up_to_date("journeys", window.as_params())
        attribution_stale = rebuild or not _attribution_current(ctx, options, model_name)
        reattribute = local and attribution_stale
        recompute = attribution_stale or not ctx.validation_cached() or not _report_current(ctx, window)
        if recompute:
            ctx.start_scans()
        else:
            ctx.cancel_scans()  # nothing will be recomputed: stop reading every session
        # Journeys and a local model's credit are computed while the scans run, before validation
        # has the scans' answer; nothing is committed until it passes. The progress bar follows that order.
        if rebuild or reattribute:
            parts = {"journeys": (0, 15), "attribute": (15, 55), "validate": (70, 10)}
        else:
            parts = {"validate": (0, 10), "journeys": (10, 15), "attribute": (25, 55)}
        part = {k: scaled(progress, a, b, 100) for k, (a, b) in parts.items()}
        prebuilt = _journeys_meanwhile(ctx, window, part["journeys"]) if rebuild else None
        if prebuilt is not None:  # (journeys rebuilt: everything is recomputed, the scans run)
            # Validation's "users without sessions" came with the journeys: no scan of its own.
            ctx.scans.provide("users_without_sessions", [(c,) for c in prebuilt.users_without_sessions])
        if reattribute:
            _credits_meanwhile(ctx, model_name, options.params, prebuilt, not rebuild, part["attribute"])

        def rest_of_chain() -> list[StageOutcome]:
            done = [journeys_stage(ctx, window, options.force, part["journeys"], prebuilt)]
            done.append(
                attribute_stage(
                    ctx,
                    model_name,
                    options.params,
                    options.force,
                    part["attribute"],
                    options.api_config,
                    options.retry_failed,
                )
            )
            return done

        outcomes: list[StageOutcome] = []
        # A local model's stages commit together (one sync to disk); the API's chunks commit as they
        # arrive, so an interrupted API run keeps what it paid for, and it starts only once
        # validation passed (no quota spent on input that fails).
        with ctx.one_transaction() if local else nullcontext(), no_cache_spill(con) if local else nullcontext():
            # With the journeys and credit in hand, they are written while the scans still run
            # (the transaction is not committed, nobody sees them); validation then decides: a fatal
            # finding rolls everything back. Without them (input the journeys query or the model could
            # not read), validation runs first, so that its message is the one the user gets. The
            # cache never spills mid-transaction: that would need an exclusive lock and wait for our
            # own readers, one of which may still have to start its next statement.
            early = local and (prebuilt is not None or not rebuild) and (ctx.precomputed is not None or not reattribute)
            if early:
                outcomes = rest_of_chain()
            validation = validate_stage(ctx, part["validate"], defer=True)
            if not early:
                outcomes = rest_of_chain()
            start, end = report_range(window, ctx.records["journeys"].summary)
            outcomes.append(report_stage(ctx, start, end, options.force, scaled(progress, 80, 20, 100)))
            ctx.flush()
    finally:
        if ctx is not None:
            ctx.cancel_scans()
        elif scans is not None:
            scans.cancel()
    progress(100, 100, "done")
    return RunResult(validation, outcomes, time.perf_counter() - started)


def _journeys_meanwhile(ctx: Context, window: jr.Window, progress: Progress) -> Optional[jr.Journeys]:
    """Read the journeys while the validation scans run (nothing is committed before validation
    passes). Input the journeys query cannot read is left for validation to explain."""
    started, t0 = time.perf_counter(), now_iso()
    try:
        journeys = jr.build_journeys(ctx.con, window, progress)
    except InputError:
        return None
    ctx.ahead["journeys"] = (t0, time.perf_counter() - started)
    return journeys


def _credits_meanwhile(
    ctx: Context,
    model_name: str,
    params: dict,
    journeys: Optional[jr.Journeys],
    stored: bool,
    progress: Progress,
) -> None:
    """Attribute with a local model while the validation scans still run (reading only;
    ``attribute_stage`` stores the result once validation passes): the journeys just built, or with
    ``stored`` the stored ones (current for this run's window). A failure here is left for the stages
    to meet again after validation, which explains bad input first."""
    started, t0 = time.perf_counter(), now_iso()
    try:
        if journeys is None:
            if not stored:
                return
            journeys = ctx.journeys = jr.load_journeys(ctx.con, jr.Window(**ctx.records["journeys"].params))
        model = get_model(model_name)
        resolved = model.resolve_params(params)
        columns = _attribute_with_model(ctx, model, resolved, journeys, journeys.window, progress)
    except Exception:  # noqa: BLE001 - recomputed (and reported) after validation
        return
    ctx.precomputed = (journeys, model_name, resolved, columns)
    ctx.ahead["attribute"] = (t0, time.perf_counter() - started)


def _attribution_current(ctx: Context, options: RunOptions, model_name: str) -> bool:
    if options.force or options.retry_failed:
        return False
    resolved = (
        _api_params(options.api_config)
        if model_name == API_MODEL
        else get_model(model_name).resolve_params(options.params)
    )
    return ctx.up_to_date("attribute", {"model": model_name, "params": resolved})


def _report_current(ctx: Context, window: jr.Window) -> bool:
    """The report of the stored journeys' range is up to date (call when the journeys are)."""
    journeys_summary = ctx.records["journeys"].summary
    return ctx.up_to_date("report", dict(zip(("start", "end"), report_range(window, journeys_summary))))


def report_range(window: jr.Window, journeys_summary: dict) -> tuple[Optional[str], Optional[str]]:
    """The session dates whose report rows a run may change: from the earliest session of its
    journeys (or the window start, if earlier) to the window end; unbounded where the window is."""
    start = window.start
    first = journeys_summary.get("first_session_date")
    if start is not None and first is not None:
        start = min(start, first)
    return start, window.end
