"""The three error tiers of RFC 8620, one type each.

* :class:`ProblemError`: request-level (RFC 7807 problem details with an
  HTTP status), §3.6.1.  Raised; the whole request fails.
* :class:`MethodError`: method-level, §3.6.2.  Raised by a handler; becomes
  an ``["error", {...}, callId]`` response and the batch goes on.
* :class:`SetError`: per-record, §5.3.  A value placed in
  ``notCreated``/``notUpdated``/``notDestroyed``; never raised.

The ``urn:ietf:params:jmap:error:`` prefix appears only in problem details
([core-9.5-errorPrefix]).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PROBLEM_PREFIX = "urn:ietf:params:jmap:error:"


class ProblemError(Exception):
    """A request-level error: the HTTP response is a problem-details object."""

    def __init__(self, kind: str, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.kind = kind
        self.status = status
        self.detail = detail
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_PREFIX + self.kind if ":" not in self.kind else self.kind,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body

    @classmethod
    def not_json(cls, detail: str) -> ProblemError:
        return cls("notJSON", 400, detail)

    @classmethod
    def not_request(cls, detail: str) -> ProblemError:
        return cls("notRequest", 400, detail)

    @classmethod
    def unknown_capability(cls, uri: str) -> ProblemError:
        return cls("unknownCapability", 400, f"The capability {uri!r} is not supported.")

    @classmethod
    def limit(cls, limit: str, detail: str, status: int = 400) -> ProblemError:
        return cls("limit", status, detail, limit=limit)


class MethodError(Exception):
    """A method-level error; the handler stops, the batch goes on."""

    def __init__(self, kind: str, description: str | None = None, **extra: Any) -> None:
        super().__init__(description or kind)
        self.kind = kind
        self.description = description
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.kind}
        if self.description is not None:
            body["description"] = self.description
        body.update(self.extra)
        return body

    @classmethod
    def invalid_arguments(cls, description: str) -> MethodError:
        return cls("invalidArguments", description)

    @classmethod
    def account_not_found(cls) -> MethodError:
        return cls("accountNotFound", "No account with that id is available to you.")


class SetError(dict[str, Any]):
    """A per-record failure in a /set or /copy response."""

    def __init__(self, kind: str, description: str | None = None, **extra: Any) -> None:
        super().__init__(type=kind, description=description)
        self.update(extra)

    @property
    def kind(self) -> str:
        return self["type"]

    @classmethod
    def invalid_properties(
        cls, properties: Iterable[str], description: str | None = None
    ) -> SetError:
        names = sorted(set(properties))
        return cls(
            "invalidProperties",
            description or f"Invalid value for: {', '.join(names)}.",
            properties=names,
        )

    @classmethod
    def not_found(cls) -> SetError:
        return cls("notFound", "No record with that id.")
