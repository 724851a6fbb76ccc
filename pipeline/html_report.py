"""The report as one self-contained HTML file: something to mail to a manager.

``html_report(con, …)`` renders what the Report page shows for the same view — filters, grain (day,
week, month), the trend's channels and metric — (``report_views.report_view`` and the figures of
``report_charts``): the models behind the numbers and their parameters, the date range and basis, the
KPI tiles with their 90% intervals, the CPO and ROAS charts with whiskers, cost vs attributed revenue,
the trend per day/week/month, the per-channel totals and the page's table per channel and period, the
data checks (validation's findings and the report's warnings) and the run behind it (when, and each
stage's time). Charts stay interactive: plotly.js is embedded in the file, so it opens with no
network and loads no external script, font or image. Every value from the database is HTML-escaped
(the figures' through ``labels.safe_figure``).
"""

from __future__ import annotations

import html
import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Iterable, Optional

from . import report_charts as rc
from . import report_views as rv
from .errors import InputError
from .labels import clip, duration
from .model_settings import model_label, settings_in_words
from .palette import channel_colors
from .report_warnings import note_sentence
from .status import read_records
from .validate import current_validation, plain_sentence

STYLE = """
body{font-family:"Source Sans Pro",Arial,sans-serif;color:#1F2A37;max-width:1180px;margin:24px auto;padding:0 16px}
h1{font-size:30px;margin:0 0 4px}h2{font-size:20px;margin:28px 0 8px}
.meta{color:#667085;font-size:14px;line-height:1.5}
.tiles{display:flex;gap:12px;margin:18px 0}.tile{flex:1;border:1px solid #E4E7EC;border-radius:8px;padding:10px 14px}
.tile .label{font-size:13px;color:#667085}.tile .value{font-size:28px}.tile .range{font-size:12px;color:#667085}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:12px}.wide{grid-column:1 / span 2}
table{border-collapse:collapse;font-size:14px;width:100%}th,td{border-bottom:1px solid #EAECF0;padding:5px 8px}
th{text-align:left;color:#475467;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#FFFAEB;border:1px solid #FEDF89;border-radius:8px;padding:8px 12px;margin:8px 0;font-size:14px}
.check{font-size:14px;margin:3px 0}.fatal{color:#B42318}
"""
CONFIG = {"displaylogo": False, "responsive": True}


def html_report(
    con: sqlite3.Connection,
    start: Optional[str] = None,
    end: Optional[str] = None,
    channels: Optional[Iterable[str]] = None,
    by: str = "session-date",
    *,
    source: str = "",
    grain: str = "day",
    trend: Optional[Iterable[str]] = None,
    metric: str = "ihc_revenue",
) -> str:
    """The report of these filters as one HTML document (see the module doc). ``source`` names the
    database in the header. ``grain`` (day, week, month), ``trend`` (its channels; by default the
    filter's, else the five with the most attributed revenue) and ``metric``: the trend and the table as
    the Report page shows them, so the file is the view the analyst saw."""
    if grain not in rv.GRAINS:
        raise InputError(f"grain {grain!r} is not one of {', '.join(rv.GRAINS)}")
    if metric not in rv.DAILY_METRICS:
        raise InputError(f"the trend's metric {metric!r} is not one of {', '.join(rv.DAILY_METRICS)}")
    chosen = tuple(channels) if channels else None
    view = rv.report_view(con, start, end, chosen, by, grain=grain)
    if view.empty:
        raise InputError("no channel-day matches these filters: nothing to report")
    records = read_records(con)
    palette = channel_colors(sorted(set(view.rows["channel_name"])))
    ranked = view.totals.sort_values(["ihc_revenue", "channel_name"], ascending=[False, True])["channel_name"].tolist()
    # The Report page's default: the filtered channels (eight at most), or the five with the most revenue.
    unknown = [c for c in trend or () if c not in ranked]
    if unknown:
        raise InputError(
            f"the trend's channel {clip(unknown[0])!r} is not in this report (its channels: "
            f"{', '.join(' '.join(clip(c, 40).split()) for c in sorted(ranked))})"
        )
    picked = list(dict.fromkeys(trend)) if trend else (list(chosen)[:8] if chosen else ranked[:5])
    figures = [
        ("cpo", rc.ratio_chart(view.totals, "CPO", palette), ""),
        ("roas", rc.ratio_chart(view.totals, "ROAS", palette), ""),
        ("cost_revenue", rc.cost_revenue_chart(view.totals, palette), "wide"),
        (
            "trend",
            rc.trend_chart(rc.view_trend(view, metric, picked, palette)),
            "wide",
        ),
    ]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Channel report {_e(view.rows['date'].min())} – {_e(view.rows['date'].max())}</title>",
        f"<style>{STYLE}</style><script>{_plotly_js()}</script></head><body>",
        "<h1>Channel report</h1>",
        _header(view, records, source, chosen),
        _warnings(view),
        _tiles(view),
        "<div class='charts'>",
        *(f"<div id='{name}' class='{cls}'></div>" for name, _, cls in figures),
        "</div>",
        _notes(view),
        _table(view),
        _period_table(view),
        _checks(con),
        "<p class='meta'>CPO = cost / attributed conversions; ROAS = attributed revenue / cost; empty where "
        "the denominator is 0. Intervals: 90%, from 200 resamples of the conversions with cost fixed "
        "(deterministic). Generated by the attribution pipeline "
        f"{_e(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}.</p>",
        "<script>",
        *(
            f"Plotly.newPlot({json.dumps(name)}, {_json(fig['data'])}, {_json(fig['layout'])}, {json.dumps(CONFIG)});"
            for name, fig, _ in figures
        ),
        "</script></body></html>",
    ]
    return "\n".join(parts)


