"""The model picker and the IHC API option: labels, parameter widgets, the API settings check.

The model names come from the registry (``pipeline.models``) and ``pipeline.ihc_api.MODEL_NAME``; a
run's model is decided by the library (``pipeline.model_choice``) from what the picker returns.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import streamlit as st

from pipeline.errors import PipelineError
from pipeline.ihc import builtin_profiles
from pipeline.ihc_api import MODEL_NAME as API_MODEL
from pipeline.model_choice import default_model
from pipeline.model_settings import model_label, read_json_setting, setting  # noqa: F401  (model_label: for the pages)
from pipeline.models import available_models, get_model

# ---- the model picker and the IHC API option ----------------------------------------------------


def offline_models() -> list[str]:
    """The registry's models (the API is offered separately, never listed twice)."""
    return [m for m in available_models() if m != API_MODEL]


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
        return ApiOption(True, False, "Paste your IHC API key above.")
    if not getattr(config, "conv_type_id", None):
        return ApiOption(
            True,
            False,
            "Enter the conversion type id above.",
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
    """Widgets for the model's parameters (from its defaults, so new models get them for free), each
    with its label and one line in the analyst's words (``pipeline.model_settings``); returns only the
    values that differ from the defaults. ``extra_profiles``: {name: profile document} of the
    database's calibrated profiles, offered by name beside the built-ins (the value is the document)."""
    extra_profiles = dict(extra_profiles or {})
    model = get_model(model_name)
    params: dict = {}
    advanced = None
    for name, default in model.defaults.items():
        value = current.get(name, default)
        wkey = f"{key}:{model_name}:{name}"
        words = setting(name)
        if name == "profile":
            chosen = _profile_widget(value, wkey, extra_profiles)
        elif words.choices:
            options = list(words.choices) + ([str(value)] if str(value) not in words.choices else [])
            chosen = st.selectbox(
                words.label,
                options,
                index=options.index(str(value)),
                key=wkey,
                format_func=lambda v, w=words: w.choices.get(v, v),
            )
            st.caption(words.help)
        elif isinstance(default, bool):
            chosen = st.checkbox(words.label, value=bool(value), key=wkey)
            st.caption(words.help)
        elif isinstance(default, int):
            chosen = int(st.number_input(words.label, value=int(value), step=1, key=wkey))
            st.caption(words.help)
        elif isinstance(default, float) and words.whole and float(value).is_integer():
            # whole hours ("168", not "168.000"); a fractional value set elsewhere keeps the float field
            chosen = float(st.number_input(words.label, value=int(value), min_value=1, step=1, key=wkey))
            st.caption(words.help)
        elif isinstance(default, float):
            chosen = float(st.number_input(words.label, value=float(value), key=wkey, format="%.3f"))
            st.caption(words.help)
        elif default is None or isinstance(default, (dict, list)):
            text = "" if value is None else json.dumps(value, indent=1)
            advanced = advanced or st.expander(words.label, expanded=bool(text))
            with advanced:
                st.caption(words.help)
                raw = st.text_area(
                    f"{words.label} (JSON)",
                    value=text,
                    key=wkey,
                    height=120,
                    placeholder=words.example,
                    label_visibility="collapsed",
                )
                if words.example:
                    st.caption("Example — copy it into the box and change the channels:")
                    st.code(words.example, language="json")
            chosen = read_json_setting(words.label, raw)
        else:
            chosen = st.text_input(words.label, value=str(value), key=wkey)
            if words.help:
                st.caption(words.help)
        if chosen != default:
            params[name] = chosen
    return params


def _profile_widget(value, wkey: str, extra_profiles: dict):
    """The IHC profile picker: the built-ins in words, then the database's calibrated profiles."""
    words = setting("profile")
    if isinstance(value, Mapping):  # a calibrated profile's document: offered by its name
        extra_profiles.setdefault(str(value.get("name") or "inline"), dict(value))
        value = str(value.get("name") or "inline")
    options = builtin_profiles() + [n for n in extra_profiles if n not in builtin_profiles()]
    if value not in options:
        options = [*options, value]

    def label(name: str) -> str:
        if name in words.choices:
            return words.choices[name]
        return f"{name} — calibrated on this database's IHC API answers" if name in extra_profiles else name

    chosen = st.selectbox(words.label, options, index=options.index(value), key=wkey, format_func=label)
    st.caption(words.help)
    if chosen in extra_profiles:
        desc = extra_profiles[chosen].get("description", "")
        if desc:
            st.caption(desc)
        return extra_profiles[chosen]
    return chosen


def stored_model(states: dict) -> tuple[str, dict]:
    """The model and parameters of the stored attribution, else the default model."""
    rec = states.get("attribute").record if states.get("attribute") else None
    if rec is not None and rec.params.get("model"):
        return rec.params["model"], dict(rec.params.get("params") or {})
    return default_model(), {}
