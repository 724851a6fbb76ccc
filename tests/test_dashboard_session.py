"""pages/_session: the Report's view arguments (one ``ReportViewArgs`` for the cached reads, the page
and the read-ahead after a run) and the filters kept in the URL."""

from __future__ import annotations

import sqlite3

import pytest

from tests.dashboard_support import APP, TIMEOUT, no_errors, open_page
from tests.helpers import run_db


@pytest.fixture(scope="module")
def attributed(small_demo, tmp_path_factory):
    db = tmp_path_factory.mktemp("session") / "demo.db"
    sqlite3.connect(small_demo).backup(sqlite3.connect(db))
    run_db(db, model="linear")
    return str(db)


def test_equal_view_args_are_one_cached_view_and_other_args_another(attributed, monkeypatch):
    from pages import _session

    built = []
    real = _session.build_report_view

    def counted(con, *args, **kwargs):
        built.append(args)
        return real(con, *args, **kwargs)

    monkeypatch.setattr(_session, "build_report_view", counted)
    _session.report_view.clear()
    fp = "fingerprint-of-this-test"
    first = _session.report_view(attributed, fp, _session.ReportViewArgs("2023-09-03", None, ("Display",)))
    # built anew, equal field by field: the cache's key, not the object's identity
    again = _session.report_view(
        attributed, fp, _session.ReportViewArgs("2023-09-03", None, ("Display",), "session-date")
    )
    assert built == [("2023-09-03", None, ("Display",), "session-date")]
    assert again.totals.equals(first.totals) and set(first.totals["channel_name"]) == {"Display"}
    weeks = _session.report_view(
        attributed, fp, _session.ReportViewArgs("2023-09-03", None, ("Display",), grain="week")
    )
    assert len(built) == 2 and weeks.grain == "week"
    _session.report_view(attributed, fp, _session.ReportViewArgs(None, None, None, "session-date", "day"))
    _session.report_view(attributed, fp, _session.FIRST_REPORT_VIEW)
    assert len(built) == 3  # the default view is the open filter by session date, per day
    _session.report_view.clear()


def test_the_first_report_view_is_what_the_report_page_draws_first(dashboard_env):
    """The read-ahead after a run reads FIRST_REPORT_VIEW when the Report was never drawn: it must be
    the view the page then asks for, or the head start is a cache miss."""
    from pages._session import FIRST_REPORT_VIEW, REPORT_VIEW_ARGS

    at = open_page("report")
    no_errors(at)
    assert at.session_state[REPORT_VIEW_ARGS] == FIRST_REPORT_VIEW == (None, None, None, "session-date", "day")


@pytest.fixture
def url_writes(monkeypatch):
    """The messages that change the browser's URL (``QueryParams._send_query_param_msg``): their
    query strings, in order."""
    from streamlit.runtime.state.query_params import QueryParams

    sent = []
    real = QueryParams._send_query_param_msg

    def spy(self):
        sent.append("&".join(f"{k}={v}" for k, v in sorted(self._query_params.items())))
        real(self)

    monkeypatch.setattr(QueryParams, "_send_query_param_msg", spy)
    return sent


def test_a_view_at_its_defaults_leaves_the_url_alone(dashboard_env, url_writes):
    from streamlit.testing.v1 import AppTest

    at = open_page("report")
    no_errors(at)
    at.run()  # another run of the same view
    assert dict(at.query_params) == {} and url_writes == []
    # a shared URL with a grain: opened and run again, it stays as it came
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["per"] = "week"
    at.run()
    at.run()
    no_errors(at)
    assert at.segmented_control(key="report_grain").value == "week"
    assert dict(at.query_params) == {"per": "week"} and url_writes == []
    # back to the default: the parameter leaves the URL, in one message
    at.segmented_control(key="report_grain").set_value("day").run()
    assert "per" not in at.query_params and url_writes == [""]
    # a channel filter set and cleared: one write each, and nothing once it is empty again
    at.multiselect(key="report_channels").set_value(["Display"]).run()
    at.run()  # a filter's change reruns only the report below the filters: AppTest's tree lacks them
    at.multiselect(key="report_channels").set_value([]).run()
    at.run()
    assert url_writes == ["", "channel=['Display']", ""]