def write_html_report(con: sqlite3.Connection, path: str | Path, **filters) -> int:
    """Write ``html_report`` to ``path`` (atomically); returns the number of bytes."""
    from .outputs import write_bytes

    data = html_report(con, **filters).encode("utf-8")
    write_bytes(path, data)
    return len(data)


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _json(value) -> str:
    """JSON safe inside a <script> element (no '</script>' can close it early)."""
    return json.dumps(value, allow_nan=False, default=_plain).replace("</", "<\\/")


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().replace("</script", "<\\/script")


def _header(view: rv.ReportView, records: dict, source: str, channels) -> str:
    basis = "session date (credit on the day of the session that earned it)"
    if view.basis == "conversion-date":
        basis = "conversion date (credit on the day of the order)"
    first, last = view.rows["date"].min(), view.rows["date"].max()
    lines = [
        f"Database: <b>{_e(source)}</b>" if source else "",
        f"Dates {_e(first)} … {_e(last)} by {basis}; cost on the day it was spent",
        "Channels: " + (", ".join(_e(clip(c)) for c in channels) if channels else "all"),
    ]
    for c in view.coverage:
        lines.append(
            f"Model <b>{_e(model_label(c.model))}</b>: {c.conversions:,} conversions "
            f"({_e(c.first_date)} … {_e(c.last_date)})"
        )
    attribute = records.get("attribute")
    if attribute is not None:
        lines.append(f"Settings: {_e(settings_in_words(attribute.params.get('params') or {}))}")
    lines.append(_e(run_time(records)))
    return "<p class='meta'>" + "<br>".join(line for line in lines if line) + "</p>"


STAGE_WORDS = {
    "journeys": "journeys",
    "validate": "data checks",
    "attribute": "attribution",
    "report": "channel report",
}


def run_time(records: dict) -> str:
    """When the run behind this report ran and how long it took, stage by stage: 'Run of 2026-12-02
    17:47:01 UTC: journeys 1.13 s, data checks 0.61 s, attribution 0.01 s, channel report 0.03 s — 1.78 s
    in all'. A stage the run kept from an earlier one says so with its own time."""
    report = records.get("report")
    if report is None:
        return ""
    stages = [records[s] for s in STAGE_WORDS if s in records]
    own = [r for r in stages if r.run_id == report.run_id]
    kept = [r for r in stages if r.run_id != report.run_id]
    started = min(r.started_at for r in own)
    text = f"Run of {started}: " + ", ".join(f"{STAGE_WORDS[r.stage]} {duration(r.seconds)}" for r in own)
    text += f" — {duration(sum(r.seconds for r in own))} in all"
    if kept:
        text += "; kept from an earlier run: " + ", ".join(
            f"{STAGE_WORDS[r.stage]} ({r.started_at}, {duration(r.seconds)})" for r in kept
        )
    return text


def _warnings(view: rv.ReportView) -> str:
    return "".join(f"<div class='warn'>⚠ {_e(note_sentence(w))}</div>" for w in view.warnings)


def _money(value, decimals: int = 2) -> str:
    return (
        "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"€{value:,.{decimals}f}"
    )


def _ratio(value) -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.2f}"


def _tiles(view: rv.ReportView) -> str:
    k, b = view.kpis, view.kpi_bounds
    cpo_label, roas_label = rv.ratio_labels(view.totals)  # "Blended CPO" as on the dashboard
    tiles = [
        ("Cost", _money(k.cost, 0), ""),
        ("Conversions", f"{k.conversions:,.0f}", ""),  # the dashboard's tiles' words
        ("Revenue", _money(k.revenue, 0), ""),
        (cpo_label, _money(k.cpo), rv.interval_range(b["CPO_low"], b["CPO_high"], _money)),
        (roas_label, _ratio(k.roas), rv.interval_range(b["ROAS_low"], b["ROAS_high"], _ratio)),
    ]
    cells = "".join(
        f"<div class='tile'><div class='label'>{label}</div><div class='value'>{value}</div>"
        f"<div class='range'>{rng}</div></div>"
        for label, value, rng in tiles
    )
    blended = rv.blended_note(view.totals)  # the dashboard's line under its tiles; names from the data
    note = f"<p class='meta'>{html.escape(blended)}</p>" if blended else ""
    return f"<div class='tiles'>{cells}</div>{note}<p class='meta'>{ATTRIBUTED_NOTE}</p>"


