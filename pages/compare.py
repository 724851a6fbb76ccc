"""Compare models: channel credit, revenue and ROAS of several models on the same journeys, side by side."""

import json

import numpy as np
import pandas as pd
import streamlit as st

from pages._look import StreamlitProgress, echart, not_ready, run_through_the_app, shown_errors
from pages._models import model_label, offline_models, param_widgets, stored_model
from pages._session import (
    comparison,
    db_key,
    remember,
    remember_list,
    restore,
    server_view,
    stage_status,
    workspace,
)
from pipeline.compare import as_written, delta_tone, format_delta, format_value, shift_range
from pipeline.compare_echarts import METRICS, few_label, grouped_bars_option
from pipeline.errors import PipelineError
from pipeline.intervals import FEW_CONVERSIONS
from pipeline.labels import NOWRAP, PAGE_TABLE_PX, clip, column_px, fit_widths, md, table_room, whole_dates
from pipeline.report_charts import FEW_MARK

run_through_the_app()  # a first visit to this page's URL on a fresh server: through app.py

st.title("Compare models")
st.caption(
    "The same journeys attributed by each model, in memory — nothing is written to the database. "
    "Costs are the same for every model, so differences in ROAS and CPO come from the credit alone."
)


def pick_models(states):
    names = offline_models()
    current, current_params = stored_model(states)
    # The chosen models live in the URL (?model=ihc&model=linear): a reloaded or shared URL opens the
    # same comparison; unknown names in it are dropped.
    restore("compare_models", "model", lambda vs: [m for m in dict.fromkeys(vs) if m in names], multi=True)
    if "compare_models" not in st.session_state:
        st.session_state["compare_models"] = [
            m for m in dict.fromkeys([current, "last-click", "linear"]) if m in names
        ][:3]
    chosen = st.multiselect(
        "Models",
        names,
        format_func=model_label,
        key="compare_models",
        help="Two or more. The first one is the baseline the differences refer to. The chosen models are "
        "in the page's address: reload it or send it, and the same comparison opens.",
    )
    remember_list("compare_models", "model")
    specs = []
    with st.expander("Model parameters"):
        for name in chosen:
            st.markdown(f"**{model_label(name)}**")
            params = param_widgets(name, current_params if name == current else {}, key="compare")
            specs.append((name, params))
    return specs


class ComparisonProgress(StreamlitProgress):
    """The comparison's progress in the analyst's words: which model, how many of them (a bar that
    appears only when the comparison is computed, not when it comes from the cache)."""

    def __init__(self, slot, specs):
        super().__init__(slot)
        self.total = len(specs)

    def __call__(self, done: int, total: int, message: str) -> None:
        text = message.removeprefix("compare: ")
        if text.startswith("attributing with "):
            model = text.removeprefix("attributing with ")
            self.n = getattr(self, "n", 0) + 1
            text = f"Attributing the journeys with {pretty(model)} ({self.n} of {self.total})"
        elif text.endswith(" done") or text == "done":
            text = "Attributing the journeys with each model"
        else:
            text = text[:1].upper() + text[1:]
        super().__call__(done, total, text)


def keep_a_metric() -> None:
    """The Show control's ``on_change``: a click on the chosen button unchose it, leaving no button
    highlighted over the view it fell back to; the choice stays."""
    if st.session_state.get("compare_metric") not in METRICS:
        st.session_state["compare_metric"] = st.session_state.get("_kept_compare_metric") or "share"


def show_control() -> str:
    """The metric the comparison shows, in the page's address (``?show=ROAS``) and kept across pages."""
    restore("compare_metric", "show", lambda v: v if v in METRICS else "share", default="share")
    metric = st.segmented_control(
        "Show", list(METRICS), format_func=lambda m: METRICS[m][0], key="compare_metric", on_change=keep_a_metric
    )
    remember("compare_metric", "show", str, "share")
    return metric if metric in METRICS else "share"


def pretty(label: str) -> str:
    """A comparison label ('last-click', 'ihc (profile=challenge)') in the picker's words."""
    name, _, rest = label.partition(" (")
    return model_label(name) + (f" ({rest}" if rest else "")


