"""The built-in IHC profiles: one JSON file each in this folder (see docs/ihc.md for the format)."""

from pathlib import Path

PROFILE_DIR = Path(__file__).resolve().parent


def builtin_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))
