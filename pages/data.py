"""Data: the database this session works on — the demo or an upload — and what validation found in it."""

from pathlib import Path

import streamlit as st

from pages._look import database_download, database_size, run_through_the_app, shown_errors
from pages._session import (
    SERVER_EXTRACT,
    channel_sessions,
    db_key,
    leave_server_source,
    server_view,
    show_server_source,
    stored_report_warnings,
    use_demo,
    validation,
    workspace,
)
from pipeline.errors import InputError
from pipeline.labels import clip, code, counted, md, whole_dates
from pipeline.report_warnings import note_sentence, warning_counts
from pipeline.schema import REQUIRED_COLUMNS
from pipeline.validate import plain_sentence

run_through_the_app()  # a first visit to this page's URL on a fresh server: through app.py

st.title("Data")
st.caption(
    "The database this browser session works on. An upload is copied into a private working "
    "folder: your file is never modified, and no other session can see it."
)


def current(ws) -> None:
    path, fp = db_key(ws)
    report = validation(path, fp)
    src = ws.source
    st.subheader(md(src.name, 80) if src else "Current database")
    if src is not None and src.detail:
        st.caption(src.detail)
    if src is not None and not ws.shares_demo:  # this session's own copy: an upload, or the demo after a run
        database_download(
            ws, "data_download_db", f"{'demo' if src.kind == 'demo' else Path(src.name).stem}-attributed.db"
        )
    cov = report.coverage
    if cov.get("sessions_from"):
        st.markdown(coverage_lines(cov), unsafe_allow_html=True)  # whole_dates' spans


def coverage_lines(cov: dict) -> str:
    """The dates the database covers, one short line each, so that a narrow column never breaks a line
    inside a date ("2023-09-" / "01" at 1280 px, review #20)."""
    return whole_dates(
        "  \n".join(
            f"{what} **{md(cov.get(f'{key}_from'), 20)}** – **{md(cov.get(f'{key}_to'), 20)}**"
            for what, key in (("Sessions", "sessions"), ("Conversions", "conversions"))
        )
        + " (UTC)"
    )


# A tile's least width: "149.3 MB" is 135 px of the metric's 36 px figures, plus its padding; 195 px so the
# four go 2 + 2 at 1024 px with the sidebar open (at 180 px, three fitted in its 596 px and the fourth sat
# alone, as wide as the three) and in one row at 1280 px (4 × 195 + 3 gaps of 16 = 828 px of 852).
TILE_PX = 195
TILE_STYLE = f"<style>.st-key-data_tiles>div{{min-width:{TILE_PX}px}}</style>"


def tiles(ws) -> None:
    path, fp = db_key(ws)
    report = validation(path, fp)
    src = ws.source
    # A row that wraps, each tile at least TILE_PX: four equal columns cut "450,000" to "450,…" and
    # "149.3 MB" to "149.…" at 1024 px with the sidebar open (2 + 2 there now).
    st.html(TILE_STYLE)
    row = st.container(horizontal=True, wrap=True, key="data_tiles")
    cols = [row.container(width="stretch") for _ in range(4)]
    cols[0].metric("Sessions", f"{report.rows.get('session_sources', 0):,}", border=True)
    cols[1].metric("Conversions", f"{report.rows.get('conversions', 0):,}", border=True)
    cols[2].metric(
        "Cost rows",
        f"{report.rows.get('session_costs', 0):,}",
        border=True,
        help="Rows of session_costs: sessions that cost something.",
    )
    cols[3].metric(
        "File size",
        database_size(ws, 1) or "0.0 MB",
        border=True,
        help="The working copy now, with the pipeline's tables once it has run"
        + (f" (as uploaded: {src.size_bytes / 1e6:,.1f} MB)." if src and src.kind == "upload" else "."),
    )


