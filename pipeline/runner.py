"""Running the stages against a database: skip what is up to date, one transaction per stage.

Each ``*_stage`` function is what the CLI command of the same name does: it checks the stage's status,
computes (reading only), then writes its output and its status record in one transaction.
``run_pipeline`` chains validate → journeys → attribute → report. The whole-table scans that validation
and the report share (``scans.InputScans``) start first, on their own connections and threads (or child
processes), while the main thread fingerprints the inputs, builds the journeys and, for a local model,
computes the credit; they are interrupted if it turns out that nothing needs them. A local model's
three stages commit in one transaction, which validation decides: nothing is committed unless it
passes (its journeys and credit may already be written, uncommitted, while the scans run).

A run's facts are decided once and passed down: the model (``RunOptions.resolve`` →
``model_choice.ModelChoice``), the stage states and the unit of work (``status.StageBook``), the
scans, and work done ahead of a stage (``Ahead``, an argument of the stage that uses it).
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Optional, TypeGuard, TypeVar, Union, cast

from .db import no_cache_spill
from .errors import InputError
from .model_choice import ModelChoice, choose_model
from .progress import Progress, ensure, forward_only
from .report import build_report, write_report
from .run_progress import run_steps, step_order
from .scan_store import open_stored_scans
from .scan_store import save as save_scans
from .scans import REPORT_SCANS, SCANS, InputScans
from .schema import NO_SESSION_REASON
from .status import DONE, StageBook, StageRecord, never_ran, now_iso
from .validate import ValidationReport, start_scans, validate
from .window import Window, report_range

if TYPE_CHECKING:
    from . import journey_batches as jb
    from . import journeys as jr
    from .models import Model

# numpy and the modules built on it are imported where a stage computes, not here: a run with every
# stage up to date never needs them (≈45 ms of its ≈0.15 s).

T = TypeVar("T")


@dataclass
class RunOptions:
    window: Window = field(default_factory=Window)
    model: Union[str, "Model", ModelChoice, None] = None  # a name (None: the default), a Model, or decided already
    params: dict = field(default_factory=dict)
    force: bool = False
    api_config: Optional[object] = None  # pipeline.ihc_api.ApiConfig, for model "ihc-api"
    retry_failed: bool = False  # ihc-api: re-send conversions an earlier run recorded as failed

    def resolve(self) -> ModelChoice:
        """The run's model, decided once (usage errors: unknown model, bad parameters, missing API
        key), before any work."""
        if isinstance(self.model, ModelChoice):
            return self.model
        return choose_model(self.model, self.params, self.api_config)  # type: ignore[arg-type]


@dataclass
class StageOutcome:
    stage: str
    skipped: bool
    record: StageRecord
    message: str
    output: Optional[object] = field(default=None, repr=False)  # what the stage computed (its journeys)


@dataclass
class RunResult:
    validation: ValidationReport
    outcomes: list[StageOutcome]
    seconds: float

    def lines(self) -> list[str]:
        return [o.message for o in self.outcomes]


@dataclass
class Ahead(Generic[T]):
    """A stage's work done ahead of it (while validation scanned): the stage uses ``value`` and
    counts that time in its record, as if it had done the work itself."""

    value: T
    started_at: str
    seconds: float

    def moved_back(self, started: float) -> tuple[float, str]:
        """(started, started_at) of the stage, moved back to when its work began."""
        return started - self.seconds, self.started_at


# ---- stages ------------------------------------------------------------------------------------


def validate_stage(
    book: StageBook,
    progress: Optional[Progress] = None,
    defer: bool = False,
    scans: Optional[InputScans] = None,
) -> ValidationReport:
    """Validation of the current inputs, reused when no input table changed since it last passed.
    A fatal finding raises InputError before anything is written. ``defer``: its record goes into
    the next stage's transaction (``book.flush`` writes it if no stage follows). ``scans``: the
    whole-table scans, already started (else validation starts its own)."""
    if book.validation_current():
        report = ValidationReport.from_dict(book.records["validate"].summary)
    else:
        started, t0 = time.perf_counter(), now_iso()
        report = validate(book.con, progress, scans or start_scans(book.con))
        report.raise_if_fatal()
        record = book.new_record("validate", {}, sum(report.rows.values()), report.to_dict(), started, t0)
        if defer:
            book.defer(record)
        else:
            book.commit(record, lambda con: None)
    report.raise_if_fatal()
    return report


def journeys_stage(
    book: StageBook,
    window: Window,
    force: bool = False,
    progress: Optional[Progress] = None,
    ahead: Optional[Ahead[Union[jr.Journeys, jb.JourneyStream]]] = None,
) -> StageOutcome:
    """``ahead``: the same window's journeys, already read (run_pipeline reads them while the
    validation scans run). The outcome's ``output`` is the journeys, when built and held in memory
    (journeys too many for one batch are streamed into the database: ``journey_batches``)."""
    params = window.as_params()
    if not force and book.up_to_date("journeys", params):
        rec = book.records["journeys"]
        return StageOutcome("journeys", True, rec, f"journeys: up to date ({_count(rec)}), reused")
    from . import journey_batches as jb
    from . import journeys as jr

    started, t0 = time.perf_counter(), now_iso()
    if ahead is not None:
        journeys = ahead.value
        started, t0 = ahead.moved_back(started)
    else:
        journeys = jb.read_journeys(book.con, window, progress)
    if isinstance(journeys, jb.JourneyStream):
        record = book.new_record("journeys", params, 0, {}, started, t0)
        book.commit(record, lambda con: _streamed(record, jb.save_stream(con, journeys, progress), started))  # type: ignore[arg-type]
        return StageOutcome("journeys", False, record, f"journeys: built ({_count(record)}) in {record.seconds:.2f}s")
    record = book.new_record("journeys", params, len(journeys.columns["ts"]), journeys.summary(), started, t0)
    book.commit(record, lambda con: jr.save_journeys(con, journeys))
    return StageOutcome(
        "journeys", False, record, f"journeys: built ({_count(record)}) in {record.seconds:.2f}s", journeys
    )


def attribute_stage(
    book: StageBook,
    choice: ModelChoice,
    journeys: Optional[jr.Journeys] = None,
    *,
    force: bool = False,
    retry_failed: bool = False,
    progress: Optional[Progress] = None,
    ahead: Optional[Ahead[dict]] = None,
) -> StageOutcome:
    """Attribute the stored journeys (``journeys``: those journeys, already in memory) with the
    chosen model. ``ahead``: the credit columns of ``journeys`` with ``choice``, computed ahead."""
    jrec = book.records.get("journeys")
    if jrec is None:
        raise InputError("there are no journeys yet: run `journeys` first (or `run`)")
    jstate = book.state("journeys")
    if jstate.state != DONE:
        raise InputError(f"the stored journeys are stale ({jstate.reason}): run `journeys` again (or `run`)")
    if not force and not retry_failed and book.up_to_date("attribute", choice.stage_params):
        rec = book.records["attribute"]
        return StageOutcome("attribute", True, rec, f"attribute: up to date ({choice.name}, {rec.rows:,} rows), reused")
    import numpy as np

    from . import journey_batches as jb
    from . import journeys as jr
    from .store import store_credits

    started, t0 = time.perf_counter(), now_iso()
    window = Window(**jrec.params)
    if journeys is None and not choice.is_api and jb.streamed(jrec):  # too many for one batch
        return _attribute_in_batches(book, choice, window, started, t0, progress)
    journeys = journeys if journeys is not None else jr.load_journeys(book.con, window)
    unattributed = [(c, NO_SESSION_REASON) for c in journeys.without_sessions.tolist()]
    extra: dict = {}
    if choice.is_api:
        columns, failed, extra = _attribute_via_api(book, journeys, choice, force, retry_failed, progress)
        unattributed += failed
    elif ahead is not None:
        columns = ahead.value
        started, t0 = ahead.moved_back(started)
    else:
        columns = credit_columns(book.con, choice, journeys, progress)
    n = len(columns["ihc"])
    attributed = len(np.unique(columns["conversion_id"])) if n else 0
    reasons: dict[str, int] = {}
    for _, reason in unattributed:
        reasons[reason] = reasons.get(reason, 0) + 1
    summary = {"model": choice.name, "conversions_attributed": attributed, "not_attributed": reasons, **extra}
    record = book.new_record("attribute", choice.stage_params, n, summary, started, t0)
    book.commit(
        record,
        lambda con: store_credits(
            con,
            columns,
            journeys.conversion_ids.tolist(),
            model=choice.name,
            run_id=book.run_id,
            unattributed=unattributed,
        ),
    )
    why = "; ".join(f"{k}: {v:,}" for k, v in reasons.items()) or "none"
    return StageOutcome(
        "attribute",
        False,
        record,
        f"attribute: {attributed:,} conversions attributed with {choice.name}"
        f" (not attributed — {why}) in {record.seconds:.2f}s",
    )


def _attribute_in_batches(book: StageBook, choice: ModelChoice, window: Window, started, t0, progress) -> StageOutcome:
    """``attribute_stage`` on stored journeys too many for one batch (``journey_batches``)."""
    from . import journey_batches as jb

    record = book.new_record("attribute", choice.stage_params, 0, {}, started, t0)
    out: dict = {}

    def write(con: sqlite3.Connection) -> None:
        n, attributed, reasons = jb.attribute_in_batches(
            con, choice, window, book.run_id, NO_SESSION_REASON, lambda j: credit_columns(con, choice, j), progress
        )
        out.update(attributed=attributed, reasons=reasons)
        summary = {"model": choice.name, "conversions_attributed": attributed, "not_attributed": reasons}
        _streamed(record, summary, started, n)

    book.commit(record, write)
    why = "; ".join(f"{k}: {v:,}" for k, v in out["reasons"].items()) or "none"
    return StageOutcome(
        "attribute",
        False,
        record,
        f"attribute: {out['attributed']:,} conversions attributed with {choice.name}"
        f" (not attributed — {why}) in {record.seconds:.2f}s",
    )


def _streamed(record: StageRecord, summary: dict, started: float, rows: Optional[int] = None) -> None:
    """A streamed stage's record, completed once its batches are written (before it is stored)."""
    record.summary, record.rows = summary, summary["sessions"] if rows is None else rows
    record.seconds = round(time.perf_counter() - started, 3)


