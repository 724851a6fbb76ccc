"""AppTest: the Journeys page — length distribution, common paths, one conversion explained."""

from __future__ import annotations

import pytest

from pipeline import explain
from pipeline.db import open_database
from tests.dashboard_support import no_errors, open_page, workspace_of


def test_journeys_page_on_the_demo(dashboard_env):
    at = open_page("journeys")
    no_errors(at)
    assert len(at.get("plotly_chart")) == 3  # lengths, paths, the explained conversion
    con = open_database(workspace_of(at).db_path)
    picked = at.selectbox(key="explain_pick").value
    expected = explain.conversion_sessions(con, picked)
    shown = at.dataframe[0].value
    assert shown["session_id"].tolist() == expected["session_id"].tolist()
    assert shown["ihc"].sum() == pytest.approx(1.0, abs=1e-6)
    assert 3 <= len(shown) <= 8  # the default pick is a readable journey
    at.toggle(key="collapse_paths").set_value(True).run()
    no_errors(at)


def test_explain_a_typed_conversion_id(dashboard_env):
    at = open_page("journeys")
    con = open_database(workspace_of(at).db_path)
    unattributed = con.execute("SELECT conv_id FROM pipeline_unattributed LIMIT 1").fetchone()[0]
    at.text_input(key="explain_id").input(unattributed).run()
    no_errors(at)
    assert any("not attributed: no session before the conversion" in i.value for i in at.info)
    at.text_input(key="explain_id").input("NO-SUCH-ID").run()
    assert not at.exception
    assert any("there is no conversion 'NO-SUCH-ID'" in e.value for e in at.error)


def test_zero_credit_reasons_by_hand():
    import pandas as pd

    from pipeline.explain import zero_credit_reasons

    sessions = pd.DataFrame(
        {
            "timestamp": ["2023-09-01 08:00:00", "2023-09-04 09:00:00", "2023-09-04 10:00:00"],
            "ihc": [0.0, 0.4, 0.6],
        }
    )
    # a 73 h pause after the first session: longer than a 52.8 h cut, so the journey starts afresh
    reasons = zero_credit_reasons(sessions, "ihc", 52.8)
    assert reasons[0].startswith("before a 73.0 h pause, longer than the model's 52.8 h inactivity cut")
    assert reasons[1:] == ["", ""]
    assert "inactivity cut" in zero_credit_reasons(sessions, "ihc-api", None)[0]
    last = zero_credit_reasons(sessions.assign(ihc=[0.0, 0.0, 1.0]), "last-click")
    assert last == ["last click gives all the credit to the last session"] * 2 + [""]
    assert zero_credit_reasons(sessions.assign(ihc=[0.2, 0.3, 0.5]), "linear") == ["", "", ""]