def upload_box(ws) -> None:
    with st.container(border=True):
        st.markdown("**Use your own database**")
        # a refused file must not stay listed in the box as if loaded: a new key draws the box empty
        uploaded = st.file_uploader(
            # short: in the box's third of the page at 1024 px the tables' names wrapped the label onto
            # five lines; they are in the help and in "What the file must contain" under the box
            "A SQLite file (.db, .sqlite)",
            key=f"upload-{st.session_state.get('_upload_box', 0)}",
            help="With the tables session_sources, conversions and session_costs (see what the file must "
            "contain, below), up to 1 GB. It is checked before it replaces the current database.",
        )
        if uploaded is not None and st.session_state.get("_upload_done") != uploaded.file_id:
            st.session_state["_upload_done"] = uploaded.file_id
            bar = st.progress(0.0, text=f"Reading {uploaded.name}…")
            try:
                report = ws.use_upload(uploaded.name, uploaded, lambda d, t, m: bar.progress(d / t, text=m))
            except InputError as exc:  # refused, or no room for it: the previous database stays
                headline = getattr(exc, "headline", str(exc))  # each problem once: the list below names them
                st.session_state["_upload_refused"] = (uploaded.name, headline, getattr(exc, "report", None))
                st.session_state["_upload_box"] = st.session_state.get("_upload_box", 0) + 1
                st.rerun()
            else:
                st.session_state.pop("_upload_refused", None)
                st.session_state.pop("last_run", None)
                n = len(report.warnings)
                warn = f" with {n:,} warning{'' if n == 1 else 's'} (below)" if n else ""
                st.session_state["_upload_ok"] = (
                    f"{md(ws.source.name, 80)} is loaded{warn}. Next: run the pipeline to attribute it."
                )
                # Draw the whole page again: the header and the sidebar, drawn before this box, still
                # name the previous database.
                st.rerun()
            finally:
                bar.empty()
        refused = st.session_state.get("_upload_refused")
        if refused:
            name, message, report = refused
            st.error(f"**{md(name, 80)} was not loaded.** {md(message)}", icon=":material/block:")
            if report is not None and report.fatal:
                st.markdown("What has to be fixed before it can be attributed:")  # each problem once
                for finding in report.fatal:
                    st.markdown(f"- {md(plain_sentence(finding, report.rows))}")
                    examples(finding)
            st.caption("The previous database is still the current one.")
        ok = st.session_state.pop("_upload_ok", None)
        if ok:
            st.success(ok, icon=":material/check_circle:")
            st.page_link("pages/pipeline.py", label="Go to Pipeline", icon=":material/play_arrow:")
        if ws.source is not None and ws.source.kind != "demo":
            if st.button("Back to the demo database", icon=":material/science:"):
                use_demo(ws)
                st.session_state.pop("_upload_refused", None)
                st.rerun()
        with st.expander("What the file must contain"):
            st.markdown(
                "\n".join(f"- **{table}**: {', '.join(cols)}" for table, cols in REQUIRED_COLUMNS.items())
                + "\n\nDates are `YYYY-MM-DD`, times `HH:MM:SS` (UTC), flags 0/1. Extra tables and columns are "
                "allowed and left alone. A session without a row in session_costs cost nothing."
            )


