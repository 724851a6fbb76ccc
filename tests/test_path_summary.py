"""Markov and Shapley fitted on path summaries (distinct paths with counts) give exactly the credit of
the per-session implementation: the reference is ``journeys.build_non_converting`` (every
non-converting session read into Python) fed to the same models, compared on the demo database and
on random databases, with lookback windows and date ranges."""

from __future__ import annotations

import sqlite3
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import journeys as jr
from pipeline.errors import InputError
from pipeline.journey_index import JourneyIndex
from pipeline.models import get_model
from pipeline.models.channel_paths import channel_paths
from pipeline.models.markov import fit_markov
from pipeline.models.shapley import fit_shapley
from pipeline.models.weighted_paths import PathSummary
from pipeline.path_summary import non_converting_summary
from pipeline.schema import INPUT_DDL
from pipeline.window import Window
from tests.models_testkit import journeys_frame

MODELS = [("markov", {"order": k}) for k in (1, 2, 3, 4)] + [
    ("markov", {"order": 2, "collapse_repeats": True}),
    ("shapley", {}),
    ("shapley", {"max_coalition_size": 2, "worth": "conversions"}),
]


def reference_paths(index: JourneyIndex) -> Counter:
    """Non-converting paths of the reference implementation as a multiset of label tuples."""
    labels = index.column("channel_label")
    return Counter(tuple(labels[s : s + n].tolist()) for s, n in zip(index.start.tolist(), index.length.tolist()))


def summary_paths(summary: PathSummary) -> Counter:
    frame = summary.frame()
    assert (frame["n_conversions"] == 0).all()
    return Counter({p: int(n) for p, n in zip(frame["path"], frame["n_non_conversions"])})


def assert_same_credit(con: sqlite3.Connection, window: Window) -> None:
    journeys = jr.build_journeys(con, window)
    reference = jr.build_non_converting(con, window)
    summary = non_converting_summary(con, window)
    assert summary_paths(summary) == reference_paths(reference)
    if journeys.index.n_rows == 0:
        return
    for name, params in MODELS:
        model = get_model(name)
        old = model.credits(journeys.index, params, non_converting=reference).ihc
        new = model.credits(journeys.index, params, non_converting=summary).ihc
        np.testing.assert_allclose(new, old, rtol=0, atol=1e-12, err_msg=f"{name} {params} {window}")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    """The default demo database (450k sessions)."""
    from pipeline.demo import write_demo_db

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    write_demo_db(path)
    return path


@pytest.mark.parametrize(
    "window",
    [Window(), Window(lookback_days=3), Window(start="2023-09-03", end="2023-09-06", lookback_days=2)],
    ids=["all", "lookback", "range+lookback"],
)
def test_same_credit_as_the_per_session_implementation_on_the_demo(demo_db, window):
    con = sqlite3.connect(demo_db)
    try:
        assert_same_credit(con, window)
    finally:
        con.close()


# ---- random databases ------------------------------------------------------------------------------

# Channel names with every character a path encoding could trip over.
CHANNELS = ["A", "B", "a,b", "x.y", "*", "é ü", "'q'", "ta\tb", "", "日本", "A ", "1", None]


def write(path, sessions, conversions, ddl: str = INPUT_DDL) -> sqlite3.Connection:
    """A database at ``path`` (":memory:" too) holding ``databases()``' sessions (5 fields, flags 0) and
    conversions."""
    con = sqlite3.connect(path)
    con.executescript(ddl)
    con.executemany("INSERT INTO session_sources VALUES (?, ?, ?, ?, ?, 0, 0, 0)", sessions)
    con.executemany("INSERT INTO conversions VALUES (?, ?, ?, ?, ?)", conversions)
    con.commit()
    return con


