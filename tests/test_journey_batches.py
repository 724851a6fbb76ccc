"""Journeys built, attributed and stored in batches of whole journeys (issue 12): peak memory follows the
batch size, not the database; every stored row and every stage summary is what one batch gives."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from pipeline import journey_index
from pipeline.db import open_database
from pipeline.runner import RunOptions, attribute_stage, journeys_stage, run_pipeline
from pipeline.status import StageBook
from pipeline.window import Window

BATCH_ENV = "ATTRIBUTION_JOURNEY_BATCH_ROWS"
SMALL_BATCH = 150  # journey rows; the small demo has ~800 in 400 conversions

TABLES = {
    "pipeline_journeys": "SELECT * FROM pipeline_journeys ORDER BY conversion_id, session_id",
    "pipeline_journey_conversions": "SELECT * FROM pipeline_journey_conversions ORDER BY conversion_id",
    "attribution_customer_journey": "SELECT * FROM attribution_customer_journey ORDER BY conv_id, session_id",
    "pipeline_attribution": "SELECT * FROM pipeline_attribution ORDER BY conv_id, session_id",
    "pipeline_unattributed": "SELECT conv_id, reason, model FROM pipeline_unattributed ORDER BY conv_id",
    "channel_reporting": "SELECT * FROM channel_reporting ORDER BY channel_name, date",
}


def _rows(db) -> dict:
    con = sqlite3.connect(db)
    try:
        out = {name: con.execute(sql).fetchall() for name, sql in TABLES.items()}
        # (validation's wording quotes "the last attribution's credit": a streamed run validates before
        # it attributes, as an API run does, so that one record may differ)
        out["summaries"] = con.execute(
            "SELECT stage, rows, summary FROM pipeline_stages WHERE stage != 'validate' ORDER BY stage"
        ).fetchall()
        return out
    finally:
        con.close()


def _same(a: dict, b: dict) -> None:
    for name in a:
        assert len(a[name]) == len(b[name]), name
        for ra, rb in zip(a[name], b[name]):
            for va, vb in zip(ra, rb):
                if isinstance(va, float) and isinstance(vb, float):
                    assert va == pytest.approx(vb, abs=1e-12), name
                else:
                    assert va == vb, name


class _Spy:
    """The largest journeys index built at once (rows): with batches, one batch's."""

    def __init__(self, monkeypatch):
        self.sizes: list[int] = []
        original = journey_index.JourneyIndex.from_columns.__func__

        def spy(cls, columns):
            index = original(cls, columns)
            self.sizes.append(index.n_rows)
            return index

        monkeypatch.setattr(journey_index.JourneyIndex, "from_columns", classmethod(spy))


def _run(db, **options):
    con = open_database(db, write=True)
    try:
        return run_pipeline(con, RunOptions(**options))
    finally:
        con.close()


@pytest.fixture
def two_copies(small_demo, tmp_path):
    whole, batched = tmp_path / "whole.db", tmp_path / "batched.db"
    shutil.copy(small_demo, whole)
    shutil.copy(small_demo, batched)
    return whole, batched


@pytest.mark.parametrize(
    "model", ["linear", "ihc", "time-decay", "position-based", "first-click", "last-click", "markov", "shapley"]
)
def test_run_in_batches_stores_what_one_batch_does(two_copies, monkeypatch, model):
    whole, batched = two_copies
    _run(whole, model=model)
    monkeypatch.setenv(BATCH_ENV, str(SMALL_BATCH))
    spy = _Spy(monkeypatch)
    result = _run(batched, model=model)
    summary = result.outcomes[0].record.summary
    assert summary["sessions"] > 3 * SMALL_BATCH  # several batches
    # no journeys index larger than a batch plus one journey (a journey never straddles two batches)
    assert spy.sizes and max(spy.sizes) <= SMALL_BATCH + summary["max_length"]
    _same(_rows(whole), _rows(batched))


