"""Core commands, one per library function:

demo-db    pipeline.demo.write_demo_db
validate   pipeline.validate.validate
journeys   pipeline.runner.journeys_stage
attribute  pipeline.runner.attribute_stage
report     pipeline.runner.report_stage
run        pipeline.runner.run_pipeline
status     pipeline.status.status
export     pipeline.export.export_csv
models     pipeline.models.available_models
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

from ..coverage import model_coverage
from ..db import copy_database, open_database
from ..demo_size import DemoSize
from ..errors import InputError
from ..outputs import STDOUT, check_csv_target, check_output_db
from ..progress import StderrProgress, noop
from ..window import Window

# Heavier modules (numpy, the models, pandas for the demo and the CSV) are imported by the commands
# that use them, so every command starts fast and `run` can start SQLite's scans first.

# The demo generator and the CSV export need pandas; they are imported by their commands only, so
# `run` and the stage commands start without it (the demo's default size comes from demo_size).
DEMO_DEFAULTS = DemoSize()

EXAMPLES = {
    "demo-db": "python -m pipeline demo-db demo.db --sessions 45000 --conversions 200",
    "validate": "python -m pipeline validate demo.db",
    "journeys": "python -m pipeline journeys demo.db --start 2023-09-05 --end 2023-09-10 --lookback-days 30",
    "attribute": "python -m pipeline attribute demo.db --model linear",
    "report": "python -m pipeline report demo.db",
    "run": "python -m pipeline run demo.db --model linear --csv report.csv",
    "status": "python -m pipeline status demo.db",
    "export": "python -m pipeline export demo.db --csv paid.csv --channel 'Paid Search Brand' --channel 'FB & IG Ads'",
    "report-html": "python -m pipeline report-html demo.db --output report.html --start 2023-09-03 --per week "
    "--trend-channel Display --trend-metric roas",
    "models": "python -m pipeline models",
}


def register(sub) -> None:
    def command(name: str, help_text: str, handler) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example: {EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=handler)
        return p

    p = command("demo-db", "Write a realistic demo database (deterministic per seed).", cmd_demo_db)
    p.add_argument("out", metavar="OUT.db")
    p.add_argument("--sessions", type=positive_int, default=DEMO_DEFAULTS.sessions, metavar="N")
    p.add_argument("--conversions", type=positive_int, default=DEMO_DEFAULTS.conversions, metavar="M")
    p.add_argument("--days", type=positive_int, default=DEMO_DEFAULTS.days, metavar="D")
    p.add_argument("--seed", type=int, default=DEMO_DEFAULTS.seed, metavar="S")
    p.add_argument(
        "--short-ids",
        action="store_true",
        help="short ids (S0000000, U0000000, C000000) instead of the real data's 64/40-character hex ids",
    )
    p.add_argument("--force", action="store_true", help="overwrite OUT.db if it exists")

    p = command("validate", "Check the input tables; exit 2 if anything is fatal. Writes nothing.", cmd_validate)
    _db(p)
    p.add_argument("--json", action="store_true", help="print the findings as JSON")

    p = command("journeys", "Build each conversion's journey (sessions strictly before it).", cmd_journeys)
    _db(p, write=True)
    _window(p)
    _force(p)

    p = command("attribute", "Attribute the stored journeys with a model and store the credit.", cmd_attribute)
    _db(p, write=True)
    _model(p)
    _force(p)

    p = command("report", "Rebuild channel_reporting for a range of session dates.", cmd_report)
    _db(p, write=True)
    p.add_argument("--start", metavar="YYYY-MM-DD", help="first session date to rebuild (default: all)")
    p.add_argument("--end", metavar="YYYY-MM-DD", help="last session date to rebuild (default: all)")
    _force(p)

    p = command("run", "validate → journeys → attribute → report (→ CSV), skipping what is up to date.", cmd_run)
    _db(p, write=True)
    _window(p)
    _model(p)
    p.add_argument("--csv", metavar="OUT.csv", help="also export the report (filtered to --start/--end; '-': stdout)")
    _force(p)

    p = command("status", "Show each stage: done (up to date), stale or missing. Writes nothing.", cmd_status)
    _db(p)
    p.add_argument("--json", action="store_true", help="print the status as JSON")

    p = command("export", "Write the channel report with CPO and ROAS as CSV.", cmd_export)
    _db(p)
    p.add_argument("--csv", required=True, metavar="OUT.csv", help="a regular file, or '-' for stdout")
    _report_filters(p)
    p.add_argument(
        "--intervals",
        action="store_true",
        help="add CPO_low,CPO_high,ROAS_low,ROAS_high: 90%% bootstrap intervals over conversions",
    )
    p.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (with --intervals; default 0)")
    p.add_argument(
        "--by",
        choices=["session-date", "conversion-date"],
        default="session-date",
        help="date the credit by the session that earned it (default) or by the conversion (as GA4 does)",
    )

    p = command("report-html", "Write the report as one self-contained HTML file (charts included).", cmd_report_html)
    _db(p)
    p.add_argument("--output", required=True, metavar="OUT.html", help="a regular file, or '-' for stdout")
    _report_filters(p)
    p.add_argument("--by", choices=["session-date", "conversion-date"], default="session-date", help="as for export")
    _report_view(p)

    command("models", "List the attribution models and their parameters.", cmd_models)


# ---- argument helpers ----------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1 (shared by the command modules)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be ≥ 1")
    return value


def _db(p, write: bool = False) -> None:
    p.add_argument(
        "db",
        metavar="DB",
        help="the analyst's SQLite database, or duckdb:///file.duckdb, parquet:///folder (docs/engines.md)",
    )
    p.add_argument(
        "--engine", metavar="NAME", help="the engine that runs DB (default: the source's own; see docs/engines.md)"
    )
    p.add_argument("--spark-master", metavar="URL", help="with --engine spark: the Spark master (default local[*])")
    if write:
        p.add_argument(
            "--output-db",
            metavar="COPY.db",
            help="copy DB to COPY.db and write there; DB itself is not modified",
        )
        p.add_argument("--overwrite", action="store_true", help="replace COPY.db if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _report_filters(p) -> None:
    """The rows of a written report (export, report-html): its first and last date, its channels."""
    p.add_argument("--start", metavar="YYYY-MM-DD", help="first date (inclusive)")
    p.add_argument("--end", metavar="YYYY-MM-DD", help="last date (inclusive)")
    p.add_argument("--channel", action="append", metavar="NAME", help="keep only this channel (repeatable)")


# The HTML report's view, as the dashboard's Report page sets it (pipeline.report_views: GRAINS and
# DAILY_METRICS, the trend's measures by the names the page gives them; a test holds the two together).
GRAINS = ("day", "week", "month")
TREND_METRICS = {"revenue": "ihc_revenue", "cost": "cost", "conversions": "ihc", "cpo": "CPO", "roas": "ROAS"}


def _report_view(p) -> None:
    """The view of the HTML report: its period (trend and table) and its trend's channels and measure."""
    p.add_argument(
        "--per", choices=GRAINS, default="day", help="the trend's and the table's period (default: day; weeks are ISO)"
    )
    p.add_argument(
        "--trend-channel",
        action="append",
        metavar="NAME",
        help="a channel in the trend chart (repeatable; default: the --channel ones, else the five with most revenue)",
    )
    p.add_argument(
        "--trend-metric", choices=list(TREND_METRICS), default="revenue", help="what the trend shows (default: revenue)"
    )


