"""How the dashboard looks and talks: the progress bar adapter, number formats, chart styling, error
display, the sidebar. No data access here.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import time
import traceback
from typing import Optional

import pandas as pd
import streamlit as st

from pipeline.db import sqlite_error_message
from pipeline.errors import PipelineError
from pipeline.labels import md
from pipeline.report_echarts import EChart
from pipeline.workspace import Workspace, hide_paths

# ---- every page through the app ---------------------------------------------------------------


def run_through_the_app() -> None:
    """Make sure this page runs inside app.py (its wide layout, sidebar navigation and database box), not
    alone. Call it first in every page script.

    A server decides on its first session whether the app is an old-style "pages/ folder" app: Streamlit
    1.67 sets the class flag ``PagesManager.uses_pages_directory`` from the folder's existence and clears
    it when a script calls ``st.navigation``. Until then its script runner runs ``_mpa_v1``, which maps a
    URL straight to a page file: a first visit to ``/report`` on a fresh server ran pages/report.py alone,
    in Streamlit's centred 736 px column without the navigation, and the report's table, fitted to the
    wide layout, was cut ("ROAS 90%" in the CI screenshot ``downloads_1_database_ready.png``). Here the
    flag is cleared, as ``st.navigation`` would, and the run starts again: the runner then executes
    app.py, whose ``st.navigation`` resolves the same URL to this page. Only ever once per server: the
    flag stays cleared. Only a session app.py has never run in (it sets ``_first_run`` on every run): a
    server clears the flag for good on its first run of app.py, but Streamlit's AppTest sets it back
    before each of its runs, and a rerun there would drop the button click that started the run.
    tests/test_dashboard_app.py holds Streamlit to this (a new version fails there, not silently)."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and "_first_run" not in st.session_state:
        PagesManager.uses_pages_directory = False
        st.rerun()


# ---- progress ----------------------------------------------------------------------------------


class StreamlitProgress:
    """A ``(done, total, message)`` callback that moves an ``st.progress`` bar. Calls from other threads
    (the library's background scans) are ignored; redraws are limited to 20 per second."""

    def __init__(self, bar, interval: float = 0.05):
        self.bar = bar
        self.thread = threading.current_thread()
        self.interval = interval
        self._last = 0.0
        self._message = None
        self.calls = 0

    def __call__(self, done: int, total: int, message: str) -> None:
        if threading.current_thread() is not self.thread:
            return
        self.calls += 1
        frac = min(max(done / total, 0.0), 1.0) if total else 0.0
        now = time.monotonic()
        if message == self._message and frac < 1.0 and now - self._last < self.interval:
            return
        self._last, self._message = now, message
        self.bar.progress(frac, text=f"{message} — {frac:.0%}")


# ---- formatting and charts ---------------------------------------------------------------------


def eur(value: Optional[float], decimals: int = 0) -> str:
    if value is None or pd.isna(value):
        return "—"
    return f"€{value:,.{decimals}f}"


def ratio(value: Optional[float]) -> str:
    if value is None or pd.isna(value):
        return "—"
    return f"{value:.2f}"


def echart(chart: EChart, key: str) -> None:
    """A chart (``pipeline.report_echarts``, ``journeys_echarts``, ``compare_echarts``) at its height,
    keyed: a rerun with other filters updates the same element in place (no new chart, no animation)."""
    st.echarts_chart(chart.option, height=chart.height, theme=None, key=key, alt=chart.alt)


def log_run_time(what: str, started: float) -> None:
    """For bench/bench_dashboard.py (ATTRIBUTION_DASHBOARD_TIMING=1): the server-side seconds of a page
    run, or of a fragment's own rerun, on stderr."""
    if os.environ.get("ATTRIBUTION_DASHBOARD_TIMING"):
        print(
            f"dashboard-timing page={what!r} seconds={time.perf_counter() - started:.3f}", file=sys.stderr, flush=True
        )


# ---- errors ------------------------------------------------------------------------------------


@contextlib.contextmanager
def shown_errors():
    """Show a library error, or any SQLite error from the analyst's database, as a one-line message
    instead of a traceback (escaped: it may quote data). A bug's details hide the server's paths."""
    try:
        yield
    except PipelineError as exc:
        st.error(md(str(exc)), icon=":material/warning:")
    except sqlite3.DatabaseError as exc:  # a trigger, a view, a bound that stopped a query: the input's doing
        st.error(md(sqlite_error_message(exc)), icon=":material/warning:")
    except Exception as exc:  # noqa: BLE001 - a bug: say so, keep the traceback out of the main view
        if type(exc).__module__.startswith("streamlit"):
            raise
        ws = st.session_state.get("_workspace")
        public = ws.public_text if ws is not None else hide_paths
        st.error(
            md(public(f"Something went wrong ({type(exc).__name__}: {exc}). Your data was not changed.")),
            icon=":material/bug_report:",
        )
        with st.expander("Details for a bug report"):
            st.code(public("".join(traceback.format_exception(exc))), language=None)