def test_reattributing_stored_journeys_in_batches(two_copies, monkeypatch):
    """Journeys up to date, another model: the stored journeys are read back in batches too."""
    whole, batched = two_copies
    for db in (whole, batched):
        _run(db, model="linear")
    _run(whole, model="markov", params={"order": 2})
    monkeypatch.setenv(BATCH_ENV, str(SMALL_BATCH))
    spy = _Spy(monkeypatch)
    result = _run(batched, model="markov", params={"order": 2})
    assert result.outcomes[0].skipped  # journeys reused
    assert spy.sizes and max(spy.sizes) <= SMALL_BATCH + result.outcomes[0].record.summary["max_length"]
    _same(_rows(whole), _rows(batched))


def test_separate_stages_in_batches(two_copies, monkeypatch):
    """`journeys` then `attribute` as separate commands, in batches, store the same as `run`."""
    whole, batched = two_copies
    _run(whole, model="ihc")
    monkeypatch.setenv(BATCH_ENV, str(SMALL_BATCH))
    spy = _Spy(monkeypatch)
    _run(batched, model="ihc")  # validation and report records; then the two stages again, forced
    con = open_database(batched, write=True)
    try:
        book = StageBook(con)
        built = journeys_stage(book, Window(), force=True)
        assert built.output is None  # streamed into the database, not held in memory
        from pipeline.model_choice import choose_model

        attribute_stage(StageBook(con), choose_model("ihc", {}, None), force=True)
    finally:
        con.close()
    assert max(spy.sizes) <= SMALL_BATCH + built.record.summary["max_length"]
    _same(_rows(whole), _rows(batched))


def test_demo_sized_database_is_one_batch(small_demo, tmp_path, monkeypatch):
    """At the default batch size a demo-sized database is read in one go (its speed does not change)."""
    db = tmp_path / "one.db"
    shutil.copy(small_demo, db)
    spy = _Spy(monkeypatch)
    result = _run(db, model="linear")
    assert max(spy.sizes) == result.outcomes[0].record.summary["sessions"]
    assert result.outcomes[0].output is not None


def test_batches_never_split_a_journey(small_demo, monkeypatch):
    from pipeline.journey_batches import read_journeys

    con = open_database(small_demo)
    try:
        stream = read_journeys(con, Window(), rows=SMALL_BATCH)
        seen: list = []
        total = 0
        for batch in stream:
            ids = np.unique(batch.columns["conversion_id"])
            assert not set(ids.tolist()) & set(seen)  # each conversion's rows in one batch only
            assert set(ids.tolist()) <= set(batch.conversion_ids.tolist())
            seen += batch.conversion_ids.tolist()
            total += len(batch.columns["ts"])
        from pipeline.journeys import build_journeys

        whole = build_journeys(con, Window())
    finally:
        con.close()
    assert seen == whole.conversion_ids.tolist()
    assert total == len(whole.columns["ts"])


def test_the_connection_keeps_its_temp_store(small_demo):
    """The journeys query sorts with the temp store on disk; the connection's own setting comes back."""
    from pipeline.journey_batches import read_journeys

    con = open_database(small_demo)
    try:
        (before,) = con.execute("PRAGMA temp_store").fetchone()
        read_journeys(con, Window())  # one batch
        assert con.execute("PRAGMA temp_store").fetchone()[0] == before
        for _ in read_journeys(con, Window(), rows=SMALL_BATCH):  # several, consumed outside a transaction
            pass
        assert con.execute("PRAGMA temp_store").fetchone()[0] == before
    finally:
        con.close()


def test_batch_size_setting(monkeypatch):
    from pipeline.journey_batches import DEFAULT_BATCH_ROWS, MAX_BATCH_ROWS, batch_rows

    for value, expected in (("1000000000000", MAX_BATCH_ROWS), ("0", 1), ("many", DEFAULT_BATCH_ROWS)):
        monkeypatch.setenv(BATCH_ENV, value)
        assert batch_rows() == expected
