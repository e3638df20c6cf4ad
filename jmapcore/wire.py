"""Wire types of RFC 8620 §3 and the JSON codec, built once.

The request is decoded in one pass; each invocation's arguments stay raw
(``msgspec.Raw``) until the method name has chosen their argument type.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Raw, Struct, UnsetType

#: [core-1.2-idSyntax] 1..255 octets of the base64url alphabet.
Id = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=255)]
#: An id, or ``#creationId`` naming a record created earlier in the request.
IdOrRef = Annotated[str, Meta(pattern=r"^#?[A-Za-z0-9_-]+$", min_length=1, max_length=256)]
#: [core-1.3-int]
Int = Annotated[int, Meta(ge=-(2**53) + 1, le=2**53 - 1)]
UnsignedInt = Annotated[int, Meta(ge=0, le=2**53 - 1)]

CORE = "urn:ietf:params:jmap:core"


class Request(Struct):
    """[core-3.3-requestProps] Unknown request properties are ignored."""

    using: list[str]
    methodCalls: list[tuple[str, Raw, str]]
    createdIds: dict[Id, Id] | UnsetType = UNSET


class ResultReference(Struct, forbid_unknown_fields=True):
    """[core-3.7-hashArg]"""

    resultOf: str
    name: str
    path: str


encoder = msgspec.json.Encoder()
request_decoder = msgspec.json.Decoder(Request)
any_decoder = msgspec.json.Decoder()
reference_decoder = msgspec.json.Decoder(ResultReference)


def encode(value: Any) -> bytes:
    """JSON bytes; a string holding lone surrogates (undecodable octets of a
    message that slipped through) becomes U+FFFD rather than failing the
    whole response."""
    try:
        return encoder.encode(value)
    except UnicodeEncodeError:
        return encoder.encode(_scrub(msgspec.to_builtins(value)))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def to_builtins(value: Any) -> Any:
    """Plain JSON-shaped Python values (dicts, lists...) from Structs."""
    return msgspec.to_builtins(value)


__all__ = [
    "CORE",
    "UNSET",
    "Id",
    "IdOrRef",
    "Int",
    "Raw",
    "Request",
    "ResultReference",
    "UnsetType",
    "UnsignedInt",
    "encode",
    "to_builtins",
]
