"""The Report's charts as ECharts options (pipeline.report_echarts): the same channels, order, values,
whiskers, notes and hover texts as the Plotly figures of the HTML report, laid out for ECharts. Every
expected value is worked out by hand in the comments."""

from __future__ import annotations

import json
import math

import pandas as pd

from pipeline import report_charts as rc
from pipeline import report_echarts as ech
from pipeline.completeness import IncompleteDays
from tests.test_report_periods import rows_of  # Paid: cost 10, 4 conversions, €40 a day; Direct: no cost, 2, €20

PALETTE = {"A": "#111111", "B": "#222222", "C {x}": "#333333", "D": "#444444"}


def totals() -> pd.DataFrame:
    """A: cost 30, 3 conversions, €90 -> CPO 10 (interval 6-20), ROAS 3 (2-4).
    B: cost 10, 2 conversions, €20 -> CPO 5 (4-8), ROAS 2 (1-3), resting on few conversions.
    "C {x}": cost 20, no conversion, €0 -> CPO undefined, ROAS 0. D: no cost (in no ratio chart)."""
    nan = float("nan")
    return pd.DataFrame(
        dict(
            channel_name=["A", "B", "C {x}", "D"],
            cost=[30.0, 10.0, 20.0, 0.0],
            ihc=[3.0, 2.0, 0.0, 1.0],
            ihc_revenue=[90.0, 20.0, 50.0, 40.0],
            CPO=[10.0, 5.0, nan, 0.0],
            CPO_low=[6.0, 4.0, nan, 0.0],
            CPO_high=[20.0, 8.0, nan, 0.0],
            ROAS=[3.0, 2.0, 0.0, nan],
            ROAS_low=[2.0, 1.0, 0.0, nan],
            ROAS_high=[4.0, 3.0, 0.0, nan],
            few=[False, True, False, False],
        )
    )


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in strings(v)]
    return []


def values(data: list) -> list:
    return [d["value"] if isinstance(d, dict) else d for d in data]


def series(option: dict, kind: str) -> list[dict]:
    return [s for s in option["series"] if s["type"] == kind]


def test_cpo_bars_best_first_with_whiskers_equal_to_the_report_intervals():
    chart = ech.ratio_option(totals(), "CPO", PALETTE)
    opt = chart.option
    # lower is better: B (5), A (10), then C with no CPO; D has no cost and no row
    labels = ["B † · €5.00", "A · €10.00", "C (x) · —"]
    assert opt["yAxis"]["data"] == labels and opt["yAxis"]["inverse"] is True
    (bars,) = series(opt, "bar")
    assert [item["value"] for item in bars["data"]] == [5.0, 10.0, None]
    assert [item["itemStyle"]["color"] for item in bars["data"][:2]] == ["#222222", "#111111"]
    assert [item["itemStyle"]["opacity"] for item in bars["data"][:2]] == [rc.PALE, 1.0]  # B rests on few
    # the axis ends at 1.3 × the largest CPO = 13; A's interval (6-20) reaches past it and is cut there
    assert (opt["xAxis"]["type"], opt["xAxis"]["min"], opt["xAxis"]["max"]) == ("value", 0, 13.0)
    (whiskers,) = series(opt, "boxplot")
    assert [w["value"] for w in whiskers["data"]] == [[4.0, 5.0, 5.0, 5.0, 8.0], [6.0, 10.0, 10.0, 10.0, 13.0], []]
    t = totals().set_index("channel_name")
    assert (
        whiskers["data"][0]["value"][0] == t.loc["B", "CPO_low"]
        and whiskers["data"][0]["value"][4] == t.loc["B", "CPO_high"]
    )
    assert whiskers["data"][1]["value"][0] == t.loc["A", "CPO_low"]
    (arrow,) = [s for s in series(opt, "scatter") if s["name"] == "cut"]
    assert [d["value"] for d in arrow["data"]] == [[13.0, "A · €10.00"]]
    assert arrow["data"][0]["tooltip"]["formatter"] == (
        "A · €10.00\n€10.00 (90% interval €6.00 – €20.00); the interval extends beyond the axis"
    )
    (notes,) = [s for s in series(opt, "scatter") if s["name"] == "notes"]
    assert [(d["value"], d["label"]["formatter"]) for d in notes["data"]] == [
        ([0, "C (x) · —"], "no attributed conversion")
    ]
    # the tooltip names the channel and writes the value and its interval in €
    assert bars["data"][0]["tooltip"]["formatter"] == "B † · €5.00\n€5.00 (90% interval €4.00 – €8.00)"
    assert opt["xAxis"]["name"] == "EUR per conversion" and opt["xAxis"]["axisLabel"]["formatter"] == "€{value}"
    assert chart.height == max(220, 32 * 3 + 120) == 220
    assert chart.alt.startswith("CPO per channel — lower is better: 3 paid channels, 2 with a bar")


