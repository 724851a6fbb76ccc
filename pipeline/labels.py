"""Showing text that comes from the analyst's data: escaped for where it is drawn, and clipped.

Values from a database (channel names, session and conversion ids, validation examples, error messages
that quote them) are data, never markup. The dashboard draws text in two markup languages:

- Streamlit's Markdown (``st.markdown``, ``st.caption``, ``st.error`` …): ``md`` backslash-escapes what
  CommonMark, GFM and Streamlit give a meaning to (links and images ``[x](u)``, ``![x](u)``, bare URLs
  and e-mail addresses, emphasis, code, HTML ``<…>``, ``:material/…:`` / ``:red[…]`` directives, ``$``
  maths, tables, headings and lists at the start), so ``![x](http://host/p.png)`` shows as those
  characters and neither fetches nor links anything;
  ``code`` puts a value in a code span that its own backticks cannot close.
- Plotly's label HTML (axis ticks, legend, hover, bar text): ``html_text`` HTML-escapes (Plotly shows
  ``&lt;a href…&gt;`` as the characters, not a link). ``safe_figure`` does it for every string in a
  figure's traces and clips long category labels on the axes to ``TICK_CHARS`` (+ "…") while the hover
  keeps the name up to ``HOVER_CHARS``: a 30 MB channel name no longer freezes the browser.

``clip`` cuts any text to a length for display (tables, widget options); the CSV and the database keep
every name whole.
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterable

LABEL_CHARS = 80  # shown in a legend, a table cell, a widget option, a message (a 64-hex id stays whole)
TICK_CHARS = 32  # shown as an axis label (a chart in half the page's width keeps room for its bars)
HOVER_CHARS = 500  # shown when the pointer rests on it
ELLIPSIS = "…"
# Always markup: \ ` * [ ] < > ! | ~ $ &; an ``_`` only at a word's edge (inside ``session_id`` it is no
# emphasis);
# ``#``, ``-``, ``+``, ``=``, ``>`` and ``1.`` only at the start of the text (headings, lists, quotes).
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>!|~$&])|(?<!\w)_|_(?!\w)")
# Some markup is recognised in the text AFTER escapes are resolved, so a backslash does not stop it:
# GFM's bare links (``http://…``, ``www.…``, ``a@b.c``) and Streamlit's icons and emoji shortcodes
# (``:material/warning:``, ``:smile:``). A zero-width space goes after a ``:`` that precedes ``//`` or a
# letter, before the ``.`` of ``www.`` and before ``@``: the text reads the same, it is no longer markup.
_AUTOLINK = re.compile(r"(?<=:)(?=//|[A-Za-z_])|(?<=www)(?=\.)|(?=@)", re.IGNORECASE)
ZWSP = "\u200b"
_MD_LEADING = re.compile(r"^(\s*)([#+=>-]|\d+[.)])")


_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
NOWRAP = '<span style="white-space:nowrap">{}</span>'


_RAW_TAG = re.compile(r"(?<!\\)((?:\\\\)*)<")  # a "<" no backslash escapes (an even run of them: none)


def whole_dates(text: str) -> str:
    """``text`` (Markdown) with each ISO date in a span that does not wrap: a narrow column wraps a
    sentence between words, never inside "2023-09-01" (the browser broke it after "2023-09-"). The date
    stays ordinary characters, so a copied date pastes as typed (a non-breaking hyphen U+2011 or a word
    joiner U+2060 would be copied along, and "2023‑09‑01" is no date to a spreadsheet or the id box).

    Show the result with ``unsafe_allow_html=True``: the spans are its only markup. Every "<" of ``text``
    not already escaped (by ``md``) is escaped here, so no tag of the data can come through."""
    text = _RAW_TAG.sub(lambda m: m.group(1) + "\\<", text)
    return _ISO_DATE.sub(lambda m: NOWRAP.format(m.group(0)), text)


# ---- widths of text in the dashboard's tables ---------------------------------------------------------
# The advance widths (px, to the nearest half pixel) of Source Sans at 14 px, the font of Streamlit's
# tables (st.dataframe draws cells and headers in it), measured in Chromium with canvas measureText.
# A character not listed counts as an em (wider than any Latin letter but W and m).
_GLYPH_PX = {
    0.0: "\u2060\u200b",
    3.0: " \u00a0",
    3.5: "',.:;Iijl|·’",
    4.0: "!()[]f{}",
    4.5: "-t\u2011",
    5.0: "/\\r",
    6.0: '"*?sxz',
    6.5: "JYcvy–",
    7.0: "#$+0123456789<=>FLVX^_aegk~€£×é",
    7.5: "AESTZ`bhnou",
    8.0: "BCKPRdpq",
    8.5: "&DG",
    9.0: "HNU",
    9.5: "OQ",
    10.0: "Mw",
    11.0: "W—∞",
    11.5: "%m",
    12.0: "@",
    13.5: "…",
}
_CHAR_PX = {ch: px for px, chars in _GLYPH_PX.items() for ch in chars}
OTHER_CHAR_PX = 14.0  # an em: wide letters and most scripts' characters fit in it
# The sidebar's width (app.py; Streamlit's own is 300 px), and with it a table in the dashboard's main
# area at 1280 px with the sidebar open: 864 px, less the table's border (820 px with a 300 px sidebar).
# 1280 - 256 = 1024: the main area is as wide as at 1024 px with the sidebar collapsed, so a table fitted
# to one fits the other (with a 240 px sidebar the Report's table scrolled 4 px sideways there).
SIDEBAR_PX = 256
MAIN_TABLE_PX = 860
CELL_PADDING_PX = 17  # a cell's text has 8 px on either side (Streamlit's table), and its 1 px grid line
# A scrollbar where the browser gives it room (Streamlit's thin scrollbars: 10 px in Chromium, measured;
# overlay scrollbars take none): the page's own takes it from the main area, and a table taller than
# its height has a vertical one, which takes it from the columns.
SCROLLBAR_PX = 10
# A table on a page taller than the window (the Report, Journeys): the main area less the page's scrollbar.
PAGE_TABLE_PX = MAIN_TABLE_PX - SCROLLBAR_PX
TABLE_HEADER_PX, TABLE_ROW_PX, TABLE_MOST_PX = 38, 35, 400  # Streamlit's dataframe: header, row; our cap


def table_height(rows: int, most: int = TABLE_MOST_PX) -> int:
    """The height (px) of a dataframe showing ``rows`` rows: every row up to ``most``, then it scrolls. A
    little room below the last row for a sideways scrollbar, where one is needed, to sit on no row."""
    return min(TABLE_HEADER_PX + TABLE_ROW_PX * rows + SCROLLBAR_PX, most)


def table_room(rows: int, room: int = 0, most: int = TABLE_MOST_PX) -> int:
    """The width (px) the columns of a table of ``rows`` rows may take in ``room`` (default: the main
    area's ``MAIN_TABLE_PX``): less the table's own vertical scrollbar when the rows do not fit in its
    height. (A page scrollbar, where the browser shows one, takes as much again from the main area: give
    ``PAGE_TABLE_PX`` as ``room`` for a table on a page taller than the window.)"""
    room = room or MAIN_TABLE_PX
    scrolls = TABLE_HEADER_PX + TABLE_ROW_PX * rows + SCROLLBAR_PX > most
    return room - SCROLLBAR_PX if scrolls else room


def text_px(text: object) -> float:
    """The width ``text`` takes in a table cell of Streamlit's dataframe (14 px Source Sans), in px."""
    return sum(_CHAR_PX.get(ch, OTHER_CHAR_PX) for ch in ("" if text is None else str(text)))


def column_px(header: str, texts: Iterable[object]) -> int:
    """The width (px) of a table column in which the header and every one of ``texts`` (the values as the
    table writes them; None/NaN: the empty placeholder) fit whole."""
    widest = max((text_px(t) for t in texts if isinstance(t, str)), default=0.0)
    return int(-(-max(widest, text_px(header)) // 1)) + CELL_PADDING_PX


def fit_widths(needed: dict[str, int], room: int, squeeze: str, least: int = 60) -> dict[str, int]:
    """Column widths (px) from each column's ``needed`` width for a table ``room`` px wide: the spare
    room shared out evenly, so the table fills its place; without room enough, the ``squeeze`` column
    (the one whose text says most when clipped, e.g. the names) gives up the difference, down to
    ``least``, and only then does the table scroll sideways."""
    widths = dict(needed)
    spare = room - sum(widths.values())
    if spare >= 0:
        share, extra = divmod(spare, len(widths))
        return {name: px + share + (i < extra) for i, (name, px) in enumerate(widths.items())}
    widths[squeeze] = max(least, widths[squeeze] + spare)
    return widths


def counted(n: int, noun: str, plural: str | None = None, one: str = "1") -> str:
    """``n`` of ``noun`` in words: '3 session days', '1,204 conversions'; for one, ``one`` and the noun
    ('1 conversion', or with ``one=""`` just 'session day': "the last session day", not "the last 1
    session day"). ``plural``: when it is not the noun and an 's'."""
    if n == 1:
        return f"{one} {noun}".strip()
    return f"{n:,} {plural or noun + 's'}"


def duration(seconds: float, digits: int = 2, space: str = " ") -> str:
    """A stage's or a run's time: '0.42 s', and 'under 0.01 s' where the figure would round to nothing
    (a stage that reused its results read "0.00 s", as if it had not run or the clock had failed)."""
    if round(seconds, digits) <= 0:
        return f"under{space}{10.0**-digits:.{digits}f}{space}s"
    return f"{seconds:.{digits}f}{space}s"


def clip(text: object, limit: int = LABEL_CHARS) -> str:
    """``text`` as a string of at most ``limit`` characters (cut ones end in "…")."""
    s = "" if text is None else str(text)
    return s if len(s) <= limit else s[: max(limit - 1, 0)] + ELLIPSIS


def md(text: object, limit: int | None = None) -> str:
    """``text`` escaped for Streamlit Markdown: shown literally, one line, optionally clipped."""
    s = clip(text, limit) if limit else ("" if text is None else str(text))
    s = " ".join(s.split())  # a newline would start a new Markdown block
    s = _AUTOLINK.sub(ZWSP, s)
    s = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), s)
    return _MD_LEADING.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], s)