def report_view_options(args, source: str) -> dict:
    """The keyword arguments of ``html_report`` from ``report-html``'s options, on SQLite and on an engine
    alike: the filters, the view (period, trend channels and measure) and the name of the source."""
    return {
        "start": args.start,
        "end": args.end,
        "channels": args.channel,
        "by": args.by,
        "source": source,
        "grain": args.per,
        "trend": args.trend_channel,
        "metric": TREND_METRICS[args.trend_metric],
    }


def _window(p) -> None:
    p.add_argument("--start", metavar="YYYY-MM-DD", help="first conversion date (inclusive)")
    p.add_argument("--end", metavar="YYYY-MM-DD", help="last conversion date (inclusive)")
    p.add_argument(
        "--lookback-days", type=positive_int, metavar="N", help="only sessions at most N days before the conversion"
    )


def _model(p) -> None:
    p.add_argument(
        "--model",
        metavar="NAME",
        help="attribution model (default: ihc, the offline IHC model; ihc-api: the IHC web API; see `models`)",
    )
    p.add_argument("--profile", metavar="NAME|PATH", help="IHC profile (models that take one)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model parameter (repeatable; VALUE is JSON or text)",
    )
    p.add_argument(
        "--retry-failed", action="store_true", help="ihc-api: re-send conversions an earlier run recorded as failed"
    )
    from .api import add_config_arguments

    add_config_arguments(p)


