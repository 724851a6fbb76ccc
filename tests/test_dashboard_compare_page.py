"""AppTest: the Compare models page — several models side by side on the same journeys."""

from __future__ import annotations

import pytest

from pipeline.models import available_models
from tests.dashboard_support import no_errors, open_page, texts


def test_compare_page_on_the_demo(dashboard_env):
    at = open_page("compare")
    no_errors(at)
    chosen = at.multiselect(key="compare_models").value
    assert chosen[0] == "ihc" and len(chosen) >= 2
    assert set(at.multiselect(key="compare_models").options) >= {"IHC — offline model", "Linear", "Last click"}
    assert len(at.get("plotly_chart")) == 1
    table = at.dataframe[0].value
    assert "ihc" in table.columns and any(c.startswith("Δ ") for c in table.columns)
    assert table["ihc"].sum() == pytest.approx(1.0)  # shares of conversions sum to 1
    assert len([m for m in at.metric]) >= 1  # the biggest shifts


def test_compare_metric_and_models(dashboard_env):
    at = open_page("compare")
    at.segmented_control(key="compare_metric").set_value("ROAS").run()
    no_errors(at)
    assert "ROAS: one column per model" in texts(at)
    at.multiselect(key="compare_models").set_value(["linear"]).run()
    assert "Choose at least two models to compare." in texts(at)
    assert set(available_models()) >= {"linear", "last-click"}  # read from the registry
    at.multiselect(key="compare_models").set_value(["linear", "last-click"]).run()
    no_errors(at)
    assert list(at.dataframe[0].value.columns[:3]) == ["channel_name", "linear", "last-click"]
