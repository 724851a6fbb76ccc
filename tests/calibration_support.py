"""Helpers of the calibration tests: a random IHC profile within plausible ranges."""

from __future__ import annotations

import numpy as np


def random_profile(seed: int) -> dict:
    """A profile document drawn within plausible ranges: phase weights 0.2–0.5 (normalised), cut 24–96 h,
    a rising initializer curve (zero up to 0.5–3 h, 0.6–1.2 at the cut, 6–12 random knots), a falling
    closer curve (1 at 0, a drop of 0–0.3 within the first half hour, 0 somewhere 24–96 h, 6–12 knots),
    holder penalty with ψ(1) in 0.5–0.9 and interaction 0–0.5."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.2, 0.5, 3)
    weights /= weights.sum()
    cut = float(rng.uniform(24, 96))
    zero_until = float(rng.uniform(0.5, 3.0))
    knots = np.sort(rng.uniform(zero_until, cut, rng.integers(6, 13)))
    rises = rng.uniform(0.2, 1.0, len(knots))
    top = rng.uniform(0.6, 1.2)
    values = np.cumsum(rises) / rises.sum() * top
    initializer = [[0.0, 0.0], [zero_until, 0.0], *([float(x), float(y)] for x, y in zip(knots, values))]
    end = float(rng.uniform(24, 96))
    drop = float(rng.uniform(0.0, 0.3))
    step_at = float(rng.uniform(0.05, 0.5))
    cknots = np.sort(rng.uniform(step_at + 0.01, end, rng.integers(6, 13)))
    falls = rng.uniform(0.2, 1.0, len(cknots))
    start = 1.0 - drop
    cvalues = start - np.cumsum(falls) / falls.sum() * start
    closer = [
        [0.0, 1.0],
        [step_at, 1.0],
        [step_at + 0.0001, start],
        *([float(x), float(max(y, 0.0))] for x, y in zip(cknots, cvalues)),
    ]
    psi_one = rng.uniform(0.5, 0.9)
    p2 = rng.uniform(-0.3, 0.1)
    p3 = rng.uniform(0.0, 0.4)
    p1 = psi_one - p2 - p3
    return {
        "name": f"drawn-{seed}",
        "phase_weights": dict(zip(("initializer", "holder", "closer"), map(float, weights))),
        "cut_hours": round(cut, 2),
        "initializer_curve": initializer,
        "closer_curve": closer,
        "holder": {"penalty": [float(p1), float(p2), float(p3)], "interaction": float(rng.uniform(0, 0.5))},
    }
