"""A progress bar for long CLI jobs, on stderr so stdout keeps only the result.

On a terminal: one line redrawn in place (``\\r``) at most ten times a
second, with count, percentage, rate and time left.  Anywhere else (a log
file, a pipe, a test): a plain line at every tenth of the way, so a log
shows progress without thousands of lines.
"""

from __future__ import annotations

import time
from typing import TextIO

_WIDTH = 28


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Call :meth:`update` with the number done; :meth:`finish` once at the end."""

    def __init__(self, total: int, stream: TextIO, *, enabled: bool = True, unit: str = "messages") -> None:
        self.total = max(total, 0)
        self.stream = stream
        self.enabled = enabled
        self.unit = unit
        self.tty = enabled and stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._next_tenth = 1

    def line(self, done: int) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = done / elapsed
        share = done / self.total if self.total else 1.0
        left = (self.total - done) / rate if rate > 0 else 0.0
        filled = int(_WIDTH * min(share, 1.0))
        bar = "#" * filled + "." * (_WIDTH - filled)
        return (
            f"[{bar}] {done:,}/{self.total:,} {self.unit} {share:4.0%}  "
            f"{rate:,.0f}/s  ETA {_clock(left)}"
        )

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw >= 0.1:
                self._last_draw = now
                self.stream.write("\r" + self.line(done))
                self.stream.flush()
            return
        if self.total and done * 10 >= self._next_tenth * self.total and self._next_tenth < 10:
            self._next_tenth = done * 10 // self.total + 1
            self.stream.write(self.line(done) + "\n")
            self.stream.flush()

    def finish(self, done: int) -> None:
        if not self.enabled:
            return
        self.stream.write(("\r" if self.tty else "") + self.line(done) + "\n")
        self.stream.flush()
