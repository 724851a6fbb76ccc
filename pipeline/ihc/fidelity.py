"""Fidelity replay: run every real request of ``ihc_api_vectors.jsonl`` through the offline model.

Each line of the file is one (request, conversion) pair with the real API's response. The replay
attributes all of them in one vectorised call (each line is its own journey, ties in request order,
values rounded like the API) and reports the absolute error per session for each phase and ``ihc``:
mean, p99 and max, split by confidence and journey length. ``TARGETS`` are the fidelity bounds of
issue 3, measured on the sessions of multi-session journeys of the high and medium vectors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ..errors import InputError
from ..journey_index import VALUE_COLUMNS
from .profile import Profile
from .records import attribute_records

VECTORS_NAME = "ihc_api_vectors.jsonl"
DEFAULT_VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / VECTORS_NAME
LENGTH_BUCKETS = [(1, 1, "1"), (2, 2, "2"), (3, 3, "3"), (4, 5, "4-5"), (6, 8, "6-8"), (9, 10**9, "9+")]
# (phase, statistic, bound) on multi-session journeys of the high+medium vectors
TARGETS = [
    ("ihc", "mean", 0.002),
    ("ihc", "p99", 0.01),
    ("ihc", "max", 0.03),
    ("initializer", "p99", 0.005),
    ("closer", "p99", 0.005),
]


def load_vectors(path: "str | Path | None" = None) -> pd.DataFrame:
    """One row per session sent: the request record, the vector's confidence/length, the real values."""
    path = Path(path) if path else DEFAULT_VECTORS
    if not path.is_file():
        raise InputError(f"vector file {path} not found (expected ../shared/data/{VECTORS_NAME})")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                vector = json.loads(line)
                response = {r["session_id"]: r for r in vector["response_value"]}
                request = vector["request_customer_journeys"]
                for record in request:
                    real = response[record["session_id"]]
                    rows.append(
                        {
                            **record,
                            "conversion_id": f"{line_no}:{record['conversion_id']}",
                            "vector": line_no,
                            "confidence": vector.get("confidence", "unknown"),
                            "journey_length": len(request),
                            **{f"real_{c}": float(real[c]) for c in VALUE_COLUMNS},
                        }
                    )
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{path}:{line_no + 1}: not a vector line ({exc})") from None
    return pd.DataFrame(rows)


def replay(profile: "Profile | str" = "challenge", vectors: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """The vectors with the model's values (``model_*``) and absolute errors (``err_*``) per session."""
    vectors = load_vectors() if vectors is None else vectors
    model = attribute_records(vectors, profile, round_values=True)
    out = vectors.copy()
    for c in VALUE_COLUMNS:
        out[f"model_{c}"] = model[c].to_numpy()
        out[f"err_{c}"] = np.abs(out[f"model_{c}"] - out[f"real_{c}"])
    return out


def _stats(errors: pd.DataFrame) -> dict:
    row = {"sessions": len(errors), "journeys": errors["vector"].nunique()}
    for c in VALUE_COLUMNS:
        e = errors[f"err_{c}"].to_numpy()
        row[f"{c}_mean"] = float(e.mean()) if len(e) else np.nan
        row[f"{c}_p99"] = float(np.quantile(e, 0.99)) if len(e) else np.nan
        row[f"{c}_max"] = float(e.max()) if len(e) else np.nan
    return row


def summarise(replayed: pd.DataFrame) -> pd.DataFrame:
    """Error statistics per (confidence, journey length), plus 'high+medium' and 'multi' rollups."""
    groups = {
        "high": replayed["confidence"] == "high",
        "medium": replayed["confidence"] == "medium",
        "low": replayed["confidence"] == "low",
        "high+medium": replayed["confidence"].isin(["high", "medium"]),
    }
    rows = []
    for conf, in_conf in groups.items():
        for lo, hi, label in LENGTH_BUCKETS + [(2, 10**9, "multi (2+)")]:
            sel = in_conf & replayed["journey_length"].between(lo, hi)
            if sel.any():
                rows.append({"confidence": conf, "length": label, **_stats(replayed[sel])})
    return pd.DataFrame(rows)


def check_targets(replayed: pd.DataFrame) -> list[dict]:
    """Each fidelity bound with the measured value and whether it holds."""
    sel = replayed["confidence"].isin(["high", "medium"]) & (replayed["journey_length"] >= 2)
    stats = _stats(replayed[sel])
    return [
        {"phase": p, "stat": s, "bound": b, "value": stats[f"{p}_{s}"], "ok": stats[f"{p}_{s}"] <= b}
        for p, s, b in TARGETS
    ]


def format_report(summary: pd.DataFrame, targets: list[dict], profile_name: str) -> str:
    lines = [
        f"IHC fidelity, profile {profile_name}: absolute error per session vs the real API",
        "(mean / p99 / max; journeys = vectors; sessions after a cut count as sessions)",
        "",
    ]
    header = f"{'confidence':<12}{'length':<11}{'journeys':>9}{'sessions':>9}"
    for c in VALUE_COLUMNS:
        header += f"  {c:^22}"
    lines.append(header)
    for _, r in summary.iterrows():
        line = f"{r['confidence']:<12}{r['length']:<11}{r['journeys']:>9}{r['sessions']:>9}"
        for c in VALUE_COLUMNS:
            line += f"  {r[f'{c}_mean']:.4f}/{r[f'{c}_p99']:.4f}/{r[f'{c}_max']:.4f}"
        lines.append(line)
    lines += ["", "targets (high+medium, multi-session journeys):"]
    for t in targets:
        mark = "ok  " if t["ok"] else "FAIL"
        lines.append(f"  {mark} {t['phase']:<12}{t['stat']:<5} {t['value']:.5f} <= {t['bound']}")
    return "\n".join(lines)
