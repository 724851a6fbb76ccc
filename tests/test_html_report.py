"""The report as one self-contained HTML file (pipeline.html_report, `report-html`, the Report page)."""

from __future__ import annotations

import html
import json
import re
import sqlite3

import pytest

from pipeline.db import open_database
from pipeline.errors import InputError
from pipeline.html_report import html_report
from pipeline.labels import duration
from pipeline.report_views import report_view
from pipeline.validate import current_validation
from tests.browser_support import chromium, missing_browser
from tests.dashboard_support import no_errors, open_page
from tests.helpers import cli, run_db


@pytest.fixture(scope="module")
def attributed(small_demo, tmp_path_factory):
    db = tmp_path_factory.mktemp("html") / "demo.db"
    sqlite3.connect(small_demo).backup(sqlite3.connect(db))
    run_db(db, model="linear")
    return db


def test_the_file_has_the_report_and_loads_nothing_from_outside(attributed):
    con = open_database(attributed)
    page = html_report(con, source="demo.db")
    view = report_view(con)
    assert f"€{view.kpis.cost:,.0f}" in page and f"{view.kpis.conversions:,.0f}" in page  # the KPI tiles
    assert page.count("Plotly.newPlot(") == 4  # CPO, ROAS, cost vs revenue, trend
    assert "Model <b>Linear</b>" in page and "Database: <b>demo.db</b>" in page
    # the line under the dashboard's tiles: the CPO and ROAS tiles count the unpaid channels' conversions
    per = view.totals.set_index("channel_name")
    paid = per[per["cost"] > 0]
    cpo = paid["cost"].sum() / paid["ihc"].sum()
    assert f"The paid channels alone: CPO €{cpo:,.2f}, ROAS " in page
    assert "<h2>Data checks</h2>" in page and "Per channel" in page
    assert "function" in page[:6_000_000] and len(page) > 3_000_000  # plotly.js itself is inside
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=", page, flags=re.I)  # nothing fetched
    # the data checks for a manager: one sentence each with count and share, no log prefix, no example ids
    checks = page[page.index("<h2>Data checks</h2>") :]
    checks = checks[: checks.index("</div>", checks.rindex("class='check"))]
    assert re.search(r"\d+ conversions \(\d+\.\d%\) have no session of their user before them", checks), checks
    assert "warning" not in checks and "conversions: " not in checks and "e.g." not in checks
    examples = [e for f in current_validation(con).findings for e in f.examples]
    assert examples and not any(str(e) in checks for e in examples)
    filtered = html_report(con, "2023-09-03", "2023-09-04", ["Display"], "conversion-date")
    assert "Dates 2023-09-03 … 2023-09-04 by conversion date" in filtered and "Channels: Display" in filtered


def test_data_in_the_file_is_escaped(tmp_path):
    from tests.helpers import TINY_CONVERSIONS, TINY_COSTS, TINY_SESSIONS, make_db

    link = '<a href="http://evil.example/x">click</a>'
    sessions = [(*s[:4], link if s[4] == "Display" else s[4], *s[5:]) for s in TINY_SESSIONS]
    db = make_db(tmp_path / "hostile.db", sessions, TINY_CONVERSIONS, TINY_COSTS)
    run_db(db, model="linear")
    page = html_report(open_database(db))
    assert link not in page and "&lt;a href=&quot;http://evil.example/x&quot;&gt;" in page


