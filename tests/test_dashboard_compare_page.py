"""AppTest: the Compare models page — several models side by side on the same journeys."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from pipeline.model_settings import model_label
from pipeline.models import available_models
from tests.dashboard_support import no_errors, open_page, texts


def test_compare_page_on_the_demo(dashboard_env):
    at = open_page("compare")
    no_errors(at)
    chosen = at.multiselect(key="compare_models").value
    assert chosen[0] == "ihc" and len(chosen) >= 2
    assert set(at.multiselect(key="compare_models").options) >= {"IHC — offline model", "Linear", "Last click"}
    assert len(at.get("echarts_chart")) == 1 and not at.get("plotly_chart")  # no page loads Plotly's chunk
    spec = json.loads(at.get("echarts_chart")[0].proto.spec)
    assert spec["title"]["text"] == "Share of conversions per channel"
    assert [s["name"] for s in spec["series"]] == [model_label(m) for m in chosen]
    assert spec["yAxis"]["data"][:3] == at.dataframe[0].value["channel_name"].head(3).tolist()  # the table's order
    table = at.dataframe[0].value
    assert "ihc" in table.columns and any(c.startswith("Δ ") for c in table.columns)
    # shares of conversions sum to 100%; the cells are numbers (a click on the header sorts them as
    # numbers: '9.8%' came after '10.2%' as text), written '12.3%' by the Styler
    assert pd.api.types.is_float_dtype(table["ihc"]) and table["ihc"].sum() == pytest.approx(1.0, abs=1e-9)
    shown = _display_values(at)
    assert shown["ihc"].str.fullmatch(r"\d+\.\d%").all()
    assert sorted(table["ihc"], reverse=True) == table["ihc"].tolist()  # largest first, by value
    # the biggest shifts: cards that name both models in full (not cut in a metric's pill)
    assert "pts of the conversions: lowest with" in texts(at) and "highest with" in texts(at)


def test_compare_metric_and_models(dashboard_env):
    at = open_page("compare")
    at.segmented_control(key="compare_metric").set_value("ROAS").run()
    no_errors(at)
    assert "ROAS: one column per model" in texts(at)
    at.segmented_control(key="compare_metric").set_value("ihc").run()
    assert "Conversions are fractional: the sum of the credit shares" in texts(at)  # 12.3 conversions, said why
    at.multiselect(key="compare_models").set_value(["linear"]).run()
    assert "Choose at least two models to compare." in texts(at)
    assert set(available_models()) >= {"linear", "last-click"}  # read from the registry
    at.multiselect(key="compare_models").set_value(["linear", "last-click"]).run()
    no_errors(at)
    assert list(at.dataframe[0].value.columns[:3]) == ["channel_name", "linear", "last-click"]
    # the Show control came back (it is not drawn under two models) with its choice, not "Share": it had
    # highlighted "Share of conversions" over a view of conversions
    assert at.segmented_control(key="compare_metric").value == "ihc"
    assert "Conversions are fractional" in texts(at) and at.query_params["show"] == "ihc"


def test_the_show_control_always_holds_the_view_it_shows(dashboard_env):
    """A click on the chosen button unchose it (no button highlighted, the view fell back to Share);
    the choice stays. Another page and back: the same view, from the session (and from the address)."""
    at = open_page("compare")
    at.segmented_control(key="compare_metric").set_value("ROAS").run()
    at.segmented_control(key="compare_metric").set_value(None).run()  # the same button clicked again
    no_errors(at)
    assert at.segmented_control(key="compare_metric").value == "ROAS" and "ROAS: one column per model" in texts(at)
    open_page("report", at)
    open_page("compare", at)
    no_errors(at)
    assert at.segmented_control(key="compare_metric").value == "ROAS" and "ROAS: one column per model" in texts(at)


def test_delta_formats_and_tones_by_hand():
    from pipeline.compare import delta_tone, format_delta

    assert format_delta(0.0123, "share") == "+1.2 pts"  # points, as on the cards — not '%'
    assert format_delta(-0.00004, "share") == "+0.0 pts"  # never '-0.0'
    assert format_delta(-3.4, "CPO") == "−€3.40" and format_delta(12.0, "ihc_revenue") == "+€12"
    assert format_delta(float("nan"), "ROAS") == "—" and format_delta(None, "ROAS") == "—"
    assert delta_tone(0.00004, "share", False) == ""  # shows as +0.0 pts: no tint
    assert delta_tone(0.02, "share", False) == "more" and delta_tone(-0.02, "share", False) == "less"
    assert delta_tone(5.0, "CPO", False) == "less"  # a higher CPO is worse: red, not green
    assert delta_tone(-5.0, "CPO", False) == "more"
    assert delta_tone(0.02, "share", True) == "noise"


def _display_values(at):
    """The table's cells as the browser shows them (the Styler's display values)."""
    import pyarrow as pa

    styler = at.dataframe[0].proto.arrow_data.styler
    return pa.ipc.open_stream(styler.display_values).read_pandas()


def test_compare_shows_labels_dashes_and_points(dashboard_env):
    at = open_page("compare")
    at.multiselect(key="compare_models").set_value(["ihc", "last-click"]).run()
    at.segmented_control(key="compare_metric").set_value("ROAS").run()
    no_errors(at)
    shown = _display_values(at)
    assert not shown.astype(str).isin(["None", "nan"]).any().any()  # undefined ROAS: '—'
    # Channels without cost have no ROAS: left out of the view and named under it (as on the Report),
    # not a row of "None" (review #7).
    table = at.dataframe[0].value
    unpaid = ["Direct Traffic", "Newsletter & Email", "Organic Search"]
    assert not set(unpaid) & set(table["channel_name"])
    assert "Not in the ROAS view — channels without cost: Direct Traffic" in texts(at)
    # The cards follow the chosen measure and give a range over the models, not an arrow (review #8).
    cards = texts(at)
    assert "across models" in cards and "→" not in cards and "pts of the conversions" not in cards
    assert "The channels whose ROAS depends most on the model (first those where a difference is" in cards
    at.segmented_control(key="compare_metric").set_value("CPO").run()
    no_errors(at)
    assert not set(unpaid) & set(at.dataframe[0].value["channel_name"])  # not at €0.00, the "cheapest"
    assert not (_display_values(at).astype(str) == "€0.00").any().any()
    # The cells are numbers (they sort as numbers); the browser shows the library's text for them.
    cells = at.dataframe[0].value.drop(columns="channel_name")
    assert all(pd.api.types.is_float_dtype(dtype) for dtype in cells.dtypes)
    assert _display_values(at).drop(columns="channel_name").map(lambda v: v not in ("None", "nan", "")).all().all()
    spec = json.loads(at.get("echarts_chart")[0].proto.spec)
    assert [s["name"] for s in spec["series"]] == ["IHC — offline model", "Last click"]  # the picker's labels
    assert not set(unpaid) & set(spec["yAxis"]["data"])  # no CPO bar for a channel without cost
    assert spec["xAxis"]["axisLabel"]["formatter"] == "€{value}"
    at.segmented_control(key="compare_metric").set_value("share").run()
    deltas = _display_values(at).filter(like="Δ").astype(str)
    assert deltas.apply(lambda c: c.str.endswith(" pts") | (c == "—")).all().all()
    assert "Grey: within the noise" in texts(at)
    # a difference that shows as '+0.0 pts' is grey like one within the noise, never in black as if it said more
    styler = at.dataframe[0].proto.arrow_data.styler
    zero = [(r, c) for c, col in enumerate(deltas.columns) for r, v in enumerate(deltas[col]) if v in ("+0.0 pts",)]
    rules = [rule.split("{") for rule in styler.styles.split("}") if "{" in rule]  # "#T_x_row8_col3, … { css"
    grey = {cell for where, css in rules if "color: #98A2B3" in css for cell in re.findall(r"row(\d+)_col(\d+)", where)}
    first = list(_display_values(at).columns).index(deltas.columns[0])
    assert zero and {(str(r), str(c + first)) for r, c in zero} <= grey, (zero, styler.styles[:400])


def test_the_chosen_models_live_in_the_url(dashboard_env):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard_support import APP, TIMEOUT

    # a shared URL opens the same comparison (an unknown or repeated name in it is dropped)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"model": ["linear", "no-such-model", "first-click", "linear"]})
    at.switch_page("pages/compare.py").run()
    no_errors(at)
    assert at.multiselect(key="compare_models").value == ["linear", "first-click"]
    assert list(at.dataframe[0].value.columns[:3]) == ["channel_name", "linear", "first-click"]

    # a change is written into the URL; another page and back keeps the comparison
    at.multiselect(key="compare_models").set_value(["last-click", "linear", "markov"]).run()
    no_errors(at)
    assert at.query_params["model"] == ["last-click", "linear", "markov"]
    open_page("report", at)
    open_page("compare", at)
    no_errors(at)
    assert at.multiselect(key="compare_models").value == ["last-click", "linear", "markov"]


def test_adding_a_model_shows_which_model_is_being_attributed():
    from pages.compare import ComparisonProgress

    class Slot:
        def __init__(self):
            self.shown = []

        def progress(self, value, text):
            self.shown.append((value, text))

    slot = Slot()
    progress = ComparisonProgress(slot, [("linear", {}), ("markov", {})])
    progress(0, 100, "compare: loading the journeys")
    progress(20, 100, "compare: attributing with linear")
    progress(60, 100, "compare: attributing with markov")
    progress(100, 100, "compare: done")
    texts_shown = [t for _, t in slot.shown]
    assert texts_shown[0] == "Loading the journeys — 0%"
    assert texts_shown[1] == "Attributing the journeys with Linear (1 of 2) — 20%"
    assert texts_shown[2] == "Attributing the journeys with Markov chain (removal effect) (2 of 2) — 60%"
    assert [v for v, _ in slot.shown] == sorted(v for v, _ in slot.shown)  # never backwards


def test_the_comparison_names_its_conversions_dates_and_that_report_filters_do_not_apply(dashboard_env):
    """The page said "394 conversions with at least one session · costs of all sessions": no date at all,
    and an analyst coming from a Report filtered to a week and two channels read its figures as that
    view's (the walk at 1280 and 1024 px). It names the conversions' dates (the last run's window) and
    says that the Report's filters do not narrow it."""
    from datetime import date

    from pipeline.db import open_database
    from tests.dashboard_support import workspace_of

    at = open_page("report")
    at.multiselect(key="report_channels").set_value(["Display"]).run()
    open_page("compare", at)
    no_errors(at)
    con = open_database(workspace_of(at).db_path)
    n = con.execute("SELECT count(DISTINCT conversion_id) FROM pipeline_journeys").fetchone()[0]
    assert n == 394  # the small demo: 400 conversions, 6 without a session
    line = next(c.value for c in at.caption if "conversions" in c.value and "at least one session" in c.value)
    assert "394 conversions of" in line and "2023-09-01" in line and "2023-09-10" in line, line
    assert "The Report's date and channel filters do not apply here." in line

    # a run on a window of conversion dates: the comparison covers that window, and says so
    open_page("pipeline", at)
    at.date_input(key="run_dates").set_value((date(2023, 9, 4), date(2023, 9, 6))).run()
    at.button(key="run_button").click().run()
    no_errors(at)
    open_page("compare", at)
    no_errors(at)
    n = con.execute(
        "SELECT count(DISTINCT j.conversion_id) FROM pipeline_journeys j"
        " JOIN conversions c ON c.conv_id = j.conversion_id WHERE c.conv_date BETWEEN '2023-09-04' AND '2023-09-06'"
    ).fetchone()[0]
    line = next(c.value for c in at.caption if "at least one session" in c.value)
    assert f"{n:,} conversions of" in line and "2023-09-04" in line and "2023-09-06" in line, line
    assert "2023-09-01" not in line.split("·")[0]