def grouped_bars(result, metric: str):
    """The chart of ``metric``: a bar per model for each channel (``pipeline.compare_echarts``)."""
    unpaid = result.unpaid() if metric in ("CPO", "ROAS") else []
    labels = [pretty(m) for m in result.models]
    return grouped_bars_option(result.table, metric, result.models, labels, unpaid, few=result.few())


TONES = {"more": (46, 139, 87), "less": (214, 69, 65)}
# A card of the biggest shifts holds its range on one line ("€177.07–€182.83" is ≈190 px in the card's
# heading): three in a row at 1280 px, two and one at 1024 px with the sidebar open.
SHIFT_CARD_PX = 240
SHIFT_CARD_STYLE = f"<style>.st-key-shift_cards>div{{flex:1 1 0;min-width:{SHIFT_CARD_PX}px}}</style>"


def diff_table(result, metric: str) -> None:
    label = METRICS[metric][0]
    wide = (
        result.shown(metric)
        .sort_values([result.models[0], "channel_name"], ascending=[False, True], na_position="last")
        .reset_index(drop=True)
    )
    value_cols = [c for c in wide.columns if c != "channel_name"]
    wide[value_cols] = wide[value_cols].astype(float)  # undefined ratios: NaN, shown as —, never 'None'
    delta_cols = [c for c in wide.columns if c.startswith("Δ ")]
    noise = result.within_noise(metric).set_index("channel_name").reindex(wide["channel_name"])
    # the channels of this view (for CPO and ROAS the paid ones) resting on few conversions
    in_view = set(wide["channel_name"])
    shown_few = [c for c in result.few() if c in in_view]
    # the table shows the start of a long name (labels.clip), † on few conversions as the chart
    wide["channel_name"] = [few_label(c) if c in shown_few else clip(c) for c in wide["channel_name"]]
    scale = np.nanmax(np.abs(wide[delta_cols].to_numpy(dtype=float))) if delta_cols and len(wide) else 0.0

    def shade(column: pd.Series) -> list[str]:
        styles = []
        for pos, value in enumerate(wide[column.name]):
            tone = delta_tone(value, metric, bool(noise[column.name].iloc[pos]))
            if tone == "noise" or (tone == "" and pd.notna(value)):
                # within the noise, or no difference at the table's precision ('+0.0 pts', which was in
                # black beside grey '+0.1 pts', as if it said more): grey, no tint
                styles.append("color: #98A2B3")
            elif tone:
                rgb, strength = TONES[tone], min(abs(value) / scale, 1.0) if scale else 0.0
                styles.append(f"background-color: rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, {0.08 + 0.5 * strength:.2f})")
            else:
                styles.append("")
        return styles

    # The cells keep their numbers, so a click on a column's header sorts by value, not as text; the
    # Styler writes them as the library does ('—' where undefined: the browser drew a NaN as "None"
    # whatever the na_rep, review #7).
    formats = {c: (lambda v, m=metric: format_value(v, m)) for c in result.models}
    formats.update({c: (lambda v, m=metric: format_delta(v, m)) for c in delta_cols})
    styled = wide.style.apply(shade, subset=delta_cols).format(formats)
    # each column as wide as its header and values as written (with four models Streamlit's own widths
    # cut "Shapley value" to "Shapley valu" at 1280 px); the channel names give way first
    headers = {"channel_name": "Channel", **{c: pretty(c) for c in result.models}}
    headers.update({c: "Δ " + pretty(c[2:]) for c in delta_cols})
    texts = {c: [formats[c](v) for v in wide[c]] if c in formats else list(wide[c]) for c in headers}
    needed = {c: column_px(h, texts[c]) for c, h in headers.items()}
    widths = fit_widths(needed, table_room(len(wide), PAGE_TABLE_PX), squeeze="channel_name")
    st.dataframe(
        styled,
        hide_index=True,
        key="compare_table",
        placeholder="—",  # an undefined ratio (NaN) as the library writes it
        height=min(38 + 35 * len(wide), 700),
        column_config={
            "channel_name": st.column_config.TextColumn("Channel", width=widths["channel_name"], pinned=True),
            **{c: st.column_config.Column(h, width=widths[c]) for c, h in headers.items() if c != "channel_name"},
        },
    )
    direction = "a lower CPO" if metric == "CPO" else "more"
    st.caption(
        f"{label}: one column per model; Δ columns = model minus the baseline ({pretty(result.models[0])})"
        + (", in percentage points" if metric == "share" else "")
        + f". Green: the model gives the channel {direction}, red: the opposite. Grey: within the noise — "
        "resampling the conversions (90%, the same resamples for both models) moves the difference across 0 "
        "— or no difference at the table's precision. — where undefined."
        + (
            " Conversions are fractional: the sum of the credit shares each channel received."
            if metric == "ihc"
            else ""
        )
    )
    if shown_few:
        st.caption(
            f"{FEW_MARK} pale bars rest on fewer than {FEW_CONVERSIONS} conversions with a session of the channel: "
            f"{', '.join(md(c, 60) for c in shown_few)}. Under every model their figures move most with which "
            "conversions happened."
        )
    unpaid = result.unpaid() if metric in ("CPO", "ROAS") else []
    if unpaid:
        st.caption(
            f"Not in the {label} view — channels without cost: {', '.join(md(c, 60) for c in unpaid)}. "
            "Their attributed conversions and revenue are in the other views."
        )


