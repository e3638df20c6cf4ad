"""Hooks other plugins give the mail write path, so mail never imports them.

A plugin that needs to watch or limit how much mail an account stores (the
quota plugin, ``jmap_quota``) registers a :class:`SizeHook` under its
capability when its module is imported.  A :class:`~jmap_mail.store.MailWriter`
uses the hooks whose capability the server registered (a server without the
quota plugin pays nothing):

- :meth:`SizeHook.admit` before a client or a delivery adds a message
  (Email/set create, Email/import, Email/copy, LMTP): it may refuse it with a
  SetError (``overQuota``).  Messages other programs put into a Maildir are
  never refused: they are already there.
- :meth:`SizeHook.stage` when the writer finishes, with the change in the
  total size of the account's Emails, to record it in the same batch (so
  usage is kept incrementally and atomically with the Emails).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jmapcore.errors import SetError
from jmapcore.storage import Snapshot, WriteBatch

if TYPE_CHECKING:
    from jmapcore.api import Core


@dataclass(frozen=True, slots=True)
class SizeHook:
    #: The capability of the plugin giving the hook: used only on servers
    #: that registered it.
    capability: str
    #: (snapshot, octets this batch already adds or frees, size of the new
    #: message) -> a SetError refusing it, or None.
    admit: Callable[[Snapshot, int, int], SetError | None]
    #: (snapshot, batch, change in octets) -> stages the new usage.
    stage: Callable[[Snapshot, WriteBatch, int], None]


_HOOKS: dict[str, SizeHook] = {}


def register_size_hook(hook: SizeHook) -> None:
    """Called by a plugin module at import (once per capability)."""
    _HOOKS[hook.capability] = hook


def size_hooks(core: Core | None) -> list[SizeHook]:
    """The hooks of the plugins ``core`` registered."""
    if core is None or not _HOOKS:
        return []
    return [hook for capability, hook in _HOOKS.items() if capability in core.registry.plugins]
