"""What every dashboard page shares: this session's workspace, cached reads keyed by the database's
fingerprint, the model picker (including the IHC API option), the progress bar adapter, chart styling
and error display.

Pages stay thin: each number is computed by a ``pipeline`` function; this module only caches and draws.
Every cached function takes the workspace fingerprint (which contains the session's private folder),
so one browser session's cached results can never be served to another.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import pandas as pd
import streamlit as st

from pipeline import explain
from pipeline.compare import ModelSpec, compare_models
from pipeline.db import open_database, table_exists
from pipeline.errors import InputError, PipelineError
from pipeline.export import read_report, to_csv_bytes
from pipeline.ihc import builtin_profiles, load_profile
from pipeline.ihc_api import MODEL_NAME as API_MODEL
from pipeline.model_choice import default_model
from pipeline.models import available_models, get_model
from pipeline.palette import channel_colors
from pipeline.runner import RunOptions
from pipeline.status import status
from pipeline.validate import ValidationReport, validate
from pipeline.workspace import Workspace, cached_demo, demo_size_from_env, sweep

MODEL_LABELS = {
    "ihc": "IHC — offline model",
    API_MODEL: "IHC — web API",
    "last-click": "Last click",
    "first-click": "First click",
    "linear": "Linear",
    "time-decay": "Time decay",
    "position-based": "Position based (U-shaped)",
    "markov": "Markov chain (removal effect)",
    "shapley": "Shapley value",
}
PARAM_HELP = {
    "profile": "The trained conversion type the offline IHC model imitates.",
    "round": "Round each session's values to 4 decimals, like the web API.",
    "redistribution": "Optional JSON object: the API's redistribution_parameter.",
}
CHART_FONT = dict(family="Source Sans Pro, Arial, sans-serif", size=13)


# ---- the session's workspace ---------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _swept_once() -> bool:
    """Remove working folders left behind by dashboard processes that died (once per process)."""
    sweep()
    return True


@st.cache_resource(show_spinner=False)
def demo_database(sessions: int, conversions: int, days: int, seed: int) -> str:
    """The cached demo database of that size (built on first use, then shared read-only)."""
    from pipeline.demo_size import DemoSize

    return str(cached_demo(DemoSize(sessions, conversions, days, seed)))


def workspace() -> Workspace:
    """This browser session's workspace, created on first use and filled with the demo database."""
    _swept_once()
    ws = st.session_state.get("_workspace")
    if ws is None or ws.closed:
        ws = Workspace.create()
        st.session_state["_workspace"] = ws
    if not ws.has_database:
        use_demo(ws)
    return ws


def use_demo(ws: Workspace) -> None:
    size = demo_size_from_env()
    with st.spinner("Preparing the demo database (built once, then reused: a few seconds)…"):
        path = demo_database(size.sessions, size.conversions, size.days, size.seed)
    ws.use_demo(Path(path), size)
    st.session_state.pop("last_run", None)


def db_key(ws: Workspace) -> tuple[str, str]:
    """(path, fingerprint): the arguments every cached read takes."""
    return str(ws.db_path), ws.fingerprint()


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
    from pipeline.fingerprint import input_fingerprints
    from pipeline.status import current_inputs, read_records

    with _read(path) as con:
        records = read_records(con)
        rec = records.get("validate")
        if rec is not None and rec.inputs == current_inputs("validate", input_fingerprints(con), records):
            return ValidationReport.from_dict(rec.summary)
        return validate(con)


@st.cache_data(show_spinner=False, max_entries=32)
def channel_sessions(path: str, fp: str) -> pd.DataFrame:
    """Sessions, paid sessions and cost per channel of the input tables."""
    from pipeline.schema import NO_CHANNEL

    with _read(path) as con:
        rows = con.execute(
            f"SELECT coalesce(s.channel_name, '{NO_CHANNEL}'), count(*), count(c.session_id), total(c.cost)"
            " FROM session_sources s LEFT JOIN session_costs c ON c.session_id = s.session_id GROUP BY 1"
            " ORDER BY count(*) DESC"
        ).fetchall()
    return pd.DataFrame.from_records(rows, columns=["channel", "sessions", "paid_sessions", "cost"])


