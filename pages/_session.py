"""The dashboard's session: this browser session's workspace and the cached reads of its database.

Every cached function takes the workspace fingerprint (which contains the session's private folder),
so one browser session's cached results can never be served to another. Each read is one ``pipeline``
call: the SQL lives in the library (``explain``, ``export``, ``validate``, ``status``, ``compare``).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional

import pandas as pd
import streamlit as st

from pipeline import coverage, explain, export, html_report
from pipeline.compare import ModelSpec, compare_models
from pipeline.db import open_database
from pipeline.export import read_report, to_csv_bytes, with_intervals
from pipeline.intervals import credit_rows as read_credit_rows
from pipeline.intervals import credit_within
from pipeline.palette import channel_colors
from pipeline.report_views import ReportView, ViewReads
from pipeline.report_views import report_view as build_report_view
from pipeline.report_views import view_reads as read_view_reads
from pipeline.report_warnings import report_warnings
from pipeline.status import status
from pipeline.validate import ValidationReport, current_validation
from pipeline.workspace import Workspace, cached_demo, demo_size_from_env, set_liveness, sweep

# ---- the session's workspace ---------------------------------------------------------------------


SWEEP_EVERY_SECONDS = float(os.environ.get("ATTRIBUTION_SWEEP_SECONDS") or 30.0)


def _session_id() -> Optional[str]:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def _is_live_session(session_id: str) -> bool:
    """True while the browser tab of ``session_id`` is connected (Streamlit's runtime knows)."""
    from streamlit.runtime import Runtime

    return not Runtime.exists() or Runtime.instance().is_active_session(session_id)


@st.cache_resource(show_spinner=False)
def _swept_once() -> bool:
    """Remove working folders left behind by dead processes now, then every 30 s those of sessions
    gone for longer than the grace period (once per process; a daemon thread)."""
    sweep()
    set_liveness(_is_live_session)

    def every_while() -> None:
        while True:
            time.sleep(SWEEP_EVERY_SECONDS)
            with contextlib.suppress(Exception):
                sweep(is_live=_is_live_session)

    threading.Thread(target=every_while, name="workspace-sweeper", daemon=True).start()
    return True


@st.cache_resource(show_spinner=False)
def demo_database(sessions: int, conversions: int, days: int, seed: int, short_ids: bool = False) -> str:
    """The cached demo database of that size (built on first use, then shared read-only)."""
    from pipeline.demo_size import DemoSize

    return str(cached_demo(DemoSize(sessions, conversions, days, seed, short_ids)))


def workspace() -> Workspace:
    """This browser session's workspace, created on first use and filled with the demo database."""
    _swept_once()
    ws = st.session_state.get("_workspace")
    if ws is None or ws.closed:
        ws = Workspace.create(session_id=_session_id())
        st.session_state["_workspace"] = ws
    ws.touch()
    if not ws.has_database:
        use_demo(ws)
    return ws


def use_demo(ws: Workspace) -> None:
    size = demo_size_from_env()
    with st.spinner("Preparing the demo database (built once, then reused: a few seconds)…"):
        path = demo_database(size.sessions, size.conversions, size.days, size.seed, size.short_ids)
    ws.use_demo(Path(path), size)
    st.session_state.pop("last_run", None)
    st.session_state.pop("last_run_outcome", None)  # the Pipeline page's last outcome was of the old database


def db_key(ws: Workspace) -> tuple[str, str]:
    """(path, fingerprint): the arguments every cached read takes. Sessions that share the demo
    read-only share its cached reads (``shared_key``); an own copy or an upload stays private."""
    return str(ws.db_path), shared_key(ws) or ws.fingerprint()


def shared_key(ws: Workspace) -> Optional[str]:
    """The cache key of the read-only demo file a session shares (the same bytes for every session
    that shares it, never written), so a new browser session finds the report already read; None for
    a session's own database."""
    if not ws.shares_demo or not ws.has_database:
        return None
    st_ = ws.db_path.stat()
    return f"shared-demo:{ws.db_path}:{st_.st_ino}:{st_.st_size}:{st_.st_mtime_ns}"


# ---- a source on the server, picked on the Data page ---------------------------------------------


SERVER_VIEW = "_server_view"  # session state: the ServerView the Report and Journeys pages show
SERVER_EXTRACT = "server-source.db"  # in the session's private folder: the run's extract


@dataclass(frozen=True)
class ServerView:
    """A server source the analyst ran on the Data page: its name (never its URL) and the SQLite file of
    its run that the pages read (``server_sources.SourceRun.database``: the engine run's extract in the
    session's private folder, or the source itself for a SQLite file)."""

    name: str
    path: str
    model: str = ""


def server_view() -> Optional[ServerView]:
    """The server source the pages show, or None (they show this session's database)."""
    view = st.session_state.get(SERVER_VIEW)
    return view if isinstance(view, ServerView) and Path(view.path).is_file() else None


def show_server_source(run) -> None:
    """After ``server_sources.run_source``: the Report and Journeys pages show this run."""
    if run.database is not None:
        st.session_state[SERVER_VIEW] = ServerView(run.name, str(run.database), run.model)


def leave_server_source() -> None:
    st.session_state.pop(SERVER_VIEW, None)


def data_key(ws: Workspace) -> tuple[str, str]:
    """(path, fingerprint) of what the Report and Journeys pages read: the server source picked on the
    Data page, else this session's database (``db_key``). The one place those pages choose."""
    view = server_view()
    if view is None:
        return db_key(ws)
    st_ = Path(view.path).stat()
    return view.path, f"server:{view.name}:{ws.root}:{view.path}:{st_.st_ino}:{st_.st_size}:{st_.st_mtime_ns}"


def server_caption() -> None:
    """On the pages that read ``data_key``: which server source they show (nothing otherwise)."""
    view = server_view()
    if view is not None:
        from pipeline.labels import md

        st.caption(f":material/dns: Source on the server: **{md(view.name, 80)}** (chosen on the Data page)")


def source_name(ws: Workspace) -> str:
    """The name of what the pages show: the server source's name, or this session's database's."""
    view = server_view()
    if view is not None:
        return view.name
    return ws.source.name if ws.source is not None else ""


# ---- cached reads (keyed by the database fingerprint) -------------------------------------------


@contextlib.contextmanager
def _read(path: str):
    con = open_database(path)
    try:
        yield con
    finally:
        con.close()


@st.cache_data(show_spinner=False, max_entries=32)
def stage_status(path: str, fp: str) -> dict:
    with _read(path) as con:
        return status(con)


@st.cache_data(show_spinner=False, max_entries=32)
def validation(path: str, fp: str) -> ValidationReport:
    """The stored validation when no input changed since it ran, else a fresh one (reads only)."""
    with _read(path) as con:
        return current_validation(con)


@st.cache_data(show_spinner=False, max_entries=32)
def channel_sessions(path: str, fp: str) -> pd.DataFrame:
    """Sessions, paid sessions and cost per channel of the input tables."""
    with _read(path) as con:
        return explain.channel_overview(con)


@st.cache_data(show_spinner=False, max_entries=32)
def colors(path: str, fp: str) -> dict[str, str]:
    """The database's channel → colour mapping, used by every chart."""
    with _read(path) as con:
        return channel_colors(explain.channel_names(con))


@st.cache_data(show_spinner=False, max_entries=32)
def has_report(path: str, fp: str) -> bool:
    with _read(path) as con:
        return export.has_report(con)


@st.cache_data(show_spinner=False, max_entries=128)
def report(path: str, fp: str, start: Optional[str], end: Optional[str], channels: Optional[tuple]) -> pd.DataFrame:
    """``export.read_report`` rows: what the table, charts and CSV show."""
    with _read(path) as con:
        return read_report(con, start, end, list(channels) if channels else None)


@st.cache_data(show_spinner=False, max_entries=128)
def report_csv(
    path: str,
    fp: str,
    start: Optional[str],
    end: Optional[str],
    channels: Optional[tuple],
    by: str = "session-date",
    intervals: bool = False,
) -> bytes:
    """Exactly what ``python -m pipeline export`` writes for the same filters (and --by, --intervals)."""
    with _read(path) as con:
        rows = read_report(con, start, end, list(channels) if channels else None, by)
        return to_csv_bytes(with_intervals(con, rows, by=by) if intervals else rows)


class ReportViewArgs(NamedTuple):
    """A view of the Report: its filters (dates as 'YYYY-MM-DD' or None for open, channels or None for
    all, the date basis) and its grain. What ``report_view`` and ``report_html`` take, and what the
    session keeps of the view last drawn (``REPORT_VIEW_ARGS``)."""

    start: Optional[str] = None
    end: Optional[str] = None
    channels: Optional[tuple] = None
    by: str = export.DATE_BASES[0]
    grain: str = "day"


FIRST_REPORT_VIEW = ReportViewArgs()  # what the Report shows first: all dates and channels, by session, per day


@st.cache_data(show_spinner=False, max_entries=64)
def report_view(path: str, fp: str, args: ReportViewArgs) -> ReportView:
    """Everything the Report page shows for these filters (``report_views.report_view``); what does not
    depend on the filters is read once per database state (below), so a new filter reads only its rows
    and their credit."""
    with _read(path) as con:
        return build_report_view(
            con,
            args.start,
            args.end,
            args.channels,
            args.by,
            grain=args.grain,
            reads=view_reads(path, fp),
            # the credit of the filter's dates, read once for every channel filter and cut to the rows' days
            read_credit=lambda lo, hi, basis: credit_within(credit_rows(path, fp, args.start, args.end, basis), lo, hi),
        )


# Kept as shared objects, not copies (only read): the draw is resamples × attributed conversions
# (32 MB at 20,000 conversions), so only the last two database states keep theirs.
@st.cache_resource(show_spinner=False, max_entries=2)
def view_reads(path: str, fp: str) -> ViewReads:
    with _read(path) as con:
        return read_view_reads(con)


@st.cache_resource(show_spinner=False, max_entries=16)
def credit_rows(path: str, fp: str, start: Optional[str], end: Optional[str], by: str) -> pd.DataFrame:
    """``intervals.credit_rows`` of the filter's dates: every channel filter of them reuses it, cut to its
    rows' days (``intervals.credit_within``; a channel with fewer days read its own range)."""
    with _read(path) as con:
        return read_credit_rows(con, start, end, by)


REPORT_VIEW_ARGS = "_report_view_args"  # session state: the ReportViewArgs last drawn
# session state: {summary, error, stopped, source} of this session's last run from the Pipeline page (its
# "Last run" box); a run started elsewhere (the Report's re-run of a mixed report) drops it, stale then
LAST_RUN_OUTCOME = "last_run_outcome"


def prepare_report(ws: Workspace) -> Optional[threading.Thread]:
    """After a run: read what the Report page reads first on the new database state (its status, the
    report's rows, the filter-independent view reads, the view of the filters it last showed, the
    colours) in a background thread, while the browser draws the run's summary. Opened right after,
    the Report finds them cached; a read still under way is waited for, not done twice (Streamlit's
    cache computes a value once). None when there is no report to read."""
    from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

    path, fp = data_key(ws)
    args = st.session_state.get(REPORT_VIEW_ARGS) or FIRST_REPORT_VIEW

    def read() -> None:
        with contextlib.suppress(Exception):  # only a head start: the page reads (and reports) on its own
            stage_status(path, fp)
            if has_report(path, fp):
                report(path, fp, None, None, None)
                report_view(path, fp, args)
                colors(path, fp)

    thread = threading.Thread(target=read, name="prepare-report", daemon=True)
    add_script_run_ctx(thread, get_script_run_ctx())  # the caches' calls belong to this session
    thread.start()
    return thread


@st.cache_data(show_spinner=False, max_entries=32)
def length_distribution(path: str, fp: str) -> pd.DataFrame:
    with _read(path) as con:
        return explain.length_distribution(con)


@st.cache_data(show_spinner=False, max_entries=32)
def top_paths(path: str, fp: str, limit: int, collapse: bool) -> pd.DataFrame:
    with _read(path) as con:
        return explain.top_paths(con, limit, collapse)


@st.cache_data(show_spinner=False, max_entries=32)
def conversion_choices(path: str, fp: str) -> pd.DataFrame:
    with _read(path) as con:
        return explain.conversion_choices(con)


@st.cache_data(show_spinner=False, max_entries=64)
def conversions_starting(path: str, fp: str, start: str) -> list[str]:
    with _read(path) as con:
        return explain.find_conversions(con, start)


@st.cache_data(show_spinner=False, max_entries=64)
def conversion(path: str, fp: str, conversion_id: str):
    with _read(path) as con:
        return explain.conversion_info(con, conversion_id), explain.conversion_sessions(con, conversion_id)


@st.cache_data(show_spinner=False, max_entries=32)
def unattributed(path: str, fp: str) -> pd.DataFrame:
    with _read(path) as con:
        return explain.unattributed_reasons(con)


COMPARISONS_KEPT = 16


@st.cache_resource(show_spinner=False)
def _comparisons() -> tuple[threading.Lock, "OrderedDict[tuple, object]"]:
    return threading.Lock(), OrderedDict()


def comparison(path: str, fp: str, specs_json: str, progress=None):
    """``compare_models``, kept for the last 16 (path, fingerprint, models) of the process; ``progress``
    hears which model is being attributed when it is computed. (Not ``st.cache_data``: it cannot call a
    progress bar drawn outside the cached function.)"""
    lock, kept = _comparisons()
    key = (path, fp, specs_json)
    with lock:
        if key in kept:
            kept.move_to_end(key)
            return kept[key]
    specs = [ModelSpec(name, params) for name, params in json.loads(specs_json)]
    with _read(path) as con:
        result = compare_models(con, specs, progress)
    with lock:
        kept[key] = result
        while len(kept) > COMPARISONS_KEPT:
            kept.popitem(last=False)
    return result


@st.cache_data(show_spinner=False, max_entries=32)
def stored_attribution(path: str, fp: str) -> str:
    """What the stored attribution holds, models and counts (``coverage.stored_attribution_text``)."""
    with _read(path) as con:
        return coverage.stored_attribution_text(coverage.model_coverage(con))


@st.cache_data(show_spinner=False, max_entries=32)
def mixing_preview(path: str, fp: str, start: Optional[str], end: Optional[str], model: str) -> Optional[str]:
    """Whether a run of ``model`` on this window would leave a report mixing models (``coverage``)."""
    with _read(path) as con:
        return coverage.mixing_preview(con, start, end, model)


@st.cache_data(show_spinner=False, max_entries=32)
def cut_hours(path: str, fp: str) -> Optional[float]:
    """The stored offline IHC attribution's inactivity cut in hours (None for other models)."""
    with _read(path) as con:
        return explain.stored_cut_hours(con)


@st.cache_data(show_spinner=False, max_entries=32)
def stored_report_warnings(path: str, fp: str) -> list[str]:
    """The stored report's warnings (mixed models, incomplete last days): ``report_warnings``."""
    with _read(path) as con:
        return [message for _, message, _, _ in report_warnings(con)]


@st.cache_data(show_spinner=False, max_entries=8)
def report_html(
    path: str,
    fp: str,
    args: ReportViewArgs,
    source: str,
    trend: Optional[tuple] = None,
    metric: str = "ihc_revenue",
) -> bytes:
    """The report of this view (filters, grain, the trend's channels and metric) as one self-contained
    HTML file (``html_report``)."""
    with _read(path) as con:
        return html_report.html_report(
            con,
            args.start,
            args.end,
            args.channels,
            args.by,
            source=source,
            grain=args.grain,
            trend=trend,
            metric=metric,
        ).encode("utf-8")


# ---- views that survive: filters in the URL and across pages ------------------------------------


def restore(key: str, param: str, decode, multi: bool = False, default=None) -> None:
    """Before the widget ``key`` is drawn: take its value from the URL's ``param`` (a reloaded or shared
    view) or, when the URL has none, from this session's last value (the analyst came back from another
    page, whose navigation dropped the widget's state). A value that does not decode is ignored.
    ``default``: the value when neither gives one, for a widget that must always show a choice: a radio
    or a segmented control holding None shows none chosen (the Report's date basis did, after a first
    view kept it before its radio was drawn; a click on the chosen segment unchooses it)."""
    if st.session_state.get(key) is not None:
        return
    raw = st.query_params.get_all(param) if multi else st.query_params.get(param)
    if raw:
        try:
            st.session_state[key] = decode(raw)
        except (ValueError, TypeError):
            pass
    elif f"_kept_{key}" in st.session_state:
        st.session_state[key] = st.session_state[f"_kept_{key}"]
    if default is not None and st.session_state.get(key) is None:
        st.session_state[key] = default


def remember(key: str, param: str, encode, default) -> None:
    """After the widget ``key``: keep its value for the next visit and write it into the URL (no
    parameter at its default, so a plain URL stays plain)."""
    value = st.session_state.get(key)
    st.session_state[f"_kept_{key}"] = value
    text = encode(value) if value is not None else None
    if text is None or text == encode(default):
        _drop_param(param)
    elif st.query_params.get_all(param) != [text]:  # each write is a message and a browser history entry
        st.query_params[param] = text


def remember_list(key: str, param: str) -> None:
    """``remember`` for a multiselect: the URL repeats ``param`` once per value (none when empty)."""
    chosen = list(st.session_state.get(key) or [])
    st.session_state[f"_kept_{key}"] = chosen
    if chosen:
        if st.query_params.get_all(param) != [str(c) for c in chosen]:
            st.query_params[param] = chosen
    else:
        _drop_param(param)


def _drop_param(param: str) -> None:
    """Take ``param`` out of the URL, only when it is there: a page run at the default view touches
    nothing (a removal is a message to the browser and a history entry)."""
    if param in st.query_params:
        del st.query_params[param]
