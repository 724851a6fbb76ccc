"""Benchmark of the standard attribution models on synthetic journeys.

    python bench/bench_models.py                 # 1M journeys / ~3M sessions, 12 and 200 channels
    python bench/bench_models.py --journeys 100000 --no-channelattribution   # quick look
    python bench/bench_models.py --ids real                                    # one id shape

Ids come in both shapes (``--ids``, default both, each row tagged): ``real``, the real data's 64-hex
conversion and session ids (as the demo database writes them), and ``short`` ones (``C000000``).

Data: ``--journeys`` converting journeys (geometric lengths, mean 3 sessions) and as many
non-converting paths (``--non-converting``), over 12 channels (and a 200-channel variant for Markov
and Shapley). Converting paths favour some channels, so the data-driven models have signal to find.

Each figure is the best of ``--repeat`` runs (the machine is shared; timings are noisy). A model run
gets a fresh JourneyIndex over already-sorted rows, so its lazily computed arrays (positions, channel
codes, ...) are part of its time; building the index itself (sorting, done once per run by the core
for every model) is timed on its own line. Peak memory is what the run allocates beyond its inputs
(tracemalloc, in a separate untimed run).

Targets (issue 6): heuristics ≥ 5M sessions/s; exact Markov order 1 < 0.2 s at 12 channels and
< 0.5 s at 200 channels. "ratio" is figure / target for rates and target / time for times, so ≥ 1
means the target is met. ChannelAttribution (Monte-Carlo, PyPI) is timed on the same paths when it is
installed, and its per-channel conversions are compared with ours.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.demo import demo_ids  # noqa: E402
from pipeline.journey_index import JourneyIndex  # noqa: E402
from pipeline.models import get_model  # noqa: E402
from pipeline.models.channel_paths import channel_paths  # noqa: E402
from pipeline.models.markov import fit_markov  # noqa: E402

HEURISTICS = ["last-click", "first-click", "linear", "time-decay", "position-based"]
HEURISTIC_RATE = 5_000_000  # sessions/s
MARKOV_SECONDS = {12: 0.2, 200: 0.5}


def synthetic(n_journeys: int, n_channels: int, converting: bool, seed: int, short_ids: bool = False) -> pd.DataFrame:
    """Journeys in the model input format, rows already grouped by journey in time order."""
    rng = np.random.default_rng(seed)
    popularity = rng.dirichlet(np.full(n_channels, 2.0))
    lift = np.exp(rng.normal(0.0, 0.7, n_channels))  # converting paths over-sample high-lift channels
    probs = popularity * lift if converting else popularity
    probs = probs / probs.sum()
    length = np.minimum(rng.geometric(1 / 3, n_journeys), 60)
    n = int(length.sum())
    journey = np.repeat(np.arange(n_journeys, dtype=np.int64), length)
    codes = rng.choice(n_channels, size=n, p=probs)
    start = np.concatenate(([0], np.cumsum(length)[:-1]))
    gaps = rng.exponential(24 * 3600.0, n).astype(np.int64) + 1
    gaps[start] = rng.integers(0, 90 * 86400, n_journeys)
    ts = 1_700_000_000 + np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[start] - gaps[start], length)
    labels = np.array([f"channel_{i:03d}" for i in range(n_channels)], dtype=object)
    offset = 0 if converting else 10**9
    return pd.DataFrame(
        {
            "conversion_id": pd.array(demo_ids("C", journey + offset, short_ids), dtype="str"),
            "session_id": pd.array(demo_ids("S", np.arange(n, dtype=np.int64) + offset, short_ids), dtype="str"),
            "ts": ts.astype(np.int64),
            "channel_label": pd.array(labels[codes], dtype="str"),
            "holder_engagement": np.zeros(n, dtype=np.int8),
            "closer_engagement": np.zeros(n, dtype=np.int8),
            "conversion": np.zeros(n, dtype=np.int8),
            "impression_interaction": np.zeros(n, dtype=np.int8),
        }
    )


def fresh(index: JourneyIndex) -> JourneyIndex:
    """The same sorted rows without any lazily computed array."""
    return JourneyIndex(index.frame, index.ts, index.journey, index.start, index.length)


def best_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


class Table:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, what: str, seconds: float, sessions: int, mib: float, ratio="", note=""):
        self.rows.append(
            {
                "what": what,
                "time_s": f"{seconds:.3f}",
                "sessions/s": f"{sessions / seconds / 1e6:.2f}M" if seconds > 0 else "",
                "peak_MiB": f"{mib:.0f}" if mib == mib else "",
                "ratio_to_target": ratio,
                "note": note,
            }
        )
        r = self.rows[-1]
        print(
            f"  {what:<64} {r['time_s']:>8} s  {r['sessions/s']:>8}  {r['peak_MiB']:>6} MiB  {ratio:>6}  {note}",
            flush=True,
        )

    def print(self) -> None:
        frame = pd.DataFrame(self.rows)
        print()
        print(frame.to_string(index=False))


def channelattribution_markov(conv: JourneyIndex, null: JourneyIndex, labels_sep: str = " > "):
    """(seconds, per-channel conversions) of ChannelAttribution's order-1 Markov on the same paths,
    or None when the package is not importable."""
    try:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            import ChannelAttribution as ca
    except Exception as exc:  # noqa: BLE001 - any import failure means: not available here
        print(f"  ChannelAttribution not available ({type(exc).__name__}: {exc})")
        return None
    frames = []
    for index, column in ((conv, "conv"), (null, "null")):
        if index.n_rows == 0:
            continue
        path = index.frame.groupby(index.journey, sort=False)["channel_label"].agg(labels_sep.join)
        counted = path.value_counts().rename(column)
        frames.append(counted)
    data = pd.concat(frames, axis=1).fillna(0.0).rename_axis("path").reset_index()
    if "null" not in data:
        data["null"] = 0.0
    import contextlib
    import io

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = ca.markov_model(data, "path", "conv", var_null="null", order=1, verbose=False, flg_pro=False)
    seconds = time.perf_counter() - t0
    frame = result if isinstance(result, pd.DataFrame) else result["result"]
    return seconds, dict(zip(frame["channel_name"], frame["total_conversions"])), len(data)


def run_variant(n_channels: int, args, table: Table, heuristics: bool, shapley: bool, shape: str = "real") -> None:
    print(
        f"\n{args.journeys:,} converting journeys + {args.non_converting:,} non-converting paths, "
        f"{n_channels} channels, {shape} ids: generating ...",
        flush=True,
    )
    short = shape == "short"
    conv_frame = synthetic(args.journeys, n_channels, True, seed=n_channels, short_ids=short)
    null_frame = synthetic(args.non_converting, n_channels, False, seed=n_channels + 1, short_ids=short)
    t0 = time.perf_counter()
    conv = JourneyIndex.from_frame(conv_frame)
    build = time.perf_counter() - t0
    null = JourneyIndex.from_frame(null_frame)
    n_conv, n_all = conv.n_rows, conv.n_rows + null.n_rows
    tag = f"[{n_channels} ch, {shape} ids]"
    table.add(
        f"{tag} JourneyIndex.from_frame (core, once per run)", build, n_conv, float("nan"), note=f"{n_conv:,} sessions"
    )

    if heuristics:
        for name in HEURISTICS:
            model = get_model(name)
            params = model.resolve_params()
            call = lambda model=model, params=params: model.fn(fresh(conv), params, {})  # noqa: E731
            seconds = best_time(call, args.repeat)
            rate = n_conv / seconds
            table.add(
                f"{tag} {name}",
                seconds,
                n_conv,
                peak_mib(call),
                f"{rate / HEURISTIC_RATE:.2f}",
                "target ≥ 5M sessions/s",
            )

    markov = get_model("markov")
    params = markov.resolve_params()
    encoded = channel_paths(conv, null)  # caches channel codes on conv and null
    target = MARKOV_SECONDS.get(n_channels)
    fit = lambda: fit_markov(encoded, 1)  # noqa: E731
    seconds = best_time(fit, args.repeat)
    table.add(
        f"{tag} markov order 1: fit (transitions + removal)",
        seconds,
        n_all,
        peak_mib(fit),
        f"{target / seconds:.2f}" if target else "",
        f"target < {target} s" if target else "",
    )
    call = lambda: markov.fn(conv, params, {"non_converting": null})  # noqa: E731
    seconds = best_time(call, args.repeat)
    table.add(
        f"{tag} markov order 1: fit + per-session credit",
        seconds,
        n_all,
        peak_mib(call),
        note="channel labels already encoded",
    )
    call = lambda: markov.fn(fresh(conv), params, {"non_converting": fresh(null)})  # noqa: E731
    seconds = best_time(call, args.repeat)
    table.add(
        f"{tag} markov order 1: from labels (whole model)",
        seconds,
        n_all,
        peak_mib(call),
        note="includes factorizing channel_label strings",
    )
    for order in args.orders:
        fit = lambda order=order: fit_markov(encoded, order)  # noqa: E731
        seconds = best_time(fit, 1)
        table.add(f"{tag} markov order {order}: fit", seconds, n_all, peak_mib(fit), note="no target")
    if shapley:
        model = get_model("shapley")
        sp_params = model.resolve_params()
        call = lambda: model.fn(conv, sp_params, {"non_converting": null})  # noqa: E731
        seconds = best_time(call, max(1, args.repeat - 1))
        table.add(
            f"{tag} shapley (cap 4): fit + per-session credit",
            seconds,
            n_all,
            peak_mib(call),
            note="no target; labels encoded",
        )

    if args.channelattribution:
        ours = fit_markov(encoded, 1).table(conv.n_journeys)
        result = channelattribution_markov(conv, null)
        if result is not None:
            seconds, theirs, n_paths = result
            mine = ours["conversions"].to_numpy()
            other = np.array([theirs.get(k, 0.0) for k in ours["channel"]])
            rel = np.abs(other - mine) / np.where(mine > 0, mine, 1.0)
            big = ours["share"].to_numpy() >= 0.01
            tv = np.abs(other - mine).sum() / 2 / mine.sum()
            table.add(
                f"{tag} ChannelAttribution markov_model order 1",
                seconds,
                n_all,
                float("nan"),
                note=f"{n_paths:,} distinct paths; vs ours: max |Δ|/ours {rel.max():.1%} "
                f"(channels with share ≥ 1%: {rel[big].max():.1%}), "
                f"total variation {tv:.2%} (Monte-Carlo noise)",
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000, help="converting journeys")
    parser.add_argument(
        "--non-converting", type=int, default=None, help="non-converting paths (default: as many as --journeys)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; best is kept")
    parser.add_argument(
        "--orders",
        type=int,
        nargs="*",
        default=[2, 3, 4],
        help="higher Markov orders to time at 12 channels (no target)",
    )
    parser.add_argument(
        "--no-channelattribution",
        dest="channelattribution",
        action="store_false",
        help="skip the ChannelAttribution comparison",
    )
    parser.add_argument("--skip-200", action="store_true", help="skip the 200-channel variant")
    parser.add_argument("--ids", nargs="+", choices=["real", "short"], default=["real", "short"], help="id shapes")
    args = parser.parse_args()
    if args.non_converting is None:
        args.non_converting = args.journeys
    table = Table()
    orders = args.orders
    for shape in args.ids:
        args.orders = orders
        run_variant(12, args, table, heuristics=True, shapley=True, shape=shape)
        if not args.skip_200:
            args.orders = [o for o in orders if o <= 2]
            run_variant(200, args, table, heuristics=False, shapley=True, shape=shape)
    table.print()
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine)")


if __name__ == "__main__":
    main()