def credit_columns(
    con: sqlite3.Connection, choice: ModelChoice, journeys: jr.Journeys, progress: Optional[Progress] = None
) -> dict:
    """A local model's credit for ``journeys`` as the columns ``store_credits`` writes (reads only)."""
    import numpy as np

    from .journey_index import PHASES
    from .path_summary import non_converting_summary  # paths that did not convert, summarised in SQL

    model = choice.model
    assert model is not None, "a local model (the API is attribute_via_api)"
    ensure(progress)(0, 1, f"attribute: model {choice.name}")
    non_converting = non_converting_summary(con, journeys.window, progress) if model.needs_non_converting else None
    index = journeys.index
    credits = model.credits(index, choice.params, non_converting=non_converting, progress=progress)
    n = index.n_rows
    return {
        "conversion_id": index.column("conversion_id"),
        "session_id": index.column("session_id"),
        **{p: credits.phase(p, n) for p in PHASES},
        "ihc": np.asarray(credits.ihc, dtype=np.float64),
    }


def _attribute_via_api(book: StageBook, journeys, choice: ModelChoice, force, retry_failed, progress):
    """Credit from the IHC API (resumable: chunks commit as they arrive, in the API's own tables)."""
    from .ihc_api import attribute_via_api
    from .journey_index import CREDIT_COLUMNS

    result = attribute_via_api(
        book.con, journeys.frame, choice.api, force=force, retry_failed=retry_failed, progress=progress
    )
    credits = result.credits
    columns = {c: credits[c].to_numpy() for c in CREDIT_COLUMNS}
    failed = list(zip(result.failed["conversion_id"].tolist(), result.failed["reason"].tolist()))
    extra = {"api": result.summary.as_dict(), "warnings": list(result.warnings)}
    return columns, failed, extra


