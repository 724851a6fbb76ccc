"""Comparing models: attribute the same journeys with several models, without writing anything, and
put their channel credit, attributed revenue, CPO and ROAS side by side.

The journeys are the database's current journeys set (what the journeys stage stored, so every model
sees exactly the journeys the stored attribution used). Costs are model-independent: the cost of each
channel's sessions over the dates the report of that journeys set covers (``window.report_range``), each
session counted once — the same cost the channel report holds. For the model whose credit is stored,
the channel credit and revenue here equal the channel report's sums over that range.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from . import journeys as jr
from .db import table_exists
from .errors import InputError
from .export import add_ratios
from .intervals import FEW_CONVERSIONS, difference_intervals, resample_counts
from .models import get_model
from .path_summary import non_converting_summary
from .progress import Progress, ensure, scaled
from .report import cost_by_channel
from .status import DONE, read_records, status
from .sums import CREDIT_SCALE, MONEY_SCALE, grouped_sum
from .window import Window, report_range

# How a difference from the baseline is written: (number format, decimals, factor, prefix, suffix); a
# share's difference is in percentage points, as on the cards above the chart.
DELTA_FORMATS = {
    "share": (".1f", 1, 100.0, "", " pts"),
    "ihc": (",.1f", 1, 1.0, "", ""),
    "ihc_revenue": (",.0f", 0, 1.0, "€", ""),
    "ROAS": (".2f", 2, 1.0, "", ""),
    "CPO": (",.2f", 2, 1.0, "€", ""),
}
VALUE_FORMATS = {"share": "{:.1%}", "ihc": "{:,.1f}", "ihc_revenue": "€{:,.0f}", "ROAS": "{:.2f}", "CPO": "€{:,.2f}"}
RATIO_METRICS = ("CPO", "ROAS")  # undefined for a channel without cost
LONG_COLUMNS = ["model", "channel_name", "ihc", "ihc_revenue", "cost", "CPO", "ROAS", "share"]
NOISE_COLUMNS = ["model", "channel_name", "credit_within_noise", "revenue_within_noise"]


@dataclass(frozen=True)
class ModelSpec:
    """A model and its parameters (only those that differ from the defaults need to be given)."""

    name: str
    params: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """'name' or 'name (key=value, …)' for the parameters that differ from the model's defaults."""
        model = get_model(self.name)
        resolved = model.resolve_params(self.params)
        changed = {k: v for k, v in resolved.items() if model.defaults.get(k) != v}
        if not changed:
            return self.name
        text = ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sorted(changed.items()))
        return f"{self.name} ({text})"


