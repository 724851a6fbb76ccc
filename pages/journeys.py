"""Journeys: how long journeys are, the common channel paths, and one conversion's credit explained."""

import pandas as pd
import streamlit as st

from pages._look import echart, eur, not_ready, run_through_the_app, shown_errors
from pages._models import model_label
from pages._session import (
    colors,
    conversion,
    conversion_choices,
    conversions_starting,
    cut_hours,
    data_key,
    length_distribution,
    server_caption,
    stage_status,
    top_paths,
    unattributed,
    workspace,
)
from pipeline import journeys_echarts as jch
from pipeline.explain import (
    LENGTH_BINS,
    PHASE_ONLY,
    SIGNALS_HELP,
    ZERO_CREDIT_HELP,
    credit_note,
    has_phases,
    signal_words,
    zero_credit_lines,
    zero_credit_reasons,
)
from pipeline.labels import (
    PAGE_TABLE_PX,
    clip,
    code,
    column_px,
    counted,
    fit_widths,
    md,
    table_height,
    table_room,
)

SHORT_ID_CHARS = 8  # a session id in the explain table: enough to tell a journey's sessions apart
EXPLAIN_HEADERS = {  # the explain table's columns, in order
    "position": "#",
    "timestamp": "Time (UTC)",
    "channel": "Channel",
    "ihc": "Credit",
    "revenue_share": "Revenue",
    "initializer": "Initializer",
    "holder": "Holder",
    "closer": "Closer",
    "signals": "Engagement",
    "session_id": "Session",
}


# The explain table's room at 1280 px with the sidebar open: the main area's, less the page's own
# scrollbar (this page is always taller than the window; fitted to the whole MAIN_TABLE_PX, the table
# scrolled 816 px of columns sideways in 808) and, for a journey of more rows than its height shows, less
# the table's vertical scrollbar (labels.table_room).
EXPLAIN_ROOM_PX = PAGE_TABLE_PX


def explain_columns(phased: bool) -> list[str]:
    """The explain table's columns: a model without phases has no phase values or flags to show."""
    return [c for c in EXPLAIN_HEADERS if phased or c not in PHASE_ONLY]


def explain_widths(shown: pd.DataFrame, columns=tuple(EXPLAIN_HEADERS)) -> dict:
    """The explain table's column widths (px) of ``columns``: each as wide as its header and longest text
    as the table writes it, so the whole table fits 1280 px (the channel names give way first if it cannot)."""

    def three_places(values):
        return [None if pd.isna(v) else f"{v:.3f}" for v in values]

    texts = {
        "position": [str(v) for v in shown["position"]],
        "revenue_share": [None if pd.isna(v) else f"€{v:,.2f}" for v in shown["revenue_share"]],
        **{c: three_places(shown[c]) for c in ("ihc", "initializer", "holder", "closer") if c in shown},
    }
    needed = {
        c: column_px(h, texts.get(c, shown[c].tolist() if c in shown else []))
        for c, h in EXPLAIN_HEADERS.items()
        if c in columns
    }
    return fit_widths(needed, table_room(len(shown), EXPLAIN_ROOM_PX), squeeze="channel")


# The two charts' shares of a row and least widths (px): their titles whole ("Most common channel paths
# (colour = first channel)" is 470 px of Plotly's 16 px Arial). Streamlit's widths are fixed or stretch,
# never "at least": a flex basis does it, on the containers (their keys' classes) and their wrappers.
CHART_MIN_PX = {"journeys_lengths": 300, "journeys_paths": 480}
CHART_ROW_STYLE = (
    "<style>"
    + "".join(
        f".st-key-{key},:has(>.st-key-{key}){{flex:{grow} 1 {px}px;min-width:{px}px}}"
        for (key, px), grow in zip(CHART_MIN_PX.items(), (2, 3))
    )
    + "</style>"
)

run_through_the_app()  # a first visit to this page's URL on a fresh server: through app.py

st.title("Journeys")
st.caption("A journey is every session of the converting user strictly before the conversion.")