with shown_errors():
    ws = workspace()
    view = server_view()
    if view is not None:
        st.info(
            f"Compare models works on this session's database, not on the server source {md(view.name, 80)}: "
            "comparing needs every session's cost and the paths that did not convert, which a server "
            "source keeps on its engine (its Report and Journeys pages show its run).",
            icon=":material/dns:",
        )
        st.page_link("pages/data.py", label="Go back to this session's database on the Data page")
        st.stop()
    path, fp = db_key(ws)
    states = stage_status(path, fp)
    if states["journeys"].record is None or states["journeys"].state != "done":
        not_ready("Comparing needs up-to-date journeys. Run the pipeline first.")
        st.stop()
    specs = pick_models(states)
    # drawn whatever the models: a control that left the page while fewer than two were chosen came back
    # in the browser with no button highlighted (and before that, "Share" over a ROAS view)
    metric = show_control()
    if len(specs) < 2:
        st.info("Choose at least two models to compare.")
        st.stop()
    bar = st.empty()
    try:
        result = comparison(
            path, fp, json.dumps(specs, sort_keys=True, default=str), progress=ComparisonProgress(bar, specs)
        )
    except PipelineError as exc:
        st.error(md(str(exc)), icon=":material/warning:")
        st.stop()
    finally:
        bar.empty()
    st.caption(whole_dates(md(result.scope())), unsafe_allow_html=True)  # whole_dates: spans, no tag of the data
    shifts = result.biggest_shifts(metric, 3)
    if not shifts.empty:
        # what the cards are, above them (it came after them, under cards that had no heading)
        what = METRICS[metric][0] if metric in ("ROAS", "CPO") else METRICS[metric][0].lower()
        st.caption(
            f"The channels whose {what} depends most on the model (first those where a difference is "
            "coloured in the table: beyond the noise of which conversions happened)."
        )
        # a row that wraps, each card at least SHIFT_CARD_PX: three columns at 1024 px (sidebar open) broke
        # the range inside itself ("3.2%–" / "3.7% across" / "models"); the range is one unbroken span
        st.html(SHIFT_CARD_STYLE)
        row = st.container(horizontal=True, wrap=True, key="shift_cards")
        for i, (_, r) in enumerate(shifts.iterrows()):
            # a card, not st.metric: the models' names wrap instead of being cut in the metric's pill
            with row.container(border=True, key=f"shift_card_{i}"):
                st.markdown(f"**{md(r['channel_name'], 60)}**")
                span = NOWRAP.format(shift_range(r["low"], r["high"], metric).removesuffix(" across models"))
                st.markdown(f"#### {span} across models", unsafe_allow_html=True)
                low, high = as_written([r["low"], r["high"]], metric)  # the range above, subtracted
                spread = f"{(high - low) * 100:.1f} pts of the conversions: " if metric == "share" else ""
                noise = (
                    ""
                    if r["beyond_noise"]
                    else " Not a clear difference: within the noise of which conversions happened, or too "
                    "small to show (grey in the table)."
                )
                st.caption(
                    f"{spread}lowest with {md(pretty(r['low_model']))}, highest with "
                    f"{md(pretty(r['high_model']))}.{noise}"
                )
    echart(grouped_bars(result, metric), key="compare_chart")
    diff_table(result, metric)