def test_the_cli_writes_it_and_refuses_the_input_as_output(attributed, tmp_path):
    out = tmp_path / "report.html"
    done = cli("report-html", str(attributed), "--output", str(out), "--start", "2023-09-03")
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8").count("Plotly.newPlot(") == 4
    refused = cli("report-html", str(attributed), "--output", str(attributed))
    assert refused.returncode == 2 and "error:" in refused.stderr


def _undated(page: str) -> str:
    return re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", "", page)  # the minute the file was written


def test_the_cli_writes_the_view_per_month_with_the_trend_s_channels_and_measure(attributed, tmp_path):
    """``report-html --per/--trend-channel/--trend-metric``: the file the library writes for that view."""
    out = tmp_path / "month.html"
    done = cli(
        "report-html", attributed, "--output", out, "--per", "month", "--trend-metric", "cost",
        "--trend-channel", "Display", "--trend-channel", "Referral", "--start", "2023-09-03",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    con = open_database(attributed)
    expected = html_report(
        con, "2023-09-03", source="demo.db", grain="month", trend=["Display", "Referral"], metric="cost"
    )
    page = out.read_text(encoding="utf-8")
    assert _undated(page) == _undated(expected)
    assert "<h2>Per channel and month</h2>" in page and "per day" not in page
    assert _undated(page) != _undated(html_report(con, "2023-09-03", source="demo.db", grain="month"))
    # the defaults are the dashboard's: per day, revenue, the top five channels
    plain = tmp_path / "plain.html"
    assert cli("report-html", attributed, "--output", plain).returncode == 0
    assert _undated(plain.read_text(encoding="utf-8")) == _undated(html_report(con, source="demo.db"))


def test_a_trend_channel_the_report_does_not_have_is_refused_in_one_line_and_nothing_is_written(attributed, tmp_path):
    con = open_database(attributed)
    with pytest.raises(InputError, match="the trend's channel 'Radio' is not in this report"):
        html_report(con, trend=["Display", "Radio"])
    with pytest.raises(InputError, match="the trend's channel 'Referral' is not in this report .*: Display\\)"):
        html_report(con, channels=["Display"], trend=["Referral"])  # filtered out by --channel
    out = tmp_path / "r.html"
    done = cli("report-html", attributed, "--output", out, "--trend-channel", "Radio")
    assert done.returncode == 2 and not out.exists()
    assert done.stderr.startswith("error: the trend's channel 'Radio'") and len(done.stderr.strip().splitlines()) == 1
    bad = cli("report-html", attributed, "--output", out, "--per", "year")
    assert bad.returncode == 2 and "--per" in bad.stderr and not out.exists()


def test_the_cli_s_view_words_are_the_library_s():
    from pipeline import report_views as rv
    from pipeline.cli.core import GRAINS, TREND_METRICS

    assert GRAINS == tuple(rv.GRAINS)
    assert sorted(TREND_METRICS.values()) == sorted(rv.DAILY_METRICS)


@pytest.mark.skipif(missing_browser() is not None, reason=f"browser test skipped: {missing_browser()}")
def test_the_file_opens_offline_in_a_browser_with_its_charts(attributed, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(html_report(open_database(attributed)), encoding="utf-8")
    outside = []
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})

        def only_the_file(route):
            if route.request.url.startswith("file:"):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", only_the_file)
        page = context.new_page()
        page.goto(path.as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
        assert page.locator(".js-plotly-plot").count() == 4
        assert page.locator(".js-plotly-plot .errorbar").count() > 0  # the whiskers are drawn
    assert outside == []


def test_the_report_page_offers_the_html_download(dashboard_env):
    at = open_page("report")
    no_errors(at)
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Report (HTML)" in labels


def test_the_tiles_say_what_the_dashboard_tiles_say(attributed):
    page = html_report(open_database(attributed))
    tiles = re.findall(r"<div class='label'>([^<]*)</div>", page)
    # the Report page's tiles, in order; the small demo's unpaid channels have credit: CPO and ROAS blended
    assert tiles == ["Cost", "Conversions", "Revenue", "Blended CPO", "Blended ROAS"]
    assert "Attributed conversions" not in page and "sum of its credit shares" in page


def test_few_channels_in_the_cost_revenue_chart_fill_the_plot_under_upright_labels():
    import pandas as pd

    from pipeline.report_charts import cost_revenue_chart

    def layout(n: int) -> dict:
        totals = pd.DataFrame(
            {"channel_name": [f"Channel {i}" for i in range(n)], "cost": [1.0] * n, "ihc_revenue": [2.0] * n}
        )
        return cost_revenue_chart(totals, {})["layout"]

    two, six, nine = layout(2), layout(6), layout(9)
    # no padded range that squeezed two channels into the middle: the categories fill the plot
    assert "range" not in two["xaxis"] and "range" not in six["xaxis"]
    # a slanted label hangs left of its bars: two channels' labels stand upright, many still slant
    assert two["xaxis"]["tickangle"] == 0 and nine["xaxis"]["tickangle"] == -35
    # a pair of bars is as wide with two channels as with six: (1 - gap) of each of n categories
    assert (1 - two["bargap"]) / 2 == pytest.approx((1 - six["bargap"]) / 6) == pytest.approx(0.75 / 6)


def _rows_of(page: str, heading: str) -> list[list[str]]:
    """The cells of the table under ``<h2>heading</h2>``, row by row (header row left out)."""
    table = page[page.index(f"<h2>{heading}</h2>") :]
    table = table[: table.index("</table>")]
    return [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in table.split("<tr>")[2:]]


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_the_file_has_the_view_s_grain_in_its_trend_and_table(attributed, grain):
    """Review 16 F6: with Per: Month on screen the file still said 'per day' and had no periods."""
    con = open_database(attributed)
    page = html_report(con, "2023-09-03", "2023-09-09", grain=grain)
    assert f"per {grain}" in page and all(f"per {g}" not in page for g in ("day", "week", "month") if g != grain)
    view = report_view(con, "2023-09-03", "2023-09-09", grain=grain)
    rows = _rows_of(page, f"Per channel and {grain}")
    assert len(rows) == len(view.periods) > 0
    # the same figures as the page's table, row for row: channel, period, cost, conversions, revenue
    expected = [
        [c, d, f"€{cost:,.2f}", f"{ihc:,.2f}", f"€{rev:,.2f}"]
        for c, d, cost, ihc, rev in view.periods[["channel_name", "date", "cost", "ihc", "ihc_revenue"]].itertuples(
            index=False
        )
    ]
    assert [[html.unescape(r[0]), r[1], *r[-8:-5]] for r in rows] == expected
    if grain == "week":  # 09-03 is a Sunday: one day of its week, then six of the week of 09-04
        assert sorted({(r[1], r[2]) for r in rows}) == [("2023-09-03", "1 of 7"), ("2023-09-04", "6 of 7")]


def test_a_trend_of_one_month_says_why_it_is_one_point_per_channel(attributed):
    """Ten days of September per month: the file's trend (the grain is fixed there) says so in its corner."""
    con = open_database(attributed)
    note = "The range (Sep 03 – Sep 10) is one month: one point per channel, no course to show"
    month = html_report(con, "2023-09-03", grain="month")
    assert json.dumps(note) in month[month.index('Plotly.newPlot("trend"') :]  # "–" written as \u2013
    assert "no course to show" not in html_report(con, "2023-09-03", grain="week")  # two weeks: a line


def test_the_file_s_trend_has_the_view_s_channels_and_metric(attributed):
    con = open_database(attributed)
    page = html_report(con, grain="week", trend=["Display", "Referral"], metric="cost")
    trend = page[page.index('Plotly.newPlot("trend"') :]
    names = set(re.findall(r'"name": "([^"]+)"', trend[: trend.index("\n")]))
    assert names == {"Display", "Referral"}
    assert "Cost per week" in trend[: trend.index("\n")]
    filtered = html_report(con, channels=["Display", "Referral", "Direct Traffic"])  # the page's default
    trend = filtered[filtered.index('Plotly.newPlot("trend"') :]
    assert set(re.findall(r'"name": "([^"]+)"', trend[: trend.index("\n")])) == {
        "Display",
        "Referral",
        "Direct Traffic",
    }
    with pytest.raises(InputError, match="grain 'year'"):
        html_report(con, grain="year")


def test_the_file_says_when_the_run_ran_and_how_long_it_took_in_all(attributed):
    """Review 16 F6: 'attributed … in 0.01 s' read as the whole report's time."""
    from pipeline.status import read_records

    con = open_database(attributed)
    records = read_records(con)
    page = html_report(con)
    line = re.search(r"Run of ([^<]*)", page)[0]
    total = sum(r.seconds for r in records.values() if r.run_id == records["report"].run_id)
    assert line.startswith(f"Run of {records['journeys'].started_at}: journeys {duration(records['journeys'].seconds)}")
    assert f"attribution {duration(records['attribute'].seconds)}" in line
    assert line.endswith(f"— {duration(total)} in all")
    assert "kept from an earlier run" not in line


def test_both_tables_write_a_row_without_support_as_0_conversions_behind_it():
    """A channel-day with cost and no conversion has NaN support after the join: `int(nan or 0)` raised
    in the channel table. Both tables write the same eight measure cells, 0 behind it."""
    import math

    import pandas as pd

    from pipeline import html_report as hr
    from pipeline import report_views as rv

    nan = math.nan
    row = {"cost": 120.0, "ihc": 0.0, "ihc_revenue": 0.0, "CPO": math.inf, "CPO_low": nan, "CPO_high": nan}
    row |= {"ROAS": 0.0, "ROAS_low": nan, "ROAS_high": nan, "support": nan}
    paid = {"cost": 50.0, "ihc": 4.0, "ihc_revenue": 200.0, "CPO": 12.5, "CPO_low": 10.0, "CPO_high": 20.0}
    paid |= {"ROAS": 4.0, "ROAS_low": 3.0, "ROAS_high": 5.5, "support": 4.0}
    totals = pd.DataFrame([{"channel_name": "Display", **row}, {"channel_name": "Email", **paid}])
    periods = totals.assign(date="2023-09-04")
    view = rv.ReportView(rows=totals, totals=totals, kpis=None, kpi_bounds={}, periods=periods, basis="session-date")
    # CPO: cost / 0 conversions is no price ("—"), its interval empty; ROAS 0.00 with no interval
    display = ["€120.00", "0.00", "€0.00", "—", "", "0.00", "", "0"]
    email = ["€50.00", "4.00", "€200.00", "€12.50", "€10.00–€20.00", "4.00", "3.00–5.50", "4"]
    assert _rows_of(hr._table(view), "Per channel") == [["Email", *email], ["Display", *display]]
    assert _rows_of(hr._period_table(view), "Per channel and day") == [
        ["Display", "2023-09-04", *display],
        ["Email", "2023-09-04", *email],
    ]