@dataclass
class Comparison:
    """The long table (one row per model and channel) and what it was computed on."""

    table: pd.DataFrame  # LONG_COLUMNS
    models: list[str]  # labels, in the order asked
    conversions: int  # journeys attributed by every model
    period: tuple[Optional[str], Optional[str]]  # session dates of the costs
    # Per model but the baseline (the first) and channel: is its difference from the baseline within
    # the noise of which conversions happened? (``intervals.difference_intervals``; credit decides
    # share and CPO, revenue decides ROAS.)
    noise: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=NOISE_COLUMNS))
    # the first and last conversion date of the journeys compared (the last run's window)
    conversion_dates: tuple[Optional[str], Optional[str]] = (None, None)
    # channel → how many of the conversions have a session of it: what every model's figure for the
    # channel rests on, whatever the model (``few``)
    touched: dict = field(default_factory=dict)

    def few(self) -> list[str]:
        """The channels in fewer than ``FEW_CONVERSIONS`` journeys: their figures move most with which
        conversions happened (the Report marks the same with †)."""
        return sorted(c for c, n in self.touched.items() if n < FEW_CONVERSIONS)

    def scope(self) -> str:
        """What the comparison covers, in words: its conversions and their dates, the costs' dates, and
        that the Report's filters do not narrow it (an analyst coming from a filtered Report read the
        page's figures as that view's: the page named no date at all)."""
        first, last = self.conversion_dates
        dates = f" of {first} – {last}" if first and last else ""
        costs = (
            f"costs of sessions dated {self.period[0] or 'first'} – {self.period[1] or 'last'}"
            if any(self.period)
            else "costs of all session dates"
        )
        return (
            f"{self.conversions:,} conversions{dates} with at least one session (the journeys of the last "
            f"run) · {costs}. The Report's date and channel filters do not apply here."
        )

    def within_noise(self, metric: str) -> pd.DataFrame:
        """Channels × 'Δ label' columns: True where that model's difference from the baseline in
        ``metric`` is within the noise."""
        column = "revenue_within_noise" if metric in ("ROAS", "ihc_revenue") else "credit_within_noise"
        pivot = self.noise.pivot(index="channel_name", columns="model", values=column)[self.models[1:]]
        pivot.columns = [f"Δ {c}" for c in pivot.columns]
        pivot.columns.name = None
        return pivot.reset_index()

    def wide(self, metric: str, baseline: Optional[str] = None) -> pd.DataFrame:
        """Channels × models for ``metric``, plus 'Δ label' columns: each model minus the baseline
        (the first model by default). NaN where the metric is undefined."""
        baseline = baseline or self.models[0]
        pivot = self.table.pivot(index="channel_name", columns="model", values=metric)[self.models]
        for label in self.models:
            if label != baseline:
                pivot[f"Δ {label}"] = pivot[label] - pivot[baseline]
        pivot.columns.name = None
        return pivot.reset_index()

    def unpaid(self) -> list[str]:
        """The channels without cost (the same for every model): CPO and ROAS are undefined for them."""
        cost = self.table.groupby("channel_name", sort=True)["cost"].max()
        return cost[cost <= 0].index.tolist()

    def shown(self, metric: str) -> pd.DataFrame:
        """``wide(metric)`` as the views show it: for CPO and ROAS without the channels that have no
        cost (their CPO would read €0.00, the cheapest, and their ROAS is undefined) — name them
        beside the view with ``unpaid()``, as the Report does. Each Δ is the difference of the two
        values as written (``as_written``): "24.7% → 25.1%" had "Δ +0.5 pts" (0.4460 pts, rounded),
        and a reader who subtracts found another number on the same row."""
        wide = self.wide(metric)
        if metric in RATIO_METRICS:
            wide = wide[~wide["channel_name"].isin(self.unpaid())].reset_index(drop=True)
        base = as_written(wide[self.models[0]], metric)
        for label in self.models[1:]:
            wide[f"Δ {label}"] = as_written(wide[label], metric) - base
        return wide

    def biggest_shifts(self, metric: str = "share", limit: int = 5) -> pd.DataFrame:
        """The channels whose ``metric`` differs most between any two models: ``channel_name, low,
        low_model, high, high_model, spread, beyond_noise`` (for CPO and ROAS, paid channels only).

        Channels where some model's difference from the baseline is coloured in the table
        (``delta_tone``: beyond the noise of which conversions happened, and not 0 at the table's
        precision) come first, then by spread: a card for a spread the noise explains ("FB & IG Ads
        6.4%–6.7%", grey in the table below it) came before channels the models really disagree on."""
        table = self.table
        if metric in RATIO_METRICS:
            table = table[~table["channel_name"].isin(self.unpaid())]
        pivot = table.pivot(index="channel_name", columns="model", values=metric)[self.models]
        values = pivot.to_numpy(dtype=np.float64)
        filled_lo = np.where(np.isnan(values), np.inf, values)
        filled_hi = np.where(np.isnan(values), -np.inf, values)
        lo_i, hi_i = filled_lo.argmin(axis=1), filled_hi.argmax(axis=1)
        rows = np.arange(len(pivot))
        out = pd.DataFrame(
            {
                "channel_name": pivot.index.to_numpy(),
                "low": values[rows, lo_i],
                "low_model": np.asarray(self.models, dtype=object)[lo_i],
                "high": values[rows, hi_i],
                "high_model": np.asarray(self.models, dtype=object)[hi_i],
            }
        )
        out["spread"] = out["high"] - out["low"]
        names = out["channel_name"]
        deltas = self.wide(metric).set_index("channel_name").reindex(names)
        deltas = deltas[[c for c in deltas.columns if c.startswith("Δ ")]].to_numpy(dtype=np.float64)
        within = self.within_noise(metric).set_index("channel_name").reindex(names).fillna(True).to_numpy(bool)
        _, digits, factor, _, _ = DELTA_FORMATS[metric]
        shown = np.isfinite(deltas) & (np.round(np.nan_to_num(deltas) * factor, digits) != 0)  # as delta_tone
        out["beyond_noise"] = (shown & ~within).any(axis=1)
        out = out[np.isfinite(out["spread"])]
        order = ["beyond_noise", "spread", "channel_name"]
        return out.sort_values(order, ascending=[False, False, True]).head(limit).reset_index(drop=True)


