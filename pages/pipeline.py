"""Pipeline: the state of each stage, and running journeys → attribution → report with a progress bar."""

import time
from datetime import date
from typing import Optional

import streamlit as st
from streamlit.runtime.scriptrunner import RerunException, StopException

from pages._api import api_controls
from pages._calibration import calibration_section, stored_profile_docs
from pages._look import StreamlitProgress, run_through_the_app, shown_errors, unsaved_work
from pages._models import API_MODEL, api_options, model_label, offline_models, param_widgets, stored_model
from pages._session import (
    LAST_RUN_OUTCOME,
    db_key,
    mixing_preview,
    prepare_report,
    stage_status,
    stored_attribution,
    stored_report_warnings,
    validation,
    workspace,
)
from pipeline.errors import PipelineError
from pipeline.labels import duration, md, whole_dates
from pipeline.model_settings import replacing_note, settings_in_words
from pipeline.models import get_model
from pipeline.report_warnings import note_sentence, warning_counts
from pipeline.run_summary import summarise
from pipeline.runner import RunOptions
from pipeline.status import STAGES
from pipeline.validate import plain_sentence
from pipeline.window import Window, date_span
from pipeline.workspace import RunInProgress

STATE_BADGE = {
    "done": ("Done", "green", ":material/check_circle:"),
    "stale": ("Stale", "orange", ":material/warning:"),
    "missing": ("Missing", "gray", ":material/radio_button_unchecked:"),
}
STAGE_TITLES = {"journeys": "1 · Journeys", "attribute": "2 · Attribution", "report": "3 · Channel report"}

run_through_the_app()  # a first visit to this page's URL on a fresh server: through app.py

st.title("Pipeline")
# Streamlit's own Stop (top right, beside "Running…") ends the script at once: the run's progress bar stays
# frozen with no word (review 16 F2). A run is stopped with the page's "Stop the run", which says what
# was kept; the toolbar's Stop is hidden on this page (the "Running…" indicator stays).
st.html(
    '<style>[data-testid="stStatusWidget"] button { display: none !important; }'
    # A checkbox with a help icon gets Streamlit's one-line label cut with "…" ("Recompute every stage,
    # even …", "Round credit to 4 decimals, as the…" at 1024 px with the sidebar open): it wraps instead.
    '[data-testid="stCheckbox"] [data-testid="stWidgetLabel"] .stMarkdownEllipsis,'
    '[data-testid="stCheckbox"] [data-testid="stWidgetLabel"] .stMarkdownEllipsis p'
    " { white-space: normal; overflow: visible; text-overflow: clip; }</style>"
)
st.caption(
    "Journeys → attribution → channel report. A run redoes only the stages whose inputs or "
    "parameters changed; an error keeps the previous results as they were."
)


def stage_cards(states: dict, held: str) -> None:
    """Each stage's last run (a run on a window covers only that window), and what the database holds."""
    cols = st.columns(len(STAGES))
    for col, stage in zip(cols, STAGES):
        st_ = states[stage]
        label, color, icon = STATE_BADGE[st_.state]
        with col.container(border=True, height="stretch"):
            st.markdown(f"**{STAGE_TITLES[stage]}**")
            st.badge(label, color=color, icon=icon)
            rec = st_.record
            if st_.state != "done":
                st.caption(md(st_.reason))
            if rec is None:
                st.caption("Not run on this database yet.")
                continue
            st.caption(
                whole_dates(f"Last run: {md(rec.started_at)} · " + duration(rec.seconds, space="\u00a0")),
                unsafe_allow_html=True,  # whole_dates' spans (it lets no tag of the data through)
            )  # a windowed run covers its window
            st.markdown(_card_body(stage, rec), unsafe_allow_html=True)
            if stage == "attribute":
                st.caption(whole_dates(md(held)), unsafe_allow_html=True)


