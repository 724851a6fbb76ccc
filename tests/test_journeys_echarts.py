"""The Journeys page's charts as ECharts options (pipeline.journeys_echarts). Expected values by hand."""

from __future__ import annotations

import json

import pandas as pd

from pipeline import journeys_echarts as jch


def test_lengths_every_bar_its_share_from_three_percent_and_the_unattributable_grey():
    # 43 conversions: 1 without an earlier session (2.3%: no label), 40 after one (93.0%), 2 after two (4.7%)
    dist = pd.DataFrame(dict(sessions=[0, 1, 2], label=["0", "1", "2+"], conversions=[1, 40, 2]))
    dist["share"] = dist["conversions"] / 43
    chart = jch.lengths_option(dist)
    bars = chart.option["series"][0]["data"]
    assert [b["value"] for b in bars] == [1, 40, 2]
    assert [b["itemStyle"]["color"] for b in bars] == [jch.NO_SESSION_COLOR, jch.LENGTH_COLOR, jch.LENGTH_COLOR]
    assert [(b["label"]["show"], b["label"]["formatter"]) for b in bars] == [(False, "2%"), (True, "93%"), (True, "5%")]
    assert bars[1]["tooltip"]["formatter"] == "1 sessions: 40 conversions (93.0% of all 43)"
    assert chart.option["xAxis"]["data"] == ["0", "1", "2+"] and chart.option["tooltip"]["renderMode"] == "richText"
    assert chart.alt.startswith("Journey length: conversions per number of sessions before them, 43 in all. 0: 1;")


def test_paths_most_first_coloured_by_their_first_channel_whole_path_in_the_tooltip():
    top = pd.DataFrame(
        dict(
            path=["Direct → Display", "Shop {x}"],
            length=[2, 1],
            conversions=[30, 10],
            share=[0.3, 0.1],
            revenue=[1234.5, 99.0],
        )
    )
    chart = jch.paths_option(top, {"Direct": "#111111", "Shop {x}": "#222222"})
    opt = chart.option
    bars = opt["series"][0]["data"]
    assert opt["yAxis"]["data"] == ["Direct → Display", "Shop (x)"] and opt["yAxis"]["inverse"] is True
    assert [b["itemStyle"]["color"] for b in bars] == ["#111111", "#222222"]
    assert [b["label"]["formatter"] for b in bars] == ["30 (30%)", "10 (10%)"]
    assert bars[0]["tooltip"]["formatter"] == "Direct → Display\n30 conversions · revenue €1,234.50"
    assert opt["xAxis"]["max"] == 45.0  # room for the labels right of the longest bar: 1.5 × 30
    assert "{x}" not in json.dumps(opt)  # braces are ECharts' templates: the name's are made round
    # one line each: 320 px at least ((16 + 14) × 2 + 110 = 170)
    assert chart.height == 320
    # two paths whose labels read the same get "(2)"
    same = jch.paths_option(pd.concat([top.head(1), top.head(1)]), {})
    assert same.option["yAxis"]["data"] == ["Direct → Display", "Direct → Display (2)"]


def test_credit_a_stacked_bar_per_phase_one_part_per_session_numbered_inside_from_six_percent():
    sessions = pd.DataFrame(
        dict(
            position=[1, 2],
            channel=["Direct", "Display"],
            timestamp=["2023-09-01 10:00:00", "2023-09-02 11:00:00"],
            initializer=[1.0, 0.0],
            holder=[0.5, 0.5],
            closer=[0.0, 1.0],
            ihc=[0.55, 0.45],
        )
    )
    chart = jch.credit_option(sessions, ["initializer", "holder", "closer", "ihc"], {"Direct": "#111111"})
    opt = chart.option
    assert opt["xAxis"]["data"] == ["Initializer", "Holder", "Closer", "Credit"]
    first, second = opt["series"]
    assert first["name"] == "#1 Direct" and first["stack"] == second["stack"] == "credit"
    assert [d["value"] for d in first["data"]] == [100.0, 50.0, 0.0, 55.0]  # percent on a 0-100 axis
    assert [d["label"]["show"] for d in second["data"]] == [False, True, True, True]  # 0% is not numbered
    assert first["itemStyle"]["color"] == "#111111" and second["itemStyle"]["color"] == "#888"
    assert first["data"][0]["tooltip"]["formatter"] == "#1 Direct\n2023-09-01 10:00:00\nInitializer: 100.0%"
    assert opt["yAxis"]["axisLabel"]["formatter"] == "{value}%" and opt["yAxis"]["max"] == 100
    assert opt["legend"]["data"] == ["#1 Direct", "#2 Display"] and opt["legend"]["orient"] == "vertical"
    # the plot leaves the legend its room: "#2 Display" is 60 px at 14 px (# 7, 2 7, space 3, D 8.5, i 3.5,
    # s 6, p 8, l 3.5, a 7, y 6.5), 55.7 at the legend's 13 px; + symbol and gaps (40) = 95 px, + 10
    assert opt["grid"]["right"] == 105
