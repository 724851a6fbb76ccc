"""AppTest: the app as a whole — it opens on the demo report, every page renders, and two browser
sessions never see each other's data."""

from __future__ import annotations

from tests.dashboard_support import APP, PAGES, no_errors, open_page, texts, workspace_of
from tests.helpers import tiny_db


def test_opens_on_the_demo_report_and_every_page_renders(dashboard_env):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120).run()
    no_errors(at)
    assert [t.value for t in at.title] == ["Channel report"]  # the default page, already filled
    assert len(at.get("plotly_chart")) == 4
    for name in PAGES:
        open_page(name, at)
        no_errors(at)
        assert at.title, name


def test_two_sessions_never_see_each_others_data(dashboard_env, tmp_path):
    first = open_page("data")
    second = open_page("data")
    a, b = workspace_of(first), workspace_of(second)
    assert a.root != b.root
    first.file_uploader(key="upload").set_value(("tiny.db", tiny_db(tmp_path / "t.db").read_bytes(), "x")).run()
    assert a.source.name == "tiny.db"
    second.run()
    assert b.source.kind == "demo" and "tiny.db" not in texts(second)
    open_page("report", second)
    assert len(second.dataframe[0].value) > 0  # the demo's report, not the empty upload
    open_page("report", first)
    assert "There is no channel report in this database yet" in texts(first)
