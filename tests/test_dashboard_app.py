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
    assert len(at.get("echarts_chart")) == 4  # the Report's charts (ECharts)
    for name in PAGES:
        open_page(name, at)
        no_errors(at)
        assert at.title, name


def test_two_sessions_never_see_each_others_data(dashboard_env, tmp_path):
    first = open_page("data")
    second = open_page("data")
    a, b = workspace_of(first), workspace_of(second)
    assert a.root != b.root
    first.file_uploader[0].set_value(("tiny.db", tiny_db(tmp_path / "t.db").read_bytes(), "x")).run()
    assert a.source.name == "tiny.db"
    second.run()
    assert b.source.kind == "demo" and "tiny.db" not in texts(second)
    open_page("report", second)
    assert len(second.dataframe[0].value) > 0  # the demo's report, not the empty upload
    open_page("report", first)
    assert "There is no channel report in this database yet" in texts(first)


def test_sessions_share_the_demos_cached_reads_until_their_own_run(dashboard_env):
    from pages._session import db_key
    from pipeline.runner import RunOptions

    first, second = open_page("report"), open_page("report")
    a, b = workspace_of(first), workspace_of(second)
    assert a.shares_demo and b.shares_demo
    assert db_key(a) == db_key(b)  # the same read-only file: the second session finds the report read
    assert a.fingerprint() != b.fingerprint()  # the workspaces themselves stay apart
    a.run(RunOptions(model="linear"))
    assert not a.shares_demo and db_key(a) != db_key(b)  # its own copy: private again
    assert db_key(a)[1] == a.fingerprint()
    second.run()
    no_errors(second)
    assert "Attribution: **IHC — offline model**" in texts(second)  # not the other session's linear run
