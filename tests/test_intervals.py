"""Bootstrap intervals of CPO and ROAS (pipeline.intervals): hand-computed cases and the export."""

from __future__ import annotations

import csv
import io
import sqlite3

import numpy as np
import pytest

from pipeline.db import open_database
from pipeline.export import EXPORT_COLUMNS, INTERVAL_COLUMNS, read_report, to_csv_bytes, with_intervals
from pipeline.intervals import bootstrap, report_intervals
from tests.helpers import cli, run_db


def test_a_single_conversion_has_no_spread():
    # one conversion, credit 0.25 / 0.75 to two channels; every resample draws that conversion once
    got = bootstrap([0, 0], [0, 1], [0.25, 0.75], [25.0, 75.0], [10.0, 30.0], resamples=50, seed=1)
    assert got.cpo_low.tolist() == got.cpo_high.tolist() == [40.0, 40.0]
    assert got.roas_low.tolist() == got.roas_high.tolist() == [2.5, 2.5]
    assert got.support.tolist() == [1, 1]


def test_two_conversions_by_hand():
    # A (revenue 100) gives its whole credit to X (cost 10), B to Y. A resample draws A k times,
    # k ~ Binomial(2, 1/2): 0 (25%), 1 (50%), 2 (25%). CPO_X = 10/k: inf, 10, 5; ROAS_X = 100k/10: 0, 10, 20.
    # The 5th percentile falls in the lowest quarter and the 95th in the highest: CPO [5, inf], ROAS [0, 20].
    got = bootstrap([0, 1], [0, 1], [1.0, 1.0], [100.0, 0.0], [10.0, 4.0], resamples=400, seed=0)
    assert got.cpo_low[0] == 5.0 and got.cpo_high[0] == np.inf
    assert got.roas_low[0] == 0.0 and got.roas_high[0] == 20.0
    assert got.roas_low[1] == got.roas_high[1] == 0.0  # Y's conversion has no revenue


def test_zero_cost_and_zero_credit():
    # group 0: credit, no cost -> CPO 0 (whenever defined), ROAS undefined;
    # group 1: cost, no credit -> CPO undefined, ROAS 0
    got = bootstrap([0, 1], [0, 0], [1.0, 1.0], [10.0, 20.0], [0.0, 7.0], resamples=100, seed=0)
    assert got.cpo_low[0] == got.cpo_high[0] == 0.0
    assert np.isnan(got.roas_low[0]) and np.isnan(got.roas_high[0])
    assert np.isnan(got.cpo_low[1]) and np.isnan(got.cpo_high[1])
    assert got.roas_low[1] == got.roas_high[1] == 0.0
    assert got.support.tolist() == [2, 0]


def test_the_interval_contains_the_point_estimate_and_is_deterministic_per_seed():
    rng = np.random.default_rng(5)
    n_rows, n_conv, n_groups = 600, 150, 12
    conv = rng.integers(0, n_conv, n_rows)
    group = rng.integers(0, n_groups, n_rows)
    credit = rng.random(n_rows)
    revenue = credit * rng.uniform(10, 200, n_rows)
    cost = rng.uniform(0, 100, n_groups)
    got = bootstrap(conv, group, credit, revenue, cost, seed=3)
    point_credit = np.bincount(group, weights=credit, minlength=n_groups)
    point_rev = np.bincount(group, weights=revenue, minlength=n_groups)
    cpo, roas = cost / point_credit, point_rev / cost
    assert (got.cpo_low <= cpo + 1e-12).all() and (cpo <= got.cpo_high + 1e-12).all()
    assert (got.roas_low <= roas + 1e-12).all() and (roas <= got.roas_high + 1e-12).all()
    assert (got.cpo_low < got.cpo_high).any()  # not degenerate
    again = bootstrap(conv, group, credit, revenue, cost, seed=3)
    other = bootstrap(conv, group, credit, revenue, cost, seed=4)
    assert np.array_equal(got.cpo_low, again.cpo_low) and np.array_equal(got.roas_high, again.roas_high)
    assert not np.array_equal(got.roas_high, other.roas_high)


