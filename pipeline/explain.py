"""Explaining results: how long journeys are, which channel paths are common, and one conversion's
journey with the credit each of its sessions received.

Reads the product's own tables written by the stages — ``pipeline_journeys`` and
``pipeline_journey_conversions`` (the journeys stage), ``pipeline_attribution`` (per-session phases and
credit of the attribute stage) and ``pipeline_unattributed`` — and never writes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from .db import table_exists
from .errors import InputError
from .journey_index import PHASES, VALUE_COLUMNS
from .labels import clip, html_text
from .schema import channel_label, channel_sql

ARROW = " → "


def _require(con: sqlite3.Connection, *tables: str) -> None:
    missing = [t for t in tables if not table_exists(con, t)]
    if missing:
        raise InputError("there are no journeys yet: run the pipeline first")


LENGTH_BINS = 12  # journey lengths 0..11 each get a bar; longer ones share one "12+" bar


def length_distribution(con: sqlite3.Connection, bins: int = LENGTH_BINS) -> pd.DataFrame:
    """Conversions per journey length (sessions before the conversion), 0 included: ``sessions, label,
    conversions, share`` (of all conversions). Every length below ``bins`` has a row, with 0 conversions
    where there is none (a chart never hides a gap by leaving the length out); longer journeys share the
    last row, labelled ``"{bins}+"`` (sessions = ``bins``), present only when there are any."""
    _require(con, "pipeline_journey_conversions")
    rows = con.execute(
        "SELECT min(sessions, ?), count(*) FROM pipeline_journey_conversions GROUP BY 1 ORDER BY 1", (bins,)
    ).fetchall()
    counts = dict(rows)
    top = bins if counts.get(bins) else max([*counts, 0])
    lengths = list(range(top + 1))
    out = pd.DataFrame(
        {
            "sessions": lengths,
            "label": [f"{n}+" if n == bins else str(n) for n in lengths],
            "conversions": [int(counts.get(n, 0)) for n in lengths],
        }
    )
    total = out["conversions"].sum()
    out["share"] = out["conversions"] / total if total else 0.0
    return out


def journey_paths(con: sqlite3.Connection, collapse_repeats: bool = False) -> pd.DataFrame:
    """One row per conversion with sessions: ``conversion_id, path, length`` where path is its
    channels in time order joined by ' → ' (``collapse_repeats``: consecutive sessions of the same
    channel count once)."""
    _require(con, "pipeline_journeys")
    rows = con.execute(
        "SELECT conversion_id, channel_label FROM pipeline_journeys ORDER BY conversion_id, timestamp, session_id"
    ).fetchall()
    frame = pd.DataFrame.from_records(rows, columns=["conversion_id", "channel_label"])
    if frame.empty:
        return pd.DataFrame({"conversion_id": [], "path": [], "length": []})
    if collapse_repeats:
        conv = frame["conversion_id"].to_numpy()
        chan = frame["channel_label"].to_numpy()
        repeat = np.zeros(len(frame), dtype=bool)
        repeat[1:] = (conv[1:] == conv[:-1]) & (chan[1:] == chan[:-1])
        frame = frame[~repeat]
    grouped = frame.groupby("conversion_id", sort=True)["channel_label"]
    return pd.DataFrame({"path": grouped.agg(ARROW.join), "length": grouped.size()}).reset_index()


def top_paths(con: sqlite3.Connection, limit: int = 15, collapse_repeats: bool = False) -> pd.DataFrame:
    """The most common channel paths: ``path, length, conversions, share, revenue`` (revenue of the
    conversions taking that path), most frequent first (ties: path name)."""
    paths = journey_paths(con, collapse_repeats)
    columns = ["path", "length", "conversions", "share", "revenue"]
    if paths.empty:
        return pd.DataFrame({c: [] for c in columns})
    revenue = dict(con.execute("SELECT conv_id, coalesce(revenue, 0) FROM conversions").fetchall())
    paths["revenue"] = paths["conversion_id"].map(revenue).astype(float).fillna(0.0)
    out = paths.groupby(["path", "length"], as_index=False).agg(
        conversions=("conversion_id", "size"), revenue=("revenue", "sum")
    )
    out["share"] = out["conversions"] / len(paths)
    out = out.sort_values(["conversions", "path"], ascending=[False, True]).head(limit).reset_index(drop=True)
    return out[columns]


PATH_LINE_CHARS = 26  # a path label's line: the paths chart sits in 3/5 of the page at 1280 px
PATH_LINES = 3  # at most; a longer path says how many steps are left out (its hover shows it whole)


def path_steps(path: str) -> list[str]:
    """A path's channels with repeats in a row counted: 'Direct → Direct → Email' → ['Direct ×2', 'Email']."""
    steps: list[list] = []
    for channel in path.split(ARROW):
        if steps and steps[-1][0] == channel:
            steps[-1][1] += 1
        else:
            steps.append([channel, 1])
    return [name if n == 1 else f"{name} ×{n}" for name, n in steps]


