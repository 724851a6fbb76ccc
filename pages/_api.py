"""The IHC web API option of the Pipeline page: what it is, the key field with **Check**, the quota a
run will use, and the run options. Thin: the check is ``ihc_api.probe.check_api`` (the CLI's
``ihc-api-check``), its result in words ``CheckReport.verdict``, the estimate ``ihc_api.quota``.

The key is typed into a password field and handed to the client's config object only: it is not shown
(no "show password" eye), not put into a message (every text shown comes from the library, which
redacts it), not cached (the cached estimate takes no key) and not written to the working folder.
"""

from __future__ import annotations

from typing import Optional

import streamlit as st

from pages._models import api_options
from pipeline.db import open_database
from pipeline.errors import PipelineError
from pipeline.labels import md
from pipeline.runner import RunOptions
from pipeline.window import Window

EXPLANATION = (
    "The IHC web API of Haensel AMS attributes your journeys with an IHC model **trained on your own "
    "customer journeys** — the offline model only imitates it. It needs an account with Haensel AMS "
    "(ihc-attribution.com): the **API key** comes with the account (ask Haensel AMS or whoever manages "
    "the account), and the **conversion type id** is the name given to a trained model in the account's "
    "web dashboard. Each conversion sent counts against the account's quota."
)
CONV_TYPE_HELP = (
    "The name of the IHC model trained for one kind of conversion (for example `purchase`), given when "
    "its training journeys were uploaded to the account. It must match exactly."
)
CHECK_KEY = "api_check_result"


def _forget_check() -> None:
    st.session_state.pop(CHECK_KEY, None)


def api_controls(ws, window: Window, force: bool):
    """The API's part of the run controls; returns (RunOptions or None, why-not message)."""
    st.markdown(EXPLANATION)
    key = st.text_input(
        "IHC API key",
        type="password",
        key="api_key",
        on_change=_forget_check,
        placeholder="paste the key from your IHC account",
        help="Used for this session's runs only: never shown, logged or saved. (An administrator can "
        "instead set IHC_API_KEY on the server for everyone.)",
    )
    # No "show password" eye on this field: the key is never displayed, not even on request.
    st.html("<style>.st-key-api_key button { display: none !important; }</style>")
    conv_type = st.text_input(
        "Conversion type id",
        key="api_conv_type",
        on_change=_forget_check,
        placeholder="e.g. purchase",
        help="(An administrator can instead set IHC_CONV_TYPE_ID on the server for everyone.)",
    )
    st.caption(CONV_TYPE_HELP)
    option = api_options(key, conv_type)
    if not option.available:
        st.info(option.message, icon=":material/power_off:")
        return None, option.message
    checked = st.session_state.get(CHECK_KEY)
    if st.button(
        "Check",
        key="api_check_button",
        disabled=not option.ready,
        icon=":material/network_check:",
        help="Sends one test conversion (one conversion of quota) and says whether the key and the "
        "conversion type id work. Nothing is saved.",
    ):
        checked = _check(option)
    if checked is not None:
        (st.success if checked["ok"] else st.error)(
            md(checked["text"]), icon=":material/check_circle:" if checked["ok"] else ":material/error:"
        )
    elif option.ready:
        where = "The key you typed" if option.key_source == "typed" else "The server's key (IHC_API_KEY)"
        st.info(
            f"{where} has not been checked yet: **Check** tries it with one test conversion. A run "
            "stops at its first request if the key is refused.",
            icon=":material/help:",
        )
    else:
        st.info(option.message, icon=":material/key:")
    _estimate(ws, window, conv_type, force)
    if not option.ready:
        return None, option.message
    return RunOptions(window, force=force, **option.run_options), None


def _check(option) -> dict:
    """``ihc-api-check``'s one tiny request; the verdict in words (no key in it: the library redacts)."""
    from pipeline.ihc_api.probe import check_api

    with st.spinner("Sending one test conversion to the IHC API…"):
        try:
            report = check_api(option.run_options["api_config"])
            result = {"ok": report.ok, "text": report.verdict()}
        except PipelineError as exc:
            result = {"ok": False, "text": str(exc)}
    st.session_state[CHECK_KEY] = result
    return result


def _estimate(ws, window: Window, conv_type: Optional[str], force: bool) -> None:
    """The quota a run of these dates will use (``ihc_api.quota``), before anything is sent."""
    try:
        from pipeline.ihc_api.config import load_config
        from pipeline.ihc_api.quota import estimate_window  # noqa: F401 - not in a build without the client

        config = load_config({"conv_type_id": (conv_type or "").strip() or None})
    except (ImportError, PipelineError):
        return
    try:
        line = estimate_line(
            str(ws.db_path),
            ws.fingerprint(),
            window.start,
            window.end,
            window.lookback_days,
            config.conv_type_id,
            config.api_url,
            config.max_journeys,
            config.max_sessions,
            repr(config.redistribution_parameter),
            force,
        )
    except PipelineError as exc:
        st.caption(md(f"The quota of a run could not be estimated: {exc}"))
        return
    st.markdown(f"**Quota.** {md(line)}")


@st.cache_data(show_spinner="Counting what a run would send…", max_entries=16)
def estimate_line(
    path: str,
    fp: str,
    start: Optional[str],
    end: Optional[str],
    lookback_days: Optional[int],
    conv_type_id: Optional[str],
    api_url: str,
    max_journeys: int,
    max_sessions: int,
    redistribution: str,
    force: bool,
) -> str:
    """``quota.estimate_window`` in words; keyed by the database fingerprint and the settings that
    decide what is sent — never by the key, which the estimate does not need."""
    from pipeline.ihc_api.config import load_config
    from pipeline.ihc_api.quota import estimate_window

    config = load_config(
        {
            "conv_type_id": conv_type_id,
            "api_url": api_url,
            "max_journeys": max_journeys,
            "max_sessions": max_sessions,
        }
    )
    con = open_database(path)
    try:
        return estimate_window(con, Window(start, end, lookback_days), config, force=force).line()
    finally:
        con.close()
