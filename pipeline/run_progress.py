"""A run's progress in the words of its steps: "Step 2 of 4: attributing the conversions (linear)".

``run_pipeline`` computes the journeys and a local model's credit while validation's whole-table
scans run, and validation decides at the end whether anything is saved. Its raw stage messages
("journeys: …", then "validate: …" at 70%) read as if the run went back to an earlier step. Here the
steps are numbered in the order they really run, only the steps that do work are counted, and the
bar's share of each step follows its usual weight. The step number shown never decreases, nor does
the bar (``progress.forward_only`` sits outside): a step that speaks again after a later one (a
credit recomputed after the checks) keeps the later number and says "again".

``run_steps(progress, order, doing)`` returns one ``Progress`` callback per stage; a stage that does
no work in this run gets one that says nothing.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

from .model_settings import MODEL_LABELS
from .progress import Progress, ensure

STAGES = ("journeys", "attribute", "validate", "report")
WORDS = {
    "journeys": "building the customer journeys",
    "attribute": "attributing the conversions",
    "validate": "checking the data",
    "report": "building the channel report",
}
WEIGHTS = {"journeys": 15, "attribute": 55, "validate": 10, "report": 20}
_PREFIXES = tuple(f"{word}: " for word in (*STAGES, "markov", "shapley"))


def step_order(credit_first: bool) -> list[str]:
    """The order the stages run in: with a local model's credit computed ahead (while validation
    scans), the checks come after it; otherwise (the IHC API, or credit reused) before."""
    if credit_first:
        return ["journeys", "attribute", "validate", "report"]
    return ["journeys", "validate", "attribute", "report"]


def run_steps(progress: Progress, order: Sequence[str], doing: Mapping[str, bool]) -> dict[str, Progress]:
    """One callback per stage of ``order``: its own (done, total, message) becomes its slice of the
    whole bar and "Step i of n: <words> (<detail>)"."""
    outer = ensure(progress)
    working = [stage for stage in order if doing.get(stage)]
    weight = sum(WEIGHTS[s] for s in working) or 1
    furthest = [0]
    parts: dict[str, Progress] = {}
    offset = 0.0
    for number, stage in enumerate(working, start=1):
        share = 100.0 * WEIGHTS[stage] / weight
        parts[stage] = _step(outer, stage, number, len(working), offset, share, working, furthest)
        offset += share
    for stage in STAGES:
        parts.setdefault(stage, _silent)
    return parts


def _silent(done: int, total: int, message: str) -> None:  # noqa: ARG001 - the callback signature
    return None


def _step(outer: Progress, stage, number, count, offset, share, working, furthest) -> Progress:
    after_credit = stage == "validate" and "attribute" in working[: number - 1]

    def inner(done: int, total: int, message: str) -> None:
        again = number < furthest[0]
        furthest[0] = max(furthest[0], number)
        words = WORDS[stage] + (" before saving anything" if after_credit else "") + (" again" if again else "")
        detail = detail_of(message)
        text = f"Step {furthest[0]} of {count}: {words}" + (f" ({detail})" if detail else "")
        frac = done / total if total else 1.0
        outer(int(round(offset + min(max(frac, 0.0), 1.0) * share)), 100, text)

    return inner


# "model ihc" / "1,000 conversions with ihc": the model named as the dashboard names it
_MODEL_NAMED = re.compile(r"^(?:model (?P<alone>\S+)|(?P<lead>.+ with )(?P<after>\S+))$")


def detail_of(message: str) -> str:
    """A stage's message without its stage name ("validate: the costs" → "the costs"), a model by its
    label ("attribute: model ihc" → "IHC — offline model")."""
    message = (message or "").strip()
    while message.startswith(_PREFIXES):
        message = message.split(": ", 1)[1]
    named = _MODEL_NAMED.match(message)
    if named:
        name = named.group("alone") or named.group("after")
        if name in MODEL_LABELS:
            return (named.group("lead") or "") + MODEL_LABELS[name]
    return message