def path_lines(path: str, width: int = PATH_LINE_CHARS, most: int = PATH_LINES) -> list[str]:
    """A path as short lines for a chart's axis label: whole channel names (one longer than ``width`` is
    clipped), an arrow at the end of a line that goes on, never a cut in the middle of a name; past
    ``most`` lines the last one says how many steps are left out."""
    steps = [clip(s, width) for s in path_steps(path)]
    lines: list[list[str]] = [[]]
    for step in steps:
        line = lines[-1]
        if line and len(ARROW.join(line + [step])) + 2 > width:
            lines.append([step])
        else:
            line.append(step)
    if len(lines) > most:
        kept = lines[:most]
        left = len(steps) - sum(len(line) for line in kept[:-1]) - 1
        kept[-1] = [kept[-1][0], f"+{left} more"] if left > 0 else kept[-1][:1]
        lines = kept
    out = [ARROW.join(line) for line in lines]
    return [text + ARROW.rstrip() if i < len(out) - 1 else text for i, text in enumerate(out)]


def path_ticks(paths: list[str], width: int = PATH_LINE_CHARS) -> list[str]:
    """Axis labels for ``paths``: each one's ``path_lines`` HTML-escaped and joined by ``<br>``; two paths
    whose labels would read the same get "(2)", "(3)" … so that no two bars carry the same label."""
    out: list[str] = []
    for path in paths:
        label = "<br>".join(html_text(line) for line in path_lines(path, width))
        n, unique = 1, label
        while unique in out:
            n += 1
            unique = f"{label} ({n})"
        out.append(unique)
    return out


@dataclass(frozen=True)
class ConversionInfo:
    conversion_id: str
    date: str
    time: str
    revenue: float
    sessions: int
    model: Optional[str]  # model whose credit is stored for it, None if not attributed
    unattributed_reason: Optional[str]


def conversion_info(con: sqlite3.Connection, conversion_id: str) -> ConversionInfo:
    row = con.execute(
        "SELECT conv_id, conv_date, conv_time, coalesce(revenue, 0) FROM conversions WHERE conv_id = ?",
        (conversion_id,),
    ).fetchone()
    if row is None:
        raise InputError(f"there is no conversion {conversion_id!r}")
    sessions = model = reason = None
    if table_exists(con, "pipeline_journey_conversions"):
        found = con.execute(
            "SELECT sessions FROM pipeline_journey_conversions WHERE conversion_id = ?", (conversion_id,)
        ).fetchone()
        sessions = found[0] if found else None
    if table_exists(con, "pipeline_attribution"):
        found = con.execute(
            "SELECT model FROM pipeline_attribution WHERE conv_id = ? LIMIT 1", (conversion_id,)
        ).fetchone()
        model = found[0] if found else None
    if table_exists(con, "pipeline_unattributed"):
        found = con.execute("SELECT reason FROM pipeline_unattributed WHERE conv_id = ?", (conversion_id,)).fetchone()
        reason = found[0] if found else None
    return ConversionInfo(row[0], row[1], row[2], float(row[3]), int(sessions or 0), model, reason)


