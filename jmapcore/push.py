"""Push, transport-neutral: what changed for a principal, as StateChange objects.

Every push channel (EventSource, WebSocket, PushSubscription) asks the same
two questions, answered here once:

* which type states would ``Foo/get`` return now, for every account the
  principal can use ([core-7.1-stateChange]);
* which of them moved since a point the client saw, which it names with a
  *push position*: an opaque string encoding each account's (epoch, modseq),
  used as the EventSource event id ([core-7.3-eventId]) and the WebSocket
  ``pushState`` ([ws-4.3.5.1-stateChange]).

A type moved since a position when its last-touching modseq is past the
position's modseq, or when the account's epoch changed (an index rebuild:
every type then counts as moved, so the client resyncs).  Waiting for
changes is the backend's ``wait_for_change``; channels share one waiter per
process (see ``jmapserver.pushhub``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from .auth import Principal
from .state import type_state
from .storage import UnknownAccount

if TYPE_CHECKING:
    from .api import Core

#: A position: account id -> (epoch, modseq).
Position = dict[str, tuple[int, int]]

_position_encoder = msgspec.msgpack.Encoder()
_position_decoder = msgspec.msgpack.Decoder(dict[str, tuple[int, int]])
_MAX_POSITION_TEXT = 8192


def encode_position(position: Mapping[str, tuple[int, int]]) -> str:
    """An opaque, URL-safe string for a position."""
    raw = _position_encoder.encode(dict(sorted(position.items())))
    return "p" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_position(text: str | None) -> Position | None:
    """The position a client sent back, or None for anything we did not issue."""
    if not text or not text.startswith("p") or len(text) > _MAX_POSITION_TEXT:
        return None
    body = text[1:]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return _position_decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None


@dataclass(frozen=True, slots=True)
class AccountStates:
    """One account's push view at one moment."""

    epoch: int
    modseq: int
    #: type name -> the modseq that last touched it.
    type_modseqs: Mapping[str, int]

    def states(self, types: Iterable[str]) -> dict[str, str]:
        return {name: type_state(self.epoch, self.type_modseqs[name]) for name in types}

    def moved_since(self, seen: tuple[int, int] | None) -> list[str]:
        """Types whose state moved after ``seen`` (all of them after a rebuild)."""
        if seen is None or seen[0] != self.epoch:
            return list(self.type_modseqs)
        return [name for name, modseq in self.type_modseqs.items() if modseq > seen[1]]


def push_types(core: Core, account_id: str) -> list[str]:
    """The push type names of the capabilities this account has."""
    info = core.account_info(account_id)
    if info is None:
        return []
    names: list[str] = []
    for uri, plugin in core.registry.plugins.items():
        if core.account_capability(info, uri) is None:
            continue
        declared = plugin.push_types
        names.extend(declared if declared is not None else [t.name for t in plugin.types])
    return names


def read_states(core: Core, account_ids: Iterable[str]) -> dict[str, AccountStates]:
    """The push view of each account (accounts gone meanwhile are left out)."""
    found: dict[str, AccountStates] = {}
    for account_id in account_ids:
        names = push_types(core, account_id)
        try:
            with core.backend.snapshot(account_id) as snap:
                found[account_id] = AccountStates(
                    snap.epoch(), snap.modseq(), {name: snap.type_modseq(name) for name in names}
                )
        except UnknownAccount:
            continue
    return found


class PushFeed:
    """One listener's view: the principal, the types it wants, and the
    position it last reached.

    ``poll()`` returns the StateChange to send (or None when nothing it
    listens to moved) and advances the position.  Not thread-safe: one feed
    per connection or subscription.
    """

    def __init__(
        self,
        core: Core,
        principal: Principal,
        types: Iterable[str] | None = None,
        since: str | None = None,
    ) -> None:
        self.core = core
        self.principal = principal
        self.types: frozenset[str] | None = None if types is None else frozenset(types)
        resumed = decode_position(since)
        #: The position a client resuming from ``since`` had reached.
        self.resumed = resumed is not None
        self.position: Position = (
            resumed if resumed is not None else self._current_position()
        )

    @property
    def account_ids(self) -> tuple[str, ...]:
        return self.principal.account_ids

    def _current_position(self) -> Position:
        return {a: (s.epoch, s.modseq) for a, s in read_states(self.core, self.account_ids).items()}

    def modseqs(self) -> dict[str, int]:
        """Each account's modseq at the position (what to wait past)."""
        return {a: self.position.get(a, (0, 0))[1] for a in self.account_ids}

    def push_state(self) -> str:
        """The opaque string naming the position reached."""
        return encode_position(self.position)

    def poll(self) -> dict[str, Any] | None:
        """The StateChange since the last poll ([core-7.1-stateChange]),
        only for types this feed listens to; None if none of them moved."""
        changed: dict[str, dict[str, str]] = {}
        current = read_states(self.core, self.account_ids)
        for account_id, states in current.items():
            moved = states.moved_since(self.position.get(account_id))
            if self.types is not None:
                moved = [name for name in moved if name in self.types]
            if moved:
                changed[account_id] = states.states(moved)
        self.position = {a: (s.epoch, s.modseq) for a, s in current.items()}
        if not changed:
            return None
        return {"@type": "StateChange", "changed": changed}