def lengths(path, fp) -> None:
    dist = length_distribution(path, fp)
    total = int(dist["conversions"].sum())
    echart(jch.lengths_option(dist), key="length_chart")
    note = (
        f"Labels: share of all {total:,} conversions. Every length has its place (0 where none); "
        f"{LENGTH_BINS}+ holds the longer journeys. "
        "Grey: conversions with no earlier session (0), which cannot be attributed."
    )
    reasons = unattributed(path, fp)
    if not reasons.empty:
        note += " Not attributed: " + "; ".join(
            f"{n:,} — {md(r)}" for r, n in zip(reasons["reason"], reasons["conversions"])
        )
    st.caption(note)


def paths(path, fp, palette) -> None:
    collapse = st.session_state.get("collapse_paths", False)
    top = top_paths(path, fp, 12, collapse)
    if top.empty:
        st.caption("No journey has sessions.")
        return
    echart(jch.paths_option(top, palette), key="paths_chart")
    st.caption(
        "A path is the channels of a journey in time order; ×2: the same channel twice in a row. "
        "Point at a bar for its whole path and revenue."
    )
    st.toggle(
        "Count repeated visits of the same channel once",
        key="collapse_paths",
        help="Direct → Direct → Paid Search becomes Direct → Paid Search.",
    )


def short_id(cid: str, keep: int = 12) -> str:
    """A long id shortened to its start for a picker's line (the whole id is shown below it)."""
    return cid if len(cid) <= keep + 4 else cid[:keep] + "…"