def test_a_channel_day_gets_the_same_interval_in_a_filtered_report(small_demo, tmp_path):
    db = tmp_path / "demo.db"
    sqlite3.connect(small_demo).backup(sqlite3.connect(db))
    run_db(db, model="linear")
    con = open_database(db)
    full = report_intervals(con, read_report(con))
    part = report_intervals(con, read_report(con, "2023-09-03", "2023-09-04", ["Paid Search Brand"]))
    assert len(part) == 2
    merged = part.merge(full, on=["channel_name", "date"], suffixes=("", "_full"))
    for column in INTERVAL_COLUMNS:
        assert np.array_equal(merged[column].to_numpy(), merged[column + "_full"].to_numpy(), equal_nan=True)
    totals = report_intervals(con, read_report(con), by=())
    assert len(totals) == 1 and totals["support"][0] > 0


@pytest.fixture
def attributed(tiny):
    run_db(tiny, model="linear")
    return tiny


def test_export_intervals_adds_four_columns_and_leaves_the_default_csv_unchanged(attributed, tmp_path):
    plain, wide = tmp_path / "plain.csv", tmp_path / "wide.csv"
    assert cli("export", str(attributed), "--csv", str(plain)).returncode == 0
    result = cli("export", str(attributed), "--csv", str(wide), "--intervals", "--seed", "7")
    assert result.returncode == 0, result.stderr
    plain_rows = list(csv.reader(io.StringIO(plain.read_text())))
    wide_rows = list(csv.reader(io.StringIO(wide.read_text())))
    assert plain_rows[0] == EXPORT_COLUMNS
    assert wide_rows[0] == EXPORT_COLUMNS + INTERVAL_COLUMNS
    assert [r[:7] for r in wide_rows] == plain_rows
    con = open_database(attributed)
    assert wide.read_bytes() == to_csv_bytes(with_intervals(con, read_report(con), seed=7))
    for row in wide_rows[1:]:
        cpo, cpo_low, cpo_high = row[5], row[7], row[8]
        if cpo and cpo_high:
            assert float(cpo_low) <= float(cpo) <= float(cpo_high)
        if not cpo:  # undefined CPO: undefined bounds
            assert cpo_low == cpo_high == ""


def test_difference_intervals_by_hand():
    from pipeline.intervals import difference_intervals

    conv, group = np.array([0, 1, 2, 3]), np.array([0, 0, 0, 0])
    same = np.ones(4)
    assert difference_intervals(conv, group, same, same, 1, 4) == (np.zeros(1), np.zeros(1))
    # model b moves every conversion's credit out of group 0 into group 1: -4 in every resample
    low, high = difference_intervals(
        np.r_[conv, conv], np.r_[group, group + 1], np.r_[same, 0 * same], np.r_[0 * same, same], 2, 4
    )
    assert low.tolist() == [-4.0, 4.0] and high.tolist() == [-4.0, 4.0]
    # two conversions moving credit in opposite directions: resample sums 2, 0, -2 (25/50/25%) -> [-2, 2]
    low, high = difference_intervals([0, 1], [0, 0], [0.0, 1.0], [1.0, 0.0], 1, 2, resamples=400)
    assert low.tolist() == [-2.0] and high.tolist() == [2.0]


def test_compare_marks_differences_within_the_noise(small_demo, tmp_path):
    from pipeline.compare import ModelSpec, compare_models

    db = tmp_path / "demo.db"
    sqlite3.connect(small_demo).backup(sqlite3.connect(db))
    run_db(db, model="linear")
    result = compare_models(open_database(db), [ModelSpec("linear"), ModelSpec("last-click"), ModelSpec("first-click")])
    noise = result.noise
    assert set(noise["model"]) == {"last-click", "first-click"}
    channels = set(result.table["channel_name"])
    assert set(noise["channel_name"]) == channels and len(noise) == 2 * len(channels)
    wide = result.within_noise("share")
    assert list(wide.columns) == ["channel_name", "Δ last-click", "Δ first-click"]
    # a channel with no credit under any model has a zero difference: within the noise
    share = result.wide("share").set_index("channel_name")
    flags = wide.set_index("channel_name")
    zero = share.index[(share["Δ last-click"] == 0)]
    assert flags.loc[zero, "Δ last-click"].all()
    assert not flags["Δ last-click"].all()  # some shifts are real on 400 conversions


