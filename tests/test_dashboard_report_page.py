"""AppTest: the Report page — KPI tiles, charts, table, filters, and the CSV download being exactly
what `python -m pipeline export` writes with the same filters."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date

import pandas as pd
import pytest

from pipeline import report_charts as rc
from pipeline.db import open_database
from pipeline.export import read_report
from tests.dashboard_support import no_errors, open_page, texts, workspace_of
from tests.helpers import cli


def iso(dates) -> list[str]:
    """A table's date column as 'YYYY-MM-DD' texts."""
    import pandas as pd

    return pd.to_datetime(dates).dt.strftime("%Y-%m-%d").tolist()


def charts(at):
    """The Report's ECharts elements: CPO, ROAS, cost vs revenue, trend."""
    return [e for e in at.get("echarts_chart")]


def specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in charts(at)]


def trend_spec(at, grain: str) -> dict:
    return next(s for s in specs(at) if s["title"]["text"].endswith(f" per {grain}"))


def test_report_renders_on_the_demo(dashboard_env):
    at = open_page("report")
    no_errors(at)
    # the demo's direct, newsletter and organic channels have credit but no cost: CPO and ROAS are blended
    assert [m.label for m in at.metric] == ["Cost", "Conversions", "Revenue", "Blended CPO", "Blended ROAS"]
    assert len(charts(at)) == 4  # CPO, ROAS, cost vs revenue, daily trend
    assert [c.proto.alt.split(":")[0] for c in charts(at)[:2]] == [
        "CPO per channel — lower is better",
        "ROAS per channel — higher is better",
    ]  # each described for screen readers
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
    at.run()  # a filter's change reruns only the report below the filters: AppTest's tree lacks them
    at.date_input(key="report_dates").set_value((date(2023, 9, 3), date(2023, 9, 5))).run()
    no_errors(at)
    table = at.dataframe[0].value
    assert 0 < len(table) < len(everything)
    assert set(table["channel_name"]) == {"Paid Search Brand", "Display"}
    assert table["date"].min() == "2023-09-03" and table["date"].max() == "2023-09-05"
    cost_tile = next(m for m in at.metric if m.label == "Cost")
    assert cost_tile.value == f"€{table['cost'].sum():,.0f}"

    data = downloads["channel_report_ihc_2023-09-03_to_2023-09-05_Paid-Search-Brand+Display.csv"]  # names its channels
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
    at.run()
    at.multiselect(key="report_channels").set_value([]).run()
    at.run()
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


def test_the_trend_metric_lives_in_the_url_and_survives_moving_between_pages(dashboard_env):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard_support import APP, TIMEOUT

    at = open_page("report")
    at.selectbox(key="trend_metric").set_value("CPO").run()
    assert at.query_params["trend"] == "CPO"
    open_page("data", at)
    open_page("report", at)
    no_errors(at)
    assert at.selectbox(key="trend_metric").value == "CPO" and trend_spec(at, "day")["title"]["text"] == "CPO per day"
    shared = AppTest.from_file(APP, default_timeout=TIMEOUT)  # a reload, or the link in another browser
    shared.query_params.update({"trend": "ROAS"})
    shared.run()
    no_errors(shared)
    assert shared.selectbox(key="trend_metric").value == "ROAS"
    shared.selectbox(key="trend_metric").set_value("ihc_revenue").run()
    assert "trend" not in shared.query_params  # the default: a plain address


def test_log_axes_keep_every_channel_readable(dashboard_env):

    at = open_page("report")
    assert all(s["xAxis"]["type"] == "value" for s in specs(at)[:2])
    at.toggle(key="ratio_log_scale").set_value(True).run()
    no_errors(at)
    cpo, roas = specs(at)[:2]
    for spec in (cpo, roas):
        axis = spec["xAxis"]
        assert axis["type"] == "log" and "log scale" in axis["name"]
        base, bar = spec["series"][:2]  # on a log axis each bar stands on an invisible one up to the left end
        bars = [b + d["value"] for b, d in zip(base["data"], bar["data"]) if d["value"] is not None]
        assert bars and axis["min"] < min(bars) and max(bars) < axis["max"]
    # Every paid channel keeps its row: a bar, or its value / "no ..." written at the left edge.
    for spec in (cpo, roas):
        rows = set(spec["yAxis"]["data"])
        notes = [s for s in spec["series"] if s["name"] == "notes"]
        noted = {d["value"][1] for d in notes[0]["data"]} if notes else set()
        drawn = {y for y, d in zip(spec["yAxis"]["data"], spec["series"][1]["data"]) if d["value"] is not None}
        assert drawn | noted == rows and not (drawn & noted)


