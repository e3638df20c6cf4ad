"""What a method handler sees: the caller, the request so far, and storage.

A :class:`CallContext` is made for each method call.  It checks account
access the same way for every method ([core-5-accountChecks]), resolves
``#creationId`` references through the request-wide creation map
([core-5.3-creationMap]) and lets a handler append implicit responses
(for example the Foo/set that follows Foo/copy with onSuccessDestroyOriginal).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .auth import Principal
from .errors import MethodError
from .storage import AccountInfo, CommitResult, Snapshot, UnknownAccount, WriteBatch

if TYPE_CHECKING:
    from .api import Core


@dataclass(slots=True)
class RequestState:
    """State shared by all calls of one request."""

    using: frozenset[str]
    created_ids: dict[str, str] = field(default_factory=dict)
    #: [name, arguments, callId] triples, in order.
    responses: list[list[Any]] = field(default_factory=list)


_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_id(prefix: str) -> str:
    """A fresh record id: a letter, then 16 random base-36 characters
    (about 82 bits), never all digits nor starting with a dash
    ([core-1.2-idAllocation])."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


class CallContext:
    """The view one method call has of the server."""

    def __init__(self, core: Core, principal: Principal, request: RequestState, call_id: str) -> None:
        self.core = core
        self.principal = principal
        self.request = request
        self.call_id = call_id
        self.backend = core.backend
        self.registry = core.registry
        self.limits = core.limits

    # -- accounts ---------------------------------------------------------

    def account(self, account_id: str, capability: str, *, write: bool = False) -> AccountInfo:
        """Check that the caller may use ``account_id`` for ``capability``."""
        if account_id not in self.principal.account_ids:
            raise MethodError.account_not_found()
        info = self.core.account_info(account_id)
        if info is None:
            raise MethodError.account_not_found()
        if self.core.account_capability(info, capability) is None:
            raise MethodError(
                "accountNotSupportedByMethod",
                f"The account does not support {capability}.",
            )
        if write and info.is_read_only:
            raise MethodError("accountReadOnly", "The account is read-only.")
        return info

    @contextmanager
    def snapshot(self, account_id: str) -> Iterator[Snapshot]:
        try:
            with self.backend.snapshot(account_id) as snap:
                yield snap
        except UnknownAccount:
            raise MethodError.account_not_found() from None

    def commit(self, batch: WriteBatch) -> CommitResult:
        return self.backend.commit(batch)

    # -- creation ids -----------------------------------------------------

    def resolve_id(self, value: str) -> str | None:
        """``#creationId`` -> the id it created (None if unknown); other ids as is."""
        if value.startswith("#"):
            return self.request.created_ids.get(value[1:])
        return value

    def remember_created(self, creation_id: str, record_id: str) -> None:
        self.request.created_ids[creation_id] = record_id

    # -- responses ---------------------------------------------------------

    def emit(self, name: str, arguments: Any) -> None:
        """Append a response now (implicit calls), with this call's id."""
        self.request.responses.append([name, arguments, self.call_id])