def test_report_interval_tables_count_only_the_reports_channel_days_by_hand():
    """One resample that draws each conversion once: every bound is the point estimate, worked out by hand.
    The credit of a channel-day the report does not show (Direct on 09-05, and a channel it does not
    have) must not count, in any grouping."""
    import pandas as pd

    from pipeline.intervals import Draw, report_interval_tables

    report = pd.DataFrame(
        {
            "channel_name": ["Direct", "Paid", "Paid"],
            "date": ["2023-09-04", "2023-09-04", "2023-09-05"],
            "cost": [5.0, 10.0, 20.0],
        }
    )
    credit = pd.DataFrame.from_records(
        [
            ("a", "Paid", "2023-09-04", 0.5, 50.0),
            ("a", "Direct", "2023-09-04", 0.5, 50.0),
            ("b", "Paid", "2023-09-05", 1.0, 30.0),
            ("c", "Direct", "2023-09-05", 1.0, 10.0),  # not a channel-day of the report
            ("c", "Other", "2023-09-04", 1.0, 10.0),  # not a channel of the report
        ],
        columns=["conv_id", "channel_name", "date", "ihc", "revenue"],
    )
    draw = Draw(pd.Index(["a", "b", "c"]), np.ones((1, 3)))
    groupings = [("channel_name",), (), ("channel_name", "date")]
    for grain in ("day", "week"):  # 09-04 is a Monday: both days are one week
        channel, overall, days = report_interval_tables(
            None, report, groupings, grain=grain, draw=draw, read_credit=lambda *_: credit
        )
        # Paid: cost 30 / credit 1.5 = 20, revenue 80 / 30; Direct: 5 / 0.5 = 10, revenue 50 / 5 = 10.
        assert channel["channel_name"].tolist() == ["Direct", "Paid"]
        assert channel["CPO_low"].tolist() == channel["CPO_high"].tolist() == [10.0, 20.0]
        assert channel["ROAS_low"].tolist() == pytest.approx([10.0, 80 / 30])
        assert channel["support"].tolist() == [1, 2]
        # All: cost 35 / credit 2 = 17.5, revenue (50 + 50 + 30) / 35; conversions a and b (c is not shown).
        assert overall["CPO_low"].tolist() == [17.5] and overall["ROAS_high"].tolist() == pytest.approx([130 / 35])
        assert overall["support"].tolist() == [2]
        if grain == "day":  # Direct 09-04: 5 / 0.5; Paid 09-04: 10 / 0.5, ROAS 5; Paid 09-05: 20 / 1, ROAS 1.5
            assert days["CPO_low"].tolist() == [10.0, 20.0, 20.0]
            assert days["ROAS_low"].tolist() == [10.0, 5.0, 1.5]
            assert days["support"].tolist() == [1, 1, 1]
        else:  # one week per channel: the channels' figures
            assert days["date"].tolist() == ["2023-09-04", "2023-09-04"]
            assert days["CPO_low"].tolist() == [10.0, 20.0] and days["support"].tolist() == [1, 2]


def test_credit_within_is_the_credit_of_the_narrower_range(small_demo, tmp_path):
    """The dashboard reads the credit of the filter's dates once and cuts it to a channel's own days: the
    same rows, in the same order, as reading that range."""
    import pandas as pd

    from pipeline.intervals import credit_rows, credit_within

    hand = pd.DataFrame(
        {"conv_id": ["a", "b", "c", "d"], "date": ["2023-09-03", "2023-09-05", "2023-09-04", "2023-09-06"]}
    )
    assert credit_within(hand, "2023-09-04", "2023-09-05")["conv_id"].tolist() == ["b", "c"]
    assert credit_within(hand, None, "2023-09-04")["conv_id"].tolist() == ["a", "c"]
    assert credit_within(hand, "2023-09-03", None) is hand  # nothing cut: the same frame
    db = tmp_path / "demo.db"
    sqlite3.connect(small_demo).backup(sqlite3.connect(db))
    run_db(db, model="linear")
    con = open_database(db)
    for by in ("session-date", "conversion-date"):
        whole = credit_rows(con, None, None, by)
        for start, end in [("2023-09-02", "2023-09-06"), (None, "2023-09-04"), ("2023-09-09", None)]:
            pd.testing.assert_frame_equal(credit_within(whole, start, end), credit_rows(con, start, end, by))