def test_the_log_toggle_redraws_the_cpo_and_roas_charts_alone(dashboard_env):
    """The log-axes toggle reruns its own fragment (``ratio_charts``): AppTest's tree then holds the two
    charts and the toggle, not the tiles, the other charts or the table; the whole page shows the same."""
    at = open_page("report")
    at.multiselect(key="report_channels").set_value(["Display", "Paid Search Brand"]).run()
    at.toggle(key="ratio_log_scale").set_value(True).run()
    no_errors(at)
    assert not at.metric and not at.dataframe and not at.multiselect  # tiles, table, trend: not redrawn
    fragment = specs(at)
    assert len(fragment) == 2 and all(s["xAxis"]["type"] == "log" for s in fragment)
    # the view's channels, not the ones the fragment was first drawn with
    names = [{c.split(" ·")[0].removesuffix(" " + rc.FEW_MARK) for c in s["yAxis"]["data"]} for s in fragment]
    assert names == [{"Display", "Paid Search Brand"}] * 2
    at.run()  # the whole page: the same two charts, then the others
    no_errors(at)
    assert specs(at)[:2] == fragment and len(at.metric) == 5 and at.dataframe


def test_every_cpo_and_roas_carries_its_interval(dashboard_env):

    from pipeline.report_views import report_view

    at = open_page("report")
    no_errors(at)
    roas_tile = next(m for m in at.metric if m.label == "Blended ROAS")
    assert str(roas_tile.proto.delta).startswith("90%: ")  # the KPI's interval under the value
    view = report_view(open_database(workspace_of(at).db_path))
    cpo, roas = specs(at)[:2]
    for spec, metric in ((cpo, "CPO"), (roas, "ROAS")):
        bars, whiskers = spec["series"][0], spec["series"][1]
        labels = spec["yAxis"]["data"]
        assert whiskers["type"] == "boxplot" and len(whiskers["data"]) == len(bars["data"]) == len(labels)
        paid = view.totals[view.totals["cost"] > 0].set_index("channel_name")
        edge = spec["xAxis"]["max"]
        (arrows,) = [s for s in spec["series"] if s["name"] == "cut"]
        cut = {d["value"][1] for d in arrows["data"]}
        for label, bar, whisker in zip(labels, bars["data"], whiskers["data"]):
            channel = label.split(" · ")[0].removesuffix(" †")  # drawn as text: never HTML-escaped
            x = bar["value"]
            if x is None:
                continue
            low, _, value, _, high = whisker["value"]
            true = paid.loc[channel, metric]
            # the whisker starts at the low end, the bar at the ratio: both cut at the axis's edge
            assert low == pytest.approx(min(paid.loc[channel, f"{metric}_low"], edge))
            assert high >= value and x == value == pytest.approx(min(true, edge))
            if true > edge:  # only a bar on few conversions runs past the axis, with an arrowhead
                assert paid.loc[channel, "few"] and label in cut
            assert label.endswith(" †") is False and (" † · " in label) == bool(paid.loc[channel, "few"])
            assert bar["tooltip"]["formatter"].startswith(label + "\n")  # the channel, its value and interval
    table = at.dataframe[0].value
    assert {"CPO range", "ROAS range", "support"} <= set(table.columns)
    assert table["support"].max() > 0
    assert not table["CPO range"].dropna().str.contains("€|unbounded").any()  # narrow: '12.93–40.84', '…–∞'


def test_the_total_cpo_tile_says_why_it_has_no_interval(dashboard_env):
    """Over every channel each resample holds the same conversions in total and the cost is fixed: the
    CPO tile has no pill (not the cryptic "no spread (see ?)", and any sentence is cut at 1280 px) and its
    help says why; one channel has an interval."""
    at = open_page("report")
    cpo_tile = next(m for m in at.metric if m.label == "Blended CPO")
    assert not cpo_tile.proto.delta
    assert "same number of conversions" in cpo_tile.proto.help
    at.multiselect(key="report_channels").set_value(["Paid Search Brand"]).run()
    no_errors(at)
    cpo_tile = next(m for m in at.metric if m.label == "CPO")
    pill = str(cpo_tile.proto.delta)
    # "90%: €3.23–4.83", "90%: €16–19": the € once, whole euros above €10, so the pill is never cut at 1280 px
    assert re.fullmatch(r"90%: €[0-9.,]+–[0-9.,]+", pill) and len(pill) <= 15, pill