def _card_body(stage: str, rec) -> str:
    s, p = rec.summary, rec.params
    if stage == "journeys":
        return card_lines(  # one fact a line: a card a third of the page wide never wraps mid-phrase
            f"{s.get('conversions', 0):,} conversions",
            f"{s.get('sessions', rec.rows):,} journey sessions",
            f"{s.get('without_sessions', 0):,} without an earlier session",
            f"longest: {s.get('max_length', 0)} sessions",
            *_window_lines(p),
        )
    if stage == "attribute":
        extra = settings_in_words(p.get("params") or {})
        na = sum((s.get("not_attributed") or {}).values())
        return card_lines(
            f"Model **{model_label(p.get('model', '?'))}** ({extra})",
            f"{s.get('conversions_attributed', 0):,} conversions attributed",
            f"{na:,} not attributed",
            f"{rec.rows:,} session credits",
        )
    dates = (
        f"session dates {p.get('start') or 'first'} – {p.get('end') or 'last'}"
        if p.get("start") or p.get("end")
        else "all session dates"
    )
    return card_lines(
        f"{s.get('channel_days', rec.rows):,} channel-days",
        dates[:1].upper() + dates[1:],
        f"Cost €{s.get('cost', 0):,.2f}",
        f"Attributed revenue €{s.get('ihc_revenue', 0):,.2f}",
    )


def card_lines(*lines: str) -> str:
    """A stage card's facts, one a line (Markdown line breaks); a line too long for the card wraps between
    words, never inside a date."""
    return whole_dates("  \n".join(lines))


def _window_lines(p: dict) -> list[str]:
    if p.get("start") or p.get("end"):
        text = f"Window: conversions of {p.get('start') or 'first'} – {p.get('end') or 'last'}"
    else:
        text = "Window: all conversions"
    return [text, f"lookback {p['lookback_days']} days" if p.get("lookback_days") else "no lookback limit"]


def controls(ws, states: dict):
    """The run settings; returns (RunOptions or None, in_place, why-not message)."""
    path, fp = db_key(ws)
    cov = validation(path, fp).coverage
    jrec = states["journeys"].record
    jp = jrec.params if jrec else {}
    first = date.fromisoformat(cov["conversions_from"]) if cov.get("conversions_from") else None
    last = date.fromisoformat(cov["conversions_to"]) if cov.get("conversions_to") else None

    c1, c2 = st.columns([1, 1], gap="large")
    with c1:
        st.markdown("**Which conversions**")
        if first and last:
            default = (
                date.fromisoformat(jp["start"]) if jp.get("start") else first,
                date.fromisoformat(jp["end"]) if jp.get("end") else last,
            )
            picked = st.date_input(
                "Conversion dates",
                value=default,
                min_value=first,
                max_value=last,
                key="run_dates",
                help="Conversions whose date is in this range (inclusive).",
            )
        else:
            picked = ()
            st.caption("No valid conversion dates in this database.")
        lookback = st.number_input(
            "Lookback (days, 0 = no limit)",
            min_value=0,
            value=int(jp.get("lookback_days") or 0),
            step=1,
            key="run_lookback",
            help="Only sessions at most this many days before the conversion. 0 = no limit.",
        )
        force = st.checkbox(
            "Recompute every stage, even if up to date",
            key="run_force",
            help="With the IHC web API this sends every conversion again, answered before or not (quota).",
        )
    with c2:
        st.markdown("**Model**")
        current_model, current_params = stored_model(states)
        names = offline_models() + [API_MODEL]
        index = names.index(current_model) if current_model in names else 0
        model = st.selectbox("Attribution model", names, index=index, format_func=model_label, key="run_model")
        if model == API_MODEL:
            options, why_not = api_controls(ws, _window(picked, first, last, lookback), force)
            return options, True, why_not
        st.caption(get_model(model).description)
        try:
            extra = stored_profile_docs(str(ws.db_path), ws.fingerprint()) if model == "ihc" else None
            params = param_widgets(
                model, current_params if model == current_model else {}, key="run", extra_profiles=extra
            )
            get_model(model).resolve_params(params)  # a bad parameter is shown now, not after Run
        except PipelineError as exc:
            st.error(md(str(exc)), icon=":material/warning:")
            return None, False, str(exc)
    window = _window(picked, first, last, lookback)
    preview = mixing_preview(path, fp, window.start, window.end, model)
    if preview:
        st.warning(md(preview), icon=":material/call_split:")
    stored = current_model if states["attribute"].record is not None else None
    replacing = replacing_note(
        model, stored, window.start or (first and first.isoformat()), window.end or (last and last.isoformat())
    )
    if replacing and not preview:  # a run that mixes models does not show the new one "instead" (above)
        st.info(replacing, icon=":material/swap_horiz:")
    return RunOptions(window, model, params, force), False, None