def test_a_bar_on_few_conversions_far_past_the_others_runs_to_the_edge_instead_of_setting_the_axis():
    """E: cost 400, 1 conversion -> CPO 400 (interval 100 - unbounded), resting on few conversions. The
    axis still ends at 1.3 × the largest CPO on enough conversions (A's 10) = 13, so A and B stay
    readable; E's bar and whisker stop at 13 with an arrowhead, its label keeps €400.00."""
    t = pd.concat(
        [
            totals(),
            pd.DataFrame(
                dict(channel_name=["E"], cost=[400.0], ihc=[1.0], ihc_revenue=[10.0], CPO=[400.0], CPO_low=[100.0],
                     CPO_high=[float("nan")], ROAS=[0.025], ROAS_low=[0.0], ROAS_high=[0.1], few=[True])
            ),
        ],
        ignore_index=True,
    )  # fmt: skip
    opt = ech.ratio_option(t, "CPO", PALETTE).option
    assert opt["yAxis"]["data"] == ["B † · €5.00", "A · €10.00", "E † · €400.00", "C (x) · —"]
    assert opt["xAxis"]["max"] == 13.0
    (bars,) = series(opt, "bar")
    assert [item["value"] for item in bars["data"]] == [5.0, 10.0, 13.0, None]
    # E's bar fades out over its last quarter (its colour, "#888" as it has none in the palette)
    stops = bars["data"][2]["itemStyle"]["color"]["colorStops"]
    assert [(s["offset"], s["color"]) for s in stops] == [(0, "#888"), (0.75, "#888"), (1, "rgba(136,136,136,0.05)")]
    assert bars["data"][1]["itemStyle"]["color"] == "#111111"  # A is whole
    (whiskers,) = series(opt, "boxplot")
    assert whiskers["data"][2]["value"] == [13.0, 13.0, 13.0, 13.0, 13.0]
    (arrow,) = [s for s in series(opt, "scatter") if s["name"] == "cut"]
    assert [d["value"] for d in arrow["data"]] == [[13.0, "A · €10.00"], [13.0, "E † · €400.00"]]
    assert arrow["data"][0]["tooltip"]["formatter"].endswith("; the interval extends beyond the axis")
    assert arrow["data"][1]["tooltip"]["formatter"] == (
        "E † · €400.00\n€400.00 (90% interval €100.00 – unbounded); " + rc.BAR_BEYOND
    )
    assert rc.cut_bars(t) == [("E", "CPO €400.00")]  # ROAS: 0.025 is below A's 3, nothing cut
    note = rc.cut_bars_note(t)
    assert note is not None and "E (CPO €400.00)" in note and "fewer than 10" in note and note.endswith("channels.")
    plotly = rc.ratio_chart(t, "CPO", PALETTE)  # the HTML report's figure hatches E's bar instead
    assert plotly["data"][0]["marker"]["pattern"]["shape"] == ["", "", "/", ""]
    # the log axes show it whole: up to 4 × 400 = 1600 rounded up to 2000, nothing cut, no note
    log = ech.ratio_option(t, "CPO", PALETTE, log=True).option
    assert log["xAxis"]["max"] == 2000.0
    assert rc.cut_bars(t, log=True) == [] and rc.cut_bars_note(t, log=True) is None
    # when every channel rests on few conversions, the axis follows them all: no bar is cut
    assert rc.cut_bars(t.assign(few=True)) == []


