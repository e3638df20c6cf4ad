"""Blob/lookup (RFC 9404 §4.3): which objects reference a blob.

An Email references its message's blob and the blob of each of its MIME
parts (``<message blobId>_<partId>``, see ``jmap_mail.email_get``); a Thread
and a Mailbox reference whatever their Emails do.  Emails are found through
a reverse index (Email by blobId) that this plugin asks the backend to keep,
so a lookup costs the number of Emails sharing the message, never a scan of
the mailbox.
"""

from __future__ import annotations

from typing import Any

from jmapcore.context import CallContext
from jmapcore.errors import MethodError
from jmapcore.standard.args import Args
from jmapcore.standard.get import request_too_large
from jmapcore.storage import IndexSpec, Record, Snapshot
from jmapcore.wire import Id, IdOrRef

from .constants import BLOB

EMAIL, THREAD, MAILBOX = "Email", "Thread", "Mailbox"
#: [blob-6-dataTypes] the types of the "JMAP Data Types" registry that can
#: reference blobs, and that this server looks up.
LOOKUP_TYPES = (MAILBOX, THREAD, EMAIL)
BY_BLOB = "blob"


def _email_blob_keys(record: Record) -> list[tuple[Any, ...]]:
    blob_id = record.get("blobId")
    return [(blob_id,)] if isinstance(blob_id, str) else []


LOOKUP_INDEXES = (IndexSpec(EMAIL, BY_BLOB, _email_blob_keys),)


class BlobLookupArgs(Args, kw_only=True):
    """[blob-4.3-lookup]"""

    accountId: Id
    typeNames: list[str]
    ids: list[IdOrRef]


def _check_types(ctx: CallContext, type_names: list[str]) -> list[str]:
    """[blob-4.3-unknownDataType] only registered, blob-referencing types
    whose capability the request uses."""
    for name in type_names:
        data_type = ctx.registry.types.get(name)
        if name not in LOOKUP_TYPES or data_type is None or data_type.capability not in ctx.request.using:
            raise MethodError("unknownDataType", f"{name!r} is not a type Blob/lookup can search here.")
    return list(dict.fromkeys(type_names))


def _emails_of(snap: Snapshot, blob_id: str) -> list[Record]:
    """Emails whose message is ``blob_id`` or has it as one of its parts."""
    ids = [email_id for _, email_id in snap.scan_index(EMAIL, BY_BLOB, (blob_id,))]
    part_id = None
    if not ids:
        message_blob, sep, part_id = blob_id.rpartition("_")
        if sep and part_id.isdigit():
            ids = [email_id for _, email_id in snap.scan_index(EMAIL, BY_BLOB, (message_blob,))]
    records = [record for record in snap.get_many(EMAIL, ids) if record is not None]
    if records and part_id:
        from jmap_mail.mime import parse  # only here: the mail plugin is there, it made these

        raw = snap.read_blob(records[0]["blobId"])
        if raw is None or parse(raw).part(part_id) is None:
            return []
    return records


def blob_lookup(ctx: CallContext, args: BlobLookupArgs) -> dict[str, Any]:
    """[blob-4.3-lookup] [blob-4.3-noLeak] [blob-5-acl]

    Every asked id gets a BlobInfo, with empty lists when nothing (visible)
    references it, so a lookup tells nothing of blobs the caller cannot see;
    ``notFound`` is always empty.  Everything in an account is visible to
    all of its users (no per-mailbox rights here), so each match is shown.
    """
    ctx.account(args.accountId, BLOB)
    type_names = _check_types(ctx, args.typeNames)
    if len(args.ids) > ctx.limits.maxObjectsInGet:
        raise request_too_large(ctx.limits.maxObjectsInGet, "ids")
    found: list[dict[str, Any]] = []
    with ctx.snapshot(args.accountId) as snap:
        for asked in dict.fromkeys(args.ids):
            blob_id = ctx.resolve_id(asked) or asked
            emails = _emails_of(snap, blob_id) if blob_id else []
            matched: dict[str, list[str]] = {}
            for name in type_names:
                if name == EMAIL:
                    matched[name] = [record["id"] for record in emails]
                elif name == THREAD:
                    matched[name] = list(dict.fromkeys(record["threadId"] for record in emails))
                else:
                    matched[name] = list(dict.fromkeys(m for record in emails for m in record["mailboxIds"]))
            found.append({"id": blob_id, "matchedIds": matched})
    return {"accountId": args.accountId, "list": found, "notFound": []}
