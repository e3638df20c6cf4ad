"""An in-process JMAP client: requests go straight into :class:`Core.api`,
no sockets, so plugin tests run in microseconds and see exactly what an HTTP
client would receive."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from ..api import Core
from ..auth import Principal
from ..wire import CORE


class JmapError(AssertionError):
    """A method answered ``error`` where the test expected success."""


class Client:
    def __init__(self, core: Core, principal: Principal, using: Iterable[str] = ()) -> None:
        self.core = core
        self.principal = principal
        self.using = [CORE, *[uri for uri in using if uri != CORE]]

    @property
    def account_id(self) -> str:
        return self.principal.account_ids[0]

    def raw(self, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
        """POST raw bytes; return (status, decoded JSON body)."""
        result = self.core.api(self.principal, body, content_type)
        return result.status, msgspec.json.decode(result.body)

    def request(
        self,
        calls: Sequence[Sequence[Any]],
        *,
        using: Iterable[str] | None = None,
        created_ids: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send ``[[name, args, callId], ...]``; return the Response object."""
        body: dict[str, Any] = {"using": list(using) if using is not None else self.using, "methodCalls": calls}
        if created_ids is not None:
            body["createdIds"] = created_ids
        status, response = self.raw(msgspec.json.encode(body))
        if status != 200:
            raise JmapError(f"HTTP {status}: {response}")
        return response

    def call(self, name: str, arguments: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """One method call; returns its response arguments, raising on ``error``."""
        responses = self.request([[name, arguments, "c0"]], **kwargs)["methodResponses"]
        response_name, args, _ = responses[0]
        if response_name == "error":
            raise JmapError(f"{name} failed: {args}")
        return args

    def error(self, name: str, arguments: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """One method call expected to fail; returns the error object."""
        responses = self.request([[name, arguments, "c0"]], **kwargs)["methodResponses"]
        response_name, args, _ = responses[0]
        if response_name != "error":
            raise JmapError(f"{name} did not fail: {args}")
        return args