def test_roas_on_a_log_axis_writes_a_zero_at_the_left_edge_and_its_title_wraps():
    opt = ech.ratio_option(totals(), "ROAS", PALETTE, log=True).option
    # higher is better: A 3, B 2, C 0. Log axis from half the smallest positive value or low end
    # (min(3, 2, 2, 1) / 2 = 0.5) to 4 × the largest (12), up to the next 1-2-5 step (20); C's 0 has no
    # place on it: written at 0.5.
    assert opt["yAxis"]["data"] == ["A · 3.00", "B † · 2.00", "C (x) · 0.00"]
    assert opt["xAxis"]["type"] == "log"
    assert opt["xAxis"]["min"] == 0.5 and opt["xAxis"]["max"] == 20.0
    # ECharts starts a log axis's bars at 1: each bar is stacked on an invisible one up to the axis's left end
    base, bars = series(opt, "bar")
    assert base["name"] == "base" and base["stack"] == bars["stack"] == "ratio"
    assert [b for b in base["data"]] == [0.5, 0.5, None]
    assert [item["value"] for item in bars["data"]] == [2.5, 1.5, None]  # 0.5 + 2.5 = 3, 0.5 + 1.5 = 2
    (notes,) = [s for s in series(opt, "scatter") if s["name"] == "notes"]
    assert notes["data"][0]["label"]["formatter"] == "0.00" and math.isclose(notes["data"][0]["value"][0], 0.5)
    assert [w["value"] for w in series(opt, "boxplot")[0]["data"]] == [
        [2.0, 3.0, 3.0, 3.0, 4.0],
        [1.0, 2.0, 2.0, 2.0, 3.0],
        [],
    ]
    assert not [s for s in series(opt, "scatter") if s["name"] == "cut"]  # every whisker ends inside 20
    # "Revenue per EUR of cost (ratio), log scale" would be cut in a half-page chart: it wraps instead
    assert opt["xAxis"]["name"] == "Revenue per EUR of cost (ratio), log scale"
    assert opt["xAxis"]["nameTextStyle"]["overflow"] == "break" and opt["xAxis"]["nameTextStyle"]["width"] <= 300


def test_a_log_axis_ends_on_a_one_two_five_step():
    """The axis writes its left end as a tick: half the lowest value (ROAS 3.05 -> 1.525…) was written
    "1.5251343500661865". Both ends now sit on 1, 2 or 5 times a power of ten, outside the values."""
    assert [rc.nice_log_end(v, down=True) for v in (1.5251343500661865, 0.03, 0.5, 7.0, 230.0)] == [
        1.0, 0.02, 0.5, 5.0, 200.0
    ]  # fmt: skip
    assert [rc.nice_log_end(v, down=False) for v in (12.0, 0.03, 0.5, 7.0, 0.101)] == [20.0, 0.05, 0.5, 10.0, 0.2]
    t = totals()
    t.loc[0, ["ROAS", "ROAS_low", "ROAS_high"]] = [3.0502686, 3.0502686, 4.0]
    t.loc[1, ["ROAS", "ROAS_low", "ROAS_high"]] = [4.0, 3.5, 4.5]
    opt = ech.ratio_option(t, "ROAS", PALETTE, log=True).option
    # lowest positive value or low end 3.0502686, halved 1.5251343 -> 1; 4 × the largest (16) -> 20
    assert opt["xAxis"]["min"] == 1.0 and opt["xAxis"]["max"] == 20.0
    base, bars = series(opt, "bar")
    assert base["data"][:2] == [1.0, 1.0] and math.isclose(bars["data"][0]["value"], 3.0)  # B's 4 - 1