def data_checks(ws) -> None:
    """Validation's warnings before a run: what will be treated specially or may mislead the report."""
    path, fp = db_key(ws)
    report = validation(path, fp)
    if report.fatal:
        st.error(
            "This database cannot be attributed: " + md(plain_sentence(report.fatal[0], report.rows)),
            icon=":material/error:",
        )
    notes = stored_report_warnings(path, fp)
    lines = [plain_sentence(f, report.rows) for f in report.warnings]  # one sentence each, no ids
    lines += [note_sentence(m) for m in notes]
    if lines:
        with st.expander(f"Data checks: {warning_counts(len(report.warnings), len(notes))} to read before running"):
            st.markdown("\n".join(f"- {md(line)}" for line in lines))
            st.page_link("pages/data.py", label="Examples on the Data page", icon=":material/database:")


def _window(picked, first, last, lookback) -> Window:
    return Window(*date_span(picked, first, last), int(lookback) if lookback else None)


STOP_WAIT_SECONDS = 300.0  # longest wait for a stopped run's current step (an API request and its retries)
OUTCOME = LAST_RUN_OUTCOME  # {summary, error, stopped, source} of this session's last run
PREPARE = "prepare_report"  # in OUTCOME: read the Report's new state ahead once the summary is drawn
# (the IHC API runs in place: a stage that finished before the error, e.g. journeys, stays committed)
UNCHANGED_IN_PLACE = "The attribution and the channel report are unchanged."
STOPPED = "**Stopped** — the previous results are unchanged: nothing of the stopped run was saved. "
STOPPED_IN_PLACE = (
    "**Stopped** — the attribution and the channel report are unchanged; the answers already received from "
    "the IHC API are kept and will not be sent again. "
)
AGAIN = "Press **Run pipeline** to start again."


def run(ws, options: RunOptions, in_place: bool) -> None:
    """Run with a progress bar and a Stop button where the result will appear. Stop (or any click on
    the page, which restarts it) abandons the run at its next progress step; the run works on a copy
    (the IHC API: in place, but each stage is one transaction), so nothing of it is kept."""
    # One slot for the note, the bar and Stop: the rerun that shows the outcome draws it in this slot's
    # place, so the summary replaces all three at once (drawn in the note's place alone, it stood beside
    # the stale "done — 100%" bar and Stop until that rerun ended); emptied before the rerun as well.
    slot = st.empty()
    with slot.container():
        st.caption(
            "Stop — or leaving or changing this page — abandons the run at its next step; the previous "
            "results stay as they are."
        )
        bar = st.progress(0.0, text="Starting…")
        st.button("Stop the run", key="stop_run", icon=":material/stop_circle:")
    progress = StreamlitProgress(bar)
    source = _source_key(ws)
    # Written into after the run without touching st.session_state: once Streamlit's stop is pending,
    # every session_state write raises StopException again (and would be lost).
    outcome = st.session_state.setdefault(OUTCOME, {})
    outcome["running"] = True  # the next page run waits for this run's outcome (``wait_for_a_stopping_run``)
    try:
        result, seconds = ws.run(options, progress, in_place=in_place)
    except RunInProgress as exc:  # a second click while the first run goes on: that run is not disturbed
        slot.info(str(exc), icon=":material/hourglass_top:")  # ("running" stays: it is the first run's)
        return
    except PipelineError as exc:
        _remember(outcome, source, error=str(exc), in_place=in_place)
    except (RerunException, StopException):  # Stop, another click, or Streamlit's own stop
        # in place: the IHC API, whose answered requests are kept
        _remember(outcome, source, stopped=in_place)
        raise
    except BaseException:  # a bug: shown by shown_errors; nothing to wait for
        outcome.pop("running", None)
        raise
    else:
        _remember(outcome, source, summary=summarise(result, seconds))
        outcome[PREPARE] = True  # once the page has drawn the summary (the end of this file)
    slot.empty()  # the bar and Stop go now, not when the rerun that draws the outcome ends
    st.rerun()


def _source_key(ws) -> str:
    src = ws.source
    return f"{src.kind}:{src.name}" if src is not None else ""