def find_conversions(con: sqlite3.Connection, start: str, limit: int = 5) -> list[str]:
    """The ids of the conversions whose id begins with ``start`` (letter case ignored), in id order, at
    most ``limit + 1`` (so a caller can tell "more than ``limit``"); an exact id first."""
    start = start.strip()
    if not start:
        return []
    rows = con.execute(
        "SELECT conv_id FROM conversions WHERE lower(substr(conv_id, 1, length(?1))) = lower(?1)"
        " ORDER BY conv_id != ?1, conv_id LIMIT ?2",
        (start, limit + 1),
    ).fetchall()
    return [r[0] for r in rows]


def conversion_sessions(con: sqlite3.Connection, conversion_id: str) -> pd.DataFrame:
    """The sessions of one conversion's journey in time order, with their flags, the stored phase
    values (NaN for models without phases) and credit, and the revenue that credit carries."""
    _require(con, "pipeline_journeys")
    has_attr = table_exists(con, "pipeline_attribution")
    credit = "a.initializer, a.holder, a.closer, a.ihc" if has_attr else "NULL, NULL, NULL, NULL"
    join = (
        "LEFT JOIN pipeline_attribution a ON a.conv_id = j.conversion_id AND a.session_id = j.session_id"
        if has_attr
        else ""
    )
    rows = con.execute(
        f"SELECT j.session_id, j.timestamp, j.channel_label, j.holder_engagement, j.closer_engagement,"
        f" j.impression_interaction, {credit} FROM pipeline_journeys j {join}"
        f" WHERE j.conversion_id = ? ORDER BY j.timestamp, j.session_id",
        (conversion_id,),
    ).fetchall()
    cols = [
        "session_id",
        "timestamp",
        "channel",
        "holder_engagement",
        "closer_engagement",
        "impression_interaction",
        *PHASES,
        "ihc",
    ]
    out = pd.DataFrame.from_records(rows, columns=cols)
    for c in VALUE_COLUMNS:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(np.float64)
    out.insert(0, "position", np.arange(1, len(out) + 1))
    revenue = con.execute("SELECT coalesce(revenue, 0) FROM conversions WHERE conv_id = ?", (conversion_id,)).fetchone()
    out["revenue_share"] = out["ihc"] * (float(revenue[0]) if revenue else 0.0)
    return out


# What only a model with phases (IHC) gives a session: its share of each phase, and the engagement flags
# that decide the holder and closer phases. Under a model without phases (Linear, Markov…) these columns were
# empty or, for the flags, read as if the model had counted a session as "holder · closer": not shown.
PHASE_ONLY = (*PHASES, "signals")


def has_phases(sessions: pd.DataFrame) -> bool:
    """Whether the model behind ``conversion_sessions`` gave its sessions phase values (IHC does)."""
    return bool(sessions[list(PHASES)].notna().any().any())


def credit_note(phased: bool, model: str) -> str:
    """The line under one conversion's credit chart: how the credit was made, in the model's words."""
    if phased:
        return (
            "Each phase's shares sum to 100% over the journey; the credit blends the three phases with the "
            "profile's phase weights."
        )
    return (
        f"{model} gives each session its share directly: it has no phases (initializer, holder, closer) "
        "and does not use the sessions' engagement flags, which only IHC does."
    )


def conversion_choices(con: sqlite3.Connection, limit: int = 300) -> pd.DataFrame:
    """Conversions worth explaining, for a picker: journeys of 3 to 8 sessions first (long enough to
    show the phases, short enough to read), most distinct channels first, then the others.
    Columns ``conversion_id, sessions, channels, revenue, conv_date``."""
    _require(con, "pipeline_journeys")
    rows = con.execute(
        "SELECT j.conversion_id, count(*), count(DISTINCT j.channel_label), coalesce(c.revenue, 0), c.conv_date"
        " FROM pipeline_journeys j JOIN conversions c ON c.conv_id = j.conversion_id"
        " GROUP BY j.conversion_id ORDER BY count(*) BETWEEN 3 AND 8 DESC, count(DISTINCT j.channel_label) DESC,"
        " count(*) DESC, j.conversion_id"
        " LIMIT ?",
        (limit,),
    ).fetchall()
    return pd.DataFrame.from_records(rows, columns=["conversion_id", "sessions", "channels", "revenue", "conv_date"])


