"""Markov/Shapley path summaries computed by an engine (pipeline.engines.paths) on DuckDB: equal, field by
field, to the SQLite engine's ``path_summary`` / ``non_converting_summary`` (Postgres: in
tests/test_engine_postgres.py), and Markov credit from them equal to the SQLite run's."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from pipeline.convert import convert
from pipeline.engines import duckdb as E
from pipeline.engines import paths
from pipeline.models import get_model
from tests.engine_support import sqlite_summaries
from tests.helpers import assert_same_summary, run_db
from tests.test_engine_duckdb import WINDOWS


@pytest.fixture(scope="module")
def demo(small_demo, tmp_path_factory):
    base = tmp_path_factory.mktemp("paths")
    db = base / "run.db"
    shutil.copy(small_demo, db)
    run_db(db, model="markov")
    target = f"duckdb:///{base / 'x.duckdb'}"
    convert(db, target)
    return db, target


@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_summaries_equal_sqlite(demo, window):
    db, target = demo
    expected_all, expected_null = sqlite_summaries(db, window)
    with E.open_engine(target) as engine:
        got_all, got_null = paths.path_summary(engine, window), paths.non_converting_summary(engine, window)
    for got, expected in ((got_all, expected_all), (got_null, expected_null)):
        assert expected.n_paths > 100
        assert_same_summary(got, expected)


def test_markov_credit_from_the_engine_summary(demo):
    db, target = demo
    con = sqlite3.connect(db)
    stored = {(c, s): v for c, s, v in con.execute("SELECT conv_id, session_id, ihc FROM attribution_customer_journey")}
    con.close()
    with E.open_engine(target) as engine:
        journeys = E.journeys(engine)
        null = paths.non_converting_summary(engine, journeys.window)
    index = journeys.index
    credit = get_model("markov").credits(index, non_converting=null).ihc
    got = dict(zip(zip(index.column("conversion_id"), index.column("session_id")), credit))
    assert got.keys() == stored.keys()
    assert max(abs(got[k] - stored[k]) for k in stored) <= 1e-9