def _remember(
    outcome: dict, source: str, *, summary=None, error: Optional[str] = None, stopped=None, in_place=False
) -> None:
    """The last run's outcome (one of: its summary, its error, stopped) replaces the one before."""
    outcome.clear()
    outcome.update(summary=summary, error=error, stopped=stopped, source=source, in_place=in_place)


def wait_for_a_stopping_run() -> None:
    """A click during a run (Stop, or any widget) makes Streamlit start this page again at once, in a
    new thread, while the old run ends at its next progress step: wait for it, so that the page shows
    its outcome ("stopped") instead of the one before."""
    outcome = st.session_state.get(OUTCOME) or {}
    if not outcome.get("running"):
        return
    with st.spinner("Stopping the run at its next step (for the IHC API: once the request under way is answered)…"):
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while outcome.get("running") and time.monotonic() < deadline:
            time.sleep(0.1)


def last_run(ws) -> None:
    """The outcome of the last run, under the Run button; an outcome of another database is not shown."""
    outcome = st.session_state.get(OUTCOME) or {}
    if outcome.get("source", _source_key(ws)) != _source_key(ws):
        return
    error = outcome.get("error")
    if error:
        kept = UNCHANGED_IN_PLACE if outcome.get("in_place") else "The previous results are unchanged."
        st.error(f"**The run stopped:** {md(error)}  \n{kept}", icon=":material/warning:")
    stopped = outcome.get("stopped")
    if stopped is not None:
        st.warning((STOPPED_IN_PLACE if stopped else STOPPED) + AGAIN, icon=":material/stop_circle:")
    summary = outcome.get("summary")
    if not summary:
        return
    with st.container(border=True):
        st.caption("Last run")
        st.success(summary.headline(), icon=":material/check_circle:")
        cols = st.columns(4)
        # a short label: four tiles share 552 px at 1024 px with the sidebar open ("Conversions in t…")
        cols[0].metric(
            "Conversions",
            f"{summary.conversions:,}",
            help="The orders in the run's date window: attributed plus not attributed.",
        )
        cols[1].metric("Attributed", f"{summary.attributed:,}")
        cols[2].metric("Not attributed", f"{summary.not_attributed_total:,}")
        cols[3].metric("Time", duration(summary.seconds, 1))
        if summary.not_attributed:
            st.markdown(
                "**Not attributed, and why:** "
                + "; ".join(f"{n:,} — {md(reason)}" for reason, n in summary.not_attributed.items())
            )
        st.caption(" · ".join(md(line) for line in summary.lines))
        for warning in summary.warnings:
            st.caption(":material/warning: " + md(warning))
        lost = unsaved_work(ws)
        if lost:
            st.warning(lost, icon=":material/save:")
        st.page_link("pages/report.py", label="Open the report", icon=":material/bar_chart:")


with shown_errors():
    ws = workspace()
    path, fp = db_key(ws)
    states = stage_status(path, fp)
    stage_cards(states, stored_attribution(path, fp))
    with st.container(border=True):
        st.subheader("Run")
        data_checks(ws)
        options, in_place, why_not = controls(ws, states)
        clicked = st.button(
            "Run pipeline",
            type="primary",
            disabled=options is None,
            key="run_button",
            icon=":material/play_arrow:",
            help=why_not or "Run the stages that are not up to date",
        )
        if clicked:
            run(ws, options, in_place)
        else:
            wait_for_a_stopping_run()
            last_run(ws)
    if st.session_state.get("run_model") == API_MODEL:
        with st.container(border=True):
            option = api_options(st.session_state.get("api_key"), st.session_state.get("api_conv_type"))
            calibration_section(ws, option, StreamlitProgress)
    # After a successful run, once the page (its summary) has been sent: the Report's reads of the new
    # state, in a background thread while the browser draws the summary and the analyst reads it. (Started
    # from the run itself, they slowed the summary's own rerun: measured in docs/dashboard.md, Speed.)
    if (st.session_state.get(OUTCOME) or {}).pop(PREPARE, False):
        prepare_report(ws)
    else:
        # The next run's copy of the database, made in the background while the analyst reads this page:
        # Run then starts on it (docs/dashboard.md, Speed). Not in the rerun that shows a run's summary:
        # copying 149 MB then slowed Open report → drawn from 0.59 to 0.98 s (median of 3, same hold);
        # the page's next rerun or visit makes it.
        ws.prepare_copy()