@st.cache_data(show_spinner=False, max_entries=32)
def colors(path: str, fp: str) -> dict[str, str]:
    """The database's channel → colour mapping, used by every chart (channel names from the small
    product tables when they exist, else one DISTINCT pass over the sessions)."""
    names: set[str] = set()
    with _read(path) as con:
        for table, column in (("channel_reporting", "channel_name"), ("pipeline_journeys", "channel_label")):
            if table_exists(con, table):
                names |= {r[0] for r in con.execute(f"SELECT DISTINCT {column} FROM {table}")}
        if not names:
            names = {r[0] or "(not set)" for r in con.execute("SELECT DISTINCT channel_name FROM session_sources")}
    return channel_colors(names)


@st.cache_data(show_spinner=False, max_entries=32)
def has_report(path: str, fp: str) -> bool:
    with _read(path) as con:
        return (
            table_exists(con, "channel_reporting")
            and con.execute("SELECT 1 FROM channel_reporting LIMIT 1").fetchone() is not None
        )


@st.cache_data(show_spinner=False, max_entries=128)
def report(path: str, fp: str, start: Optional[str], end: Optional[str], channels: Optional[tuple]) -> pd.DataFrame:
    """``export.read_report`` rows: what the table, charts and CSV show."""
    with _read(path) as con:
        return read_report(con, start, end, list(channels) if channels else None)


@st.cache_data(show_spinner=False, max_entries=128)
def report_csv(path: str, fp: str, start: Optional[str], end: Optional[str], channels: Optional[tuple]) -> bytes:
    """Exactly what ``python -m pipeline export`` writes for the same filters."""
    return to_csv_bytes(report(path, fp, start, end, channels))


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
def conversion(path: str, fp: str, conversion_id: str):
    with _read(path) as con:
        return explain.conversion_info(con, conversion_id), explain.conversion_sessions(con, conversion_id)


@st.cache_data(show_spinner=False, max_entries=32)
def unattributed(path: str, fp: str) -> pd.DataFrame:
    with _read(path) as con:
        return explain.unattributed_reasons(con)


@st.cache_data(show_spinner=False, max_entries=16)
def comparison(path: str, fp: str, specs_json: str):
    specs = [ModelSpec(name, params) for name, params in json.loads(specs_json)]
    with _read(path) as con:
        return compare_models(con, specs)


# ---- the model picker and the IHC API option ----------------------------------------------------


def offline_models() -> list[str]:
    """The registry's models (the API is offered separately, never listed twice)."""
    return [m for m in available_models() if m != API_MODEL]


def model_label(name: str) -> str:
    return MODEL_LABELS.get(name, name)


@dataclass
class ApiOption:
    """What the IHC API choice can do in this build and with these settings. Never holds the key in
    any displayable field: ``message`` is safe to show, ``run_options`` goes to ``RunOptions`` only."""

    available: bool  # the API client package is importable in this build
    ready: bool  # a run can go ahead with these settings
    message: str
    key_source: Optional[str] = None  # "typed" | "environment" | None
    run_options: dict = field(default_factory=dict, repr=False)  # RunOptions keyword arguments


