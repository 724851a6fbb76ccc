"""AppTest: text from the database is shown as text — never as Markdown, HTML or links — and a huge
channel name is clipped (issue 12, "Dashboard").

A database whose ``session_id``/``conv_id`` is ``![x](http://evil.example/p.png)`` made the browser
fetch that URL (Markdown image); a channel name with ``<a href>`` became a live link in Plotly; a 30 MB
channel name froze the browser. Here such a database is uploaded, run, and every page's rendered
Markdown strings, Plotly figures and tables are checked.
"""

from __future__ import annotations

import html
import json
import re

from pipeline.labels import HOVER_CHARS, LABEL_CHARS, TICK_CHARS, clip, code, md, safe_figure
from tests.dashboard_support import PAGES, no_errors, open_page, workspace_of
from tests.helpers import make_db

IMG = "![x](http://evil.example/p.png)"
LINK = '<a href="http://evil.example/x">click me</a>'
DIRECTIVE = ":red[alarm] :material/warning: $x^2$"
LONG = "Affiliate " + "L" * 1_000_000  # 1 MB: stands in for the 30 MB name (the same code path)
SESSIONS = [
    (IMG, "u1", "2023-09-01", "10:00:00", LINK, 1, 0, 0),
    ("s2", "u1", "2023-09-02", "11:00:00", LONG, 1, 1, 0),
    ("s3", "u1", "2023-09-02", "11:30:00", DIRECTIVE, 0, 1, 0),
    ("s4", "u2", "2023-09-01", "09:00:00", "Display", 0, 0, 1),
]
CONVERSIONS = [
    (IMG, "u1", "2023-09-02", "12:00:00", 100.0),
    ("[click](http://evil.example/c)", "u2", "2023-09-02", "08:00:00", 50.0),
]
COSTS = [(IMG, 2.0), ("s2", 1.0), ("s3", 1.5), ("s4", 0.5)]


def hostile_db(path):
    return make_db(path, SESSIONS, CONVERSIONS, COSTS)


def markdown_strings(at) -> list[str]:
    kinds = ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success")
    out = [str(e.value) for kind in kinds for e in getattr(at, kind)]
    return out + [str(m.label) for m in at.metric]


def live_markup(text: str) -> list[str]:
    """Markdown/HTML constructs in ``text`` that are not escaped (a backslash before them)."""
    found = re.findall(r"(?<!\\)!(?<!\\)\[[^\]]*(?<!\\)\]\(", text)  # image
    found += re.findall(r"(?<!\\)\[[^\]]*(?<!\\)\]\(http", text)  # link
    found += re.findall(r"https?://|www\.|\w@", text)  # a bare URL or address (GFM makes it a link)
    found += re.findall(r"(?<!\\)<a\b", text)  # raw HTML
    found += re.findall(r"(?<!\\):red(?<!\\)\[", text) + re.findall(r":material/warning", text)
    return found


def test_unit_escaping_and_clipping():
    assert md(IMG) == "\\!\\[x\\](http:\u200b//evil.example/p.png)"  # no image, and no bare-URL link either
    assert md("see www.evil.example or a@evil.example") == "see www\u200b.evil.example or a\u200b@evil.example"
    assert live_markup(md(IMG)) == [] and live_markup(md(LINK)) == [] and live_markup(md(DIRECTIVE)) == []
    assert md("- a list?") == r"\- a list?" and md("1. first") == r"1\. first"
    assert md(":material/warning: :smile:") == ":\u200bmaterial/warning: :\u200bsmile:"  # icons/emoji
    assert md("at 12:00:00") == "at 12:00:00"
    assert md("session_id") == "session_id"  # inside a word an underscore is no emphasis: left readable
    assert code("a`b``c") == "``` a`b``c ```"
    assert clip("x" * 100) == "x" * (LABEL_CHARS - 1) + "…" and clip("short") == "short"
    fig = safe_figure(
        {
            "data": [{"type": "bar", "x": [LINK, LONG, LONG[:600] + "other"], "y": [1, 2, 3], "name": LINK}],
            "layout": {"xaxis": {"title": "t"}},
        }
    )
    trace, axis = fig["data"][0], fig["layout"]["xaxis"]
    assert "<a" not in json.dumps(fig) and '&lt;a href="http' in trace["x"][0]
    assert len(set(trace["x"])) == 3  # two long names with the same beginning stay two bars
    assert all(len(v) <= HOVER_CHARS + 4 for v in trace["x"])
    assert axis["tickvals"] == trace["x"] and all(len(html.unescape(t)) <= TICK_CHARS for t in axis["ticktext"])
    assert axis["title"] == "t"


