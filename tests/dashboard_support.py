"""Running the dashboard with Streamlit's AppTest on a small demo database (20k sessions).

``DEMO_ENV`` (used by the ``dashboard_env`` fixture in conftest.py) points the demo cache and the working folders at a temporary folder and makes the
built-in demo small; ``open_page(name)`` runs ``app.py`` and switches to a page; ``downloads`` captures
the bytes every ``st.download_button`` hands to Streamlit, by file name.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGES = {
    "data": "pages/data.py",
    "pipeline": "pages/pipeline.py",
    "report": "pages/report.py",
    "journeys": "pages/journeys.py",
    "compare": "pages/compare.py",
}
DEMO_ENV = {
    "ATTRIBUTION_DEMO_SESSIONS": "20000",
    "ATTRIBUTION_DEMO_CONVERSIONS": "400",
    "ATTRIBUTION_DEMO_DAYS": "10",
    "ATTRIBUTION_DEMO_SEED": "7",
}
TIMEOUT = 120


def open_page(name: str, at=None):
    """Run the app (a new browser session unless ``at`` is given) and show page ``name``."""
    from streamlit.testing.v1 import AppTest

    if at is None:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.run()
        assert not at.exception, at.exception
    at.switch_page(PAGES[name]).run()
    return at


def api_pipeline_page(monkeypatch, url: str, **settings: str):
    """The Pipeline page with the IHC API model picked, the API at ``url`` (fast retries) and no key in
    the environment (the analyst types it); ``settings``: more ``IHC_API_*`` variables by the name's
    tail (``READ_TIMEOUT="20"``)."""
    env = {"IHC_API_URL": url, "IHC_API_BACKOFF_BASE": "0.001", "IHC_API_BACKOFF_MAX": "0.01"}
    for name, value in {**env, **{f"IHC_API_{tail}": value for tail, value in settings.items()}}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("IHC_API_KEY", raising=False)
    at = open_page("pipeline")
    at.selectbox(key="run_model").set_value("ihc-api").run()
    return at


def workspace_of(at):
    return at.session_state["_workspace"]


def texts(at) -> str:
    """Every text the page shows (markdown, captions, alerts, metrics, titles), for searching."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(parts)


def no_errors(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
