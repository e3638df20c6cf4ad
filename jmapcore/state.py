"""State strings: opaque to clients, (epoch, modseq[, offset]) to us.

A state names a point in an account's history.  The epoch changes when an
index is rebuilt, so a state from an older epoch is refused with
``cannotCalculateChanges`` instead of answering with a wrong delta.  The
offset is non-zero only for intermediate states inside one very large change.
"""

from __future__ import annotations

from typing import NamedTuple

from .storage import LogPosition


class State(NamedTuple):
    epoch: int
    modseq: int
    offset: int = 0

    def encode(self) -> str:
        if self.offset:
            return f"s{self.epoch:x}-{self.modseq:x}-{self.offset:x}"
        return f"s{self.epoch:x}-{self.modseq:x}"

    @property
    def position(self) -> LogPosition:
        return LogPosition(self.modseq, self.offset)

    @classmethod
    def decode(cls, text: str) -> State | None:
        """Parse a state string; ``None`` for anything we did not issue."""
        if not text.startswith("s") or len(text) > 60:
            return None
        parts = text[1:].split("-")
        if len(parts) not in (2, 3):
            return None
        try:
            numbers = [int(part, 16) for part in parts]
        except ValueError:
            return None
        if any(n < 0 for n in numbers) or any(p != f"{n:x}" for p, n in zip(parts, numbers, strict=True)):
            return None
        return cls(*numbers)


def type_state(epoch: int, modseq: int) -> str:
    return State(epoch, modseq).encode()