def test_cost_vs_revenue_by_revenue_with_euro_tooltips():
    chart = ech.cost_revenue_option(totals(), PALETTE)
    opt = chart.option
    # by attributed revenue: A 90, C 50, D 40, B 20 (D has no cost but revenue: it is in this chart)
    assert opt["xAxis"]["data"] == ["A", "C (x)", "D", "B"]
    cost, revenue = series(opt, "bar")
    assert [d["value"] for d in cost["data"]] == [30.0, 20.0, 0.0, 10.0]
    assert [d["value"] for d in revenue["data"]] == [90.0, 50.0, 40.0, 20.0]
    assert [d["itemStyle"]["color"] for d in revenue["data"]] == ["#111111", "#333333", "#444444", "#222222"]
    assert cost["itemStyle"]["color"] == rc.COST_COLOR
    assert cost["data"][1]["tooltip"]["formatter"] == "C (x)\nCost: €20.00"
    assert revenue["data"][0]["tooltip"]["formatter"] == "A\nAttributed revenue: €90.00"
    # four channels: the pair takes 0.75 × 4 / 6 = half a category, the labels slant
    assert cost["barCategoryGap"] == "50%" and opt["xAxis"]["axisLabel"]["rotate"] == 35
    assert chart.height == 440


def test_daily_cpo_trend_gaps_a_channel_without_cost_and_shades_the_incomplete_day():
    late = IncompleteDays("2023-09-05", ["2023-09-05"], [0.6])
    chart = ech.trend_option(
        rc.trend_lines(
            rows_of(["2023-09-04", "2023-09-05"]), "CPO", ["Paid", "Direct"], {"Paid": "#123456"}, incomplete=late
        )
    )
    opt = chart.option
    assert opt["xAxis"]["data"] == ["Sep 04", "Sep 05"] and opt["xAxis"]["name"] == "Session date"
    paid, direct = series(opt, "line")
    # Paid: 10 / 4 = €2.50 a day; Direct spent nothing: no CPO (gaps, never €0)
    assert values(paid["data"]) == [2.5, 2.5] and paid["lineStyle"]["color"] == "#123456"
    assert values(direct["data"]) == [None, None]
    # a pointer over a day shows each channel there with its CPO in € (Streamlit's "euro": €2.50)
    assert opt["tooltip"]["trigger"] == "axis" and opt["tooltip"]["valueFormatter"] == "euro"
    assert opt["legend"]["data"] == ["Paid", "Direct"]
    (band,) = series(opt, "bar")  # 09-05 is incomplete: the second slot shaded, labelled once
    assert band["yAxisIndex"] == 1 and band["data"][0] is None and band["data"][1]["label"]["formatter"] == "incomplete"
    assert opt["yAxis"][0]["name"] == "CPO (cost per attributed conversion, EUR)" and opt["yAxis"][0]["min"] == 0
    assert opt["yAxis"][0]["axisLabel"]["formatter"] == "€{value}"  # each tick in euros, as its title says
    assert opt["title"]["text"] == "CPO per day"


def test_weekly_trend_one_slot_a_week_partial_weeks_hollow():
    rows = rows_of(["2023-09-03", "2023-09-04", "2023-09-05", "2023-09-06", "2023-09-07"])
    late = IncompleteDays("2023-09-07", ["2023-09-07"], [0.6])
    opt = ech.trend_option(
        rc.trend_lines(rows, "cost", ["Paid"], {}, "conversion-date", late, "week", "2023-09-03", "2023-09-07")
    ).option
    # 09-03 is a Sunday: 1 day of the week of 08-28 (cost 10), then 09-04…09-07: 4 days (cost 40)
    assert opt["xAxis"]["data"] == ["Sep 03\n1 of 7 days", "Sep 04\n4 of 7 days"]
    # two lines of 12 px text 16 px apart (ECharts' default drew the second over the first in Chromium),
    # and the axis title below both
    assert opt["xAxis"]["axisLabel"]["lineHeight"] == 16 and opt["xAxis"]["nameGap"] >= 2 * 16 + 12
    assert opt["xAxis"]["name"] == "Conversion date: week starting (hollow, dashed to: a part of the week only)"
    # the markers (and the tooltip) in one series, the line between the two part weeks dashed in
    # another of the same name (one legend entry), left out of the tooltip
    paid, dashed = series(opt, "line")
    assert values(paid["data"]) == [10.0, 40.0] and paid["lineStyle"]["width"] == 0
    assert [d["symbol"] for d in paid["data"]] == ["emptyCircle", "emptyCircle"]  # both weeks partial
    assert dashed["name"] == paid["name"] and dashed["data"] == [10.0, 40.0]
    assert dashed["lineStyle"]["type"] == "dashed" and dashed["tooltip"]["show"] is False
    assert opt["legend"]["data"] == ["Paid"]
    assert opt["tooltip"]["valueFormatter"] == "euro"
    (band,) = series(opt, "bar")  # only the second week holds 09-07
    assert band["data"][0] is None and band["data"][1]["label"]["formatter"] == "1 incomplete day"