def api_options(
    typed_key: Optional[str], conv_type_id: Optional[str] = None, environ: Optional[Mapping[str, str]] = None
) -> ApiOption:
    """The single place the dashboard connects to the IHC API client (``pipeline.ihc_api``).

    The key comes from the password field (``typed_key``) or from IHC_API_KEY in the environment or
    .env file; it is passed on inside the client's config object only — never shown, logged, written
    to the working folder or put into the model parameters that stage records store.
    """
    typed_key = (typed_key or "").strip() or None
    try:
        api = importlib.import_module("pipeline.ihc_api")
        load_config = api.load_config
    except (ImportError, AttributeError):
        return ApiOption(
            False,
            False,
            "The IHC web API is not available in this build (the API client, pipeline.ihc_api, is not installed).",
        )
    try:
        config = load_config(
            {"api_key": typed_key, "conv_type_id": (conv_type_id or "").strip() or None}, environ=environ
        )
    except PipelineError as exc:
        return ApiOption(True, False, _redact(str(exc), typed_key))
    key_source = "typed" if typed_key else ("environment" if getattr(config, "api_key", None) else None)
    if not getattr(config, "api_key", None):
        return ApiOption(True, False, "Type your IHC API key, or set IHC_API_KEY in the environment or a .env file.")
    if not getattr(config, "conv_type_id", None):
        return ApiOption(True, False, "Enter the IHC conversion type id (or set IHC_CONV_TYPE_ID).", key_source)
    if "api_config" not in {f.name for f in dataclasses.fields(RunOptions)}:
        return ApiOption(
            True,
            False,
            "The API client is installed, but this build's pipeline run does not accept an API configuration yet.",
            key_source,
        )
    where = "the key you typed" if key_source == "typed" else "the key from the environment"
    return ApiOption(
        True,
        True,
        f"Ready: attribution through the IHC web API with {where}.",
        key_source,
        {"model": API_MODEL, "api_config": config},
    )


def _redact(text: str, secret: Optional[str]) -> str:
    return text.replace(secret, "•••") if secret else text


def param_widgets(
    model_name: str, current: Mapping[str, Any], key: str, extra_profiles: Optional[Mapping[str, dict]] = None
) -> dict:
    """Widgets for the model's parameters (from its defaults, so new models get them for free);
    returns only the values that differ from the defaults. ``extra_profiles``: {name: profile document}
    of the database's calibrated profiles, offered by name beside the built-ins (the value is the document)."""
    extra_profiles = dict(extra_profiles or {})
    model = get_model(model_name)
    params: dict = {}
    advanced = None
    for name, default in model.defaults.items():
        value = current.get(name, default)
        wkey = f"{key}:{model_name}:{name}"
        label = name.replace("_", " ").capitalize()
        help_text = PARAM_HELP.get(name)
        if name == "profile":
            if isinstance(value, Mapping):  # a calibrated profile's document: offered by its name
                extra_profiles.setdefault(str(value.get("name") or "inline"), dict(value))
                value = str(value.get("name") or "inline")
            options = builtin_profiles() + [n for n in extra_profiles if n not in builtin_profiles()]
            if value not in options:
                options = [*options, value]
            chosen = st.selectbox("IHC profile", options, index=options.index(value), key=wkey, help=help_text)
            desc = extra_profiles[chosen].get("description", "") if chosen in extra_profiles else ""
            chosen = extra_profiles.get(chosen, chosen)
            desc = desc or (_profile_description(chosen) if isinstance(chosen, str) else "")
            if desc:
                st.caption(desc)
        elif isinstance(default, bool):
            chosen = st.checkbox(label, value=bool(value), key=wkey, help=help_text)
        elif isinstance(default, int):
            chosen = int(st.number_input(label, value=int(value), step=1, key=wkey, help=help_text))
        elif isinstance(default, float):
            chosen = float(st.number_input(label, value=float(value), key=wkey, help=help_text, format="%.3f"))
        elif default is None or isinstance(default, (dict, list)):
            text = "" if value is None else json.dumps(value)
            advanced = advanced or st.expander("Advanced parameters", expanded=bool(text))
            raw = advanced.text_area(f"{label} (JSON, optional)", value=text, key=wkey, help=help_text, height=80)
            chosen = None
            if raw.strip():
                try:
                    chosen = json.loads(raw)
                except ValueError:
                    raise InputError(f"{label}: not valid JSON") from None
        else:
            chosen = st.text_input(label, value=str(value), key=wkey, help=help_text)
        if chosen != default:
            params[name] = chosen
    return params


