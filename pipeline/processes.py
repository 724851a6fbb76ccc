"""Whether a process of this host still runs: what the leftovers of a killed run are judged by (a
workspace's owner, an IHC API run in its ledger, an engine's output swap)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists on this host (another user's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
