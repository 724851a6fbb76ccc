"""Fidelity bounds of issue 3 on the real API vectors, challenge profile (skips without ../shared)."""

import pytest

from pipeline.ihc import fidelity
from pipeline.journey_index import VALUE_COLUMNS
from tests.ihc_support import shared_file


@pytest.fixture(scope="module")
def replayed():
    return fidelity.replay("challenge", fidelity.load_vectors(shared_file(fidelity.VECTORS_NAME)))


def test_fidelity_targets_hold(replayed):
    failed = [t for t in fidelity.check_targets(replayed) if not t["ok"]]
    assert not failed, failed


def test_holder_and_single_sessions(replayed):
    multi = replayed[replayed["confidence"].isin(["high", "medium"]) & (replayed["journey_length"] >= 2)]
    assert len(multi) == 1179
    assert multi["err_holder"].quantile(0.99) <= 0.005
    single = replayed[replayed["journey_length"] == 1]
    assert single[[f"err_{c}" for c in VALUE_COLUMNS]].to_numpy().max() == 0.0


def test_summary_has_every_confidence_and_length(replayed):
    summary = fidelity.summarise(replayed)
    assert {"high", "medium", "low", "high+medium"} <= set(summary["confidence"])
    assert "multi (2+)" in set(summary["length"])
    text = fidelity.format_report(summary, fidelity.check_targets(replayed), "challenge")
    assert "ihc" in text and "FAIL" not in text