def _api_choice(args, params: dict):
    """For --model ihc-api, the run's model decided here (``model_choice.choose_model``: the settings
    are required before any work, a database copy or the scans); else the model's name, which the
    command resolves once it has the database open."""
    from ..ihc_api import MODEL_NAME

    if args.model != MODEL_NAME:
        return args.model
    from ..model_choice import choose_model
    from .api import config_from_args

    return choose_model(MODEL_NAME, params, config_from_args(args))


def _force(p) -> None:
    p.add_argument("--force", action="store_true", help="redo stages even when they are up to date")


def _model_params(args) -> dict:
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param {item!r} is not KEY=VALUE")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    if args.profile is not None:
        params["profile"] = args.profile
    return params


def _progress(args):
    return noop if args.quiet else StderrProgress()


def _target(args) -> Path:
    """The database to write: DB itself, or its copy at --output-db."""
    if getattr(args, "output_db", None):
        return copy_database(args.db, check_output_db(args.output_db, args.db, args.overwrite))
    return Path(args.db)


@contextmanager
def _open_for_write(args, path=None):
    con = open_database(path or _target(args), write=True)
    try:
        yield con
    finally:
        con.close()


def _early_scans(path: Path, force: bool):
    """When everything will be computed (--force, or a database never run before), start the
    cost scan in a child process now (scans.FORK_GROUPS): SQLite looks up every costed session while
    this process imports the runner and the models, fingerprints, builds journeys and then profiles
    the sessions itself. Forking happens while this process
    holds no connection to the file (see scans.open_scans); elsewhere the runner uses threads."""
    from ..scans import can_fork
    from ..status import never_ran
    from ..validate import start_scans

    probe = open_database(path)
    try:
        if (force or never_ran(probe)) and can_fork():
            return start_scans(probe, fork=True)  # closes the probe before forking
        return None
    finally:
        probe.close()


def _print(lines, file=None) -> None:
    for line in lines:
        print(line, file=file)


# ---- handlers ----------------------------------------------------------------------------------


