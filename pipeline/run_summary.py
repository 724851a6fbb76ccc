"""What a run did, in the words the dashboard shows after it: conversions attributed, conversions not
attributed and why, the stages redone or reused, and the time taken."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


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
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def not_attributed_total(self) -> int:
        return sum(self.not_attributed.values())

    def headline(self, model_label: Optional[str] = None) -> str:
        """One sentence; ``model_label`` replaces the model's registry name."""
        if not self.redone:
            return f"Everything was up to date: reused the stored results ({self.seconds:.1f} s)."
        na = self.not_attributed_total
        return (
            f"Attributed {self.attributed:,} of {self.conversions:,} conversions with {model_label or self.model}"
            f" in {self.seconds:.1f} s" + (f"; {na:,} could not be attributed." if na else ".")
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
        warnings=[f.line() for f in result.validation.warnings],
        lines=list(result.lines()),
    )
