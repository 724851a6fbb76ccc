"""Pipeline: the state of each stage, and running journeys → attribution → report with a progress bar."""

import json
from datetime import date

import streamlit as st

from pages._calibration import calibration_section, stored_profile_docs
from pages._look import StreamlitProgress, shown_errors
from pages._models import API_MODEL, api_options, model_label, offline_models, param_widgets, stored_model
from pages._session import db_key, mixing_preview, stage_status, stored_report_warnings, validation, workspace
from pipeline.errors import PipelineError
from pipeline.labels import md
from pipeline.models import get_model
from pipeline.run_summary import summarise
from pipeline.runner import RunOptions
from pipeline.status import STAGES
from pipeline.window import Window, date_span
from pipeline.workspace import RunInProgress

STATE_BADGE = {
    "done": ("Done", "green", ":material/check_circle:"),
    "stale": ("Stale", "orange", ":material/warning:"),
    "missing": ("Missing", "gray", ":material/radio_button_unchecked:"),
}
STAGE_TITLES = {"journeys": "1 · Journeys", "attribute": "2 · Attribution", "report": "3 · Channel report"}

st.title("Pipeline")
st.caption(
    "Journeys → attribution → channel report. A run redoes only the stages whose inputs or "
    "parameters changed; an error keeps the previous results as they were."
)


def stage_cards(states: dict) -> None:
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
            st.caption(f"Ran {rec.started_at} · {rec.seconds:.2f} s")
            st.markdown(_card_body(stage, rec))


def _card_body(stage: str, rec) -> str:
    s, p = rec.summary, rec.params
    if stage == "journeys":
        window = _window_text(p)
        return (
            f"{s.get('conversions', 0):,} conversions · {s.get('sessions', rec.rows):,} journey sessions  \n"
            f"{s.get('without_sessions', 0):,} without an earlier session · longest {s.get('max_length', 0)}  \n"
            f"Window: {window}"
        )
    if stage == "attribute":
        params = p.get("params") or {}
        if isinstance(params.get("profile"), dict):  # a calibrated profile: its name, not the document
            params = {**params, "profile": params["profile"].get("name", "calibrated")}
        extra = (
            ", ".join(
                f"{k}={v if not isinstance(v, (dict, list)) else json.dumps(v)}"
                for k, v in sorted(params.items())
                if v is not None
            )
            or "default parameters"
        )
        na = sum((s.get("not_attributed") or {}).values())
        return (
            f"Model **{model_label(p.get('model', '?'))}** ({extra})  \n"
            f"{s.get('conversions_attributed', 0):,} conversions attributed · {na:,} not  \n"
            f"{rec.rows:,} session credits"
        )
    dates = (
        f"session dates {p.get('start') or 'first'} – {p.get('end') or 'last'}"
        if p.get("start") or p.get("end")
        else "all session dates"
    )
    return (
        f"{s.get('channel_days', rec.rows):,} channel-days · {dates}  \n"
        f"Cost €{s.get('cost', 0):,.2f} · attributed revenue €{s.get('ihc_revenue', 0):,.2f}"
    )


def _window_text(p: dict) -> str:
    if p.get("start") or p.get("end"):
        text = f"conversions {p.get('start') or 'first'} – {p.get('end') or 'last'}"
    else:
        text = "all conversions"
    return text + (f", lookback {p['lookback_days']} days" if p.get("lookback_days") else ", no lookback limit")


def controls(ws, states: dict):
    """The run settings; returns (RunOptions or None, in_place, why-not message)."""
    path, fp = db_key(ws)
    cov = validation(path, fp).coverage
    jrec = states["journeys"].record
    jp = jrec.params if jrec else {}
    first = date.fromisoformat(cov["conversions_from"]) if cov.get("conversions_from") else None
    last = date.fromisoformat(cov["conversions_to"]) if cov.get("conversions_to") else None

    c1, c2 = st.columns([3, 2], gap="large")
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
        force = st.checkbox("Recompute every stage, even if up to date", key="run_force")
    with c2:
        st.markdown("**Model**")
        current_model, current_params = stored_model(states)
        names = offline_models() + [API_MODEL]
        index = names.index(current_model) if current_model in names else 0
        model = st.selectbox("Attribution model", names, index=index, format_func=model_label, key="run_model")
        if model == API_MODEL:
            return _api_controls(picked, first, last, lookback, force)
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
    return RunOptions(window, model, params, force), False, None


