"""The size of a demo database (plain Python: the command line reads its defaults for ``--help``
without loading pandas or numpy, which ``pipeline.demo`` needs to generate the data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoSize:
    sessions: int = 450_000
    conversions: int = 2_000
    days: int = 10
    seed: int = 42
    short_ids: bool = False  # S0000000 / U0000000 / C000000 instead of the real data's hex ids