def report_stage(
    book: StageBook,
    start: Optional[str] = None,
    end: Optional[str] = None,
    force: bool = False,
    progress: Optional[Progress] = None,
    scans: Optional[InputScans] = None,
) -> StageOutcome:
    """``scans``: the whole-table scans, already started (else the report starts its own)."""
    params = {"start": start, "end": end}
    if book.records.get("attribute") is None:
        raise InputError("nothing is attributed yet: run `attribute` first (or `run`)")
    if not force and book.up_to_date("report", params):
        rec = book.records["report"]
        return StageOutcome("report", True, rec, f"report: up to date ({rec.rows:,} channel-days), reused")
    started, t0 = time.perf_counter(), now_iso()
    if scans is None:  # (the report alone: the channel-days and their costs)
        scans = (
            start_scans(book.con, names=REPORT_SCANS)
            if force
            else open_stored_scans(book.con, book.fingerprints, REPORT_SCANS)
        )
    rows = build_report(book.con, start, end, progress, scans)
    summary = {
        "channel_days": len(rows),
        "cost": round(sum(r[2] for r in rows), 2),
        "ihc": round(sum(r[3] for r in rows), 4),
        "ihc_revenue": round(sum(r[4] for r in rows), 2),
    }
    record = book.new_record("report", params, len(rows), summary, started, t0)

    def write(con: sqlite3.Connection) -> None:
        write_report(con, rows, start, end)
        if scans is not None:  # the scans this run made, for the next run on the same inputs
            save_scans(con, book.fingerprints, scans.computed())

    book.commit(record, write)
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

    The whole-table scans start at once on a database this product never ran on (everything will be
    computed), with ``force`` as soon as the stage states are read (13 ms on the demo: the report's
    scans alone when validation is current, ``scans.REPORT_SCANS``), otherwise once the stage states
    show something must be; ``scans``: already started by the caller (``validate.start_scans``)."""
    started = time.perf_counter()
    progress = forward_only(progress)  # a stage redone after an early start must not move the bar back
    window = options.window
    try:
        choice = options.resolve()  # usage errors before any work
        if scans is None and never_ran(con):
            scans = start_scans(con)  # everything will be computed: start reading at once
        book = StageBook(con)
        revalidate = not book.validation_current()
        needed_scans = tuple(SCANS) if revalidate else REPORT_SCANS  # (a current validation: the report's)
        if scans is None and options.force:  # everything but a current validation will be computed
            scans = start_scans(con, names=needed_scans)
    except BaseException:
        if scans is not None:
            scans.cancel()
        raise
    try:
        local = not choice.is_api
        rebuild = options.force or not book.up_to_date("journeys", window.as_params())
        attribution_stale = (
            rebuild or options.force or options.retry_failed or not book.up_to_date("attribute", choice.stage_params)
        )
        reattribute = local and attribution_stale
        recompute = attribution_stale or revalidate or not _report_current(book, window)
        if recompute:
            # (a forced run started its scans above: it scans again, as an analyst forcing expects)
            scans = scans or open_stored_scans(con, book.fingerprints, needed_scans)
        elif scans is not None:
            scans.cancel()  # nothing will be recomputed: stop reading every session
            scans = None
        # Journeys and a local model's credit are computed while the scans run, before validation
        # has the scans' answer; nothing is committed until it passes. The progress follows that
        # order, numbering only the steps that do work (``run_progress``).
        doing = {
            "journeys": rebuild,
            "attribute": attribution_stale,
            "validate": revalidate,
            "report": recompute,
        }
        part = run_steps(progress, step_order(credit_first=reattribute), doing)
        journeys_ahead = _journeys_meanwhile(con, window, part["journeys"]) if rebuild else None
        in_memory = journeys_ahead.value if journeys_ahead is not None else None
        journeys = in_memory if in_memory is not None and _in_memory(in_memory) else None  # (else: streamed)
        if journeys is not None:  # (journeys rebuilt: everything is recomputed, the scans run)
            # Validation's "conversions without an earlier session" came with the journeys: no scan.
            assert scans is not None
            without = cast(list, journeys.without_earlier_sessions)  # set by build_journeys
            scans.provide("without_earlier_sessions", [(c, int(at_all)) for c, at_all in without])
        credit_ahead = None
        if reattribute:
            journeys, credit_ahead = _credits_meanwhile(book, choice, journeys, not rebuild, part["attribute"])

        def rest_of_chain() -> list[StageOutcome]:
            built = journeys_stage(book, window, options.force, part["journeys"], journeys_ahead)
            fresh = built.output if built.output is not None else journeys
            done = [built]
            done.append(
                attribute_stage(
                    book,
                    choice,
                    fresh,  # type: ignore[arg-type]
                    force=options.force,
                    retry_failed=options.retry_failed,
                    progress=part["attribute"],
                    ahead=credit_ahead if fresh is journeys else None,
                )
            )
            return done

        outcomes: list[StageOutcome] = []
        # A local model's stages commit together (one sync to disk); the API's chunks commit as they
        # arrive, so an interrupted API run keeps what it paid for, and it starts only once
        # validation passed (no quota spent on input that fails).
        with book.together() if local else nullcontext(), no_cache_spill(con) if local else nullcontext():
            # With the journeys and credit in hand, they are written while the scans still run
            # (the transaction is not committed, nobody sees them); validation then decides: a fatal
            # finding rolls everything back. Without them (input the journeys query or the model could
            # not read), validation runs first, so that its message is the one the user gets. The
            # cache never spills mid-transaction: that would need an exclusive lock and wait for our
            # own readers, one of which may still have to start its next statement.
            early = (
                local and (journeys_ahead is not None or not rebuild) and (credit_ahead is not None or not reattribute)
            )
            if early:
                try:
                    outcomes = rest_of_chain()
                except Exception:  # e.g. a duplicate id breaking a write: validation's message comes first
                    validate_stage(book, part["validate"], defer=True, scans=scans)
                    raise
            validation = validate_stage(book, part["validate"], defer=True, scans=scans)
            if not early:
                if local:  # journeys may be streamed: their writes may spill to the file, after the scans
                    from .journey_batches import finish_scans

                    finish_scans(scans)
                outcomes = rest_of_chain()
            start, end = report_range(window, book.records["journeys"].summary)
            outcomes.append(report_stage(book, start, end, options.force, part["report"], scans))
            book.flush()
    finally:
        if scans is not None:
            scans.cancel()
    progress(100, 100, "done")
    return RunResult(validation, outcomes, time.perf_counter() - started)


def _journeys_meanwhile(
    con: sqlite3.Connection, window: Window, progress: Progress
) -> Optional[Ahead[Union[jr.Journeys, jb.JourneyStream]]]:
    """Read the journeys while the validation scans run (nothing is committed before validation
    passes), or their first batch when they are more. Input the journeys query cannot read is left
    for validation to explain."""
    from . import journey_batches as jb

    started, t0 = time.perf_counter(), now_iso()
    try:
        journeys = jb.read_journeys(con, window, progress)
    except Exception:  # noqa: BLE001 - bad input (mixed id types, ...): validation explains it first
        return None
    return Ahead(journeys, t0, time.perf_counter() - started)


def _credits_meanwhile(
    book: StageBook,
    choice: ModelChoice,
    journeys: Optional[jr.Journeys],
    stored: bool,
    progress: Progress,
) -> tuple[Optional[jr.Journeys], Optional[Ahead[dict]]]:
    """Attribute with a local model while the validation scans still run (reading only;
    ``attribute_stage`` stores the result once validation passes): the journeys just built, or with
    ``stored`` the stored ones (current for this run's window). Returns the journeys it used and
    their credit. A failure here is left for the stages to meet again after validation, which
    explains bad input first."""
    from . import journey_batches as jb
    from . import journeys as jr

    started, t0 = time.perf_counter(), now_iso()
    try:
        if journeys is None:
            if not stored or jb.streamed(book.records["journeys"]):  # (too many: attributed in batches)
                return None, None
            journeys = jr.load_journeys(book.con, Window(**book.records["journeys"].params))
        columns = credit_columns(book.con, choice, journeys, progress)
    except Exception:  # noqa: BLE001 - recomputed (and reported) after validation
        return journeys, None
    return journeys, Ahead(columns, t0, time.perf_counter() - started)


def _in_memory(journeys: Union["jr.Journeys", "jb.JourneyStream"]) -> TypeGuard["jr.Journeys"]:
    """The journeys are held in memory (not streamed in batches)."""
    from . import journeys as jr

    return isinstance(journeys, jr.Journeys)


def _report_current(book: StageBook, window: Window) -> bool:
    """The report of the stored journeys' range is up to date (call when the journeys are)."""
    journeys_summary = book.records["journeys"].summary
    return book.up_to_date("report", dict(zip(("start", "end"), report_range(window, journeys_summary))))