def data_checks(ws) -> None:
    """Validation's warnings before a run: what will be treated specially or may mislead the report."""
    path, fp = db_key(ws)
    report = validation(path, fp)
    if report.fatal:
        st.error(
            "This database cannot be attributed: " + report.fatal[0].line().removeprefix("fatal: "),
            icon=":material/error:",
        )
    lines = [f.line().removeprefix("warning: ") for f in report.warnings]
    lines += ["report: " + m for m in stored_report_warnings(path, fp)]
    if lines:
        with st.expander(f"Data checks: {len(lines)} warning(s) to read before running"):
            for line in lines:
                st.text("• " + line)  # plain text: ids from the data


def _window(picked, first, last, lookback) -> Window:
    return Window(*date_span(picked, first, last), int(lookback) if lookback else None)


def _api_controls(picked, first, last, lookback, force):
    st.caption(
        "Attribution by the IHC web API. The key is used for this run only: it is not shown, "
        "not stored in the working folder and not logged."
    )
    key = st.text_input(
        "IHC API key", type="password", key="api_key", placeholder="leave empty to use IHC_API_KEY from the environment"
    )
    # No "show password" eye on this field: the key is never displayed, not even on request.
    st.html("<style>.st-key-api_key button { display: none !important; }</style>")
    conv_type = st.text_input(
        "Conversion type id", key="api_conv_type", placeholder="leave empty to use IHC_CONV_TYPE_ID"
    )
    option = api_options(key, conv_type)
    if not option.available:
        st.info(option.message, icon=":material/power_off:")
        return None, True, option.message
    (st.success if option.ready else st.info)(option.message)
    if not option.ready:
        return None, True, option.message
    window = _window(picked, first, last, lookback)
    return RunOptions(window, force=force, **option.run_options), True, None


def run(ws, options: RunOptions, in_place: bool) -> None:
    bar = st.progress(0.0, text="Starting…")
    progress = StreamlitProgress(bar)
    try:
        result, seconds = ws.run(options, progress, in_place=in_place)
    except RunInProgress as exc:  # a second click while the first run goes on: that run is not disturbed
        bar.empty()
        st.info(str(exc), icon=":material/hourglass_top:")
        return
    except PipelineError as exc:
        bar.empty()
        st.session_state["last_run"] = None
        st.session_state["last_run_error"] = str(exc)
    else:
        bar.progress(1.0, text="Done")
        st.session_state["last_run"] = summarise(result, seconds)
        st.session_state.pop("last_run_error", None)
    st.rerun()


def last_run() -> None:
    error = st.session_state.get("last_run_error")
    if error:
        st.error(f"**The run stopped:** {md(error)}  \nThe previous results are unchanged.", icon=":material/warning:")
    summary = st.session_state.get("last_run")
    if not summary:
        return
    with st.container(border=True):
        st.success(
            summary.headline(model_label(summary.model) if summary.model else None), icon=":material/check_circle:"
        )
        cols = st.columns(4)
        cols[0].metric("Conversions in the window", f"{summary.conversions:,}")
        cols[1].metric("Attributed", f"{summary.attributed:,}")
        cols[2].metric("Not attributed", f"{summary.not_attributed_total:,}")
        cols[3].metric("Time", f"{summary.seconds:.1f} s")
        if summary.not_attributed:
            st.markdown(
                "**Not attributed, and why:** "
                + "; ".join(f"{n:,} — {md(reason)}" for reason, n in summary.not_attributed.items())
            )
        st.caption(" · ".join(md(line) for line in summary.lines))
        for warning in summary.warnings:
            st.caption(":material/warning: " + md(warning.removeprefix("warning: ")))
        st.page_link("pages/report.py", label="Open the report", icon=":material/bar_chart:")


with shown_errors():
    ws = workspace()
    path, fp = db_key(ws)
    states = stage_status(path, fp)
    stage_cards(states)
    last_run()
    with st.container(border=True):
        st.subheader("Run")
        data_checks(ws)
        options, in_place, why_not = controls(ws, states)
        if st.button(
            "Run pipeline",
            type="primary",
            disabled=options is None,
            key="run_button",
            icon=":material/play_arrow:",
            help=why_not or "Run the stages that are not up to date",
        ):
            run(ws, options, in_place)
    if st.session_state.get("run_model") == API_MODEL:
        with st.container(border=True):
            option = api_options(st.session_state.get("api_key"), st.session_state.get("api_conv_type"))
            calibration_section(ws, option, StreamlitProgress)
