"""Blob/get (RFC 9404 §4.2): a range of blobs as text or base64, and digests.

Only the selected range is read from a stored blob; ``size`` is always the
whole blob's.  Blobs carry no state (their content never changes under one
id), so the response has no ``state``, as in the RFC's examples.
"""

from __future__ import annotations

import base64
from typing import Any

from jmapcore.context import CallContext
from jmapcore.errors import MethodError
from jmapcore.standard.args import Args
from jmapcore.standard.get import request_too_large
from jmapcore.wire import Id, IdOrRef, UnsignedInt

from .constants import BLOB, DIGESTS
from .upload import blob_size_and_reader

DATA_PROPERTIES = ("data", "data:asText", "data:asBase64")
#: [blob-4.2-getProps]
PROPERTIES = frozenset({*DATA_PROPERTIES, "size", "id", *(f"digest:{name}" for name in DIGESTS)})
DEFAULT_PROPERTIES = ("data", "size")


class BlobGetArgs(Args, kw_only=True):
    """[blob-4.2-getArgs] the standard /get arguments, plus a range."""

    accountId: Id
    ids: list[IdOrRef] | None = None
    properties: list[str] | None = None
    offset: UnsignedInt | None = None
    length: UnsignedInt | None = None


def _properties(requested: list[str] | None) -> list[str]:
    properties = list(DEFAULT_PROPERTIES) if requested is None else list(dict.fromkeys(requested))
    unknown = [name for name in properties if name not in PROPERTIES]
    if unknown:
        raise MethodError.invalid_arguments(
            f"Unknown properties {unknown}: Blob/get knows {sorted(PROPERTIES)}."
        )
    return [name for name in properties if name != "id"]


def render(properties: list[str], data: bytes | None, size: int, truncated: bool) -> dict[str, Any]:
    """[blob-4.2-results] [blob-4.2-encodingProblem] [blob-4.2-truncated]
    one Blob object: ``data`` holds exactly the selected octets (and every
    digest is of those octets)."""
    result: dict[str, Any] = {}
    text: str | None = None
    problem = False
    if data is not None and ("data" in properties or "data:asText" in properties):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:  # also a multi-octet sequence cut by the range
            problem = True
    for name in properties:
        if name == "size":
            result["size"] = size
        elif name == "data:asText":
            result[name] = text
        elif name == "data:asBase64" or (name == "data" and problem):
            result["data:asBase64"] = base64.b64encode(data or b"").decode("ascii")
        elif name == "data":
            result["data:asText"] = text
        elif name.startswith("digest:"):
            digest = DIGESTS[name[len("digest:") :]](data or b"").digest()
            result[name] = base64.b64encode(digest).decode("ascii")
    if problem:
        result["isEncodingProblem"] = True
    if truncated:
        result["isTruncated"] = True
    return result


def blob_get(ctx: CallContext, args: BlobGetArgs) -> dict[str, Any]:
    """[blob-4.2-getArgs] [blob-4.2-getProps] [blob-4.2-results]"""
    ctx.account(args.accountId, BLOB)
    properties = _properties(args.properties)
    if args.ids is None:  # every blob of the account: not a sensible request
        raise request_too_large(ctx.limits.maxObjectsInGet, "blobs (ids: null is not supported)")
    if len(args.ids) > ctx.limits.maxObjectsInGet:
        raise request_too_large(ctx.limits.maxObjectsInGet, "ids")
    offset = args.offset or 0
    length = args.length
    wants_data = any(name in DATA_PROPERTIES or name.startswith("digest:") for name in properties)
    found: list[dict[str, Any]] = []
    not_found: list[str] = []
    with ctx.snapshot(args.accountId) as snap:
        for asked in dict.fromkeys(args.ids):
            blob_id = ctx.resolve_id(asked)
            located = blob_size_and_reader(ctx, snap, blob_id) if blob_id else None
            if located is None:
                not_found.append(asked)
                continue
            size, read = located
            # [blob-4.2-truncated] with no length, only an offset past the end truncates.
            truncated = offset > size or (length is not None and offset + length > size)
            data = None
            if wants_data:
                start = min(offset, size)
                end = size if length is None else min(size, offset + length)
                data = read(start, end - start) if end > start else b""
            found.append({"id": blob_id, **render(properties, data, size, truncated)})
    return {"accountId": args.accountId, "list": found, "notFound": not_found}
