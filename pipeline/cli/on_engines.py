"""The one place where a command's DB argument picks its engine (``route``), and the commands' engine
faces: a plain path or ``sqlite:///path`` runs today's SQLite code unchanged; ``duckdb:///``,
``parquet:///`` and every other engine-run source (``pipeline.engines.ENGINES``) run through the engine
seam (``pipeline.engines.run``), with ``--engine NAME`` and ``--spark-master URL`` passed on.

What each command does on an engine source:

| command | on an engine source |
|---|---|
| ``validate`` | the engine's validation, printed as for SQLite (``--json`` too), with the stored report's warnings |
| ``run`` | ``engines.run.running_on_engine``, then, on the engine the run opened, the stored report's warnings (``engines.report_warnings``: SQLite's lines); ``--csv`` from the written ``channel_reporting`` |
| ``attribute`` | the same as ``run`` (the engine writes both outputs together) |
| ``journeys`` | validation, then the journeys streamed and counted (an engine stores no journeys table) |
| ``report`` | the same as ``run`` with the stored run's model and window (the whole report is rebuilt) |
| ``status`` | each stage from the run record stored with the outputs |
| ``export`` | the stored ``channel_reporting`` with CPO/ROAS as CSV (byte-identical to SQLite's); ``--intervals`` and ``--by conversion-date`` read the run's journey-sized extract (``engine_extract``) |
| ``report-html`` | the SQLite engine's HTML report on the run's journey-sized extract (``engine_extract``) |
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Optional

from ..errors import InputError, PipelineError
from ..outputs import STDOUT, check_csv_target
from ..progress import StderrProgress, noop
from ..window import Window
from .core import print_validation, print_warnings, report_view_options

ENGINE_COMMANDS = ("validate", "journeys", "attribute", "report", "run", "status", "export", "report-html")


def route(args):
    """The handler of ``args``: today's for a SQLite source (a ``sqlite:///`` URL becomes its path),
    this module's for an engine source. Called once, by ``cli.main``."""
    db = getattr(args, "db", None)
    engine = getattr(args, "engine", None)
    if args.command not in ENGINE_COMMANDS or not isinstance(db, str) or ("://" not in db and not engine):
        return args.handler
    from ..sources import parse_source

    source = parse_source(db)
    if source.kind == "sqlite" and engine in (None, "sqlite"):
        args.db = str(source.file)
        return args.handler
    if getattr(args, "output_db", None):
        raise InputError(f"{source.display()}: --output-db copies a SQLite file; an engine source keeps its outputs")
    args.source = source
    return _naming(source, HANDLERS[args.command])


def _naming(source, handler):
    """``handler`` whose input errors name the source (once), whatever part of the engine raised them."""

    def run(args) -> int:
        from ..engines.run import data_errors

        try:
            with data_errors(source):
                return handler(args)
        except InputError as exc:
            shown = source.display()
            if str(exc).startswith(shown):
                raise
            raise source.error(str(exc)) from None
        except Exception as exc:
            if type(exc).__name__ != "OutOfMemoryException":  # duckdb's, without importing duckdb here
                raise
            raise PipelineError(
                f"{source.display()}: the engine ran out of its memory limit ({str(exc).splitlines()[0][:120]}); "
                "raise it with ATTRIBUTION_DUCKDB_MEMORY=2GB (docs/engines.md)"
            ) from None

    return run


def _engine_options(args) -> dict:
    master = getattr(args, "spark_master", None)
    return {"master": master} if master else {}


def _open(args, write: bool = False, needs: tuple = ()):
    from ..engines.run import open_run

    return open_run(args.source, args.engine, _engine_options(args), write=write, needs=needs)


def _progress(args):
    return noop if args.quiet else StderrProgress()


def _print(lines, file=None) -> None:
    for line in lines:
        print(line, file=file)


def _report_warnings(eng) -> list[tuple]:
    """The stored report's warnings (``engines.report_warnings``: the SQLite engine's, from the engine's
    outputs) for an engine running the DuckDB engine's SQL; [] for one that does not."""
    from ..engines.report_warnings import report_warnings

    return report_warnings(eng) if hasattr(eng, "sql") and hasattr(eng, "present") else []


def _check_csv(path: str, source) -> None:
    """``check_csv_target`` for an engine source: never one of its files, never inside a Parquet folder."""
    check_csv_target(path)
    if path == STDOUT or not source.is_file:
        return
    from pathlib import Path

    target, where = Path(path).resolve(), source.file.resolve()
    if target == where or (source.kind == "parquet" and where in target.parents):
        raise InputError(f"--csv {path} is inside the source {source.display()}; name a file outside it")


def _write_csv(mod, eng, path: str, start, end, channels=None) -> int:
    """The stored report with CPO/ROAS as CSV (``export.to_csv_bytes``: the SQLite engine's bytes)."""
    import pandas as pd

    from ..export import EXPORT_COLUMNS, add_ratios, to_csv_bytes
    from ..outputs import write_bytes

    rows = mod.stored_report(eng, start, end)
    if rows is None:
        raise InputError(f"{eng.source.display()}: there is no channel report yet; run `run` first")
    report = pd.DataFrame.from_records(rows, columns=EXPORT_COLUMNS[:5])
    if channels:
        report = report[report["channel_name"].isin(list(channels))].reset_index(drop=True)
    write_bytes(path, to_csv_bytes(add_ratios(report)))
    return len(report)


# ---- handlers ------------------------------------------------------------------------------------


def cmd_validate(args) -> int:
    mod, eng = _open(args, needs=("validate",))
    with eng:
        report = mod.validate(eng)
        warnings = _report_warnings(eng)
    return print_validation(report, warnings, args.json)


