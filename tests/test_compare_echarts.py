"""The Compare models chart's ECharts option (pipeline.compare_echarts), values worked out by hand."""

from __future__ import annotations

import json

import pandas as pd

from pipeline.compare_echarts import MODEL_COLORS, bars_height, grouped_bars_option

NAN = float("nan")
# two models, four channels; "C" has no cost (no ROAS), "{D}" ties with "A" on the baseline's share
TABLE = pd.DataFrame(
    [
        ("ihc", "A", 0.2, 2.0, 1000.0),
        ("ihc", "B", 0.5, 1.5, 2500.0),
        ("ihc", "C", 0.1, NAN, 500.0),
        ("ihc", "{D}", 0.2, NAN, 1000.0),
        ("linear", "A", 0.4, 3.0, 2000.0),
        ("linear", "B", 0.35, NAN, 1750.0),
        ("linear", "C", 0.05, NAN, 250.0),
        ("linear", "{D}", 0.2, NAN, 1000.0),
    ],
    columns=["model", "channel_name", "share", "ROAS", "ihc_revenue"],
)
LABELS = ["IHC — offline model", "Linear"]


def test_share_bars_by_the_baseline_in_percent():
    chart = grouped_bars_option(TABLE, "share", ["ihc", "linear"], LABELS)
    opt = chart.option
    # B 50%, A 20% and {D} 20% (a tie: by name, 'A' < '{D}'), C 10%; braces made round
    assert opt["yAxis"]["data"] == ["B", "A", "(D)", "C"] and opt["yAxis"]["inverse"] is True
    ihc, linear = opt["series"]
    assert [s["name"] for s in opt["series"]] == LABELS == opt["legend"]["data"]
    assert ihc["itemStyle"]["color"] == MODEL_COLORS[0] == "#2F6DB5" and linear["itemStyle"]["color"] == "#F58518"
    assert [d["value"] for d in ihc["data"]] == [50.0, 20.0, 20.0, 10.0]
    assert [d["value"] for d in linear["data"]] == [35.0, 40.0, 20.0, 5.0]
    assert ihc["data"][0]["tooltip"]["formatter"] == "B\nIHC — offline model: 50.0%"
    assert linear["data"][2]["tooltip"]["formatter"] == "(D)\nLinear: 20.0%"
    assert opt["xAxis"]["name"] == "Share of attributed conversions (%)"
    assert opt["xAxis"]["axisLabel"]["formatter"] == "{value}%"
    assert opt["title"]["text"] == "Share of conversions per channel" and opt["animation"] is False
    assert opt["tooltip"]["renderMode"] == "richText"
    # two short names: the legend on one line, the plot under it at 64 px
    assert opt["grid"]["top"] == 64 and chart.height == 420  # max(420, 22 * 4 * √2 + 140 = 264)
    assert chart.alt.startswith("Share of conversions per channel, 4 channels by IHC — offline model, 2 models")
    assert "B: IHC — offline model 50.0%, Linear 35.0%; A: IHC — offline model 20.0%, Linear 40.0%" in chart.alt
    dumped = json.dumps(opt)
    assert "{D}" not in dumped and "(D)" in dumped  # no ECharts template from the data


def test_channels_on_few_conversions_are_marked_and_pale_as_on_the_report():
    """A walk-through read Pinterest Ads (ROAS 29 on a handful of conversions) as the best channel under
    every model: the Report marks it † with a pale bar, Compare did not."""
    chart = grouped_bars_option(TABLE, "share", ["ihc", "linear"], LABELS, few=["C", "{D}"])
    opt = chart.option
    assert opt["yAxis"]["data"] == ["B", "A", "(D) †", "C †"]
    for series in opt["series"]:  # both models' bars of (D) and C, not A's and B's
        assert ["itemStyle" in d for d in series["data"]] == [False, False, True, True]
        assert {d["itemStyle"]["opacity"] for d in series["data"][2:]} == {0.4}
    assert opt["series"][0]["data"][3]["tooltip"]["formatter"] == "C\nIHC — offline model: 10.0%"


def test_roas_leaves_unpaid_channels_out_and_gaps_undefined():
    chart = grouped_bars_option(TABLE, "ROAS", ["ihc", "linear"], LABELS, unpaid=["C"])
    opt = chart.option
    assert opt["yAxis"]["data"] == ["A", "B", "(D)"]  # 2.0, 1.5, undefined last; C (no cost) left out
    ihc, linear = opt["series"]
    assert [d["value"] for d in ihc["data"]] == [2.0, 1.5, None]
    assert [d["value"] for d in linear["data"]] == [3.0, None, None]
    assert "tooltip" not in linear["data"][1]  # no bar, no tooltip
    assert linear["data"][0]["tooltip"]["formatter"] == "A\nLinear: 3.00"
    assert "formatter" not in opt["xAxis"]["axisLabel"]
    assert opt["xAxis"]["name"] == "ROAS (EUR of revenue per EUR of cost)"
    assert chart.alt.endswith("(D): IHC — offline model —, Linear —")


def test_revenue_in_euros_and_the_baseline_is_the_first_model():
    chart = grouped_bars_option(TABLE, "ihc_revenue", ["linear", "ihc"], ["Linear", "IHC — offline model"])
    opt = chart.option
    assert opt["yAxis"]["data"] == ["A", "B", "(D)", "C"]  # by linear: 2000, 1750, 1000, 250
    assert opt["series"][0]["itemStyle"]["color"] == "#2F6DB5"  # the baseline's colour follows the order
    assert opt["series"][1]["data"][1]["tooltip"]["formatter"] == "B\nIHC — offline model: €2,500"
    assert opt["xAxis"]["axisLabel"]["formatter"] == "€{value}"


def test_height_grows_with_channels_and_models():
    assert bars_height(4, 2) == 420
    assert bars_height(10, 3) == 521  # 22 * 10 * √3 + 140 = 521.05
    assert bars_height(20, 4) == 1020  # 22 * 20 * 2 + 140


def test_a_long_legend_wraps_and_the_chart_grows():
    labels = [f"A model with a rather long name number {i} (profile=challenge)" for i in range(3)]
    table = pd.concat([TABLE[TABLE["model"] == "ihc"].assign(model=m) for m in ("a", "b", "c")])
    chart = grouped_bars_option(table, "share", ["a", "b", "c"], labels)
    lines = (chart.option["grid"]["top"] - 64) // 24 + 1
    assert lines >= 2 and chart.height == 420 + (lines - 1) * 24
    # wider than the narrowest place, the plot moves up under fewer lines
    assert chart.option["media"][-1]["option"]["grid"]["top"] < chart.option["grid"]["top"]
