"""Progress reporting shared by every stage.

A progress callback is any callable ``(done, total, message)``; stages call it as work advances.
The CLI prints it on stderr, the dashboard moves an ``st.progress`` bar with it.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional

Progress = Callable[[int, int, str], None]


def noop(done: int, total: int, message: str) -> None:  # noqa: ARG001 - the callback signature
    return None


def ensure(progress: Optional[Progress]) -> Progress:
    return progress if progress is not None else noop


def scaled(progress: Optional[Progress], offset: int, span: int, total: int) -> Progress:
    """Map a sub-task's own (done, total) onto the slice [offset, offset+span] of a larger total."""
    outer = ensure(progress)

    def inner(done: int, sub_total: int, message: str) -> None:
        frac = done / sub_total if sub_total else 1.0
        outer(offset + int(round(frac * span)), total, message)

    return inner


def forward_only(progress: Optional[Progress]) -> Progress:
    """The same callback, except that the amount done never decreases (the message still changes):
    a bar that jumps back looks like lost work."""
    outer = ensure(progress)
    furthest = [0.0]

    def inner(done: int, total: int, message: str) -> None:
        frac = done / total if total else 1.0
        if frac < furthest[0]:
            done = int(round(furthest[0] * total))
        furthest[0] = max(furthest[0], frac)
        outer(done, total, message)

    return inner


class StderrProgress:
    """Prints one updating line per stage on stderr, at most ``rate`` times per second."""

    def __init__(self, stream=None, rate: float = 5.0):
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval = 1.0 / rate
        self._last = 0.0
        self._last_message: Optional[str] = None
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        finished = total and done >= total
        if not finished and message == self._last_message and now - self._last < self.min_interval:
            return
        self._last, self._last_message = now, message
        pct = f"{100 * done / total:5.1f}%" if total else "     "
        line = f"[{pct}] {message}"
        if self._tty:
            self.stream.write("\r\x1b[2K" + line + ("\n" if finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