def _run(args, window: Window, model, params: dict, force: bool, csv: Optional[str], retry: bool = False) -> int:
    from ..engines.run import running_on_engine
    from ..runner import RunOptions

    if csv:
        _check_csv(csv, args.source)
    out = sys.stderr if csv == STDOUT else sys.stdout
    options = RunOptions(window, model, params, force, retry_failed=retry)
    running = running_on_engine(args.source, options, args.engine, _engine_options(args), _progress(args))
    with running as (result, mod, eng):  # the run's engine, open once: its report is read where it was written
        _print((f.line() for f in result.validation.warnings), out)
        _print((w for o in result.outcomes if not o.skipped for w in o.record.summary.get("warnings", [])), out)
        _print(result.lines(), out)
        print_warnings(_report_warnings(eng), [f.line() for f in result.validation.warnings], out)
        if csv:
            rows = _write_csv(mod, eng, csv, window.start, window.end)
            print(f"export: {rows:,} rows written to {csv}", file=out)
    print(f"done in {result.seconds:.2f}s", file=out)
    return 0


def _model_args(args) -> tuple:
    """(model, params, retry_failed): for ihc-api the model decided here, with the --api-* flags."""
    from ..ihc_api import MODEL_NAME
    from .core import _api_choice, _model_params

    retry = bool(getattr(args, "retry_failed", False))
    if retry and args.model != MODEL_NAME:
        raise InputError("--retry-failed is for the IHC web API (--model ihc-api)")
    params = _model_params(args)
    return _api_choice(args, params), params, retry


def cmd_run(args) -> int:
    model, params, retry = _model_args(args)
    window = Window(args.start, args.end, args.lookback_days)
    return _run(args, window, model, params, args.force, args.csv, retry)


def cmd_attribute(args) -> int:
    model, params, retry = _model_args(args)
    return _run(args, Window(), model, params, args.force, None, retry)


def cmd_report(args) -> int:
    from ..engines.run import stage_records

    if args.start or args.end:
        raise InputError(
            f"{args.source.display()}: report --start/--end is for SQLite files; on an engine source `run` "
            "rebuilds the whole report (filter with `export --start/--end`)"
        )
    mod, eng = _open(args, needs=("run_record",))
    with eng:
        records = stage_records(mod.run_record(eng))
    if "attribute" not in records:
        raise InputError(f"{args.source.display()}: nothing is attributed yet: run `run` first")
    stored = records["attribute"].params
    return _run(args, Window(**records["journeys"].params), stored["model"], stored["params"], args.force, None)


def cmd_journeys(args) -> int:
    import numpy as np

    window = Window(args.start, args.end, args.lookback_days)
    mod, eng = _open(args, needs=("validate", "conversion_count", "journey_batches"))
    with eng:
        mod.validate(eng).raise_if_fatal()
        n_conv = mod.conversion_count(eng, window)
        rows = with_sessions = 0
        for batch in mod.journey_batches(eng, window):
            rows += len(batch["conversion_id"])
            with_sessions += len(np.unique(batch["conversion_id"]))
    print(
        f"journeys: {rows:,} sessions, {n_conv:,} conversions ({n_conv - with_sessions:,} without an earlier "
        "session); an engine source stores no journeys table: `run` streams them again"
    )
    return 0


def cmd_status(args) -> int:
    from ..engines.run import engine_status
    from ..status import STAGES

    mod, eng = _open(args, needs=("fingerprint", "run_record"))
    with eng:
        states = engine_status(mod, eng)
    if args.json:
        from .core import _status_dict

        print(json.dumps({s: _status_dict(v) for s, v in states.items()}, indent=2, default=str))
        return 0
    from .core import _status_line

    for stage in ["validate", *STAGES]:
        print(_status_line(stage, states[stage]))
    return 0


def cmd_export(args) -> int:
    Window(args.start, args.end)  # checks the dates
    _check_csv(args.csv, args.source)
    where = sys.stderr if args.csv == STDOUT else sys.stdout
    if args.intervals or args.by != "session-date":
        from ..export import export_csv

        with _extract(args) as con:
            rows = export_csv(
                con, args.csv, args.start, args.end, args.channel, intervals=args.intervals, seed=args.seed, by=args.by
            )
    else:
        mod, eng = _open(args, needs=("stored_report",))
        with eng:
            rows = _write_csv(mod, eng, args.csv, args.start, args.end, args.channel)
    print(f"export: {rows:,} rows written to {args.csv}", file=where)
    return 0


def cmd_report_html(args) -> int:
    from ..html_report import write_html_report

    Window(args.start, args.end)  # checks the dates
    _check_csv(args.output, args.source)
    with _extract(args) as con:
        size = write_html_report(con, args.output, **report_view_options(args, args.source.display()))
    where = sys.stderr if args.output == STDOUT else sys.stdout
    print(f"report-html: {size / 1e6:.1f} MB written to {args.output}", file=where)
    return 0


@contextmanager
def _extract(args):
    """A read connection to the stored run's journey-sized extract (``engine_extract``), in a temporary
    folder removed afterwards: what per-conversion credit reads (intervals, conversion dates)."""
    import tempfile
    from pathlib import Path

    from ..db import open_database
    from ..engine_extract import extract_run

    with tempfile.TemporaryDirectory(prefix="pipeline-extract-") as tmp:
        path = extract_run(args.source, Path(tmp) / "run.db", args.engine, _engine_options(args))
        con = open_database(path)
        try:
            yield con
        finally:
            con.close()


HANDLERS = {
    "validate": cmd_validate,
    "journeys": cmd_journeys,
    "attribute": cmd_attribute,
    "report": cmd_report,
    "run": cmd_run,
    "status": cmd_status,
    "export": cmd_export,
    "report-html": cmd_report_html,
}