def test_a_month_between_two_part_months_is_joined_solid_and_the_part_ones_dashed():
    """Aug 30 – Nov 2: August (2 of 31 days) and November (2 of 30) are parts, September and October
    whole. Paid spends 10 a day: 20, 300, 310, 20. Solid only September–October; dashed August–September
    and October–November. A gap (no row) breaks both."""
    days = pd.date_range("2023-08-30", "2023-11-02").strftime("%Y-%m-%d").tolist()
    trend = rc.trend_lines(rows_of(days), "cost", ["Paid"], {}, "session-date", None, "month", days[0], days[-1])
    (line,) = trend.lines
    assert line.values == [20.0, 300.0, 310.0, 20.0] and line.partial == [True, False, False, True]
    solid, dashed = rc.line_segments(line, trend.slots)
    assert solid == [None, 300.0, 310.0, None] and dashed == [20.0, 300.0, 310.0, 20.0]
    gap = rc.TrendLine(
        "Paid", "#111111", trend.slots[:2] + trend.slots[3:], [20.0, 300.0, 20.0], [True, False, True], []
    )
    assert rc.line_segments(gap, trend.slots) == ([None] * 4, [20.0, 300.0, None, None])
    # the HTML report's figure: the dashed line, the solid one over it, then the markers with the hover
    fig = rc.trend_chart(trend)
    assert [(t["mode"], t.get("line", {}).get("dash")) for t in fig["data"]] == [
        ("lines", "dash"),
        ("lines", "solid"),
        ("markers", None),
    ]
    assert [t.get("hoverinfo") for t in fig["data"]] == ["skip", "skip", None]
    assert {t["legendgroup"] for t in fig["data"]} == {"Paid"} and fig["data"][0]["showlegend"] is False
    # the dashboard's: markers above the solid line above the dashed one
    opt = ech.trend_option(trend).option
    assert [(s["lineStyle"].get("type"), s["z"]) for s in series(opt, "line")] == [
        (None, 4),
        ("solid", 3),
        ("dashed", 2),
    ]


def test_options_are_plain_json_without_animation_and_no_braces_from_the_data():
    rows = rows_of(["2023-09-04"]).replace({"channel_name": {"Paid": "Paid {b}"}})
    trend = ech.trend_option(rc.trend_lines(rows, "ihc", ["Paid {b}"], {})).option
    for chart in (
        ech.ratio_option(totals(), "CPO", PALETTE),
        ech.ratio_option(totals(), "ROAS", PALETTE, log=True),
        ech.cost_revenue_option(totals(), PALETTE),
    ):
        opt = chart.option
        json.dumps(opt, allow_nan=False)  # no NaN, no numpy values: st.echarts_chart takes only JSON
        assert opt["animation"] is False and opt["tooltip"]["renderMode"] == "richText"
        # a channel "C {x}" must not become a template or a rich-text style: only the page's own formats
        assert {s for s in strings(opt) if "{" in s or "}" in s} <= {"€{value}"}
        assert "{" not in chart.alt
    json.dumps(trend, allow_nan=False)
    assert {s for s in strings(trend) if "{" in s} == set()  # the channel "Paid {b}" reads "Paid (b)"
    assert trend["series"][0]["name"] == "Paid (b)"
    assert trend["series"][0]["data"] == [4.0] and trend["tooltip"]["valueFormatter"] == "%.2f conversions"
    assert "formatter" not in trend["yAxis"][0]["axisLabel"]  # conversions: plain numbers, no € sign