def explain_one(path, fp, palette) -> None:
    choices = conversion_choices(path, fp)
    if choices.empty:
        st.caption("No conversion has a journey to explain.")
        return
    options = choices["conversion_id"].tolist()
    by_id = choices.set_index("conversion_id")

    def fmt(cid: str) -> str:
        r = by_id.loc[cid]
        return (
            f"{short_id(cid)} · {r['sessions']} sessions · {r['channels']} channels · {eur(r['revenue'], 2)} · "
            f"{clip(r['conv_date'], 20)}"
        )

    picked = st.selectbox(
        "Conversion (journeys of 3–8 sessions with the most channels first)",
        options,
        format_func=fmt,
        key="explain_pick",
        # the last one used wins: a pick clears the id box (with an id typed, a pick changed nothing)
        on_change=lambda: st.session_state.update(explain_id=""),
    )
    typed = st.text_input(
        "…or find a conversion by its id",
        key="explain_id",
        placeholder=f"the whole id or its first characters, e.g. {options[0][:8]}",
        help="Ids are matched from their start, letter case ignored: a few characters are usually enough.",
    ).strip()
    conv_id = picked
    if typed:
        found = conversions_starting(path, fp, typed)
        if not found:
            st.warning(f"No conversion id begins with {code(typed, 80)}.", icon=":material/search_off:")
            return
        if len(found) > 1 and found[0] != typed:
            more = "more than 5" if len(found) > 5 else f"{len(found)}"
            st.info(
                f"{more} conversion ids begin with {code(typed, 80)}: "
                + ", ".join(code(c, 80) for c in found[:5])
                + ". Type more characters.",
                icon=":material/search:",
            )
            return
        conv_id = found[0]
    info, sessions = conversion(path, fp, conv_id)
    model = model_label(info.model) if info.model else "not attributed"
    st.markdown(
        f"**{md(info.conversion_id, 80)}** on {md(info.date, 20)} {md(info.time, 20)} · "
        f"revenue **{eur(info.revenue, 2)}** · "
        f"{counted(info.sessions, 'session')} before it · model: {model}"
    )
    if info.unattributed_reason:
        st.info(f"This conversion is not attributed: {md(info.unattributed_reason)}.")
        return
    if sessions.empty:
        st.info("This conversion has no journey in the current journeys set.")
        return
    phased = has_phases(sessions)
    phases = [p for p in ("initializer", "holder", "closer") if phased] + ["ihc"]
    echart(jch.credit_option(sessions, phases, palette), key="explain_chart")
    st.caption(md(credit_note(phased, model)))
    reasons = zero_credit_reasons(sessions, info.model, cut_hours(path, fp))
    shown = sessions.assign(
        channel=sessions["channel"].map(clip),
        session_id=sessions["session_id"].map(lambda v: clip(v, SHORT_ID_CHARS + 1)),  # whole ones below
        timestamp=sessions["timestamp"].map(clip),
        signals=signal_words(sessions),
    )
    columns = explain_columns(phased)
    widths = explain_widths(shown, columns)
    st.dataframe(
        shown,
        hide_index=True,
        key="explain_table",
        placeholder="—",
        height=table_height(len(shown)),  # the height explain_widths counted on (a long journey scrolls)
        column_order=columns,
        column_config={
            # every column as wide as its longest text, so that the whole table fits 1280 px; pinned: where
            # it scrolls sideways (1024 px, sidebar open) the session's number stays in view
            "position": st.column_config.NumberColumn("#", width=widths["position"], pinned=True),
            "session_id": st.column_config.TextColumn(
                "Session",
                width=widths["session_id"],
                help=f"The session id's first {SHORT_ID_CHARS} characters; the whole ids are under the table.",
            ),
            "timestamp": st.column_config.TextColumn("Time (UTC)", width=widths["timestamp"]),
            "channel": st.column_config.TextColumn("Channel", width=widths["channel"]),
            "signals": st.column_config.TextColumn("Engagement", width=widths.get("signals"), help=SIGNALS_HELP),
            "initializer": st.column_config.NumberColumn(
                "Initializer",
                format="%.3f",
                width=widths.get("initializer"),
                help="The session's share of the first phase.",
            ),
            "holder": st.column_config.NumberColumn(
                "Holder", format="%.3f", width=widths.get("holder"), help="The session's share of the middle phase."
            ),
            "closer": st.column_config.NumberColumn(
                "Closer", format="%.3f", width=widths.get("closer"), help="The session's share of the last phase."
            ),
            "ihc": st.column_config.NumberColumn(
                "Credit",
                format="%.3f",
                width=widths["ihc"],
                help="The session's credit (ihc): its share of the conversion.",
            ),
            "revenue_share": st.column_config.NumberColumn(
                "Revenue",
                format="euro",
                width=widths["revenue_share"],
                help="Credit × the conversion's revenue (EUR).",
            ),
        },
    )
    for line in zero_credit_lines(sessions["position"].tolist(), reasons):
        st.caption(md(line), help=ZERO_CREDIT_HELP)
    with st.expander("Whole session ids (to copy)"):
        st.code(
            "\n".join(f"#{n}  {clip(i)}" for n, i in zip(sessions["position"], sessions["session_id"])),
            language=None,
        )


with shown_errors():
    ws = workspace()
    path, fp = data_key(ws)  # this session's database, or the server source picked on the Data page
    server_caption()
    states = stage_status(path, fp)
    if states["journeys"].record is None:
        not_ready("No journeys yet. Run the pipeline to build them.")
        st.stop()
    if states["journeys"].state != "done":
        st.warning(
            f"The journeys are {states['journeys'].state} ({states['journeys'].reason}); showing the last ones built.",
            icon=":material/warning:",
        )
    palette = colors(path, fp)
    # Side by side where both fit (2 : 3, the long path labels need the wider one), else one above the other:
    # at 1024 px with the sidebar open two columns cut the paths chart's title ("…(colour = first ch") and
    # the lengths chart's axis title ("Sessions before the conver").
    st.html(CHART_ROW_STYLE)
    row = st.container(horizontal=True, wrap=True, gap="medium", key="journeys_charts")
    with row.container(width="stretch", key="journeys_lengths"):
        lengths(path, fp)
    with row.container(width="stretch", key="journeys_paths"):
        paths(path, fp, palette)
    st.subheader("Explain one conversion")
    explain_one(path, fp, palette)