@st.composite
def databases(draw):
    """Users with 0-6 sessions over 5 days (some at the same second), some converting (0-2 times)."""
    n_users = draw(st.integers(1, 12))
    sessions, conversions = [], []
    for u in range(n_users):
        user = f"u{u}" if u % 4 else f"U,{u}.*"
        for k in range(draw(st.integers(0, 6))):
            day = draw(st.integers(1, 5))
            second = draw(st.sampled_from([0, 0, 30, 3600, 7200, 86399]))
            sid = draw(st.sampled_from([f"s{u}-{k}", f"{u}{k}", f"S,{u}.{k}*", f"é{u}{k}"]))
            channel = draw(st.sampled_from(CHANNELS))
            sessions.append(
                (
                    sid,
                    user,
                    f"2024-03-0{day}",
                    f"{second // 3600:02d}:{second % 3600 // 60:02d}:{second % 60:02d}",
                    channel,
                )
            )
        for k in range(draw(st.integers(0, 2)) if u % 3 == 0 else 0):
            day = draw(st.integers(1, 5))
            conversions.append((f"c{u}-{k}", user, f"2024-03-0{day}", "12:00:00", 10.0))
    unique = {s[0]: s for s in sessions}  # session_id is the key
    return list(unique.values()), conversions


WINDOWS = st.builds(
    Window,
    start=st.sampled_from([None, "2024-03-02", "2024-03-03"]),
    end=st.sampled_from([None, "2024-03-04", "2024-03-05"]),
    lookback_days=st.sampled_from([None, 1, 2]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(databases(), WINDOWS)
def test_same_credit_on_random_databases(db, window):
    con = write(":memory:", *db)
    assert_same_credit(con, window)


# ---- the summary as the models' input ----------------------------------------------------------------


def test_a_summary_fits_like_the_paths_it_stands_for():
    """The docs' example: conv A>B, B, A>A>B; lost B, C>A. As a summary, B is one row that converted
    once and did not once."""
    summary = PathSummary.from_frame(
        pd.DataFrame(
            {
                "path": ["A > B", "B", "A > A > B", "C > A"],
                "n_conversions": [1, 1, 1, 0],
                "n_non_conversions": [0, 1, 0, 1],
                "value": [10.0, 5.0, 7.0, 0.0],
            }
        ),
        separator=" > ",
    )
    fit = fit_markov(summary.channel_paths(), order=1)
    np.testing.assert_allclose(fit.share, [0.3, 0.6, 0.1], atol=1e-15)
    np.testing.assert_allclose(fit_markov(summary.channel_paths(), order=2).removal_effect, [2 / 3, 1, 0], atol=1e-15)
    conv = JourneyIndex.from_frame(journeys_frame([["A", "B"], ["B"], ["A", "A", "B"]]))
    lost = JourneyIndex.from_frame(journeys_frame([["B"], ["C", "A"]], prefix="n"))
    per_path = channel_paths(conv, lost)
    for order in (1, 2, 3, 4):
        assert fit_markov(summary.channel_paths(), order).share.tolist() == fit_markov(per_path, order).share.tolist()
    assert fit_shapley(summary.channel_paths()).share.tolist() == fit_shapley(per_path).share.tolist()
    credit = get_model("markov").attribute(conv, non_converting=summary.select(summary.non_conversions > 0))["ihc"]
    np.testing.assert_allclose(credit, [1 / 3, 2 / 3, 1, 1 / 6, 1 / 6, 2 / 3], atol=1e-15)


def test_repeated_rows_add_up_and_weights_count_like_repeats():
    twice = PathSummary.from_paths([["A", "B"], ["A", "B"], ["B"]], [1, 0, 1], [0, 1, 2])
    once = PathSummary.from_paths([["A", "B"], ["B"]], [1, 1], [1, 2])
    for order in (1, 2):
        assert (
            fit_markov(twice.channel_paths(), order).share.tolist()
            == fit_markov(once.channel_paths(), order).share.tolist()
        )
    assert fit_shapley(twice.channel_paths()).share.tolist() == fit_shapley(once.channel_paths()).share.tolist()
    frame = once.frame(separator=">")
    assert frame["path"].tolist() == ["A>B", "B"] and frame["n_non_conversions"].tolist() == [1.0, 2.0]


def test_select_keeps_only_the_channels_its_rows_use():
    summary = PathSummary.from_paths([["A", "C"], ["B"]], [0, 0], [1, 1]).select(np.array([False, True]))
    assert summary.labels.tolist() == ["B"] and summary.codes.tolist() == [0]


@pytest.mark.parametrize(
    "paths, conv, null, message",
    [
        ([[]], [1], [0], "has no channel"),
        ([["A"]], [-1], [0], "n_conversions"),
        ([["A"]], [0], [1.5], "n_non_conversions"),
        ([["A", None]], [1], [0], "missing channel"),
    ],
)
def test_bad_summaries_are_input_errors(paths, conv, null, message):
    with pytest.raises(InputError, match=message):
        PathSummary.from_paths(paths, conv, null)


def test_an_empty_database_gives_an_empty_summary():
    con = sqlite3.connect(":memory:")
    con.executescript(INPUT_DDL)
    summary = non_converting_summary(con, Window())
    assert summary.n_paths == 0 and summary.labels.tolist() == []


def assert_full_summary_matches(con: sqlite3.Connection, window: Window) -> None:
    """``path_summary``: converting journeys (with revenue) and non-converting paths in one summary,
    fitting exactly like the journeys and the per-session reference."""
    from pipeline.path_summary import path_summary

    journeys = jr.build_journeys(con, window)
    reference = jr.build_non_converting(con, window)
    summary = path_summary(con, window)
    frame = summary.frame()
    index = journeys.index
    assert Counter({p: int(n) for p, n in zip(frame["path"], frame["n_conversions"]) if n}) == reference_paths(index)
    assert Counter({p: int(n) for p, n in zip(frame["path"], frame["n_non_conversions"]) if n}) == reference_paths(
        reference
    )
    revenue = dict(con.execute("SELECT conv_id, coalesce(revenue, 0) FROM conversions").fetchall())
    expected = sum(revenue[c] for c in index.column("conversion_id")[index.start].tolist())
    assert frame["value"].sum() == pytest.approx(expected, abs=1e-9)
    if index.n_rows == 0:
        return
    per_path = channel_paths(index, reference)
    for order in (1, 2, 3, 4):
        np.testing.assert_allclose(
            fit_markov(summary.channel_paths(), order).share, fit_markov(per_path, order).share, rtol=0, atol=1e-12
        )
    np.testing.assert_allclose(
        fit_shapley(summary.channel_paths()).share, fit_shapley(per_path).share, rtol=0, atol=1e-12
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(databases(), WINDOWS)
def test_full_summary_on_random_databases(db, window):
    con = write(":memory:", *db)
    assert_full_summary_matches(con, window)


def test_full_summary_on_the_demo(demo_db):
    con = sqlite3.connect(demo_db)
    try:
        assert_full_summary_matches(con, Window(lookback_days=3))
    finally:
        con.close()


def test_distinct_paths_weigh_repeats_and_fall_back_on_a_hash_collision(monkeypatch):
    from pipeline.models import channel_paths as cp

    codes = np.array([0, 1, 1, 0, 1, 0, 1, 2])  # A>B, B, A>B, A>B, C
    length = np.array([2, 1, 2, 2, 1])
    start = np.concatenate(([0], np.cumsum(length)[:-1]))
    paths = cp.PathSet(codes, np.repeat(np.arange(5), length), start, length)
    distinct = cp.distinct_paths(paths)
    assert distinct.codes.tolist() == [0, 1, 1, 2] and distinct.weight.tolist() == [3.0, 1.0, 1.0]
    monkeypatch.setattr(cp, "_P1", 2)  # every path hashes alike: the check sees it, nothing merges
    monkeypatch.setattr(cp, "_P2", 2)
    assert cp.distinct_paths(paths) is paths