# the tiles and the table say "Conversions" and "Revenue" as the dashboard does; what they count:
ATTRIBUTED_NOTE = (
    "Conversions and revenue are attributed: each conversion's credit is split over the sessions before "
    "it, so a channel's conversions are the sum of its credit shares and can be fractional (12.35)."
)


def _notes(view: rv.ReportView) -> str:
    notes = []
    few = rc.few_channels(view.totals)
    if few:
        notes.append(
            f"{rc.FEW_MARK} pale bars rest on fewer than {rv.FEW_CONVERSIONS} attributed conversions: "
            + ", ".join(_e(clip(c)) for c in few)
            + "."
        )
    cut = rc.cut_bars_note(view.totals)
    if cut:
        notes.append(_e(cut))
    unpaid = view.totals.loc[view.totals["cost"] <= 0, "channel_name"].tolist()
    if unpaid:
        notes.append(
            "Not in the CPO and ROAS charts — channels without cost: " + ", ".join(_e(clip(c)) for c in unpaid)
        )
    return "".join(f"<p class='meta'>{n}</p>" for n in notes)


def _table(view: rv.ReportView) -> str:
    head = (
        "<tr><th>Channel</th><th>Cost</th><th>Conversions</th><th>Revenue</th>"
        "<th>CPO</th><th>CPO 90%</th><th>ROAS</th><th>ROAS 90%</th><th>Conversions behind it</th></tr>"
    )
    rows = []
    for r in (
        rv.table(view.totals).sort_values(["ihc_revenue", "channel_name"], ascending=[False, True]).to_dict("records")
    ):
        rows.append(f"<tr><td>{_e(clip(r['channel_name']))}</td>{_measure_cells(r)}</tr>")
    return f"<h2>Per channel</h2><table>{head}{''.join(rows)}</table>"


def _period_table(view: rv.ReportView) -> str:
    """The Report page's table: one row per channel and day (week, month) of the view, the same figures."""
    grain = view.grain
    periods = rv.table(view.periods)
    head = (
        f"<tr><th>Channel</th><th>{grain.capitalize()}</th>"
        + ("<th>Days</th>" if grain != "day" else "")
        + "<th>Cost</th><th>Conversions</th><th>Revenue</th><th>CPO</th><th>CPO 90%</th><th>ROAS</th>"
        "<th>ROAS 90%</th><th>Conversions behind it</th></tr>"
    )
    rows = []
    for r in periods.to_dict("records"):
        part = ""
        if grain != "day" and "days" in r:
            part = f"<td>{rv.partial_text(r['days'], r['length'], unit='')}</td>"
        rows.append(f"<tr><td>{_e(clip(r['channel_name']))}</td><td>{_e(r['date'])}</td>{part}{_measure_cells(r)}</tr>")
    return f"<h2>Per channel and {grain}</h2><table>{head}{''.join(rows)}</table>"


def _measure_cells(r: dict) -> str:
    """The eight measure cells of a table row, the same in both tables: cost, conversions, revenue, CPO
    and its interval, ROAS and its interval, and the conversions behind it (0 where it is missing: a
    channel-day with cost and no conversion has no support, NaN after the join)."""
    support = r["support"]
    behind = 0 if support is None or support != support else int(support)
    return (
        f"<td class='n'>{_money(r['cost'])}</td><td class='n'>{r['ihc']:,.2f}</td>"
        f"<td class='n'>{_money(r['ihc_revenue'])}</td>"
        f"<td class='n'>{_money(r['CPO'])}</td><td>{rv.interval_range(r['CPO_low'], r['CPO_high'], _money, '')}</td>"
        f"<td class='n'>{_ratio(r['ROAS'])}</td><td>{rv.interval_range(r['ROAS_low'], r['ROAS_high'], _ratio, '')}</td>"
        f"<td class='n'>{behind:,}</td>"
    )


def _checks(con: sqlite3.Connection) -> str:
    report = current_validation(con)
    # one sentence a check, for a manager: count, share and meaning; no stage prefix, no example ids
    lines = [
        f"<div class='check{' fatal' if f.severity == 'fatal' else ''}'>{_e(clip(plain_sentence(f, report.rows), 600))}</div>"
        for f in report.findings
    ]
    if not lines:
        lines = ["<div class='check'>No problem found.</div>"]
    return "<h2>Data checks</h2>" + "".join(lines)
