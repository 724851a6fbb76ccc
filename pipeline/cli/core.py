"""Core commands: demo-db, validate, journeys, attribute, report, run, status, export."""

from __future__ import annotations


def register(sub) -> None:
    pass
