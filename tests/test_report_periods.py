"""Week and month views that do not mislead (issue 16 review #2, #3, #4): partial periods say so and are
never dated before the filter's start, one axis label per period, only periods holding incomplete days
shaded; cost-free channels have no CPO line; the incomplete-days warning only where those days are shown.
Expected values are worked out by hand in the comments."""

from __future__ import annotations

import pandas as pd

from pipeline import report_charts as rc
from pipeline import report_views as rv
from pipeline.completeness import IncompleteDays


def rows_of(days: list[str]) -> pd.DataFrame:
    """Two channels on each day: Paid (cost 10, 4 conversions, €40) and Direct (no cost, 2 conversions)."""
    out = []
    for d in days:
        out.append(dict(channel_name="Paid", date=d, cost=10.0, ihc=4.0, ihc_revenue=40.0))
        out.append(dict(channel_name="Direct", date=d, cost=0.0, ihc=2.0, ihc_revenue=20.0))
    return pd.DataFrame(out)


def test_period_table_counts_the_days_each_period_has_in_the_range():
    # 2023-09-01 is a Friday: its week (from Monday 08-28) has 3 days in 09-01…09-10, the next all 7.
    weeks = rv.period_table("week", "2023-09-01", "2023-09-10")
    assert weeks.to_dict("list") == {
        "period": ["2023-08-28", "2023-09-04"],
        "date": ["2023-09-01", "2023-09-04"],
        "days": [3, 7],
        "length": [7, 7],
    }
    # 09-03 (Sunday) … 09-07: one day of the first week, four of the second.
    weeks = rv.period_table("week", "2023-09-03", "2023-09-07")
    assert weeks[["date", "days"]].to_dict("list") == {"date": ["2023-09-03", "2023-09-04"], "days": [1, 4]}
    month = rv.period_table("month", "2023-09-01", "2023-09-10")
    assert month[["date", "days", "length"]].to_dict("list") == {"date": ["2023-09-01"], "days": [10], "length": [30]}
    assert rv.partial_text(3, 7) == "3 of 7 days" and rv.partial_text(7, 7) == ""


def test_no_week_is_dated_before_the_chosen_start():
    rows = rows_of(["2023-09-03", "2023-09-04", "2023-09-05"])
    weekly = rv.by_period(rows, "week", "2023-09-03", "2023-09-05")
    # Paid: 09-03 alone (week of 08-28, clipped to 09-03), then 09-04 + 09-05 = cost 20.
    paid = weekly[weekly["channel_name"] == "Paid"]
    assert paid["date"].tolist() == ["2023-09-03", "2023-09-04"]
    assert paid["cost"].tolist() == [10.0, 20.0]
    series = rv.daily(rows, "cost", ["Paid"], "week", "2023-09-03", "2023-09-05")
    assert series["date"].min() == "2023-09-03"


def test_cpo_of_a_channel_without_cost_is_a_gap_not_zero():
    rows = rows_of(["2023-09-04", "2023-09-05"])
    cpo = rv.daily(rows, "CPO", ["Paid", "Direct"])
    # Paid: 10 / 4 = 2.5 a day; Direct: no cost, so no cost per order (was drawn as €0, the "cheapest").
    assert cpo[cpo["channel_name"] == "Paid"]["value"].tolist() == [2.5, 2.5]
    assert cpo[cpo["channel_name"] == "Direct"]["value"].isna().all()
    assert rv.unpaid_channels(rows, ["Paid", "Direct"]) == ["Direct"]
    note = rc.trend_note(rows, "CPO", ["Paid", "Direct"])
    assert "No CPO line — channels without cost: Direct." in note
    assert "Direct" not in rc.trend_note(rows, "cost", ["Paid", "Direct"])


def test_week_axis_one_label_per_period_partial_marked_and_only_incomplete_periods_shaded():
    rows = rows_of(["2023-09-03", "2023-09-04", "2023-09-05", "2023-09-06", "2023-09-07"])
    late = IncompleteDays("2023-09-07", ["2023-09-07"], [0.6])
    fig = rc.trend_chart(
        rc.trend_lines(rows, "cost", ["Paid"], {}, incomplete=late, grain="week", first="2023-09-03", last="2023-09-07")
    )
    xaxis = fig["layout"]["xaxis"]
    assert xaxis["tickvals"] == [0, 1]
    assert xaxis["ticktext"] == ["Sep 03<br>1 of 7 days", "Sep 04<br>4 of 7 days"]
    (paid,) = [t for t in fig["data"] if t["mode"] == "markers"]  # (the dashed line between them apart)
    assert paid["y"] == [10.0, 40.0]
    assert paid["marker"]["symbol"] == ["circle-open", "circle-open"]  # both weeks are partial here
    # Only the second week holds the incomplete day 09-07: one band, around slot 1, saying how many days.
    shapes = fig["layout"]["shapes"]
    assert [(s["x0"], s["x1"]) for s in shapes] == [(0.55, 1.45)]
    assert fig["layout"]["annotations"][0]["text"] == "1 incomplete day"