def test_the_report_by_conversion_date(dashboard_env, downloads):
    at = open_page("report")
    by_session = at.dataframe[0].value
    at.radio(key="report_basis").set_value("conversion-date").run()
    no_errors(at)
    by_conversion = at.dataframe[0].value
    assert by_conversion["cost"].sum() == pytest.approx(by_session["cost"].sum())  # cost stays put
    assert not by_conversion["ihc"].equals(by_session["ihc"])
    assert "Conversion dates" in [d.label for d in at.date_input]
    assert "channel_report_ihc_2023-09-01_to_2023-09-10_by-conversion-date.csv" in downloads
    assert trend_spec(at, "day")["xAxis"]["name"] == "Conversion date"


def test_the_trend_shades_the_incomplete_last_days(dashboard_env):

    from pipeline.completeness import incomplete_days

    at = open_page("report")
    late = incomplete_days(open_database(workspace_of(at).db_path))
    spec = trend_spec(at, "day")
    bands = [s for s in spec["series"] if s["name"] == "incomplete"]
    if late is not None and late.days:
        (band,) = bands
        shaded = [day for day, item in zip(spec["xAxis"]["data"], band["data"]) if item is not None]
        assert shaded[-1] == pd.Timestamp(late.days[-1]).strftime("%b %d")
        assert [item["label"]["formatter"] for item in band["data"] if item and "label" in item] == ["incomplete"]
        assert "the incomplete last days" in texts(at)
    else:
        assert bands == []


def test_a_mixed_report_is_named_and_fixed_in_one_click(dashboard_env):
    from pipeline.coverage import model_coverage
    from pipeline.runner import RunOptions
    from pipeline.window import Window

    at = open_page("report")
    ws = workspace_of(at)
    ws.run(RunOptions(Window("2023-09-03", "2023-09-04"), "linear"))  # a windowed run: two models
    at.run()
    no_errors(at)
    warning = next(str(w.value) for w in at.warning if "mixes models" in str(w.value))
    assert "**Linear** for" in warning and "**IHC — offline model** for" in warning
    # the model the analyst just ran comes first; the one the other conversions keep is offered too
    assert at.button(key="rerun_one_model").label == "Re-run all conversions with Linear"
    assert at.button(key="rerun_with_ihc").label == "Re-run all conversions with IHC — offline model"
    at.button(key="rerun_one_model").click().run()
    no_errors(at)
    assert not any("mixes models" in str(w.value) for w in at.warning)
    assert [c.model for c in model_coverage(open_database(ws.db_path))] == ["linear"]


def test_a_rerun_from_the_report_leaves_no_stale_last_run_on_the_pipeline_page(dashboard_env):
    """The Pipeline page's windowed run (two models), the Report's one-click re-run, the Pipeline page
    again: its "Last run" box still told of the windowed run, under stage cards of the re-run."""
    at = open_page("pipeline")
    at.selectbox(key="run_model").set_value("linear").run()
    at.date_input(key="run_dates").set_value((date(2023, 9, 3), date(2023, 9, 4))).run()
    at.button(key="run_button").click().run()
    no_errors(at)
    windowed = next(s.value for s in at.success if "with Linear" in s.value)
    open_page("report", at)
    at.button(key="rerun_one_model").click().run()
    no_errors(at)
    open_page("pipeline", at)
    no_errors(at)
    assert windowed not in [s.value for s in at.success] and "Last run" not in [c.value for c in at.caption]


def test_the_view_lives_in_the_url_and_survives_moving_between_pages(dashboard_env):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard_support import APP, TIMEOUT

    # a shared URL opens the same view
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(
        {"dates": "2023-09-03..2023-09-05", "channel": ["Display", "Paid Search Brand"], "by": "conversion-date"}
    )
    at.run()
    no_errors(at)
    table = at.dataframe[0].value
    assert set(table["channel_name"]) == {"Display", "Paid Search Brand"}
    assert table["date"].min() == "2023-09-03" and table["date"].max() == "2023-09-05"
    assert at.radio(key="report_basis").value == "conversion-date"
    # the trend follows the channel filter instead of going empty
    assert set(at.multiselect(key="trend_channels").value) == {"Display", "Paid Search Brand"}

    # changing a filter writes it into the URL; leaving the page and coming back keeps it
    at.multiselect(key="report_channels").set_value(["Display"]).run()
    assert at.query_params["channel"] in ("Display", ["Display"])  # AppTest folds a one-item list
    assert at.multiselect(key="trend_channels").value == ["Display"]
    open_page("data", at)
    open_page("report", at)
    no_errors(at)
    assert at.multiselect(key="report_channels").value == ["Display"]
    assert at.radio(key="report_basis").value == "conversion-date"


