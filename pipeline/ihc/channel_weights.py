"""Import Haensel's ``IHC_channel_weights.csv`` (dashboard download) into a profile.

The file has the columns ``channel, initializer weight, holder weight, closer weight`` (header case
and spacing are not significant; comma, semicolon or tab separated). The weights replace the
profile's ``channel_weights``; how they enter the model is in ``factors.py``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..journey_index import PHASES
from .profile import Profile, load_profile, profile_from_dict


def read_channel_weights(path: "str | Path") -> dict[str, dict[str, float]]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        table = pd.read_csv(io.StringIO(text), sep=None, engine="python", dtype=str)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path} is not a CSV file: {exc}") from None
    columns = {" ".join(str(c).lower().replace("_", " ").split()): c for c in table.columns}
    wanted = {"channel": "channel", **{p: f"{p} weight" for p in PHASES}}
    missing = [name for name in wanted.values() if name not in columns]
    if missing:
        raise InputError(f"{path} lacks column(s): {', '.join(missing)}")
    weights: dict[str, dict[str, float]] = {}
    for line, values in enumerate(table.to_dict("records"), start=2):
        channel = str(values[columns["channel"]] or "").strip()
        if not channel or channel == "nan":
            raise InputError(f"{path}:{line}: empty channel")
        entry = {}
        for phase in PHASES:
            entry[phase] = _weight(values[columns[f"{phase} weight"]], f"{path}:{line}: {phase} weight")
        weights[channel] = entry
    if not weights:
        raise InputError(f"{path} has no channel rows")
    return weights


def _weight(raw, what: str) -> float:
    text = str(raw).strip()
    if "," in text and "." not in text:  # decimal comma (European locale export)
        text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{what} {raw!r} is not a number") from None
    if not value >= 0:
        raise InputError(f"{what} must be >= 0, got {raw!r}")
    return value


def import_channel_weights(csv_path: "str | Path", base: "Profile | str" = "challenge", name: str = "") -> Profile:
    """``base`` with its channel weights replaced by those of the CSV."""
    doc = load_profile(base).to_dict()
    doc["channel_weights"] = read_channel_weights(csv_path)
    if name:
        doc["name"] = name
    doc["description"] = (doc.get("description", "") + f" Channel weights imported from {Path(csv_path).name}.").strip()
    return profile_from_dict(doc, str(csv_path))


def write_profile(profile: Profile, path: "str | Path") -> None:
    Path(path).write_text(json.dumps(profile.to_dict(), indent=2) + "\n", encoding="utf-8")