def sidebar_database(ws: Workspace) -> None:
    """The current database, in the sidebar of every page."""
    src = ws.source
    with st.sidebar:
        st.caption("Current database")
        if src is None:
            st.write("none")
            return
        icon = ":material/science:" if src.kind == "demo" else ":material/description:"
        st.markdown(f"{icon} **{md(src.name, 60)}**")
        where = "shared read-only until your first run" if ws.shares_demo else "private working copy"
        st.caption(f"{database_size(ws, 1) or '0.0 MB'} · {where}")
        lost = unsaved_work(ws)
        if lost:
            st.caption(f":material/warning: {lost}")
        from pages._session import server_view  # the server source the Report and Journeys pages show

        view = server_view()
        if view is not None:
            st.caption(f":material/dns: Report and Journeys show the server source **{md(view.name, 60)}**")
        st.page_link("pages/data.py", label="Change the database", icon=":material/upload_file:")


def unsaved_work(ws: Workspace) -> Optional[str]:
    """What a reload or a closed tab would lose, and how to keep it — None when nothing would be lost
    (the shared demo, untouched). An upload, or the demo after a run or a calibration, is this session's
    own copy: it lives in this tab only."""
    src = ws.source
    if src is None or ws.shares_demo or not ws.has_database:
        return None
    what = "the upload and its runs" if src.kind != "demo" else "your runs on the demo"
    return (
        f"Kept in this tab only: reloading or closing it loses {what}. To keep them: "
        "**Download database** (Data or Report page) and upload it again later."
    )


def database_size(ws: Workspace, decimals: int = 0) -> str:
    """'149 MB': the working database's size now (a run adds the pipeline's tables: an upload of 133 MB
    was 173 MB after it, while the sidebar still said 133), or '' when there is none."""
    return f"{ws.db_path.stat().st_size / 1e6:,.{decimals}f} MB" if ws.has_database else ""


def database_label(ws: Workspace) -> str:
    """'Download database (149 MB)': the size says what the click will prepare and save."""
    size = database_size(ws)
    return f"Download database ({size})" if size else "Download database"


# Streamlit 1.67 (on Starlette >= 1.5) gzips every download whose type is not an already-compressed one, at
# level 9, before the browser gets a byte: 6.7 s of one core for the demo's 149 MB (measured on an idle
# machine), 7-32 s on a busy server, with nothing on the page (review 16 F1). Declared as a zip (a type it
# passes through as is), the file leaves at once; the browser saves it under its .db name (the response
# says "attachment; filename=…"), byte for byte the SQLite database.
DATABASE_MIME = "application/zip"


def database_download(ws: Workspace, key: str, file_name: str) -> None:
    """'Download database (149 MB)' in two visible steps: a click prepares the file under 'Preparing the
    database (149 MB)…', then 'Save <file_name>' hands it to the browser. A fragment: the click reruns these
    two buttons only, so the page answers at once (a callable download_button showed nothing while it ran)."""

    @st.fragment
    def part() -> None:
        size = database_size(ws)
        if not st.button(
            database_label(ws),
            icon=":material/database:",
            key=key,
            help="The working database with the journeys, attribution and report tables (SQLite: upload it "
            "again on the Data page). A click prepares it — the page says so — then Save hands it to your "
            "browser.",
        ):
            return
        save, note = st.empty(), st.empty()  # Save beside the button, the note after it (a row may hold them)
        note.caption(f":material/hourglass_top: Preparing the database ({size})…")
        started = time.perf_counter()
        data = ws.database_bytes()
        save.download_button(
            f"Save {file_name}",
            data,
            file_name=file_name,
            mime=DATABASE_MIME,
            icon=":material/download:",
            on_click="ignore",
            type="primary",
            key=f"{key}_save",
            help=f"{file_name} ({size}), a SQLite database: your browser saves it.",
        )
        note.caption(f"Ready ({size}, prepared in {time.perf_counter() - started:.1f} s): click Save.")

    part()


def not_ready(message: str, page: str = "pages/pipeline.py", label: str = "Go to Pipeline") -> None:
    st.info(message, icon=":material/info:")
    st.page_link(page, label=label, icon=":material/play_arrow:")


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