def code(text: object, limit: int = LABEL_CHARS) -> str:
    """``text`` as an inline code span (clipped) that no backtick inside it can close."""
    s = " ".join(clip(text, limit).split())
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {s} {fence}"


def html_text(text: object, limit: int | None = None) -> str:
    """``text`` HTML-escaped for Plotly labels and hover (optionally clipped first)."""
    s = clip(text, limit) if limit else ("" if text is None else str(text))
    return html.escape(s, quote=False)  # Plotly shows &lt; &gt; &amp; as characters, not &quot;


def _escape_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return html_text(value, limit)
    if isinstance(value, (list, tuple)):
        return [_escape_strings(v, limit) for v in value]
    return value


def _categories(values: Any) -> list[str] | None:
    if isinstance(values, (list, tuple)) and values and all(isinstance(v, str) for v in values):
        return list(values)
    return None


def axis_labels(names: Iterable[str], tick_chars: int = TICK_CHARS) -> dict[str, tuple[str, str]]:
    """name → (category value: escaped, up to HOVER_CHARS, unique; tick text: escaped, up to TICK_CHARS)."""
    out: dict[str, tuple[str, str]] = {}
    used: set[str] = set()
    for name in names:
        if name in out:
            continue
        value, n = html_text(name, HOVER_CHARS), 1
        while value in used:  # two long names with the same beginning stay two bars
            n += 1
            value = html_text(clip(name, HOVER_CHARS - 6), None) + f" ({n})"
        used.add(value)
        out[name] = (value, html_text(name, tick_chars))
    return out