def test_month_axis_has_one_label_and_says_how_much_of_the_month_is_in():
    days = [f"2023-09-{d:02d}" for d in range(1, 11)]
    rows = rows_of(days)
    late = IncompleteDays("2023-09-10", ["2023-09-10"], [0.6])
    fig = rc.trend_chart(rc.trend_lines(rows, "cost", ["Paid"], {}, incomplete=late, grain="month"))
    assert fig["layout"]["xaxis"]["ticktext"] == ["Sep 2023<br>10 of 30 days"]
    assert fig["layout"]["annotations"][0]["text"] == "1 incomplete day"  # not "incomplete" over the month


def test_incomplete_days_only_where_the_view_shows_them_by_session_date():
    late = IncompleteDays("2023-09-10", ["2023-09-09", "2023-09-10"], [0.7, 0.4])
    assert rv.shown_incomplete(late, "session-date", "2023-09-01", "2023-09-10") == late
    assert rv.shown_incomplete(late, "session-date", "2023-09-03", "2023-09-07") is None
    assert rv.shown_incomplete(late, "conversion-date", "2023-09-01", "2023-09-10") is None
    part = rv.shown_incomplete(late, "session-date", "2023-09-01", "2023-09-09")
    assert part is not None and part.days == ["2023-09-09"] and part.share_in == [0.7]


def test_a_whisker_cut_at_the_axis_ends_in_an_arrowhead():
    totals = pd.DataFrame(
        dict(
            channel_name=["A", "B"],
            cost=[10.0, 20.0],
            ihc=[1.0, 2.0],
            ihc_revenue=[30.0, 40.0],
            CPO=[10.0, 10.0],
            CPO_low=[5.0, 8.0],
            CPO_high=[100.0, 12.0],  # A's interval runs far past the axis (which ends at 1.3 × 10 = 13)
            few=[False, False],
        )
    )
    fig = rc.ratio_chart(totals, "CPO", {})
    assert fig["layout"]["xaxis"]["range"] == [0, 13.0]
    arrows = [t for t in fig["data"] if t.get("marker", {}).get("symbol") == "triangle-right"]
    assert len(arrows) == 1 and arrows[0]["x"] == [13.0]
    assert len(arrows[0]["y"]) == 1 and arrows[0]["y"][0].startswith("A")  # only A's whisker is cut
    assert "extends beyond the axis" in arrows[0]["customdata"][0]


def test_the_tables_leave_the_cpo_of_a_row_without_cost_empty_as_the_charts_do():
    # Organic: no cost, 4 conversions -> export CPO 0 (the CSV keeps it), but the tables show it empty,
    # with its interval; a paid row keeps CPO 30 / 4 = 7.5 and its interval.
    rows = pd.DataFrame(
        {
            "channel_name": ["Organic", "Paid"],
            "cost": [0.0, 30.0],
            "ihc": [4.0, 4.0],
            "ihc_revenue": [100.0, 60.0],
            "CPO": [0.0, 7.5],
            "ROAS": [float("nan"), 2.0],
            "CPO_low": [0.0, 6.0],
            "CPO_high": [0.0, 10.0],
        }
    )
    shown = rv.table(rows)
    assert shown["CPO"].isna().tolist() == [True, False] and shown.loc[1, "CPO"] == 7.5
    assert shown["CPO_low"].isna().tolist() == [True, False] and shown.loc[1, "CPO_high"] == 10.0
    assert rows.loc[0, "CPO"] == 0.0  # the input (the CSV's rows) is not changed


def test_period_table_across_months_years_and_a_leap_day():
    # 2024-01-30 … 2024-03-02: two days of January (31 days), all of February 2024 (29: a leap year), two
    # of March (31). Sunday 2023-12-31 … Monday 2024-01-08: one day of the week from 12-25, one whole week,
    # one day of the week from 01-08.
    months = rv.period_table("month", "2024-01-30", "2024-03-02")
    assert months.to_dict("list") == {
        "period": ["2024-01-01", "2024-02-01", "2024-03-01"],
        "date": ["2024-01-30", "2024-02-01", "2024-03-01"],
        "days": [2, 29, 2],
        "length": [31, 29, 31],
    }
    weeks = rv.period_table("week", "2023-12-31", "2024-01-08")
    assert weeks.to_dict("list") == {
        "period": ["2023-12-25", "2024-01-01", "2024-01-08"],
        "date": ["2023-12-31", "2024-01-01", "2024-01-08"],
        "days": [1, 7, 1],
        "length": [7, 7, 7],
    }
    days = rv.period_table("day", "2024-02-28", "2024-03-01")
    assert days["date"].tolist() == ["2024-02-28", "2024-02-29", "2024-03-01"] and days["days"].tolist() == [1, 1, 1]
    assert rc.lone_period("month", "2024-02-03", "2024-02-20").finer == ["day", "week"]
    assert rc.lone_period("week", "2024-02-05", "2024-02-06").finer == ["day"]
    assert rc.lone_period("week", "2024-02-04", "2024-02-05") is None  # Sunday and Monday: two weeks