def test_week_and_month_grain_for_the_trend_and_the_table(dashboard_env):
    import json

    at = open_page("report")
    days = at.dataframe[0].value
    at.segmented_control(key="report_grain").set_value("week").run()
    no_errors(at)
    weeks = at.dataframe[0].value
    assert "Channel-weeks" in texts(at)
    # The demo runs Friday 09-01 … Sunday 09-10: a 3-day week (dated by its first day in the data, not
    # Monday 08-28) and a whole one, dated by its Monday.
    # The date column is a short date (it sorts in time); a part-week says so in its own narrow column,
    # not in a long label that widened the date column (the channel column paid for it).
    assert set(zip(iso(weeks["date"]), weeks["part"])) == {("2023-09-01", "3 of 7"), ("2023-09-04", "")}
    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["date"]["label"] == "Week" and columns["date"]["type_config"]["format"] == "MMM D"
    assert columns["part"]["label"] == "Days"
    # each as wide as its longest text ("Sep 1": 32.5 px, "3 of 7": 31.5 px; + 17 px of padding and grid
    # line), plus the same share of the room left over (one px more for some columns)
    extra = {"date": columns["date"]["width"] - (33 + 17), "part": columns["part"]["width"] - (32 + 17)}
    assert abs(extra["date"] - extra["part"]) <= 1 and 0 <= min(extra.values()) <= 10, (columns, extra)
    # whole euros, each rounded (test_week_view_counts_its_rows_and_dates_start_at_the_filter): at most half a
    # euro per row from the days' sum
    assert abs(weeks["cost"].sum() - days["cost"].sum()) <= 0.5 * len(weeks) and (weeks["cost"] % 1 == 0).all()
    assert len(weeks) < len(days) and {"CPO range", "support"} <= set(weeks.columns)
    assert trend_spec(at, "week")["xAxis"]["data"] == ["Sep 01\n3 of 7 days", "Sep 04"]  # one label a week
    at.segmented_control(key="report_grain").set_value("month").run()
    no_errors(at)
    months = at.dataframe[0].value
    assert set(zip(iso(months["date"]), months["part"])) == {("2023-09-01", "10 of 30")}
    assert at.query_params["per"] == "month"
    # Ten days of September per month are one point per channel: no chart of lone dots, but what it would
    # be and the finer grains that show a course, one click away (the table stays per month).
    assert len(charts(at)) == 3 and not [s for s in specs(at) if s["title"]["text"].endswith(" per month")]
    assert any("lies within one month" in str(i.value) for i in at.info)
    assert [b.label for b in at.button if b.key and b.key.startswith("trend_per_")] == ["Show per day", "Show per week"]
    at.button(key="trend_per_week").click().run()
    no_errors(at)
    assert at.segmented_control(key="report_grain").value == "week" and at.query_params["per"] == "week"
    assert len(charts(at)) == 4 and trend_spec(at, "week")["xAxis"]["data"] == ["Sep 01\n3 of 7 days", "Sep 04"]
    assert "Channel-weeks" in texts(at)
    # one day per day: nothing finer to offer, a wider range to ask for
    at.date_input(key="report_dates").set_value((date(2023, 9, 4), date(2023, 9, 4))).run()
    at.segmented_control(key="report_grain").set_value("day").run()
    no_errors(at)
    assert any("The range is one day (Sep 04)" in str(i.value) and "Widen the dates" in str(i.value) for i in at.info)
    assert not [b for b in at.button if b.key and b.key.startswith("trend_per_")] and len(charts(at)) == 3


def test_the_loading_frame_leaves_nothing_behind_in_a_mixed_report(dashboard_env):
    """Review #1: the first view's loading tiles ("…") stayed inside the mixed-models box."""
    from pipeline.runner import RunOptions
    from pipeline.window import Window

    at = open_page("report")
    workspace_of(at).run(RunOptions(Window("2023-09-05", "2023-09-10"), "linear"))
    del at.session_state["_report_drawn"]  # as a new browser session: the loading frame first
    at.run()
    no_errors(at)
    assert any("mixes models" in str(w.value) for w in at.warning)
    assert [m.label for m in at.metric] == ["Cost", "Conversions", "Revenue", "Blended CPO", "Blended ROAS"]
    assert "…" not in [m.value for m in at.metric]
    assert not [c for c in charts(at) if "Loading…" in c.proto.spec]