def test_hostile_text_is_shown_as_text_on_every_page(dashboard_env, downloads, tmp_path):
    db = hostile_db(tmp_path / "hostile.db")
    name = "![y](evil.example-n.png) hostile.db"  # the upload's name is data too
    at = open_page("data")
    at.file_uploader[0].set_value((name, db.read_bytes(), "application/octet-stream")).run()
    no_errors(at)
    ws = workspace_of(at)
    assert ws.source.kind == "upload"
    open_page("pipeline", at)
    at.button(key="run_button").click().run()
    no_errors(at)
    seen: dict[str, list[str]] = {}
    figures = []
    for name in PAGES:
        open_page(name, at)
        assert not at.exception, (name, [e.value for e in at.exception])
        seen[name] = markdown_strings(at)
        figures += [e.proto.spec for e in [*at.get("plotly_chart"), *at.get("echarts_chart")]]
        for frame in at.dataframe:
            value = frame.value
            for column in ("channel", "channel_name", "session_id"):
                if column in getattr(value, "columns", []):
                    assert value[column].astype(str).str.len().max() <= LABEL_CHARS, (name, column)
    # the explained conversion whose id is a Markdown image
    open_page("journeys", at)
    at.text_input(key="explain_id").input(IMG).run()
    assert not at.exception
    seen["explain"] = markdown_strings(at)
    figures += [e.proto.spec for e in [*at.get("plotly_chart"), *at.get("echarts_chart")]]

    everything = "\n".join(text for texts in seen.values() for text in texts)
    assert "evil.example" in everything  # the values are shown ...
    assert "\\!\\[x\\](http:\u200b//evil.example/p.png)" in everything  # ... as the characters they are
    for page, texts in seen.items():
        for text in texts:
            assert live_markup(text) == [], (page, text[:300])
            assert len(text) < 5_000, (page, text[:200])  # the 1 MB name is never drawn whole
    assert len(figures) >= 6
    for spec in figures:
        assert len(spec) < 200_000  # not the 1 MB name
        fig = json.loads(spec)
        if "series" in fig:  # the Report's ECharts: every text drawn on the canvas, the tooltips too
            assert fig["tooltip"]["renderMode"] == "richText"  # never HTML: '<a href=…' is shown as it is
            for axis in (fig["xAxis"], *(fig["yAxis"] if isinstance(fig["yAxis"], list) else [fig["yAxis"]])):
                for value in axis.get("data") or []:
                    assert len(value) <= HOVER_CHARS + 8
            for series in fig["series"]:
                assert len(series.get("name", "")) <= LABEL_CHARS
            continue
        assert "<a " not in spec and "<a href" not in spec, spec[:300]  # plotly: escaped
        for trace in fig["data"]:
            for key in ("x", "y"):
                for value in trace.get(key) or []:
                    assert not isinstance(value, str) or len(html.unescape(value)) <= HOVER_CHARS + 8
            assert len(html.unescape(trace.get("name", ""))) <= LABEL_CHARS
    # the CSV keeps the names whole (clipping is for the eyes only)
    # the report's CSV of the hostile database (named after its model and dates; the demo's came first)
    csv = [
        v.decode()
        for n, v in downloads.items()
        if n.startswith("channel_report_") and n.endswith(".csv") and "_intervals" not in n
    ][-1]
    assert LONG in csv and '<a href=""http://evil.example/x"">click me</a>' in csv
