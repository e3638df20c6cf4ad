"""Blob/upload (RFC 9404 §4.1): blobs made inside a request.

Each UploadObject's DataSourceObjects are read in order and concatenated:
text, base64, or a range of a blob the caller can see (one stored, one
uploaded earlier in the request as ``#creationId``, or one MIME part of a
message).  Whatever is wrong with a source fails that creation alone, with a
SetError saying what; the server never guesses ([blob-4.1-dataSource]).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from jmapcore.context import CallContext
from jmapcore.errors import SetError
from jmapcore.standard.args import Args
from jmapcore.standard.get import request_too_large
from jmapcore.storage import Snapshot
from jmapcore.wire import Id

from .constants import BLOB, MAX_DATA_SOURCES, MAX_SIZE_BLOB_SET

_TEXT, _BASE64 = "data:asText", "data:asBase64"
_RANGE_KEYS = frozenset({"blobId", "offset", "length"})


class BlobUploadArgs(Args, kw_only=True):
    """[blob-4.1-upload] only creates: there is no state to check."""

    accountId: Id
    create: dict[Id, Any]


class SourceError(Exception):
    def __init__(self, error: SetError) -> None:
        super().__init__(error.get("description"))
        self.error = error


def _invalid(description: str, *properties: str) -> SourceError:
    return SourceError(SetError.invalid_properties(properties or ("data",), description))


def _unsigned(source: dict[str, Any], name: str, index: int) -> int | None:
    value = source.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**53 - 1:
        raise _invalid(f"data[{index}].{name} must be an UnsignedInt or null.", f"data/{index}/{name}")
    return value


class OutOfRange(Exception):
    """A range that does not lie inside its blob (``args[0]``: the blob's size)."""


def blob_size_and_reader(ctx: CallContext, snap: Snapshot, blob_id: str) -> tuple[int, Any] | None:
    """(size, read(offset, length)) of a blob the caller may see, or None if
    it is unknown or invisible; stored blobs are read by range, MIME parts
    of messages whole and sliced."""
    try:
        info = snap.blob_info(blob_id)
    except ValueError:  # not an id this backend could have made
        return None
    if info is not None:
        if not ctx.core.blob_visible(ctx.principal, info):
            return None
        return info.size, lambda offset, length: (
            snap.read_blob(blob_id, offset, length) or b"" if length != 0 else b""
        )
    try:
        whole = ctx.core.read_blob(ctx.principal, snap, blob_id)
    except ValueError:
        return None
    if whole is None:
        return None
    return len(whole), lambda offset, length: whole[offset : len(whole) if length is None else offset + length]


def read_range(ctx: CallContext, snap: Snapshot, blob_id: str, offset: int, length: int | None) -> bytes | None:
    """Octets ``[offset, offset + length)`` of a blob the caller may see;
    None if it is unknown or invisible.  Raises :class:`OutOfRange` when the
    range does not lie inside the blob."""
    found = blob_size_and_reader(ctx, snap, blob_id)
    if found is None:
        return None
    size, read = found
    if offset > size or (length is not None and offset + length > size):
        raise OutOfRange(size)
    return read(offset, length)


def _source_bytes(ctx: CallContext, snap: Snapshot, source: Any, index: int) -> bytes:
    """[blob-4.1-dataSource] one DataSourceObject's octets."""
    if not isinstance(source, dict):
        raise _invalid(f"data[{index}] must be a DataSourceObject.", f"data/{index}")
    kinds = [key for key in (_TEXT, _BASE64, "blobId") if key in source]
    if len(kinds) != 1:
        raise _invalid(
            f"data[{index}] needs exactly one of data:asText, data:asBase64 or blobId.", f"data/{index}"
        )
    allowed = _RANGE_KEYS if kinds[0] == "blobId" else {kinds[0]}
    if extra := sorted(set(source) - allowed):
        raise _invalid(f"data[{index}] has unknown properties: {', '.join(extra)}.", *(f"data/{index}/{k}" for k in extra))
    value = source[kinds[0]]
    if kinds[0] == _TEXT:
        if not isinstance(value, str):
            raise _invalid(f"data[{index}].data:asText must be a string.", f"data/{index}/{_TEXT}")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (\ud800) is not UTF-8
            raise _invalid(f"data[{index}].data:asText is not valid Unicode.", f"data/{index}/{_TEXT}") from None
    if kinds[0] == _BASE64:
        if not isinstance(value, str):
            raise _invalid(f"data[{index}].data:asBase64 must be a string.", f"data/{index}/{_BASE64}")
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise _invalid(f"data[{index}].data:asBase64 is not valid base64.", f"data/{index}/{_BASE64}") from None
    if not isinstance(value, str) or not value:
        raise _invalid(f"data[{index}].blobId must be an Id.", f"data/{index}/blobId")
    offset = _unsigned(source, "offset", index) or 0
    length = _unsigned(source, "length", index)
    blob_id = ctx.resolve_id(value)
    try:
        data = read_range(ctx, snap, blob_id, offset, length) if blob_id else None
    except OutOfRange as ex:
        raise _invalid(
            f"data[{index}]: the range ({offset}, {length}) is not inside the blob of {ex.args[0]} octets.",
            f"data/{index}/offset",
            f"data/{index}/length",
        ) from None
    if data is None:
        raise SourceError(SetError("blobNotFound", f"No blob {value!r}.", notFound=[value]))
    return data


def _build(ctx: CallContext, snap: Snapshot, upload: Any) -> tuple[bytes, str | None]:
    """[blob-4.1-uploadObject] the octets and type of one UploadObject."""
    if not isinstance(upload, dict):
        raise _invalid("An UploadObject must be an object.", "data")
    if extra := sorted(set(upload) - {"data", "type"}):
        raise _invalid(f"Unknown properties: {', '.join(extra)}.", *extra)
    sources = upload.get("data")
    if not isinstance(sources, list):
        raise _invalid("data must be a list of DataSourceObjects.", "data")
    if len(sources) > MAX_DATA_SOURCES:
        raise SourceError(
            SetError("tooLarge", f"At most {MAX_DATA_SOURCES} DataSourceObjects (maxDataSources).", properties=["data"])
        )
    content_type = upload.get("type")
    if content_type is not None and not isinstance(content_type, str):
        raise _invalid("type must be a String or null.", "type")
    chunks: list[bytes] = []
    size = 0
    for index, source in enumerate(sources):
        chunk = _source_bytes(ctx, snap, source, index)
        size += len(chunk)
        if size > MAX_SIZE_BLOB_SET:
            raise SourceError(SetError("tooLarge", f"Blobs are limited to {MAX_SIZE_BLOB_SET} octets (maxSizeBlobSet)."))
        chunks.append(chunk)
    return b"".join(chunks), content_type


def blob_upload(ctx: CallContext, args: BlobUploadArgs) -> dict[str, Any]:
    """[blob-4.1-upload] [blob-4.1-uploadObject] [blob-4.1-dataSource]
    [blob-4.1-createdIds] [blob-4.1-lifetime]

    Each blob is stored unreferenced, visible to its uploader alone, and
    expires like an HTTP upload (RFC 8620 §6) unless something references
    it first; the request carrying the data is bounded by maxSizeRequest.
    """
    ctx.account(args.accountId, BLOB, write=True)
    if len(args.create) > ctx.limits.maxObjectsInSet:
        raise request_too_large(ctx.limits.maxObjectsInSet, "create")
    created: dict[str, dict[str, Any]] = {}
    not_created: dict[str, SetError] = {}
    for creation_id, upload in args.create.items():
        # A fresh snapshot for each: a source may name a blob created just before.
        with ctx.snapshot(args.accountId) as snap:
            try:
                data, content_type = _build(ctx, snap, upload)
            except SourceError as ex:
                not_created[creation_id] = ex.error
                continue
        blob = ctx.backend.put_blob(args.accountId, data, ctx.principal.name)
        ctx.remember_created(creation_id, blob.blob_id)
        created[creation_id] = {
            "id": blob.blob_id,
            "blobId": blob.blob_id,
            "type": content_type,
            "size": blob.size,
        }
    return {"accountId": args.accountId, "created": created or None, "notCreated": not_created or None}