def test_week_view_counts_its_rows_and_dates_start_at_the_filter(dashboard_env):
    """Review #3/#12: a week row never dated before the chosen start; the caption counts the rows shown."""
    at = open_page("report")
    at.date_input(key="report_dates").set_value((date(2023, 9, 3), date(2023, 9, 7))).run()
    at.segmented_control(key="report_grain").set_value("week").run()
    no_errors(at)
    table = at.dataframe[0].value
    # 09-03 is a Sunday: one day of the week of 08-28 (dated 09-03), then four of the week of 09-04.
    assert sorted(set(zip(iso(table["date"]), table["part"]))) == [("2023-09-03", "1 of 7"), ("2023-09-04", "4 of 7")]
    channels = table["channel_name"].nunique()
    days = read_report(open_database(workspace_of(at).db_path), "2023-09-03", "2023-09-07")
    assert f"{len(table):,} channel-weeks shown · CSV: {len(days):,} channel-days" in texts(at)
    assert len(table) <= 2 * channels < len(days)
    # whole euros, rounded (Streamlit cut a step-1 column's value down: a week's €14.96 read €14)
    week = days.assign(week=pd.to_datetime(days["date"]) >= "2023-09-04").groupby(["channel_name", "week"])
    sums = week[["cost", "ihc_revenue"]].sum().reset_index()
    shown = table.assign(week=pd.to_datetime(table["date"]) >= "2023-09-04").merge(sums, on=["channel_name", "week"])
    for column in ("cost", "ihc_revenue"):
        assert (shown[f"{column}_x"] == shown[f"{column}_y"].round(0)).all(), shown
    assert (shown["cost_y"] % 1 >= 0.5).any()  # a sum whose cutting would have shown one euro less


def test_a_filter_change_reruns_the_report_below_the_filters_alone(dashboard_env):
    """A pick in the channels or a new date range reruns only the fragment below the filters
    (``view_fragment``): the filter row is not sent again (AppTest's tree holds that fragment's elements
    alone), and what it draws is the filtered view, the same as a run of the whole page shows."""
    at = open_page("report")
    ws = workspace_of(at)
    expected = read_report(open_database(ws.db_path), "2023-09-03", "2023-09-05", ["Display"])
    at.multiselect(key="report_channels").set_value(["Display"]).run()
    no_errors(at)
    assert [w.key for w in at.multiselect] == ["trend_channels"]  # the filter row: not redrawn
    assert not at.date_input and not at.radio
    assert set(at.dataframe[0].value["channel_name"]) == {"Display"}
    assert at.query_params["channel"] in ("Display", ["Display"])  # the URL still follows
    at.run()
    at.date_input(key="report_dates").set_value((date(2023, 9, 3), date(2023, 9, 5))).run()
    no_errors(at)
    assert not at.date_input
    fragment_table = at.dataframe[0].value
    assert len(fragment_table) == len(expected) == 3  # Display on three days
    assert fragment_table["cost"].sum() == pytest.approx(expected["cost"].sum())
    cost_tile = next(m for m in at.metric if m.label == "Cost")
    assert at.query_params["dates"] == "2023-09-03..2023-09-05"
    at.run()  # the whole page: the same view
    no_errors(at)
    assert at.multiselect(key="report_channels").value == ["Display"]
    pd.testing.assert_frame_equal(at.dataframe[0].value, fragment_table)
    assert next(m for m in at.metric if m.label == "Cost").value == cost_tile.value


def test_incomplete_days_note_only_when_they_are_shown(dashboard_env):
    """Review #4: no warning about the last session days on a range without them, or by conversion date."""
    from pipeline.completeness import incomplete_days

    at = open_page("report")
    late = incomplete_days(open_database(workspace_of(at).db_path))
    assert late is not None and late.days and late.days[-1] == "2023-09-10"  # the demo's last day is young
    assert "incomplete" in texts(at)
    at.date_input(key="report_dates").set_value((date(2023, 9, 3), date(2023, 9, 7))).run()
    assert "incomplete" not in texts(at)
    at.run()  # a filter's change reruns only the report below the filters: AppTest's tree lacks them
    at.date_input(key="report_dates").set_value((date(2023, 9, 1), date(2023, 9, 10))).run()
    at.run()
    at.radio(key="report_basis").set_value("conversion-date").run()
    no_errors(at)
    assert "incomplete" not in texts(at)