def cmd_demo_db(args) -> int:
    from ..demo import write_demo_db

    out = Path(args.out)
    size = DemoSize(args.sessions, args.conversions, args.days, args.seed, short_ids=args.short_ids)
    counts = write_demo_db(out, size, overwrite=args.force)
    print(f"wrote {out}: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()))
    return 0


def cmd_validate(args) -> int:
    from ..report_warnings import report_warnings
    from ..validate import validate

    con = open_database(args.db)
    report = validate(con, _progress(args))
    return print_validation(report, report_warnings(con), args.json)


def print_validation(report, warnings: list[tuple], as_json: bool) -> int:
    """``validate``'s output, the SQLite engine's and every engine's: the findings and the stored report's
    ``warnings`` as JSON or as lines; the exit code (2: a fatal finding)."""
    if as_json:
        out = report.to_dict()
        out["report_warnings"] = [{"code": c, "message": m, "count": n, "examples": e} for c, m, n, e in warnings]
        print(json.dumps(out, indent=2, default=str))
    else:
        print("rows: " + ", ".join(f"{t} {n:,}" for t, n in report.rows.items()))
        print(report.coverage_line())
        _print(f.line() for f in report.findings)
        print_warnings(warnings, [])
        print("fatal findings: the file cannot be attributed" if report.fatal else "ok: no fatal finding")
    return 2 if report.fatal else 0


def _window_from(args) -> Window:
    return Window(args.start, args.end, args.lookback_days)


def cmd_journeys(args) -> int:
    from .. import runner
    from ..status import StageBook

    window = _window_from(args)
    with _open_for_write(args) as con:
        book = StageBook(con)
        runner.validate_stage(book)
        print(runner.journeys_stage(book, window, args.force, _progress(args)).message)
    return 0


def cmd_attribute(args) -> int:
    from .. import runner
    from ..model_choice import ModelChoice, choose_model
    from ..status import StageBook

    params = _model_params(args)
    model = _api_choice(args, params)
    with _open_for_write(args) as con:
        book = StageBook(con)
        choice = model if isinstance(model, ModelChoice) else choose_model(model, params)
        outcome = runner.attribute_stage(
            book, choice, force=args.force, retry_failed=args.retry_failed, progress=_progress(args)
        )
        _print(outcome.record.summary.get("warnings", []))
        print(outcome.message)
    return 0


def cmd_report(args) -> int:
    from .. import runner

    Window(args.start, args.end)  # checks the dates
    from ..status import StageBook

    with _open_for_write(args) as con:
        book = StageBook(con)
        runner.validate_stage(book)
        print(runner.report_stage(book, args.start, args.end, args.force, _progress(args)).message)
    return 0


def cmd_run(args) -> int:
    window, params = _window_from(args), _model_params(args)
    model = _api_choice(args, params)
    if args.csv:
        check_csv_target(args.csv, args.db, args.output_db)
    out = sys.stderr if args.csv == STDOUT else sys.stdout  # with `--csv -`, stdout carries the CSV only
    path = _target(args)
    scans = _early_scans(path, args.force)
    try:
        with _open_for_write(args, path) as con:
            from .. import runner

            options = runner.RunOptions(window, model, params, args.force, retry_failed=args.retry_failed)
            result = runner.run_pipeline(con, options, _progress(args), scans)
            _print((f.line() for f in result.validation.warnings), out)
            _print((w for o in result.outcomes if not o.skipped for w in o.record.summary.get("warnings", [])), out)
            _print(result.lines(), out)
            _print_report_warnings(con, [f.line() for f in result.validation.warnings], out)
            if args.csv:
                from ..export import export_csv

                rows = export_csv(con, args.csv, args.start, args.end)
                print(f"export: {rows:,} rows written to {args.csv}", file=out)
    finally:
        if scans is not None:
            scans.cancel()
    print(f"done in {result.seconds:.2f}s", file=out)
    return 0


def cmd_status(args) -> int:
    from ..status import STAGES, status

    con = open_database(args.db)
    states = status(con)
    coverage = model_coverage(con)
    if args.json:
        out: dict[str, object] = {s: _status_dict(v) for s, v in states.items()}
        out["models"] = [c.as_dict() for c in coverage]
        print(json.dumps(out, indent=2, default=str))
        return 0
    for stage in STAGES:
        print(_status_line(stage, states[stage]))
    if coverage:
        print("models     " + "; ".join(c.phrase() for c in coverage))
    return 0


def _print_report_warnings(con, shown: list[str], file=None) -> None:
    """The stored report's warnings after a run, but for those validation has just printed."""
    from ..report_warnings import report_warnings

    print_warnings(report_warnings(con), shown, file)


def print_warnings(warnings: list[tuple], shown: list[str], file=None) -> None:
    """``report_warnings``' (code, message, count, examples) as ``warning: report:`` lines (the SQLite
    engine's and every engine's), but for those already among the ``shown`` lines."""
    for _, message, _, _ in warnings:
        if not any(message in line for line in shown):
            print(f"warning: report: {message}", file=file)


def _status_line(stage: str, st) -> str:
    """One stage of ``status``: state, reason and the last run's time, rows and parameters."""
    line = f"{stage:<10} {st.state:<8} {st.reason}"
    if st.record is not None:
        r = st.record
        line += f"; last run {r.started_at} ({r.seconds:.2f}s, {r.rows:,} rows) params {json.dumps(r.params, sort_keys=True)}"
    return line


def _status_dict(st) -> dict:
    rec = st.record
    return {
        "state": st.state,
        "reason": st.reason,
        "record": None
        if rec is None
        else {
            "run_id": rec.run_id,
            "params": rec.params,
            "rows": rec.rows,
            "summary": rec.summary,
            "started_at": rec.started_at,
            "seconds": rec.seconds,
        },
    }


def cmd_export(args) -> int:
    from ..export import export_csv

    Window(args.start, args.end)  # checks the dates
    check_csv_target(args.csv, args.db)
    con = open_database(args.db)
    rows = export_csv(
        con, args.csv, args.start, args.end, args.channel, intervals=args.intervals, seed=args.seed, by=args.by
    )
    print(f"export: {rows:,} rows written to {args.csv}", file=sys.stderr if args.csv == STDOUT else sys.stdout)
    return 0


def cmd_report_html(args) -> int:
    from ..html_report import write_html_report

    Window(args.start, args.end)  # checks the dates
    check_csv_target(args.output, args.db)
    con = open_database(args.db)
    size = write_html_report(con, args.output, **report_view_options(args, Path(args.db).name))
    where = sys.stderr if args.output == STDOUT else sys.stdout
    print(f"report-html: {size / 1e6:.1f} MB written to {args.output}", file=where)
    return 0


def cmd_models(args) -> int:
    from .. import ihc_api
    from ..models import available_models, get_model

    for name in available_models():
        model = get_model(name)
        params = ", ".join(f"{k}={v!r}" for k, v in model.defaults.items()) or "no parameters"
        print(f"{name:<16} {model.description} [{params}]")
    print(f"{ihc_api.MODEL_NAME:<16} {ihc_api.DESCRIPTION} [settings: see `run --help`]")
    return 0


__all__ = ["register"]
_ = sys  # stdout/stderr are used through print and StderrProgress
