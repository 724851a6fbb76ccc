"""What a reader of the stored report should be warned about, whichever face shows it.

- the attribution mixes models (``coverage``): some conversions carry one model's credit, others
  another's;
- the last session days are incomplete (``completeness``): their conversions have not all happened yet.

``run`` prints these after it has written the report and ``validate`` after its findings (they depend
on the stored attribution, not on the inputs, so they are not part of the cached validation record);
the dashboard shows them above the report.
"""

from __future__ import annotations

import sqlite3
from typing import Optional

from .completeness import IncompleteDays, incomplete_days
from .coverage import ModelCoverage, mixed_models_warning, model_coverage


def report_warnings(con: sqlite3.Connection) -> list[tuple[str, str, int, list]]:
    """(code, message, count, examples) for each warning that applies to the stored report."""
    return warnings_of(model_coverage(con), incomplete_days(con))


def warnings_of(coverage: list[ModelCoverage], late: Optional[IncompleteDays]) -> list[tuple[str, str, int, list]]:
    """``report_warnings`` from a coverage and incomplete days already read."""
    out = []
    mixed = mixed_models_warning(coverage)
    if mixed:
        out.append(("mixed_models", mixed, len(coverage), [c.model for c in coverage]))
    if late is not None and late.days:
        out.append(("incomplete_last_days", late.warning(), len(late.days), late.days[-3:]))
    return out


def warning_counts(data_warnings: int, report_notes: int) -> str:
    """One count with the same meaning on every face: the data checks' warnings (validation, about the
    inputs) and the notes about the stored report (``report_warnings``), named apart — e.g.
    "2 data warnings · 1 report note". Empty when there are none."""

    def count(n: int, noun: str) -> str:
        return f"{n:,} {noun}{'' if n == 1 else 's'}"

    parts = []
    if data_warnings:
        parts.append(count(data_warnings, "data warning"))
    if report_notes:
        parts.append(count(report_notes, "report note"))
    return " · ".join(parts)


def note_sentence(message: str) -> str:
    """A report note (``report_warnings``' message) as a sentence of its own, for the dashboard and the
    HTML report: "it mixes models — …" → "The attribution mixes models — …."; the command line prints
    the message as it is, after "warning: report: "."""
    text = message.strip().rstrip(".")
    if text.startswith("it mixes models"):
        text = "the attribution" + text.removeprefix("it")
    return text[:1].upper() + text[1:] + "."
