"""The models' settings in words an analyst uses: a label, one line of explanation, and for a setting
with a fixed set of values, each value in words. The dashboard draws its model settings from here
(``pages/_models.py``); the values themselves are checked by the models (``resolve_params``).

``model_label(name)`` names a model and ``settings_in_words(params)`` writes a run's parameters for the
Pipeline page and the HTML report ("IHC profile: default — IHC as documented; Round credit …: no").

``read_json_setting(label, text)`` reads a JSON setting typed by hand (the IHC redistribution) and says
what is wrong in one line, with the line and column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import InputError


@dataclass(frozen=True)
class Setting:
    label: str
    help: str  # one line: what it does, in the analyst's words
    choices: dict[str, str] = field(default_factory=dict)  # value -> what it means (a fixed set of values)
    example: Optional[str] = None  # for a JSON setting: a complete example to start from
    whole: bool = False  # a number of hours/sessions the analyst types as a whole number ("168", not "168.000")


REDISTRIBUTION_EXAMPLE = json.dumps(
    {
        "initializer": {
            "direction": "later_sessions_only",
            "receive_threshold": 0,
            "redistribution_channel_labels": ["Direct Traffic"],
        }
    },
    indent=1,
)

SETTINGS: dict[str, Setting] = {
    "profile": Setting(
        "IHC profile",
        "Which IHC behaviour the offline model imitates. A journey's sessions play three roles: initializer "
        "(opened it), holder (kept it going), closer (closed the sale). 'default' is the model as documented, "
        "the three roles counting equally; 'challenge' imitates the IHC web API's answers for a conversion "
        "type Haensel AMS trained on the sample shop data of their data-engineering challenge (fitted to "
        "those answers).",
        {
            "default": "default — IHC as documented",
            "challenge": "challenge — IHC as Haensel AMS trained it on their sample shop data",
        },
    ),
    "round": Setting(
        "Round credit to 4 decimals, as the web API does",
        "Only to compare with the web API's answers digit by digit; leave it off for reporting (rounding "
        "makes a conversion's credits sum to 1 only within 0.00005 per session).",
    ),
    "redistribution": Setting(
        "Move credit away from some channels (optional)",
        "Per role (initializer, holder, closer): the credit of the channels listed is given to the other "
        "sessions of the same journey — earlier ones, later ones or any — for example to stop Direct "
        "Traffic from being credited with opening journeys. Leave empty for none. It is the web API's "
        "redistribution_parameter.",
        example=REDISTRIBUTION_EXAMPLE,
    ),
    "worth": Setting(
        "What a set of channels is worth",
        "Shapley shares each set of channels' worth among its channels. Conversion rate: the share of "
        "the journeys with those channels that converted (journeys that did not convert count). Number "
        "of conversions: the conversions with those channels (journeys that did not convert are ignored).",
        {
            "rate": "conversion rate of the channel set",
            "conversions": "number of conversions of the set",
        },
    ),
    "max_coalition_size": Setting(
        "Largest set of channels considered",
        "A journey with more different channels than this counts only its most recent ones (more is slower).",
    ),
    "order": Setting(
        "Memory of the chain (sessions)",
        "1: the next channel depends on the current one; 2–4: on the last 2–4 channels.",
    ),
    "collapse_repeats": Setting(
        "Count repeated visits of a channel once",
        "Merge consecutive sessions of the same channel before counting moves between channels.",
    ),
    "half_life_hours": Setting(
        "Half-life (hours)",
        "168 hours = 1 week, 24 = 1 day.",
        whole=True,
    ),
    "first": Setting("Share of the first session", "The first session's share of the credit (0.4 = 40%)."),
    "last": Setting(
        "Share of the last session",
        "The last session's share; the sessions between share the rest equally.",
    ),
}


def setting(name: str) -> Setting:
    """The words for parameter ``name`` (a plain label made from the name when none are written)."""
    return SETTINGS.get(name) or Setting(name.replace("_", " ").capitalize(), "")


def read_json_setting(label: str, text: str) -> Any:
    """``text`` as JSON (None when blank); bad JSON raises ``InputError`` in one line with its place."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{label}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); "
            "start from the example shown"
        ) from None


MODEL_LABELS = {
    "ihc": "IHC — offline model",
    "ihc-api": "IHC — web API",  # pipeline.ihc_api.MODEL_NAME
    "last-click": "Last click",
    "first-click": "First click",
    "linear": "Linear",
    "time-decay": "Time decay",
    "position-based": "Position based (U-shaped)",
    "markov": "Markov chain (removal effect)",
    "shapley": "Shapley value",
}


def model_label(name: str) -> str:
    """A model's name as an analyst reads it ('ihc' → 'IHC — offline model')."""
    return MODEL_LABELS.get(name, name)


def settings_in_words(params: dict) -> str:
    """A run's model parameters in words, '; '-separated ('default settings' when there are none): each
    setting's label, and its value in words (a choice's meaning, yes/no, a calibrated profile's name,
    JSON for a structured value)."""
    parts = []
    for name, value in sorted(params.items()):
        if value is None:
            continue
        words = setting(name)
        if isinstance(value, dict) and name == "profile":  # a calibrated profile: its name, not the document
            text = str(value.get("name", "calibrated"))
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, (dict, list)):
            text = json.dumps(value)
        elif isinstance(value, float):
            text = f"{value:g}"  # 24 hours, not 24.0
        else:
            text = words.choices.get(str(value), str(value))
        parts.append(f"{words.label}: {text}")
    return "; ".join(parts) or "default settings"


def replacing_note(chosen: str, stored: Optional[str], first: Optional[str], last: Optional[str]) -> str:
    """Over the Run button, when the model picked is not the stored attribution's: what a run will replace
    ('' when it is the same model, or nothing is stored). The Pipeline page said nothing of it: its cards
    read "Done" for the stored model while another one was picked, and the button's help was "Run the
    stages that are not up to date". ``first``/``last``: the run's conversion dates ('YYYY-MM-DD')."""
    if not stored or chosen == stored:
        return ""
    dates = f" of {first} – {last}" if first and last else ""
    return (
        f"**Run pipeline** attributes the conversions{dates} with **{model_label(chosen)}**: the Report, "
        f"Journeys and the downloads then show it instead of {model_label(stored)}. To see both side by "
        "side without replacing anything: Compare models."
    )