def test_the_trend_legend_wraps_instead_of_paging_and_the_plot_starts_below_it():
    # "AAAA" is 4 × 7.5 = 30 px at 14 px, 27.86 px at the legend's 13 px; an item adds its symbol and
    # gaps (25 + 5 + 10): 67.86 px. The narrowest trend is 598 px (1024 px with the 256 px sidebar open),
    # 584 px of legend: 8 items take 542.9 px, a 9th (610.7 px) starts a second line.
    assert ech.TREND_NARROWEST_PX == 598 and ech.LEGEND_ROOM_PX == 584
    assert ech.legend_lines(["AAAA"] * 8) == 1
    assert ech.legend_lines(["AAAA"] * 9) == 2
    assert ech.legend_lines(["AAAA"] * 17) == 3  # 8 + 8 + 1
    names = [f"AAA{c}" for c in "AESTZbhno"]  # 9 names of 30 px: each of these letters is 7.5 px
    rows = pd.DataFrame([dict(channel_name=n, date="2023-09-04", cost=1.0, ihc=1.0, ihc_revenue=1.0) for n in names])
    wide = ech.legend_lines(names)
    chart = ech.trend_option(rc.trend_lines(rows, "ihc_revenue", names, {}))
    opt = chart.option
    # every channel's name in a legend that wraps (a "scroll" legend paged them "1/2" at 1024 px)
    assert opt["legend"]["type"] == "plain" and opt["legend"]["data"] == names
    # the plot starts one legend line (24 px) lower per extra line, and the chart is that much taller
    assert wide == 2 and opt["grid"]["top"] == 64 + 24 and chart.height == 400 + 24
    # ...at the narrowest (584 px of legend in a 598 px chart). In a chart of 633 px or more the nine
    # items (610.71 px: room 611, + 14 px of padding, + 8 px of slack) take one line, and the plot moves
    # up under it: counted for the narrowest width everywhere, five channels left a 24 px gap at 1280 px.
    assert ech.legend_widths(names) == [(2, 0), (1, 633)]
    assert opt["media"] == [
        dict(query=dict(minWidth=0), option=dict(grid=dict(top=88))),
        dict(query=dict(minWidth=633), option=dict(grid=dict(top=64))),
    ]
    # 16 items: 8 + 8 lines at 584 px; one line from 16 × 67.86 = 1085.7 px (room 1086 + 22 = 1108 px)
    assert ech.legend_widths(["AAAA"] * 16) == [(2, 0), (1, 1108)]
    # 17: 8 + 8 + 1 at 584 px; 9 + 8 from 611 + 22 = 633 px; one line from 17 × 67.86 = 1153.6 px (1176 px)
    assert ech.legend_widths(["AAAA"] * 17) == [(3, 0), (2, 633), (1, 1176)]
    # one channel: one line, the usual place and height
    one = ech.trend_option(rc.trend_lines(rows.head(1), "ihc_revenue", names[:1], {}))
    assert one.option["grid"]["top"] == 64 and one.height == 400
    assert one.option["media"] == [dict(query=dict(minWidth=0), option=dict(grid=dict(top=64)))]


