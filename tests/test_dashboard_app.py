"""AppTest: the app as a whole — it opens on the demo report, every page renders, and two browser
sessions never see each other's data."""

from __future__ import annotations

from types import SimpleNamespace

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


def test_streamlit_still_runs_a_page_file_alone_until_st_navigation_the_way_run_through_the_app_expects():
    """pages/_look.run_through_the_app leans on Streamlit 1.67's private "pages/ folder" switch: a class
    flag read by the script runner (then it maps the URL straight to a page file, ``_mpa_v1``) and
    cleared by ``st.navigation``. A Streamlit that does it otherwise fails here, loudly."""
    import inspect

    from streamlit.commands import navigation
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import script_runner

    assert "uses_pages_directory" in vars(PagesManager)
    runner = inspect.getsource(script_runner.ScriptRunner._run_script)
    assert "if PagesManager.uses_pages_directory:" in runner and "_mpa_v1(self._main_script_path)" in runner
    assert "PagesManager.uses_pages_directory = False" in inspect.getsource(navigation.navigation)


def test_a_page_run_alone_clears_the_pages_folder_flag_and_reruns_through_the_app(monkeypatch):
    from streamlit.runtime.pages_manager import PagesManager

    import pages._look as look

    reruns: list = []
    fake = SimpleNamespace(rerun=lambda: reruns.append(1), session_state={})
    monkeypatch.setattr(look, "st", fake)
    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    look.run_through_the_app()
    assert reruns == [1] and PagesManager.uses_pages_directory is False
    look.run_through_the_app()  # through the app already: nothing to do
    assert reruns == [1]
    # a session app.py has run in (AppTest sets the flag back before every run): no rerun, no lost click
    PagesManager.uses_pages_directory = True
    fake.session_state["_first_run"] = False
    look.run_through_the_app()
    assert reruns == [1]


def test_every_page_runs_through_the_app_before_it_draws_anything():
    from pathlib import Path

    for name in PAGES:
        source = (Path(APP).parent / "pages" / f"{name}.py").read_text(encoding="utf-8")
        assert 0 < source.find("\nrun_through_the_app()") < source.find("\nst."), name


def test_no_page_script_relies_on_streamlits_magic():
    """.streamlit/config.toml turns "magic" off (runner.magicEnabled: a new session's first run compiled the
    page scripts with an AST rewrite first). With it off, a bare expression on its own line draws nothing:
    none may be there (docstrings aside), in app.py or a page script."""
    import ast
    import tomllib
    from pathlib import Path

    root = Path(APP).parent
    config = tomllib.loads((root / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["runner"]["magicEnabled"] is False
    bare = []
    for path in [root / "app.py", *(root / "pages" / f"{name}.py" for name in PAGES)]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            for i, stmt in enumerate(body if isinstance(body, list) else []):
                if not isinstance(stmt, ast.Expr) or isinstance(stmt.value, (ast.Call, ast.Await)):
                    continue
                docstring = i == 0 and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)
                if not docstring:
                    bare.append(f"{path.name}:{stmt.lineno}")
    assert not bare, f"bare expressions (magic is off, they draw nothing): {bare}"
