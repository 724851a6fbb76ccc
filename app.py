"""The attribution dashboard: `streamlit run app.py`.

Opens on the built-in demo database (already attributed, so the report is there at once). Every browser
session works on its own private copy of its database (``pipeline.workspace``). The pages are thin
wrappers over the ``pipeline`` library; see docs/dashboard.md.
"""

import os
import sys
import time
from pathlib import Path

import streamlit as st

# For bench/bench_first_visit.py (ATTRIBUTION_DASHBOARD_TIMING=1): the wall-clock moment each script run
# starts and ends, to set beside the browser's timeline of a new session.
TIMING = bool(os.environ.get("ATTRIBUTION_DASHBOARD_TIMING"))
if TIMING:
    print(f"dashboard-event run-start epoch={time.time():.3f}", file=sys.stderr, flush=True)

# The favicon is a local file Streamlit serves itself: an emoji or :material/…: page icon makes the
# browser fetch it from an external host on every page (which fails offline).
FAVICON = str(Path(__file__).resolve().parent / "assets" / "favicon.png")
# The sidebar at SIDEBAR_PX instead of Streamlit's 300 px (it holds five links and the database's name):
# the 44 px go to the main area, where at 1280 px the Report's table cut its channel names per month
# ("Affiliate & Partnersh") and at 1024 px the Data page's table scrolled sideways (580 px in 552).
# Its geometry is in pipeline.labels (MAIN_TABLE_PX); an analyst can still drag it wider.
from pipeline.labels import SIDEBAR_PX  # noqa: E402 - a few constants, no heavy import

st.set_page_config(
    page_title="Attribution dashboard", page_icon=FAVICON, layout="wide", initial_sidebar_state=SIDEBAR_PX
)

# The navigation comes first, before the heavy imports, and is drawn by the app as links: on the
# server's first run Streamlit's old "pages/ folder" mode would list every file of pages/ (app, look,
# session, …) in the sidebar until st.navigation replaced it, so its own sidebar list is switched off
# (client.showSidebarNavigation = false in .streamlit/config.toml).
PAGES = [
    st.Page("pages/data.py", title="Data", icon=":material/database:"),
    st.Page("pages/pipeline.py", title="Pipeline", icon=":material/settings:"),
    # at "/"; its own pathname (reserved, never shown) leaves "report" to REPORT_ADDRESS below
    st.Page("pages/report.py", title="Report", icon=":material/bar_chart:", default=True, url_path="channel-report"),
    st.Page("pages/journeys.py", title="Journeys", icon=":material/route:"),
    st.Page("pages/compare.py", title="Compare models", icon=":material/compare_arrows:"),
]

# The Report is the default page, at "/". Its file name's address, /report (what a fresh server answered
# with the page file alone, and what an analyst may have kept), opens it too instead of Streamlit's "Page
# not found" box: the same page under a second address, last, so the links above go to "/".
REPORT_ADDRESS = st.Page("pages/report.py", title="Report", icon=":material/bar_chart:", url_path="report")
page = st.navigation([*PAGES, REPORT_ADDRESS])
with st.sidebar.container(key="app_navigation"):
    for nav_page in PAGES:
        st.page_link(nav_page)
    st.divider()

# The server's first run imports pandas, plotly and the library (seconds on a busy machine): say so
# instead of leaving the page blank.
starting = st.empty()
if "pages._session" not in sys.modules:
    starting.caption(":material/hourglass_top: Starting the dashboard (its first page view loads the libraries)…")

from pages._look import log_run_time, shown_errors, sidebar_database  # noqa: E402
from pages._session import workspace  # noqa: E402

with shown_errors():
    ws = workspace()
    sidebar_database(ws)
starting.empty()
# Whether this is the session's first script run: the browser has only just loaded the app, so the
# elements' code is still on its way (the Report lets its loading frame reach the browser first then).
st.session_state["_first_run"] = "_first_run" not in st.session_state
started = time.perf_counter()
page.run()
log_run_time(page.title, started)
if TIMING:
    print(f"dashboard-event run-end epoch={time.time():.3f}", file=sys.stderr, flush=True)