def test_fractional_conversions_cannot_be_read_as_thousands(dashboard_env):
    """Review #18: '6.889' read as 6,889 to a German analyst, unexplained; the week grain's Monday weeks
    beside a date picker whose calendar starts on Sunday, unexplained."""
    import json

    at = open_page("report")
    ihc = json.loads(at.dataframe[0].proto.columns)["ihc"]
    assert ihc["type_config"]["format"] == "%.2f"  # 6.89: two decimals are never a thousands group
    assert "sum of the credit shares" in ihc["help"] and "fractional" in ihc["help"]
    for widget in (at.date_input(key="report_dates"), at.segmented_control(key="report_grain")):
        assert "Monday to Sunday" in widget.help and "browser's language" in widget.help


ALL_CHANNELS = None  # the filter empty: every channel
FEW_CHANNELS = ["Affiliate & Partnerships", "Paid Search Non Brand", "Referral"]


@pytest.mark.parametrize("grain", ["day", "week", "month"])
@pytest.mark.parametrize("channels", [["Paid Search Brand"], FEW_CHANNELS, ALL_CHANNELS])
def test_every_column_of_the_table_fits_at_1280_px(dashboard_env, grain, channels):
    """The table's columns add up to the main area at 1280 px (864 px with the sidebar open, less the page's
    scrollbar: 806 px of columns in 798 px put "Based on" under the table's own scrollbar), and each is
    as wide as its header and its longest value as the table writes them ("11.74–38.41" in ROAS 90%,
    "Affiliate & Partnerships" in Channel): nothing is cut at its right edge, nothing scrolls sideways."""
    from pipeline.labels import CELL_PADDING_PX, PAGE_TABLE_PX, table_room, text_px

    at = open_page("report")
    if channels:
        at.multiselect(key="report_channels").set_value(channels).run()
    at.segmented_control(key="report_grain").set_value(grain).run()
    no_errors(at)
    table = at.dataframe[0].value
    columns = json.loads(at.dataframe[0].proto.columns)
    widths = {c: columns[c]["width"] for c in columns if c in table.columns}
    assert set(widths) == set(table.columns)
    room = table_room(len(table), PAGE_TABLE_PX)
    assert room == (840 if len(table) > 10 else 850)  # 860 less the page's scrollbar, less the table's if it scrolls
    assert sum(widths.values()) <= room

    def fits(column: str, texts) -> None:
        widest = max([text_px(columns[column]["label"]), *(text_px(t) for t in texts)])
        assert widths[column] >= widest + CELL_PADDING_PX - 1, (column, widths[column], widest)

    # The demo's channel names are whole too, per day, week and month (per month they gave way first:
    # "Affiliate & Partnersh" in 120 px, before the sidebar left the main area 44 px more).
    fits("channel_name", table["channel_name"])
    assert columns["channel_name"].get("pinned") is True
    cents = 2 if grain == "day" else 0  # a week's or a month's sums in whole euros
    assert columns["cost"].get("type_config", {}).get("step") == (None if cents else 1)
    fits("cost", [f"€{v:,.{cents}f}" for v in table["cost"]])
    fits("ihc_revenue", [f"€{v:,.{cents}f}" for v in table["ihc_revenue"]])
    fits("CPO", [f"€{v:,.2f}" for v in table["CPO"].dropna()])
    fits("ihc", [f"{v:.2f}" for v in table["ihc"]])
    fits("ROAS", [f"{v:.2f}" for v in table["ROAS"].dropna()])
    fits("CPO range", table["CPO range"].dropna())
    fits("ROAS range", table["ROAS range"].dropna())
    fits("support", [str(v) for v in table["support"]])
    dates = pd.to_datetime(table["date"])
    shown_dates = {"day": "{:%Y-%m-%d}", "week": "{:%b} {.day}", "month": "{:%b %Y}"}[grain]  # MMM D, MMM YYYY
    fits("date", [shown_dates.format(d, d) for d in dates])
    if grain != "day":
        fits("part", table["part"])
    # the demo's longest names are whole (the filter's names are those of this database)
    if channels != ["Paid Search Brand"]:
        assert "Affiliate & Partnerships" in set(table["channel_name"])