@st.cache_data(show_spinner=False)
def _profile_description(name: str) -> str:
    try:
        return getattr(load_profile(name), "description", "") or ""
    except PipelineError:
        return ""


def stored_model(states: dict) -> tuple[str, dict]:
    """The model and parameters of the stored attribution, else the default model."""
    rec = states.get("attribute").record if states.get("attribute") else None
    if rec is not None and rec.params.get("model"):
        return rec.params["model"], dict(rec.params.get("params") or {})
    return default_model(), {}


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


GRID = "#E6E9EF"
AXIS_LINE = "#C9CED6"
AXIS = dict(automargin=True, title=dict(standoff=8), gridcolor=GRID, linecolor=AXIS_LINE, zerolinecolor=AXIS_LINE)


def figure(
    traces: list[dict],
    title: str,
    height: int = 420,
    show_legend: bool = True,
    xaxis: Optional[dict] = None,
    yaxis: Optional[dict] = None,
    **layout,
) -> dict:
    """A plotly figure as a plain dict in the dashboard's look: readable fonts, labels never clipped
    (automargin), a white plot, the title top left, the legend above the plot.

    Plain dicts, not ``go.Figure`` updates: Streamlit validates the whole figure once, while each
    ``update_layout``/``update_xaxes`` call re-validates (≈30 ms per chart instead of ≈4 ms), which
    a filter change pays four times."""

    def axis(extra: Optional[dict]) -> dict:
        out = {**AXIS, **(extra or {})}
        if isinstance(out.get("title"), str):
            out["title"] = dict(text=out["title"], standoff=8)
        return out

    base = dict(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=16)),
        paper_bgcolor="white",
        plot_bgcolor="white",
        font=dict(**CHART_FONT, color="#1F2A37"),
        height=height,
        margin=dict(l=10, r=20, t=60, b=10),
        showlegend=show_legend,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        hoverlabel=dict(font=dict(size=13)),
        xaxis=axis(xaxis),
        yaxis=axis(yaxis),
    )
    for key, value in layout.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return {"data": traces, "layout": base}


def chart(fig, key: Optional[str] = None) -> None:
    st.plotly_chart(
        fig,
        width="stretch",
        theme=None,
        key=key,
        config={
            "displaylogo": False,
            "modeBarButtonsToRemove": [
                "lasso2d",
                "select2d",
                "zoom2d",
                "pan2d",
                "zoomIn2d",
                "zoomOut2d",
                "autoScale2d",
                "resetScale2d",
            ],
            "toImageButtonOptions": {"format": "png", "scale": 2},
        },
    )


# ---- errors ------------------------------------------------------------------------------------


@contextlib.contextmanager
def shown_errors():
    """Show a library error as a one-line message instead of a traceback."""
    try:
        yield
    except PipelineError as exc:
        st.error(str(exc), icon=":material/warning:")
    except Exception as exc:  # noqa: BLE001 - a bug: say so, keep the traceback out of the main view
        if type(exc).__module__.startswith("streamlit"):
            raise
        st.error(
            f"Something went wrong ({type(exc).__name__}: {exc}). Your data was not changed.",
            icon=":material/bug_report:",
        )
        with st.expander("Details for a bug report"):
            st.exception(exc)


def sidebar_database(ws: Workspace) -> None:
    """The current database, in the sidebar of every page."""
    src = ws.source
    with st.sidebar:
        st.caption("Current database")
        if src is None:
            st.write("none")
            return
        icon = ":material/science:" if src.kind == "demo" else ":material/description:"
        st.markdown(f"{icon} **{src.name}**")
        st.caption(f"{src.size_bytes / 1e6:,.1f} MB · private working copy")
        st.page_link("pages/data.py", label="Change the database", icon=":material/upload_file:")


def not_ready(message: str, page: str = "pages/pipeline.py", label: str = "Go to Pipeline") -> None:
    st.info(message, icon=":material/info:")
    st.page_link(page, label=label, icon=":material/play_arrow:")


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