def test_an_incomplete_day_among_ten_is_labelled_upright_inside_its_band():
    # "incomplete" is 66.5 px at 14 px (i 3.5 n 7.5 c 6.5 o 7.5 m 11.5 p 8 l 3.5 e 7 t 4.5 e 7), 57 px at
    # 12 px, 65 px with its margin; the trend's plot at 1024 px (sidebar open) is 489 px: a day of 10 is
    # 48.9 px (upright), two of 10 are 97.8 px (across), one of 7 is 69.9 px (across), one of 8 61.1 px.
    assert not ech.band_fits("incomplete", 1, 10)
    assert ech.band_fits("incomplete", 2, 10) and ech.band_fits("incomplete", 1, 7)
    assert not ech.band_fits("incomplete", 1, 8)
    days = [f"2023-09-{d:02d}" for d in range(1, 11)]
    late = IncompleteDays("2023-09-10", ["2023-09-10"], [0.9])

    def band_label(last_day_revenue: float) -> dict:
        """Paid's revenue €40 a day, the incomplete 09-10's ``last_day_revenue``: its band's label."""
        rows = rows_of(days)
        rows.loc[(rows["date"] == "2023-09-10") & (rows["channel_name"] == "Paid"), "ihc_revenue"] = last_day_revenue
        opt = ech.trend_option(rc.trend_lines(rows, "ihc_revenue", ["Paid"], {}, incomplete=late)).option
        (band,) = series(opt, "bar")
        assert band["label"]["textBorderColor"] == ech.BAND  # a line crossing it does not blot it out
        return band["data"][9]["label"]

    # an incomplete day reads low (€10 of a plot up to €40: 30 above it, 10 below): it hangs from the top
    label = band_label(10.0)
    assert label["formatter"] == "incomplete" and label["rotate"] == 90 and label["position"] == "insideTop"
    # the band's point high (€36 of €40: 4 above it, 36 below, as a CPO reads then): it stands on the foot
    label = band_label(36.0)
    assert (label["position"], label["align"], label["rotate"]) == ("insideBottom", "left", 90)
    assert band_label(19.0)["position"] == "insideTop" and band_label(21.0)["position"] == "insideBottom"
    # two days, the second incomplete: the label lies across its band (1 of 2: 235 px)
    second = IncompleteDays("2023-09-02", ["2023-09-02"], [0.9])
    two = ech.trend_option(rc.trend_lines(rows_of(days[:2]), "ihc_revenue", ["Paid"], {}, incomplete=second)).option
    assert "rotate" not in series(two, "bar")[0]["data"][1]["label"]


def test_a_trend_of_one_period_says_so_and_names_the_finer_grains_that_show_a_course():
    # 09-01 (Friday) … 09-10 (Sunday): one month, two ISO weeks (08-28 and 09-04), ten days
    month = rc.lone_period("month", "2023-09-01", "2023-09-10")
    assert month is not None and month.finer == ["day", "week"]
    assert month.text.startswith("The range (Sep 01 – Sep 10) lies within one month, so its trend per month is one")
    assert "Per day or per week shows how the channels moved" in month.text
    assert month.chart_note == "The range (Sep 01 – Sep 10) is one month: one point per channel, no course to show"
    assert rc.lone_period("week", "2023-09-01", "2023-09-10") is None  # two weeks: a line
    # 09-04 (Monday) … 09-05: one month and one week; only per day shows a course
    assert rc.lone_period("month", "2023-09-04", "2023-09-05").finer == ["day"]
    week = rc.lone_period("week", "2023-09-04", "2023-09-10")
    assert week.finer == ["day"] and "Per day shows" in week.text and "per week or" not in week.text
    one_day = rc.lone_period("day", "2023-09-04", "2023-09-04")
    assert one_day.finer == [] and "Widen the dates" in one_day.text
    assert rc.lone_period("month", "2023-09-04", "2023-09-04").finer == []  # one day per month: nothing finer
    assert rc.lone_period("month", "2023-09-25", "2023-10-02") is None  # two months
    assert rc.lone_period("day", "2023-09-04", "2023-09-05") is None
    # the HTML report's chart (Plotly) says it in its top left corner; a trend of two periods says nothing
    days = [f"2023-09-{d:02d}" for d in range(1, 11)]
    lone = rc.trend_chart(rc.trend_lines(rows_of(days), "cost", ["Paid"], {}, grain="month"))
    assert month.chart_note in [a["text"] for a in lone["layout"]["annotations"]]
    weeks = rc.trend_chart(rc.trend_lines(rows_of(days), "cost", ["Paid"], {}, grain="week"))
    assert not [a for a in weeks["layout"].get("annotations", []) if "one point" in a["text"]]
