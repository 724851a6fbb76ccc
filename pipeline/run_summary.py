"""What a run did, in the words the dashboard shows after it: conversions attributed, conversions not
attributed and why, the stages redone or reused, and the time taken."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .labels import duration
from .model_settings import model_label
from .validate import plain_sentence


@dataclass
class RunSummary:
    model: Optional[str]
    conversions: int  # conversions in the window
    attributed: int
    not_attributed: dict[str, int]  # reason → conversions
    sessions: int  # journey rows attributed
    channel_days: int
    redone: list[str]
    reused: list[str]
    seconds: float
    warnings: list[str] = field(default_factory=list)  # the data checks, one plain sentence each
    lines: list[str] = field(default_factory=list)  # each stage in words ("Channel report: … rebuilt in 0.8 s")

    @property
    def not_attributed_total(self) -> int:
        return sum(self.not_attributed.values())

    def headline(self, label: Optional[str] = None) -> str:
        """One sentence, the model named as the dashboard names it (``label`` replaces that name)."""
        if not self.redone:
            return f"Everything was up to date: reused the stored results ({duration(self.seconds, 1)})."
        na = self.not_attributed_total
        name = label or (model_label(self.model) if self.model else "the model")
        return (
            f"Attributed {self.attributed:,} of {self.conversions:,} conversions with {name}"
            f" in {duration(self.seconds, 1)}" + (f"; {na:,} could not be attributed." if na else ".")
        )


def summarise(result, seconds: Optional[float] = None) -> RunSummary:
    """A ``RunSummary`` of a ``runner.RunResult`` (``seconds``: the caller's wall time, if it measured
    more than the run itself)."""
    by_stage = {o.stage: o for o in result.outcomes}
    journeys = by_stage.get("journeys")
    attribute = by_stage.get("attribute")
    report = by_stage.get("report")
    jsum = journeys.record.summary if journeys else {}
    asum = attribute.record.summary if attribute else {}
    return RunSummary(
        model=asum.get("model") or (attribute.record.params.get("model") if attribute else None),
        conversions=int(jsum.get("conversions", 0)),
        attributed=int(asum.get("conversions_attributed", 0)),
        not_attributed={str(k): int(v) for k, v in (asum.get("not_attributed") or {}).items() if int(v)},
        sessions=int(attribute.record.rows) if attribute else 0,
        channel_days=int(report.record.rows) if report else 0,
        redone=[o.stage for o in result.outcomes if not o.skipped],
        reused=[o.stage for o in result.outcomes if o.skipped],
        seconds=float(seconds if seconds is not None else result.seconds),
        warnings=[plain_sentence(f, result.validation.rows) for f in result.validation.warnings],
        lines=[stage_words(o) for o in result.outcomes],
    )


STAGE_NAMES = {"journeys": "Journeys", "attribute": "Attribution", "report": "Channel report"}


def stage_words(outcome) -> str:
    """A stage's outcome for the analyst (the command line prints ``outcome.message``, which names the
    model by its registry name): "Attribution: 1,949 conversions with IHC — offline model in 0.78 s",
    "Journeys: up to date, reused"."""
    rec, s = outcome.record, outcome.record.summary or {}
    name = STAGE_NAMES.get(outcome.stage, outcome.stage.capitalize())
    if outcome.stage == "attribute":
        model = s.get("model") or rec.params.get("model")
        what = f" ({model_label(model)})" if model else ""
        if outcome.skipped:
            return f"{name}: up to date{what}, reused"
        return f"{name}: {int(s.get('conversions_attributed', 0)):,} conversions with {model_label(model)} in {duration(rec.seconds)}"
    if outcome.skipped:
        return f"{name}: up to date, reused"
    if outcome.stage == "journeys":
        facts = f"{int(s.get('sessions', rec.rows)):,} sessions of {int(s.get('conversions', 0)):,} conversions"
        return f"{name}: {facts} built in {duration(rec.seconds)}"
    if outcome.stage == "report":
        return f"{name}: {int(rec.rows):,} channel-days rebuilt in {duration(rec.seconds)}"
    return f"{name}: done in {duration(rec.seconds)}"