def safe_figure(fig: dict, tick_chars: int = TICK_CHARS) -> dict:
    """A plotly figure dict whose strings from data are escaped and whose category labels are clipped.

    Traces' ``x``/``y`` string categories become escaped, unique values of at most ``HOVER_CHARS`` (what
    ``%{x}``/``%{y}`` show on hover) and their axis gets ``ticktext`` clipped to ``TICK_CHARS``; ``name``
    (the legend) is clipped; ``text``, ``hovertext`` and ``customdata`` strings are escaped. Templates
    (``hovertemplate``, titles) are the page's own markup and stay as they are.
    """
    traces = [dict(t) for t in fig.get("data", [])]
    layout = dict(fig.get("layout", {}))
    per_axis: dict[str, dict[str, tuple[str, str]]] = {}
    for trace in traces:
        for key in ("x", "y"):
            names = _categories(trace.get(key))
            if names is None:
                continue
            axis_id = str(trace.get(f"{key}axis") or key)  # "x", "x2", ...
            mapping = per_axis.setdefault(axis_id, {})
            fresh = axis_labels([n for n in names if n not in mapping], tick_chars)
            mapping.update(fresh)
            trace[key] = [mapping[n][0] for n in names]
        if isinstance(trace.get("name"), str):
            trace["name"] = html_text(trace["name"], LABEL_CHARS)
        for key in ("text", "hovertext", "customdata"):
            if key in trace:
                trace[key] = _escape_strings(trace[key], HOVER_CHARS)
    for axis_id, mapping in per_axis.items():
        name = f"{axis_id[0]}axis{axis_id[1:]}"
        if any(value != tick for value, tick in mapping.values()):
            axis = dict(layout.get(name) or {})
            axis.update(tickmode="array", tickvals=[v for v, _ in mapping.values()])
            axis["ticktext"] = [t for _, t in mapping.values()]
            layout[name] = axis
    return {**fig, "data": traces, "layout": layout}