def compare_models(
    con: sqlite3.Connection, specs: Sequence[ModelSpec], progress: Optional[Progress] = None
) -> Comparison:
    """Attribute the current journeys with every model of ``specs`` (in memory) and aggregate per
    channel. Raises InputError when there are no current journeys or a model/parameter is unknown."""
    progress = ensure(progress)
    if not specs:
        raise InputError("choose at least one model to compare")
    labels = [s.label for s in specs]  # unknown models / parameters fail here, before any work
    if len(set(labels)) != len(labels):
        raise InputError("the same model with the same parameters is chosen twice")
    window, summary = _current_journeys(con)
    progress(0, 100, "compare: loading the journeys")
    journeys = jr.load_journeys(con, window)
    index = journeys.index
    if index.n_rows == 0:
        raise InputError("the current journeys have no sessions: nothing to compare")
    non_converting = None
    if any(get_model(s.name).needs_non_converting for s in specs):
        non_converting = non_converting_summary(con, window, scaled(progress, 5, 15, 100))

    codes, channels = index.channel_codes
    revenue = _journey_revenue(con, index.column("conversion_id")[index.start])[index.journey]
    period = report_range(window, summary)
    costs = cost_by_channel(con, *period)
    all_channels = np.array(sorted(set(channels.tolist()) | set(costs)), dtype=object)
    position = {c: i for i, c in enumerate(all_channels.tolist())}
    remap = np.array([position[c] for c in channels.tolist()], dtype=np.int64)
    row_channel = remap[codes]
    cost = np.array([costs.get(c, 0.0) for c in all_channels.tolist()], dtype=np.float64)

    parts, model_credit = [], []
    for i, spec in enumerate(specs):
        span = 80 // len(specs)
        step = scaled(progress, 20 + i * span, span, 100)
        step(0, 1, f"compare: attributing with {labels[i]}")
        credits = get_model(spec.name).credits(index, spec.params, non_converting=non_converting)
        ihc = np.asarray(credits.ihc, dtype=np.float64)
        model_credit.append(ihc)
        credit = grouped_sum(row_channel, ihc, len(all_channels), CREDIT_SCALE)
        rev = grouped_sum(row_channel, ihc * revenue, len(all_channels), MONEY_SCALE)
        part = pd.DataFrame(
            {
                "model": labels[i],
                "channel_name": all_channels,
                "ihc": credit,
                "ihc_revenue": rev,
                "cost": cost,
            }
        )
        parts.append(part)
        step(1, 1, f"compare: {labels[i]} done")
    table = add_ratios(pd.concat(parts, ignore_index=True))
    table["share"] = table["ihc"] / float(index.n_journeys)
    noise = _noise(index, row_channel, all_channels, labels, model_credit, revenue)
    # each (journey, channel) pair once: the conversions with at least one session of the channel
    pairs = np.unique(np.asarray(index.journey, dtype=np.int64) * len(all_channels) + row_channel)
    touched = np.bincount(pairs % len(all_channels), minlength=len(all_channels))
    progress(100, 100, "compare: done")
    dates = con.execute(
        "SELECT min(conv_date), max(conv_date) FROM conversions"
        " WHERE (?1 IS NULL OR conv_date >= ?1) AND (?2 IS NULL OR conv_date <= ?2)",
        (window.start, window.end),
    ).fetchone()
    return Comparison(
        table[LONG_COLUMNS],
        labels,
        int(index.n_journeys),
        period,
        noise,
        (dates[0], dates[1]) if dates else (None, None),
        dict(zip(all_channels.tolist(), touched.tolist())),
    )


