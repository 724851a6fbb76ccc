"""Pipeline page, IHC API section: "Calibrate offline IHC on a sample" — sample size, the sessions it
will send, progress, the held-out fidelity table and "use this profile".

Widgets only: the plan, the sending, the fit and the storage are ``pipeline.ihc_api.calibration`` and
``pipeline.ihc.profile_store`` calls. Calibrated profiles live in the database's own table
``pipeline_ihc_profiles`` and are offered by name in the offline IHC model's profile picker
(``stored_profile_docs``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pipeline.db import open_database
from pipeline.errors import PipelineError
from pipeline.labels import md

RESULT_KEY = "calib_result"
FIDELITY_COLUMNS = {"mean": "mean", "p99": "p99", "max": "max", "channel_share_wape": "channel-share WAPE"}


@st.cache_data(show_spinner=False, max_entries=8)
def stored_profile_docs(path: str, fp: str) -> dict:  # noqa: ARG001 - fp keys the cache
    """{name: profile document} of the calibrated profiles stored in the database."""
    from pipeline.ihc.profile_store import stored_profiles

    con = open_database(path)
    try:
        return {row["name"]: row["profile"] for row in stored_profiles(con)}
    finally:
        con.close()


@st.cache_data(show_spinner=False, max_entries=8)
def _plan(path: str, fp: str, n: int, seed: int, max_journeys: int, max_sessions: int):  # noqa: ARG001
    from pipeline.ihc_api import calibration, load_config

    config = load_config(
        {
            "api_key": "unused-for-planning",
            "conv_type_id": "plan",
            "max_journeys": max_journeys,
            "max_sessions": max_sessions,
        },
        environ={},
        env_file=False,
    )
    con = open_database(path)
    try:
        return calibration.plan_calibration(con, n, seed, config)
    finally:
        con.close()


def _use_profile(name: str) -> None:
    """Button callback (runs before the widgets are drawn): pick the offline model with this profile."""
    st.session_state["run_model"] = "ihc"
    st.session_state["run:ihc:profile"] = name


def calibration_section(ws, option, progress_factory) -> None:
    """The section; ``option`` is the page's ``api_options`` result (key and conversion type)."""
    st.subheader("Calibrate offline IHC on a sample")
    st.caption(
        "Send a sample of this database's journeys to the IHC API, fit an offline IHC profile to the "
        "answers, and attribute everything else offline. Only the sample is sent (whole journeys); "
        "answers are kept in the database, so an interrupted calibration resumes without sending anything twice."
    )
    if not option.ready:
        st.info("Give the IHC API key and conversion type above to calibrate.", icon=":material/key:")
        return
    config = option.run_options["api_config"]
    if getattr(config, "max_journeys", None) is None:  # another build's API client
        st.info("Calibration needs this build's IHC API client (request limits).")
        return
    c1, c2 = st.columns(2)
    n = int(
        c1.number_input(
            "Sample size (conversions)", min_value=10, max_value=20000, value=300, step=50, key="calib_sample"
        )
    )
    name = c2.text_input("Profile name", value="calibrated", key="calib_name").strip() or "calibrated"
    path, fp = str(ws.db_path), ws.fingerprint()
    try:
        plan = _plan(path, fp, n, 0, config.max_journeys, config.max_sessions)
    except PipelineError as exc:
        st.error(md(str(exc)), icon=":material/warning:")
        return
    st.markdown(f"**{md(plan.line())}**")
    st.caption(md(plan.quota_note()))
    st.dataframe(
        plan.strata(),
        hide_index=True,
        column_config={
            "stratum": st.column_config.TextColumn("Journey length (sessions)"),
            "conversions": st.column_config.NumberColumn("Conversions"),
            "sessions": st.column_config.NumberColumn("Sessions"),
        },
    )
    with st.expander(f"The {len(plan.records):,} sessions it will send"):
        st.dataframe(plan.records, hide_index=True, height=240)
    if st.button("Send the sample and fit", key="calib_button", icon=":material/tune:"):
        _calibrate(ws, plan, config, name, progress_factory)
    _show_result()


def _calibrate(ws, plan, config, name: str, progress_factory) -> None:
    from pipeline.ihc.profile_store import save_profile
    from pipeline.ihc_api import calibration

    bar = st.progress(0.0, text="Sending the sample…")
    try:
        con = open_database(ws.db_path, write=True)
        try:
            pairs, summary = calibration.send_sample(con, plan, config, progress_factory(bar))
            bar.progress(1.0, text="Fitting…")
            result = calibration.fit_and_measure(pairs, name=name)
            save_profile(con, result.calibration.profile, result.fidelity.as_dict(), result.calibration.notes)
        finally:
            con.close()
    except PipelineError as exc:
        bar.empty()
        st.session_state[RESULT_KEY] = {"error": str(exc)}
        return
    bar.empty()
    st.session_state[RESULT_KEY] = {
        "name": name,
        "sent": summary.line(),
        "table": result.fidelity.table(),
        "notes": list(result.calibration.notes),
    }
    stored_profile_docs.clear()
    st.rerun()


def _show_result() -> None:
    result = st.session_state.get(RESULT_KEY)
    if not result:
        return
    if "error" in result:
        st.error(
            f"**The calibration stopped:** {md(result['error'])}  \nAnswers received so far are kept.",
            icon=":material/warning:",
        )
        return
    st.success(f"Profile **{md(result['name'])}** fitted and stored in the database.", icon=":material/check_circle:")
    st.caption(md(result["sent"]))
    table: pd.DataFrame = result["table"].rename(columns=FIDELITY_COLUMNS)
    st.markdown("**Held-out fidelity** (absolute error per session, sessions of multi-session journeys)")
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            c: st.column_config.NumberColumn(format="%.5f") for c in ("mean", "p99", "max", "channel-share WAPE")
        },
    )
    with st.expander("What was fitted"):
        st.markdown("\n".join(f"- {note}" for note in result["notes"]))
    st.button(
        "Use this profile",
        key="calib_use",
        icon=":material/check:",
        on_click=_use_profile,
        args=(result["name"],),
        help="Pick the offline IHC model with this profile above; then Run pipeline.",
    )
