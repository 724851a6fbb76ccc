"""Benchmark of the IHC calibration: the fit on the 2,945 real API vectors, target ≤ 30 s.

Prints one table row per step — wall time (best of --repeat), CPU time of that run, vectors/s, peak
memory traced during the step (tracemalloc, in a separate run) and the ratio to the 30 s target:

* ``load pairs``: reading ``ihc_api_vectors.jsonl`` into pairs;
* ``fit``: ``calibrate.fit_profile`` on every pair (the issue's target);
* ``fit, no channel weights``: the same without trying channel weights;
* ``5-fold fidelity``: ``calibrate.cross_validate`` (five fits plus the held-out replays and the
  default profile's replay) — what ``ihc-calibrate`` adds after the fit.

The machine is shared: wall times are noisy, CPU times less so. Run:
``python bench/bench_calibrate.py [--vectors FILE] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.ihc import calibrate  # noqa: E402
from pipeline.ihc.fidelity import DEFAULT_VECTORS  # noqa: E402

TARGET_SECONDS = 30.0


def measure(fn, repeat: int) -> tuple[float, float, float]:
    best, cpu = float("inf"), 0.0
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall = time.perf_counter() - t
        if wall < best:
            best, cpu = wall, time.process_time() - c
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, cpu, peak / 2**20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vectors", default=str(DEFAULT_VECTORS))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    if not Path(args.vectors).is_file():
        print(f"{args.vectors} not found: the shared reference data must sit beside the checkout")
        return 2
    pairs = calibrate.pairs_from_vectors(args.vectors)
    n = pairs["vector"].nunique()
    print(f"input: {n:,} vectors, {len(pairs):,} sessions ({args.vectors})")
    steps = [
        ("load pairs", lambda: calibrate.pairs_from_vectors(args.vectors)),
        ("fit", lambda: calibrate.fit_profile(pairs)),
        ("fit, no channel weights", lambda: calibrate.fit_profile(pairs, channel_weights=False)),
        ("5-fold fidelity", lambda: calibrate.cross_validate(pairs, folds=5)),
    ]
    print(f"\n{'step':<25}{'wall s':>9}{'cpu s':>9}{'vectors/s':>12}{'peak MiB':>10}{'vs 30 s':>9}")
    for name, fn in steps:
        wall, cpu, peak = measure(fn, args.repeat)
        print(f"{name:<25}{wall:>9.3f}{cpu:>9.3f}{n / wall:>12,.0f}{peak:>10.1f}{TARGET_SECONDS / wall:>8.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