def test_a_new_browsers_first_view_sends_its_tiles_before_the_filter_row(dashboard_env, monkeypatch):
    """A new browser session's first view sends the KPI tiles with their values, then pauses (the browser
    shows them while the other elements' code is still on its way), then the rest, the filter row last:
    the messages the run sends, in order, around its pause. The run that follows draws the row first, with
    no placeholder, and the same figures. On 4255917 the pause came after a frame of "…" tiles."""
    import threading
    import time

    from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext
    from streamlit.testing.v1 import AppTest

    from tests.dashboard_support import APP, TIMEOUT

    sent: list[tuple[str, str]] = []
    enqueue, real_sleep = ScriptRunContext.enqueue, time.sleep

    def recorded(self, msg):
        if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            kind = element.WhichOneof("type")
            sent.append((kind, getattr(element, kind).body if kind in ("metric", "markdown", "html") else ""))
        return enqueue(self, msg)

    def sleep(seconds):
        if seconds >= 0.2 and threading.current_thread().name.startswith("ScriptRunner"):
            sent.append(("PAUSE", ""))
        else:
            real_sleep(seconds)

    monkeypatch.setattr(ScriptRunContext, "enqueue", recorded)
    monkeypatch.setattr(time, "sleep", sleep)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()  # a new session, on the Report (the default page)
    no_errors(at)
    kinds = [kind for kind, _ in sent]
    assert kinds.count("PAUSE") == 1
    before, after = sent[: kinds.index("PAUSE")], sent[kinds.index("PAUSE") + 1 :]
    tiles = [body for kind, body in before if kind == "metric"]
    assert len(tiles) == 5 and all(re.search(r"\d", body) for body in tiles), tiles
    assert not {"date_input", "multiselect", "radio", "echarts_chart", "arrow_data_frame"} & {k for k, _ in before}
    # the view (its charts, the trend's channels, the table), then the filter row, last
    assert [kind for kind, _ in after if kind in ("date_input", "multiselect", "radio")][-3:] == [
        "date_input",
        "multiselect",
        "radio",
    ]
    assert max(i for i, k in enumerate(kinds) if k in ("echarts_chart", "arrow_data_frame")) < kinds.index("date_input")
    placeholder = [body for kind, body in before if 'class="report-filter-placeholder"' in body]
    assert len(placeholder) == 1
    assert re.findall(r">([A-Z][a-z ]+)</div>", placeholder[0]) == ["Session dates", "Channels", "Date credit by"]
    first = [(m.label, m.value) for m in at.metric]

    sent.clear()
    at.run()  # the session's next run: the row first, no pause, no placeholder
    no_errors(at)
    kinds = [kind for kind, _ in sent]
    assert "PAUSE" not in kinds and kinds.index("date_input") < kinds.index("metric")
    assert not [h for h in at.html if 'class="report-filter-placeholder"' in h.proto.body]
    assert [(m.label, m.value) for m in at.metric] == first


def test_a_new_browsers_first_view_ends_with_the_whole_page(dashboard_env):
    """Without interruption the first view's run ends with everything a later run shows: the filter row
    (after the view), the four charts, the table; its placeholder is still in the page, hidden by the
    page's style once the three widgets are shown (tests/test_e2e_browser.py looks in a browser)."""
    from streamlit.testing.v1 import AppTest

    from tests.dashboard_support import APP, TIMEOUT

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    no_errors(at)
    assert [w.key for w in at.date_input] == ["report_dates"] and at.radio[0].key == "report_basis"
    assert len(charts(at)) == 4 and len(at.dataframe) == 1
    assert len([h for h in at.html if 'class="report-filter-placeholder"' in h.proto.body]) == 1
    assert at.session_state["report_dates"] == (date(2023, 9, 1), date(2023, 9, 10))
    assert "_report_tiles_first" not in at.session_state


