"""Which models the stored attribution holds, for which conversions.

A run replaces only the credit of the conversions in its window (what an orchestrator's incremental runs
need), so a report can hold one model's credit for some days and another's for the rest. This module
says so: one ``ModelCoverage`` per model in ``pipeline_attribution``, with its conversions and their
date range. ``status`` lists it, ``run`` warns when its result leaves more than one model, and the
dashboard names the models in the report's header.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, replace
from typing import Optional

from .db import table_exists
from .model_settings import model_label

COVERAGE_SQL = """
SELECT a.model, count(*), min(c.conv_date), max(c.conv_date)
FROM (SELECT conv_id, min(model) AS model FROM pipeline_attribution GROUP BY conv_id) a
JOIN conversions c ON c.conv_id = a.conv_id
GROUP BY a.model
ORDER BY 2 DESC, 1
"""


@dataclass(frozen=True)
class ModelCoverage:
    model: str
    conversions: int
    first_date: Optional[str]
    last_date: Optional[str]

    def phrase(self) -> str:
        span = self.first_date if self.first_date == self.last_date else f"{self.first_date} … {self.last_date}"
        noun = "conversion" if self.conversions == 1 else "conversions"
        return f"{self.model}: {self.conversions:,} {noun} ({span})"

    def as_dict(self) -> dict:
        return asdict(self)


def model_coverage(con: sqlite3.Connection) -> list[ModelCoverage]:
    """The models in the stored attribution, most conversions first (empty before any run)."""
    if not (table_exists(con, "pipeline_attribution") and table_exists(con, "conversions")):
        return []
    return [ModelCoverage(m, int(n), lo, hi) for m, n, lo, hi in con.execute(COVERAGE_SQL)]


def stored_attribution_text(coverage: list[ModelCoverage]) -> str:
    """What the database holds, whatever the last run did (a run on a window replaces only that window's
    conversions): e.g. "In the database: 1,949 conversions attributed — Linear: 1,186 conversions
    (2023-09-05 … 2023-09-10); IHC — offline model: 763 conversions (2023-09-01 … 2023-09-04)"."""
    from .model_settings import model_label

    if not coverage:
        return "In the database: no attributed conversion yet."
    total = sum(c.conversions for c in coverage)
    noun = "conversion" if total == 1 else "conversions"
    parts = "; ".join(replace(c, model=model_label(c.model)).phrase() for c in coverage)
    return f"In the database: {total:,} {noun} attributed — {parts}"


def mixed_models_warning(coverage: list[ModelCoverage]) -> Optional[str]:
    """A one-line warning when the attribution holds more than one model, else None."""
    if len(coverage) < 2:
        return None
    return (
        "it mixes models — "
        + "; ".join(c.phrase() for c in coverage)
        + ". Run again without --start/--end (or with the same window as before) to attribute every"
        " conversion with one model."
    )


OUTSIDE_SQL = """
SELECT a.model, count(*)
FROM (SELECT conv_id, min(model) AS model FROM pipeline_attribution GROUP BY conv_id) a
JOIN conversions c ON c.conv_id = a.conv_id
WHERE NOT ((:start IS NULL OR c.conv_date >= :start) AND (:end IS NULL OR c.conv_date <= :end))
GROUP BY a.model
ORDER BY 2 DESC, 1
"""


def mixing_preview(con: sqlite3.Connection, start: Optional[str], end: Optional[str], model: str) -> Optional[str]:
    """Before a run: the sentence saying that it will leave a report mixing models, or None.

    A run replaces the credit of the conversions in its window only; the stored conversions outside it
    keep theirs. When those carry another model, the report will mix the two."""
    if not (start or end) or not table_exists(con, "pipeline_attribution"):
        return None
    others = [(m, int(n)) for m, n in con.execute(OUTSIDE_SQL, {"start": start, "end": end}) if m != model]
    if not others:
        return None
    # the models as the page names them ("Shapley value", not the stored id "shapley")
    kept = ", ".join(f"{n:,} keep their {model_label(m)} credit" for m, n in others)
    span = f"{start or 'the first date'} … {end or 'the last date'}"
    return (
        f"This run replaces the credit of the conversions from {span} only; of the others, {kept}, so the "
        f"report will mix models. Clear the conversion dates to attribute every conversion with "
        f"{model_label(model)}."
    )
