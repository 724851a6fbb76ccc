"""AppTest: the Report page — KPI tiles, charts, table, filters, and the CSV download being exactly
what `python -m pipeline export` writes with the same filters."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from pipeline.db import open_database
from pipeline.export import read_report
from tests.dashboard_support import no_errors, open_page, texts, workspace_of
from tests.helpers import cli


def plotly_charts(at):
    return [e for e in at.get("plotly_chart")]


def test_report_renders_on_the_demo(dashboard_env):
    at = open_page("report")
    no_errors(at)
    assert [m.label for m in at.metric] == ["Cost", "Conversions", "Revenue", "CPO", "ROAS"]
    assert len(plotly_charts(at)) == 4  # CPO, ROAS, cost vs revenue, daily trend
    table = at.dataframe[0].value
    ws = workspace_of(at)
    expected = read_report(open_database(ws.db_path))
    assert len(table) == len(expected) > 0
    assert table["cost"].sum() == pytest.approx(expected["cost"].sum())
    assert "Attribution: **IHC — offline model**" in texts(at)


def test_filters_change_the_table_and_the_csv_equals_the_cli(dashboard_env, downloads, tmp_path):
    at = open_page("report")
    everything = at.dataframe[0].value
    assert downloads["channel_report_ihc_2023-09-01_to_2023-09-10.csv"].count(b"\n") == len(everything) + 1

    at.multiselect(key="report_channels").set_value(["Paid Search Brand", "Display"]).run()
    at.date_input(key="report_dates").set_value((date(2023, 9, 3), date(2023, 9, 5))).run()
    no_errors(at)
    table = at.dataframe[0].value
    assert 0 < len(table) < len(everything)
    assert set(table["channel_name"]) == {"Paid Search Brand", "Display"}
    assert table["date"].min() == "2023-09-03" and table["date"].max() == "2023-09-05"
    cost_tile = next(m for m in at.metric if m.label == "Cost")
    assert cost_tile.value == f"€{table['cost'].sum():,.0f}"

    data = downloads["channel_report_ihc_2023-09-03_to_2023-09-05.csv"]
    db = shutil.copy(workspace_of(at).db_path, tmp_path / "session.db")
    out = tmp_path / "cli.csv"
    done = cli(
        "export",
        db,
        "--csv",
        out,
        "--start",
        "2023-09-03",
        "--end",
        "2023-09-05",
        "--channel",
        "Paid Search Brand",
        "--channel",
        "Display",
    )
    assert done.returncode == 0, done.stderr
    assert data == out.read_bytes()

    # No filter at all: the unfiltered export.
    at.multiselect(key="report_channels").set_value([]).run()
    at.date_input(key="report_dates").set_value((date(2023, 9, 1), date(2023, 9, 10))).run()
    full = tmp_path / "all.csv"
    assert cli("export", db, "--csv", full).returncode == 0
    assert downloads["channel_report_ihc_2023-09-01_to_2023-09-10.csv"] == full.read_bytes()


def test_trend_channels_and_metric(dashboard_env):
    at = open_page("report")
    at.selectbox(key="trend_metric").set_value("ROAS").run()
    at.multiselect(key="trend_channels").set_value(["Paid Search Brand"]).run()
    no_errors(at)
    assert "gaps" in texts(at)  # undefined ROAS days are gaps, said so
    at.multiselect(key="trend_channels").set_value([]).run()
    assert "Pick one or more channels" in texts(at)


def test_log_axes_keep_every_channel_readable(dashboard_env):
    import json

    at = open_page("report")
    specs = [json.loads(c.proto.spec) for c in plotly_charts(at)[:2]]
    assert all(s["layout"]["xaxis"].get("type") in (None, "linear", "-") for s in specs)
    at.toggle(key="ratio_log_scale").set_value(True).run()
    no_errors(at)
    cpo, roas = (json.loads(c.proto.spec) for c in plotly_charts(at)[:2])
    for spec in (cpo, roas):
        axis = spec["layout"]["xaxis"]
        assert axis["type"] == "log" and "log scale" in axis["title"]["text"]
        bars = [x for x in spec["data"][0]["x"] if x is not None]
        assert bars and 10 ** axis["range"][0] < min(bars) and max(bars) < 10 ** axis["range"][1]
    # Every paid channel keeps its row: a bar, or its value / "no ..." written at the left edge.
    for spec in (cpo, roas):
        rows = set(spec["data"][0]["y"])
        noted = set(spec["data"][1]["y"]) if len(spec["data"]) > 1 else set()
        drawn = {y for y, x in zip(spec["data"][0]["y"], spec["data"][0]["x"]) if x is not None}
        assert drawn | noted == rows and not (drawn & noted)