def server_box(ws) -> None:
    """The server's configured sources (pipeline.server_sources), by name only: pick, run, read, download;
    after a run the Report and Journeys pages show it (``_session.data_key``) until the analyst goes back."""
    from pipeline.models import available_models
    from pipeline.server_sources import configured_sources, run_source

    try:
        secrets = dict(st.secrets)
    except Exception:  # noqa: BLE001 - no secrets file: the environment alone
        secrets = None
    sources = configured_sources(secrets)
    if not sources:
        return
    with st.container(border=True):
        st.markdown("**Or use a source on the server**")
        name = st.selectbox("Source", list(sources), key="server_source")
        models = available_models()
        model = st.selectbox(
            "Model", models, index=models.index("linear") if "linear" in models else 0, key="server_model"
        )
        if st.button("Run on this source", icon=":material/play_arrow:", key="server_run"):
            bar = st.progress(0.0, text=f"Running {name}…")
            try:
                done = run_source(
                    name,
                    sources[name],
                    model,
                    lambda d, t, m: bar.progress(min(d / t, 1.0) if t else 0.0, text=m),
                    extract_to=ws.root / SERVER_EXTRACT,
                )
                st.session_state["_server_run"] = done
                show_server_source(done)
                st.session_state.pop("_server_error", None)
            except InputError as exc:
                st.session_state["_server_error"] = str(exc)
            finally:
                bar.empty()
        if st.session_state.get("_server_error"):
            st.error(md(st.session_state["_server_error"]), icon=":material/block:")
        done = st.session_state.get("_server_run")
        if done is not None and done.name == name:
            # the run in the Pipeline page's words (run_summary), not the runner's log lines
            summary = done.summary
            st.success(md(summary.headline()), icon=":material/check_circle:")
            st.caption(" · ".join(md(line) for line in summary.lines))
            for warning in summary.warnings:
                st.caption(":material/warning: " + md(warning))
            st.dataframe(done.report, hide_index=True, key="server_report")
            st.download_button(
                "Download CSV", done.csv, file_name=f"{name}-channel-report.csv", mime="text/csv", key="server_csv"
            )
        shown = server_view()
        if shown is not None:
            st.success(
                f"The Report and Journeys pages show **{md(shown.name, 80)}** (its last run, {md(shown.model)}).",
                icon=":material/dns:",
            )
            st.page_link("pages/report.py", label="Go to the Report", icon=":material/bar_chart:")
            current_name = ws.source.name if ws.source is not None else "this session's database"
            if st.button(f"Back to {clip(current_name, 60)}", key="server_leave", icon=":material/undo:"):
                leave_server_source()
                st.rerun()


def examples(finding) -> None:
    """A finding's example values (ids from the data, 64 characters long at times) out of the sentence,
    behind a closed expander."""
    if finding.examples:
        with st.expander("Examples"):
            st.markdown(", ".join(code(e) for e in finding.examples))


def findings(ws) -> None:
    path, fp = db_key(ws)
    report = validation(path, fp)
    st.subheader("Validation")
    notes = stored_report_warnings(path, fp)  # about the stored report, not the inputs
    counts = warning_counts(len(report.warnings), len(notes))
    if report.fatal:
        st.error(
            f"{counted(len(report.fatal), 'fatal problem')}: this database cannot be attributed.",
            icon=":material/block:",
        )
    elif counts:
        st.warning(
            f"No fatal problem; {counts}. A run goes on and treats them as described.",
            icon=":material/warning:",
        )
    else:
        st.success("No problem found.", icon=":material/check_circle:")
    for f in report.findings:
        color = "red" if f.severity == "fatal" else "orange"
        # one sentence: the count with its own noun (conversions, sessions, channels, days) and its share
        st.markdown(f":{color}-badge[{f.severity}] {md(plain_sentence(f, report.rows))}")
        examples(f)
    for message in notes:
        st.markdown(f":orange-badge[report] {md(note_sentence(message))}")


def channels(ws) -> None:
    path, fp = db_key(ws)
    st.subheader("Channels")
    with st.spinner("Counting sessions per channel…"):
        data = channel_sessions(path, fp)
    st.dataframe(
        data.assign(
            channel=data["channel"].map(clip), share=100 * data["sessions"] / max(int(data["sessions"].sum()), 1)
        ),
        hide_index=True,
        height=min(38 + 35 * len(data), 640),
        column_config={
            # pinned: where the table scrolls sideways (1024 px, sidebar open) the names stay in view
            "channel": st.column_config.TextColumn("Channel", pinned=True),
            "sessions": st.column_config.NumberColumn("Sessions", format="localized"),
            "paid_sessions": st.column_config.NumberColumn("Sessions with a cost", format="localized"),
            "cost": st.column_config.NumberColumn("Cost (EUR)", format="euro"),
            # one decimal on every row ("percent" wrote 5.1% under 20.54%)
            "share": st.column_config.ProgressColumn("Share of sessions", format="%.1f%%", min_value=0, max_value=100),
        },
    )


with shown_errors():
    ws = workspace()
    top_left, top_right = st.columns([3, 2], gap="large")
    with top_left:
        current(ws)
    with top_right:
        upload_box(ws)
        server_box(ws)
    tiles(ws)
    findings(ws)
    channels(ws)
