"""Benchmark of the offline IHC model: 1M journeys / 3M sessions, target ≥ 1M sessions/s.

Prints one table row per stage — time (best of --repeat), sessions/s, peak memory traced during the
stage (tracemalloc, measured in a separate run so it does not slow the timed ones) and the ratio to the
1M sessions/s target:

* ``model``: ``attribute_index`` on a prepared ``JourneyIndex`` (the IHC maths alone);
* ``model + index``: ``get_model("ihc").attribute(df)`` from a DataFrame with an ``ts`` column (adds
  the core's canonical sort and the result frame);
* ``api records``: ``attribute_records(df)`` (request-order ties, 4-decimal rounding, rows back in
  input order) — the ihc-local path without JSON.

Both id shapes are measured (``--ids``): ``real``, the real data's 64-hex conversion and session ids
(as the demo database writes them), and ``short`` ones (``C000000``, ``S0000000``).

Run: ``python bench/bench_ihc.py [--journeys 1000000] [--repeat 3] [--profile challenge] [--ids real short]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.demo import demo_ids  # noqa: E402
from pipeline.ihc import attribute_index, attribute_records, load_profile  # noqa: E402
from pipeline.journey_index import JourneyIndex  # noqa: E402
from pipeline.models import get_model  # noqa: E402

TARGET = 1_000_000  # sessions per second


def synthetic_journeys(n_journeys: int, seed: int = 7, short_ids: bool = False) -> pd.DataFrame:
    """Journeys of 1–5 sessions (mean 3), gaps from minutes to days, mixed channels and flags."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice([1, 2, 3, 4, 5], size=n_journeys, p=[0.2, 0.2, 0.2, 0.2, 0.2])
    n = int(lengths.sum())
    journey = np.repeat(np.arange(n_journeys), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    first = np.arange(n) == starts
    gaps = np.where(rng.random(n) < 0.5, rng.exponential(0.5, n), rng.exponential(24.0, n))
    gaps[first] = 0.0
    t0 = 1_693_526_400 + rng.integers(0, 30 * 86400, n_journeys)
    offset = np.cumsum(gaps * 3600)
    offset -= np.repeat(offset[np.cumsum(lengths) - lengths], lengths)
    ts = (t0[journey] + offset).astype(np.int64)
    channels = np.array(
        [
            "Direct Traffic",
            "Paid Search Brand",
            "Organic Traffic",
            "Newsletter & Email",
            "Performance Max",
            "FB & IG Ads",
            "Referral",
            "Affiliate & Partnerships",
        ]
    )
    return pd.DataFrame(
        {
            "conversion_id": pd.array(demo_ids("C", journey, short_ids), dtype="str"),
            "session_id": pd.array(demo_ids("S", np.arange(n), short_ids), dtype="str"),
            "timestamp": "",  # unused: ts is given
            "ts": ts,
            "channel_label": pd.array(channels[rng.integers(0, len(channels), n)], dtype="str"),
            "holder_engagement": (rng.random(n) < 0.8).astype(np.int8),
            "closer_engagement": (rng.random(n) < 0.7).astype(np.int8),
            "conversion": np.zeros(n, dtype=np.int8),
            "impression_interaction": np.zeros(n, dtype=np.int8),
        }
    )


def measure(fn, repeat: int) -> tuple[float, float]:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 2**20


def _bench_shape(shape: str, args, profile) -> None:
    t = time.perf_counter()
    df = synthetic_journeys(args.journeys, short_ids=shape == "short")
    built = time.perf_counter() - t
    index = JourneyIndex.from_frame(df)
    model = get_model("ihc")
    stages = [
        ("model", lambda: attribute_index(index, profile)),
        ("model + index", lambda: model.attribute(df, {"profile": args.profile})),
        ("api records", lambda: attribute_records(df, profile)),
    ]
    for name, fn in stages:
        seconds, peak = measure(fn, args.repeat)
        rate = len(df) / seconds
        print(f"{shape:<7}{name:<15}{seconds:>9.2f}{rate:>14,.0f}{peak:>10.0f}{rate / TARGET:>8.2f}x")
    print(
        f"{shape:<7}(input: {args.journeys:,} journeys, {len(df):,} sessions, built in {built:.1f} s; profile {profile.name})"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--journeys", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", default="challenge")
    ap.add_argument("--ids", nargs="+", choices=["real", "short"], default=["real", "short"], help="id shapes")
    args = ap.parse_args(argv)

    profile = load_profile(args.profile)
    print(f"\n{'ids':<7}{'stage':<15}{'time s':>9}{'sessions/s':>14}{'peak MiB':>10}{'vs 1M/s':>9}")
    for shape in args.ids:
        _bench_shape(shape, args, profile)
    print(
        f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine slows every figure)"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS (ru_maxrss, includes the input): {rss:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
