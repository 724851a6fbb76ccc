"""The whole pipeline on any registered engine: validate → journeys in batches of whole journeys → the
chosen model on each batch → channel report → outputs written staged then swapped, with a run record.

``run_on_engine(source, options, engine=None, engine_options=None, progress=None)`` is what ``run`` does
for a ``duckdb:///``, ``parquet:///`` (or any other engine-run) source. It uses only the engine-module
contract of ``pipeline.engines`` (docs/engines.md), so every engine that offers it runs the same way:

1. **Up to date?** The engine's ``fingerprint`` of the input tables is compared with the record the
   last successful run stored beside its outputs (``run_record``): same fingerprint, window and model
   (and outputs present) → nothing is recomputed and the stages say "up to date". Validation is reused
   whenever the fingerprint is the same (a change of model or window only redoes the rest).
2. **Validation** (``validate``): a fatal finding stops the run before anything is written.
3. **Credit**: the engine streams the journeys as batches that never split a journey
   (``journey_batches``); every per-journey model runs on each batch unchanged (``BatchCredit``).
   Markov and Shapley fit once on the path summary the engine computes in SQL (``path_summary``: the
   same ``PathSummary`` as the SQLite engine's), then each batch gets credit from the fitted channel
   shares (``credit_by_channel_share``, as the models do). An engine module that offers
   ``attribute(engine, window, credit)`` (Spark: a grouped Arrow UDF on the executors) is handed the
   same picklable ``BatchCredit`` and runs it where the data is instead.
4. **Report** (``channel_report``) over the run's session dates (``window.report_range``).
5. **Outputs** (``write_outputs``, staged then swapped), then the run record (``write_run_record``);
   an engine whose ``write_outputs`` takes ``record`` (Postgres) stores it in the swap's transaction.
   A failure before 5 leaves the previous outputs and record as they were; a failure between the two
   leaves new outputs with the old record, which the next run sees as stale and redoes. The input
   tables are never written.

The result is a ``runner.RunResult`` whose stage lines have the SQLite runner's shape, so the CLI and
``run_summary.summarise`` treat both alike. The IHC web API (``ihc-api``) takes step 3 from
``engines.api_run``: the engine's journeys go through the SQLite API path, whose resumable ledger is
kept in a local SQLite work file (``api_run.ledger_path``); steps 4 and 5 are the same.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..errors import InputError, no_room, no_room_text
from ..journey_index import seconds_to_timestamps
from ..progress import Progress, ensure, forward_only, scaled
from ..schema import NO_SESSION_REASON
from ..status import DONE, MISSING, STAGES, STALE, StageRecord, StageStatus, new_run_id, now_iso
from ..validate import ValidationReport
from ..window import Window, report_range
from . import engine_module

RECORD_VERSION = 1
CREDIT_NAMES = ("conv_id", "session_id", "ihc", "ts")


# ---- the model on one batch of whole journeys ------------------------------------------------------------


@dataclass
class BatchCredit:
    """A model's credit for one batch of whole journeys (a dict of ``journeys.journey_columns``) →
    {conv_id, session_id, ihc, ts} arrays (``ts``: the session's time in epoch seconds, int64). Picklable (names, parameters and numbers only), so an
    engine may run it on other processes or machines. ``shares``: for a model fitted on the whole
    path summary (Markov, Shapley), {channel label: share}."""

    model: Any  # models.Model (a registered model pickles by its module-level functions)
    params: dict
    shares: Optional[dict] = None

    def __call__(self, batch: dict) -> dict:
        from ..journey_index import JourneyIndex

        index = JourneyIndex.from_columns(batch)
        if self.shares is None:
            ihc = self.model.credits(index, self.params).ihc
        else:
            from ..models.channel_paths import channel_paths, credit_by_channel_share

            paths = channel_paths(index, None)
            shares = np.array([self.shares.get(label, 0.0) for label in paths.labels.tolist()], dtype=np.float64)
            ihc = credit_by_channel_share(index, paths.converting, shares, paths.n_channels)
        return {
            "conv_id": index.column("conversion_id"),
            "session_id": index.column("session_id"),
            "ihc": np.asarray(ihc, dtype=np.float64),
            "ts": np.asarray(index.ts, dtype=np.int64),
        }


# Models that fit on all paths at once: how each fits on a ``ChannelPaths`` (its weighted distinct paths).
def _fit_markov(paths, params: dict, progress: Optional[Progress]):
    from ..models.markov import fit_markov

    return fit_markov(paths, params["order"], params["collapse_repeats"], progress)


def _fit_shapley(paths, params: dict, progress: Optional[Progress]):
    from ..models.shapley import fit_shapley

    return fit_shapley(paths, params["max_coalition_size"], params["worth"])


FITS: dict[str, Callable[..., Any]] = {"markov": _fit_markov, "shapley": _fit_shapley}


def batch_credit(mod, engine, choice, window: Window, progress: Optional[Progress] = None) -> BatchCredit:
    """The run's ``BatchCredit``: a per-journey model as it is; Markov/Shapley fitted on the engine's
    path summary first."""
    model = choice.model
    if not model.needs_non_converting:
        return BatchCredit(model, choice.params)
    fit = FITS.get(choice.name)
    if fit is None or not hasattr(mod, "path_summary"):
        raise InputError(
            f"{engine.source.display()}: model {choice.name!r} fits on all paths at once and this engine "
            "computes no path summary for it; run it on a SQLite file"
        )
    progress = ensure(progress)
    progress(0, 1, f"{choice.name}: summarising the paths in the engine")
    summary = mod.path_summary(engine, window)
    fitted = fit(summary.channel_paths(), choice.params, None)
    progress(1, 1, f"{choice.name}: fitted on {summary.n_paths:,} distinct paths")
    return BatchCredit(model, choice.params, dict(zip(fitted.labels.tolist(), fitted.share.tolist())))


# ---- the run ---------------------------------------------------------------------------------------------


@dataclass
class EngineRun:
    """One run's facts, decided once: the source, the engine module and the open engine."""

    source: Any  # sources.Source
    mod: Any  # the engine module
    engine: Any  # the open engine
    fingerprint: str
    record: Optional[dict]  # the last successful run's record
    run_id: str = field(default_factory=new_run_id)


RUN_FUNCTIONS = (
    "validate", "journey_batches", "channel_report", "write_outputs", "conversion_count",
    "fingerprint", "run_record", "write_run_record", "stored_report",
)  # fmt: skip


def open_run(
    source,
    engine_name: Optional[str] = None,
    engine_options: Optional[dict] = None,
    write: bool = True,
    needs: tuple = (),
):
    """(module, open engine) for ``source`` (a URL or ``Source``), with ``engine_options`` (e.g.
    ``master`` for Spark) passed to the engine's ``open_engine`` only when given. ``needs``: the
    contract functions the caller uses; an engine module without one is a one-line InputError."""
    from ..sources import Source, parse_source

    source = source if isinstance(source, Source) else parse_source(source)
    mod = engine_module(source, engine_name)
    missing = [name for name in needs if not hasattr(mod, name)]
    if missing:
        raise source.error(
            f"the {mod.__name__.rsplit('.', 1)[-1]} engine does not offer this command yet (it lacks "
            f"{', '.join(missing)} of the engine contract, pipeline/engines/__init__.py)"
        )
    return mod, mod.open_engine(source, write=write, **(engine_options or {}))


def _stage(stage: str, run_id: str, params: dict, fp: str, rows: int, summary: dict, t0: str, seconds: float):
    return StageRecord(stage, run_id, params, {"fingerprint": fp}, fp[:20], rows, summary, t0, round(seconds, 3))


def _record_dict(rec: StageRecord) -> dict:
    return dict(rec.__dict__)


def stage_records(record: Optional[dict]) -> dict[str, StageRecord]:
    """The stage records stored in a run record."""
    if not record or record.get("version") != RECORD_VERSION:
        return {}
    return {name: StageRecord(**data) for name, data in record.get("stages", {}).items()}


def engine_status(mod, engine) -> dict[str, StageStatus]:
    """Each stage of ``status``: done (the stored run's inputs are the current ones), stale or missing."""
    record = mod.run_record(engine)
    records = stage_records(record)
    fp = mod.fingerprint(engine)
    states = {}
    for stage in ["validate", *STAGES]:
        rec = records.get(stage)
        if rec is None:
            states[stage] = StageStatus(stage, MISSING, "never ran on this source", None)
        elif rec.inputs.get("fingerprint") != fp:
            states[stage] = StageStatus(stage, STALE, "input tables changed since", rec)
        else:
            states[stage] = StageStatus(stage, DONE, "up to date", rec)
    return states


def run_on_engine(source, options, *args, **kwargs):
    """``runner.run_pipeline`` for an engine-run source (``options``: a ``runner.RunOptions``; the other
    arguments are ``running_on_engine``'s: engine, engine_options, progress, batch_rows)."""
    with running_on_engine(source, options, *args, **kwargs) as (result, _, _):
        return result


@contextmanager
def running_on_engine(
    source,
    options,
    engine: Optional[str] = None,
    engine_options: Optional[dict] = None,
    progress: Optional[Progress] = None,
    batch_rows: Optional[int] = None,
) -> Iterator[tuple[Any, ModuleType, Any]]:
    """``run_on_engine`` yielding (result, engine module, open engine) before the engine is closed: a
    caller that reads what the run wrote (the stored report, its warnings) reads it on the engine the run
    opened instead of opening the source again."""
    from ..sources import Source, parse_source

    started = time.perf_counter()
    progress = forward_only(ensure(progress))
    choice = options.resolve()  # usage errors before any work
    source = source if isinstance(source, Source) else parse_source(source)
    with data_errors(source):
        mod, eng = open_run(source, engine, engine_options, needs=RUN_FUNCTIONS)
        with eng:
            run = EngineRun(eng.source, mod, eng, mod.fingerprint(eng), mod.run_record(eng))
            yield _run(run, options, choice, progress, batch_rows, started), mod, eng


# DuckDB's errors about the data it reads, named by class (no duckdb import for the other engines): a
# truncated DuckDB file (IOException), text that is not UTF-8 in a Parquet file (InvalidInputException),
# a Parquet file damaged inside ("TProtocolException: Invalid data", "Out of buffer": DuckDB's bare
# ``Error``, matched only from DuckDB's module).
DATA_ERRORS = ("IOException", "InvalidInputException")
DUCKDB_MODULES = ("duckdb", "_duckdb")


@contextmanager
def data_errors(source) -> Iterator[None]:
    """Inside, an engine's error about the data it read becomes one InputError naming ``source``
    (a ``sources.Source``) — the CLI's and the dashboard's one line instead of a traceback."""
    try:
        yield
    except Exception as exc:
        words = no_room(exc)
        if words:  # a full disk or a file-size limit while writing the outputs
            raise source.error(no_room_text(words)) from None
        kind = type(exc)
        if kind.__name__ not in DATA_ERRORS and not (kind.__name__ == "Error" and kind.__module__ in DUCKDB_MODULES):
            raise
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        words = lines[0][:240]
        if getattr(source, "kind", None) == "parquet" and ".parquet" not in words:
            from ..sources import damaged_parquet_file

            damaged = damaged_parquet_file(source)  # DuckDB's words name no file: find it
            if damaged is not None:
                words = f"{damaged} is damaged ({words}); write it again"
        raise source.error(f"the engine could not read the data: {words}") from None


def _run(run: EngineRun, options, choice, progress: Progress, batch_rows: Optional[int], started: float):
    """The run on its open engine: up to date, or validation (reused while the inputs are the same) and
    the stages computed."""
    from ..runner import RunResult, StageOutcome

    mod, eng, window = run.mod, run.engine, options.window
    records = stage_records(run.record)
    same_inputs = all(r.inputs.get("fingerprint") == run.fingerprint for r in records.values()) and bool(records)
    # validation: reused while the inputs are the same
    if same_inputs and "validate" in records:
        validation = ValidationReport.from_dict(records["validate"].summary)
        vrec = records["validate"]
    else:
        t0, s0 = now_iso(), time.perf_counter()
        progress(0, 100, "validate: checking the input tables")
        validation = mod.validate(eng)
        validation.raise_if_fatal()
        vrec = _stage(
            "validate", run.run_id, {}, run.fingerprint, sum(validation.rows.values()),
            validation.to_dict(), t0, time.perf_counter() - s0,
        )  # fmt: skip
    validation.raise_if_fatal()
    up_to_date = (
        not options.force
        and not (choice.is_api and options.retry_failed)
        and same_inputs
        and records.get("journeys") is not None
        and records["journeys"].params == window.as_params()
        and records.get("attribute") is not None
        and records["attribute"].params == choice.stage_params
        and "report" in records
        and mod.stored_report(eng) is not None
    )
    if up_to_date:
        outcomes = [StageOutcome(s, True, records[s], _reused_message(s, records[s], choice.name)) for s in STAGES]
        progress(100, 100, "done: up to date")
        return RunResult(validation, outcomes, time.perf_counter() - started)
    outcomes = _compute(run, choice, window, vrec, progress, batch_rows, options)
    progress(100, 100, "done")
    return RunResult(validation, outcomes, time.perf_counter() - started)


def _compute(run: EngineRun, choice, window: Window, vrec: StageRecord, progress: Progress, batch_rows, options):
    from ..runner import StageOutcome

    mod, eng = run.mod, run.engine
    n_conversions = mod.conversion_count(eng, window)
    t0, s0 = now_iso(), time.perf_counter()
    part = scaled(progress, 20, 60, 100)
    failed: list = []
    extra: dict = {}
    journeys: Optional[dict] = None
    if choice.is_api:  # the SQLite API path, its ledger in a local work file (engines.api_run)
        from .api_run import api_credit

        columns, journeys, failed, extra = api_credit(
            mod, eng, choice, window, force=options.force, retry_failed=options.retry_failed,
            progress=part,
        )  # fmt: skip
        journey_seconds, fit_seconds = journeys["seconds"], 0.0
        model_seconds = time.perf_counter() - s0 - journey_seconds
    else:
        credit = batch_credit(mod, eng, choice, window, scaled(progress, 10, 10, 100))
        fit_seconds = time.perf_counter() - s0
        if hasattr(mod, "attribute"):  # the engine runs the batches where the data is
            part(0, 1, f"attribute: {choice.name} on the engine")
            s1 = time.perf_counter()
            columns = _as_columns(mod.attribute(eng, window, credit))
            journey_seconds, model_seconds = 0.0, time.perf_counter() - s1
        else:
            columns, journey_seconds, model_seconds = _batches(
                mod, eng, window, credit, n_conversions, part, batch_rows
            )
    model_seconds += fit_seconds
    n_rows = len(columns["ihc"])
    attributed = len(np.unique(columns["conv_id"])) if n_rows else 0
    first_ts = columns["ts"].min() if n_rows else None
    n_sessions, with_sessions = n_rows, attributed
    if journeys is not None:  # the API: conversions it did not attribute still have journeys
        n_sessions, first_ts = journeys["sessions"], journeys["first_ts"]
        with_sessions = attributed + len(failed)
    first = str(seconds_to_timestamps(np.array([first_ts]))[0])[:10] if first_ts is not None else None
    without = n_conversions - with_sessions
    jsum = {
        "conversions": n_conversions,
        "with_sessions": with_sessions,
        "without_sessions": without,
        "sessions": n_sessions,
        "first_session_date": first,
    }
    jrec = _stage("journeys", run.run_id, window.as_params(), run.fingerprint, n_sessions, jsum, t0, journey_seconds)
    reasons = {NO_SESSION_REASON: without} if without else {}
    for _, reason in failed:
        reasons[reason] = reasons.get(reason, 0) + 1
    asum = {"model": choice.name, "conversions_attributed": attributed, "not_attributed": reasons, **extra}
    arec = _stage("attribute", run.run_id, choice.stage_params, run.fingerprint, n_rows, asum, t0, model_seconds)
    # the report
    start, end = report_range(window, jsum)
    progress(80, 100, "report: channel-day sums in the engine")
    s2, t2 = time.perf_counter(), now_iso()
    credits = {k: columns[k] for k in ("conv_id", "session_id", "ihc")}
    rows = mod.channel_report(eng, credits, start, end)
    rsum = {
        "channel_days": len(rows),
        "cost": round(sum(r[2] for r in rows), 2),
        "ihc": round(sum(r[3] for r in rows), 4),
        "ihc_revenue": round(sum(r[4] for r in rows), 2),
    }
    progress(90, 100, "report: writing the outputs")
    rrec = _stage(
        "report", run.run_id, {"start": start, "end": end}, run.fingerprint, len(rows), rsum, t2,
        time.perf_counter() - s2,
    )  # fmt: skip
    stages = {"validate": vrec, "journeys": jrec, "attribute": arec, "report": rrec}
    record = {
        "version": RECORD_VERSION,
        "fingerprint": run.fingerprint,
        "run_id": run.run_id,
        "stages": {k: _record_dict(v) for k, v in stages.items()},
    }
    if _writes_record(mod):  # outputs and record swapped in one transaction
        mod.write_outputs(eng, credits, rows, record=record)
    else:
        mod.write_outputs(eng, credits, rows)
        mod.write_run_record(eng, record)
    why = "; ".join(f"{k}: {v:,}" for k, v in reasons.items()) or "none"
    return [
        StageOutcome("journeys", False, jrec, f"journeys: built ({_count(jrec)}) in {jrec.seconds:.2f}s"),
        StageOutcome(
            "attribute",
            False,
            arec,
            f"attribute: {attributed:,} conversions attributed with {choice.name}"
            f" (not attributed — {why}) in {arec.seconds:.2f}s",
        ),
        StageOutcome("report", False, rrec, f"report: {len(rows):,} channel-days rebuilt in {rrec.seconds:.2f}s"),
    ]


def _writes_record(mod) -> bool:
    """Whether the engine's ``write_outputs`` stores the run record with the outputs (``record=``)."""
    import inspect

    return "record" in inspect.signature(mod.write_outputs).parameters


def _batches(mod, eng, window: Window, credit: BatchCredit, n_conversions: int, progress: Progress, batch_rows):
    """Credit columns of every batch, concatenated; (columns, seconds reading, seconds modelling)."""
    parts: list[dict] = []
    seen, model_seconds = 0, 0.0
    started = time.perf_counter()
    kwargs = {"batch_rows": batch_rows} if batch_rows else {}
    progress(0, max(n_conversions, 1), "journeys: streaming whole journeys from the engine")
    for batch in mod.journey_batches(eng, window, **kwargs):
        s = time.perf_counter()
        part = credit(batch)
        model_seconds += time.perf_counter() - s
        parts.append(part)
        seen += len(np.unique(part["conv_id"])) if len(part["conv_id"]) else 0
        progress(seen, max(n_conversions, 1), f"attribute: {seen:,} of {n_conversions:,} conversions")
    total = time.perf_counter() - started
    if parts:
        columns = {k: np.concatenate([p[k] for p in parts]) for k in CREDIT_NAMES}
    else:
        columns = {k: np.zeros(0, dtype={"ihc": np.float64, "ts": np.int64}.get(k, object)) for k in CREDIT_NAMES}
    return columns, total - model_seconds, model_seconds


def _as_columns(result) -> dict:
    """An engine's ``attribute`` result (an Arrow table or a mapping of the four columns) → numpy arrays."""
    get = result.column if hasattr(result, "column") else result.__getitem__
    out = {}
    for name in CREDIT_NAMES:
        values = get(name)
        values = values.to_numpy(zero_copy_only=False) if hasattr(values, "to_numpy") else values
        out[name] = np.asarray(values, dtype={"ihc": np.float64, "ts": np.int64}.get(name, object))
    return out


def _count(rec: StageRecord) -> str:
    s = rec.summary
    return f"{s.get('sessions', rec.rows):,} sessions, {s.get('conversions', 0):,} conversions"


def _reused_message(stage: str, rec: StageRecord, model: str) -> str:
    if stage == "journeys":
        return f"journeys: up to date ({_count(rec)}), reused"
    if stage == "attribute":
        return f"attribute: up to date ({model}, {rec.rows:,} rows), reused"
    return f"report: up to date ({rec.rows:,} channel-days), reused"