def _noise(index, row_channel, channels, labels, model_credit, revenue) -> pd.DataFrame:
    """Whether each model's per-channel credit and revenue differ from the baseline's beyond the noise."""
    parts = []
    conversion = np.asarray(index.journey, dtype=np.int64)
    n = int(index.n_journeys)
    counts = resample_counts(n) if n else None  # one draw: every model is compared on the same resamples
    for label, credit in zip(labels[1:], model_credit[1:]):
        within = {}
        for name, a, b in (
            ("credit", model_credit[0], credit),
            ("revenue", model_credit[0] * revenue, credit * revenue),
        ):
            low, high = difference_intervals(conversion, row_channel, a, b, len(channels), n, counts=counts)
            within[f"{name}_within_noise"] = (low <= 0) & (high >= 0)
        parts.append(pd.DataFrame({"model": label, "channel_name": channels, **within}))
    return pd.concat(parts, ignore_index=True)[NOISE_COLUMNS] if parts else pd.DataFrame(columns=NOISE_COLUMNS)


def _current_journeys(con: sqlite3.Connection):
    """The window and summary of the stored journeys set, which must be up to date."""
    if not table_exists(con, "pipeline_journeys"):
        raise InputError("there are no journeys yet: run the pipeline first")
    rec = read_records(con).get("journeys")
    if rec is None:
        raise InputError("there are no journeys yet: run the pipeline first")
    state = status(con)["journeys"]
    if state.state != DONE:
        raise InputError(f"the stored journeys are stale ({state.reason}): run the pipeline again first")
    return Window(**rec.params), rec.summary


def _journey_revenue(con: sqlite3.Connection, conversion_ids: np.ndarray) -> np.ndarray:
    """Revenue of each conversion (NULL counts 0), aligned with ``conversion_ids``."""
    rows = con.execute("SELECT conv_id, coalesce(revenue, 0) FROM conversions").fetchall()
    if not rows:
        return np.zeros(len(conversion_ids))
    ids, values = zip(*rows)
    where = pd.Index(list(ids)).get_indexer(list(conversion_ids))
    out = np.asarray(values, dtype=np.float64)[np.clip(where, 0, None)]
    return np.where(where >= 0, out, 0.0)


def as_written(values, metric: str):
    """``values`` (a number or an array) rounded as the views write them ('25.1%', '€26.67'): the
    precision of ``VALUE_FORMATS``, which ``DELTA_FORMATS`` shares."""
    _, digits, factor, _, _ = DELTA_FORMATS[metric]
    return np.round(np.asarray(values, dtype=np.float64) * factor, digits) / factor


def format_value(value, metric: str) -> str:
    """A value of ``metric`` as the views write it ('3.2%', '€26.67', '4.40'); '—' where undefined."""
    if value is None or pd.isna(value):
        return "—"
    return VALUE_FORMATS[metric].format(float(value))


def shift_range(low, high, metric: str) -> str:
    """A channel's spread over the models: '3.2%–3.7% across models' (a range, not a change in time)."""
    return f"{format_value(low, metric)}–{format_value(high, metric)} across models"


def format_delta(value, metric: str) -> str:
    """A difference as the table writes it: '+1.2 pts', '−€3.40', '—' where undefined; never '-0.0'."""
    number, digits, factor, prefix, suffix = DELTA_FORMATS[metric]
    if value is None or pd.isna(value):
        return "—"
    shown = round(float(value) * factor, digits) + 0.0
    return f"{'−' if shown < 0 else '+'}{prefix}{format(abs(shown), number)}{suffix}"


def delta_tone(value, metric: str, within_noise: bool) -> str:
    """'' (undefined, or shows as 0), 'noise' (within the noise), else 'more' when the model gives the
    channel more — more credit, revenue or ROAS, or a *lower* CPO — and 'less' otherwise."""
    _, digits, factor, _, _ = DELTA_FORMATS[metric]
    if value is None or pd.isna(value) or round(float(value) * factor, digits) == 0:
        return ""
    if within_noise:
        return "noise"
    better = -1.0 if metric == "CPO" else 1.0
    return "more" if float(value) * better > 0 else "less"