def test_the_tiles_say_what_their_cpo_and_roas_blend_in():
    """Hand-made totals: A paid (cost 100, 10 conversions, €500), B without cost (30 conversions, €900),
    C paid without a conversion (cost 50). The tiles' CPO is 150 / 40 = €3.75, though the only channel with
    both cost and conversions costs €15.00 a conversion: B's conversions are 30 of 40 = 75%. The paid
    channels alone: CPO 150 / 10 = €15.00, ROAS 500 / 150 = 3.33."""
    from pipeline import report_views as rv

    totals = pd.DataFrame(
        dict(
            channel_name=["A", "B", "C"],
            cost=[100.0, 0.0, 50.0],
            ihc=[10.0, 30.0, 0.0],
            ihc_revenue=[500.0, 900.0, 0.0],
        )
    )
    assert rv.blended_note(totals) == (
        "Blended CPO and ROAS: the paid channels' cost over the conversions and revenue of every channel, "
        "those without cost too (B: 75% of the conversions). The paid channels alone: CPO €15.00, ROAS 3.33."
    )
    assert rv.ratio_labels(totals) == ("Blended CPO", "Blended ROAS")
    without_b = totals[totals["channel_name"] != "B"]
    assert rv.blended_note(without_b) == "" and rv.ratio_labels(without_b) == ("CPO", "ROAS")  # all credit paid
    only_b = totals[totals["channel_name"] == "B"]
    assert rv.blended_note(only_b) == (
        "No channel here has a cost (B): a CPO of €0.00 and no ROAS are by construction, not a result."
    )
    assert rv.ratio_labels(only_b) == ("CPO", "ROAS")  # nothing paid to blend with
    # a channel without cost and without credit blends nothing in
    no_credit = totals.assign(ihc=[10.0, 0.0, 0.0], ihc_revenue=[500.0, 0.0, 0.0])
    assert rv.blended_note(no_credit) == "" and rv.ratio_labels(no_credit) == ("CPO", "ROAS")


def test_the_cpo_and_roas_tiles_say_they_count_the_unpaid_channels_conversions(dashboard_env):
    """On the demo the CPO tile read €3.98 while every paid channel's CPO was €3.92 or more: over all
    channels it divides the paid channels' cost by every channel's conversions, 56% of them Direct Traffic,
    Newsletter & Email and other channels without cost (the walk). The line under the tiles says so and
    gives the paid channels' own CPO and ROAS (computed here from the export's rows)."""
    at = open_page("report")
    no_errors(at)
    rows = read_report(open_database(workspace_of(at).db_path))
    per = rows.groupby("channel_name")[["cost", "ihc", "ihc_revenue"]].sum()
    paid = per[per["cost"] > 0]
    share = per.loc[per["cost"] <= 0, "ihc"].sum() / per["ihc"].sum()
    cpo, roas = paid["cost"].sum() / paid["ihc"].sum(), paid["ihc_revenue"].sum() / paid["cost"].sum()
    tiles = {m.label: m for m in at.metric}
    assert cpo > 2 * float(tiles["Blended CPO"].value.strip("€"))  # the blend halves it, and the tile says so
    assert "Blended ROAS" in tiles and "CPO" not in tiles and "ROAS" not in tiles
    assert tiles["Blended CPO"].proto.help.startswith("Blended: the paid channels' cost against")
    line = next(c.value for c in at.caption if c.value.startswith("Blended CPO and ROAS: the paid channels"))
    assert f"{share:.0%} of the conversions" in line and line.count(",") >= 2, line
    assert f"The paid channels alone: CPO €{cpo:,.2f}, ROAS {roas:,.2f}." in line
    # paid channels only: nothing blended, nothing said
    at.multiselect(key="report_channels").set_value(["Display", "Paid Search Brand"]).run()
    no_errors(at)
    assert not [c for c in at.caption if "channels without cost too" in c.value or "has a cost" in c.value]
    assert [m.label for m in at.metric] == ["Cost", "Conversions", "Revenue", "CPO", "ROAS"]
    assert "Blended" not in next(m for m in at.metric if m.label == "CPO").proto.help
    # a channel without cost alone: its €0.00 CPO is by construction
    at.run()  # the whole page again (a filter change reran the view's fragment alone)
    at.multiselect(key="report_channels").set_value(["Direct Traffic"]).run()
    no_errors(at)
    assert any(c.value.startswith("No channel here has a cost (Direct Traffic)") for c in at.caption)


def test_the_date_basis_keeps_its_choice_after_a_new_browsers_first_view_and_another_page(monkeypatch):
    """A new browser's first view draws the filter row after the view (``TILES_FIRST``), so the view kept
    the basis before the radio had a value: None, which coming back from another page put into the radio,
    shown with neither "Session date" nor "Conversion date" chosen (seen in the browser after Pipeline →
    Report). The basis is settled before anything reads it, on every path."""
    import time

    from streamlit.testing.v1 import AppTest

    from tests.dashboard_support import APP, PAGES, TIMEOUT

    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # the first view's pause
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()  # a new session on the Report: its first view
    no_errors(at)
    assert at.radio(key="report_basis").value == "session-date"
    at.switch_page(PAGES["pipeline"]).run()
    at.switch_page(PAGES["report"]).run()
    no_errors(at)
    assert at.radio(key="report_basis").value == "session-date" and at.radio(key="report_basis").index == 0