def unattributed_reasons(con: sqlite3.Connection) -> pd.DataFrame:
    """Conversions the last runs could not attribute, counted per reason."""
    if not table_exists(con, "pipeline_unattributed"):
        return pd.DataFrame({"reason": [], "conversions": []})
    rows = con.execute(
        "SELECT reason, count(*) FROM pipeline_unattributed GROUP BY reason ORDER BY count(*) DESC, reason"
    ).fetchall()
    return pd.DataFrame.from_records(rows, columns=["reason", "conversions"])


def channel_overview(con: sqlite3.Connection) -> pd.DataFrame:
    """Sessions, paid sessions (with a cost row) and cost per channel of the input tables, the
    channels with most sessions first (one pass over the sessions)."""
    rows = con.execute(
        f"SELECT {channel_sql('s.channel_name')}, count(*), count(c.session_id), total(c.cost)"
        " FROM session_sources s LEFT JOIN session_costs c ON c.session_id = s.session_id GROUP BY 1"
        " ORDER BY count(*) DESC"
    ).fetchall()
    return pd.DataFrame.from_records(rows, columns=["channel", "sessions", "paid_sessions", "cost"])


def channel_names(con: sqlite3.Connection) -> set[str]:
    """The database's channel names: from the small product tables when they exist, else one DISTINCT
    pass over the sessions (a NULL channel as ``schema.NO_CHANNEL``)."""
    names: set[str] = set()
    for table, column in (("channel_reporting", "channel_name"), ("pipeline_journeys", "channel_label")):
        if table_exists(con, table):
            names |= {r[0] for r in con.execute(f"SELECT DISTINCT {column} FROM {table}")}
    if not names:
        names = {channel_label(r[0]) for r in con.execute("SELECT DISTINCT channel_name FROM session_sources")}
    return names


# short enough to fit the Journeys table at 1280 px; ZERO_CREDIT_HELP says the rest once, in the header
SINGLE_TOUCH = {
    "last-click": "last click: all credit to the last session",
    "first-click": "first click: all credit to the first session",
}
ZERO_CREDIT_HELP = (
    "Why a session got no credit. IHC: a pause longer than the profile's inactivity limit starts the "
    "journey afresh, and the sessions before the last such pause get 0 in every role. "
    "Last/first click: the whole credit goes to one session."
)


# The real IHC API's inactivity cut, as its answers show it (spec §2.2: kept at 52.64 h, dropped at 53.01 h).
API_CUT_HOURS = 52.8


def zero_credit_reasons(sessions: pd.DataFrame, model: Optional[str], cut_hours: Optional[float] = None) -> list[str]:
    """Why each session of ``conversion_sessions`` got no credit ('' where it got some).

    For IHC (spec §2.2–2.5) a session gets 0 in every phase either because it comes before a pause longer
    than the inactivity cut (the journey starts afresh after it: ``cut_hours``, the offline profile's;
    for the web API about ``API_CUT_HOURS``), or, inside the journey, because no phase credits it: it
    came too soon after the session before to be a new start (the initializer's share is 0), it has no
    holder engagement flag, and no closer flag (or it is too long before the conversion for the closer).
    The pause was given for every such session: a session four minutes before the next one with no
    flags was said to "come before a pause"."""
    ihc = sessions["ihc"].to_numpy(dtype=np.float64)
    zero = np.nan_to_num(ihc, nan=1.0) == 0
    out = [""] * len(sessions)
    if not zero.any():
        return out
    if model not in ("ihc", "ihc-api"):
        reason = SINGLE_TOUCH.get(model or "", "the model gives this channel no credit")
        return [reason if z else "" for z in zero]
    cut = cut_hours if model == "ihc" else API_CUT_HOURS
    times = pd.to_datetime(sessions["timestamp"]).to_numpy()
    gaps = np.diff(times).astype("timedelta64[s]").astype(np.float64) / 3600.0
    holder = _flags(sessions, "holder_engagement")
    closer = _flags(sessions, "closer_engagement")
    for i in np.flatnonzero(zero):
        later = gaps[i:]  # gaps after session i: gaps[k] is between session k and k + 1
        long = np.flatnonzero(later > cut) if cut is not None else np.array([], dtype=np.int64)
        if len(long) and model == "ihc":
            out[i] = (
                f"they come before a pause of {later[long[-1]]:,.1f} hours, longer than IHC's {cut:g}-hour "
                "inactivity limit, so the journey counts from after that pause"
            )
        elif len(long):
            out[i] = "they come before a pause longer than IHC's inactivity limit, so the journey counts from after it"
        else:
            out[i] = _no_phase(holder[i], closer[i])
    return out


