"""In a real browser: what issue 15 added so the report cannot mislead a first-time analyst.

On the small demo, through Debian's Chromium: the KPI tiles show the 90% interval of ROAS, the CPO/ROAS
bars carry whiskers, the incomplete last day is shaded in the trend; "Conversion date" re-dates the
credit and says so; Compare models names the models as the picker does and explains its grey cells.
A database whose attribution mixes two models (IHC, then Linear for two days, made with the CLI) is
uploaded: the Report names both and one click re-runs every conversion with one model. (The Pipeline
page's warning before such a run is an AppTest: test_dashboard_pipeline_page.py.) Screenshots go to
artifacts/screenshots/trust_*.png.
"""

from __future__ import annotations

from tests import browser_support as web
from tests.helpers import cli

pytestmark = web.needs_browser()


def test_intervals_date_basis_noise_and_mixed_models_in_the_browser(tmp_path):
    web.SHOTS.mkdir(parents=True, exist_ok=True)
    env = web.served_env(tmp_path)
    with web.streamlit_server(env, tmp_path / "streamlit.log") as url, web.chromium() as browser:
        page = web.open_app(browser, url)
        web.no_traceback(page)

        # Intervals: the ROAS tile's range, whiskers on the bars, the incomplete day shaded and said.
        text = web.text_of(page)
        assert "90%: " in text
        web.wait_charts(page, 4)
        assert web.chart_look(page, 1, "#475467")["near"] > 0.001  # the ROAS bars' whiskers are drawn
        assert "Shaded: the incomplete last days" in text
        assert "shaded: incomplete" in web.chart_text(page, 3)
        # The channel-day table fits the 1280 px window with the sidebar open: no column past the edge.
        grid = page.locator('[data-testid="stDataFrame"] .dvn-scroller').first
        widths = grid.evaluate("g => [g.scrollWidth, g.clientWidth]")
        assert widths[0] <= widths[1], f"the table scrolls sideways: {widths[0]} px of columns in {widths[1]} px"
        assert "no spread (see ?)" not in text  # the total CPO tile: no cryptic pill (its help says why)
        web.screenshot(page, web.SHOTS / "trust_1_report_intervals.png")

        # The date basis: credit by conversion date, said by the filter and the trend's axis.
        page.get_by_text("Conversion date", exact=True).first.click()
        web.wait_idle(page)
        web.no_traceback(page)
        assert "Conversion dates" in web.text_of(page)
        assert "by conversion date" in web.chart_text(page, 3)
        web.screenshot(page, web.SHOTS / "trust_2_report_by_conversion_date.png")

        # Compare: the legend speaks the picker's words, the caption explains the grey cells.
        web.goto_page(page, "Compare models")
        web.wait_idle(page, 180)
        web.no_traceback(page)
        assert "Grey: within the noise" in web.text_of(page)
        web.wait_charts(page, 1)
        assert "Last click" in web.chart_text(page, 0).split(". ")[0]  # the chart's models, as its legend says
        web.screenshot(page, web.SHOTS / "trust_3_compare_noise.png")

        # An upload whose attribution mixes two models: named on the Report, fixed in one click.
        mixed = tmp_path / "mixed.db"
        assert cli("demo-db", str(mixed), "--sessions", "20000", "--conversions", "300", "--days", "7").returncode == 0
        assert cli("run", str(mixed)).returncode == 0
        assert (
            cli("run", str(mixed), "--model", "linear", "--start", "2023-09-03", "--end", "2023-09-04").returncode == 0
        )
        web.goto_page(page, "Data")
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(mixed))
        page.get_by_text("mixed.db is loaded").wait_for(timeout=120_000)
        web.wait_idle(page)
        web.goto_page(page, "Report")
        web.wait_idle(page)
        web.no_traceback(page)
        text = web.text_of(page)
        assert "This report mixes models" in text and "Linear" in text and "IHC" in text
        web.screenshot(page, web.SHOTS / "trust_4_report_mixed.png")
        page.get_by_role("button", name="Re-run all conversions with Linear").click()
        web.wait_idle(page, 240)
        web.no_traceback(page)
        assert "This report mixes models" not in web.text_of(page)