def _flags(sessions: pd.DataFrame, column: str) -> list[Optional[bool]]:
    if column not in sessions:
        return [None] * len(sessions)
    return [None if pd.isna(v) else bool(v) for v in sessions[column]]


def _no_phase(holder: Optional[bool], closer: Optional[bool]) -> str:
    """Why none of IHC's phases credits a session inside the journey (see ``zero_credit_reasons``)."""
    if holder is None or closer is None:
        return "none of IHC's three phases credits them"
    parts = ["they came too soon after the session before to count as a new start"]
    parts.append("have no holder engagement flag" if not holder else "get no holder share")
    parts.append(
        "have no closer engagement flag" if not closer else "are too long before the conversion for the closer"
    )
    return "none of IHC's three phases credits them: " + ", ".join(parts[:-1]) + " and " + parts[-1]


def stored_cut_hours(con: sqlite3.Connection) -> Optional[float]:
    """The inactivity cut (hours) of the offline IHC profile behind the stored attribution, if any."""
    from .ihc.profile import load_profile
    from .status import read_records

    rec = read_records(con).get("attribute")
    if rec is None or rec.params.get("model") != "ihc":
        return None
    profile = (rec.params.get("params") or {}).get("profile") or "default"
    try:
        return load_profile(profile).cut_hours
    except InputError:
        return None


def zero_credit_lines(positions: list[int], reasons: list[str]) -> list[str]:
    """The sessions without credit grouped by reason, for a line under the journey's table (a column would
    push the table past a 1280 px screen): e.g. "No credit for #2, #3: before a long pause (inactivity cut)"."""
    by_reason: dict[str, list[int]] = {}
    for pos, reason in zip(positions, reasons):
        if reason:
            by_reason.setdefault(reason, []).append(int(pos))
    return [f"No credit for {session_numbers(ps)}: {r}." for r, ps in by_reason.items()]


def session_numbers(positions: list[int]) -> str:
    """'session #3', 'sessions #1–#5, #7': consecutive positions as one range."""
    ps = sorted(set(positions))
    runs: list[list[int]] = []
    for p in ps:
        if runs and p == runs[-1][-1] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    parts = [f"#{r[0]}" if len(r) == 1 else f"#{r[0]}–#{r[-1]}" if len(r) > 2 else f"#{r[0]}, #{r[1]}" for r in runs]
    return ("session " if len(ps) == 1 else "sessions ") + ", ".join(parts)


SIGNALS_HELP = (
    "The session's engagement flags: 'holder' counts it for the holder (middle) phase "
    "(holder_engagement), 'closer' for the closer (last) phase (closer_engagement), 'impression': an ad "
    "impression rather than a visit (impression_interaction). Empty: none of them."
)


def signal_words(sessions: pd.DataFrame) -> list[str]:
    """Each session's engagement flags in words, for one narrow column instead of three abbreviated
    check boxes: 'holder · closer', 'impression', '' (none)."""
    flags = (("holder_engagement", "holder"), ("closer_engagement", "closer"), ("impression_interaction", "impression"))
    picked = [sessions[column].fillna(0).astype(bool).tolist() for column, _ in flags]
    return [" · ".join(word for (_, word), on in zip(flags, row) if on) for row in zip(*picked)]
