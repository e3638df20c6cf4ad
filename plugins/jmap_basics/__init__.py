"""Core extras of RFC 8620: Core/echo, Blob/copy and push subscriptions.

Registered like any third-party plugin, through the ``jmapcore.plugins``
entry-point group; the methods belong to the core capability.
PushSubscription/get and /set are in :mod:`.push_methods`, where
subscriptions are stored in :mod:`.push_store`, and their delivery (a
background job in every worker) in :mod:`.push_delivery`.
"""

from __future__ import annotations

from typing import Any

from jmapcore.context import CallContext
from jmapcore.errors import MethodError, SetError
from jmapcore.registry import Method, Plugin
from jmapcore.standard.args import Args
from jmapcore.wire import CORE, Id

from .push_delivery import delivery_job
from .push_methods import PushGetArgs, PushSetArgs, push_get, push_set


def echo(ctx: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    """[core-4-echo] the arguments, unchanged."""
    return args


class BlobCopyArgs(Args, kw_only=True):
    fromAccountId: Id
    accountId: Id
    blobIds: list[Id]


def blob_copy(ctx: CallContext, args: BlobCopyArgs) -> dict[str, Any]:
    """[core-6.3-blobCopy] copy blobs between two accounts of the caller."""
    if args.fromAccountId not in ctx.principal.account_ids or ctx.core.account_info(args.fromAccountId) is None:
        raise MethodError("fromAccountNotFound", "No source account with that id is available to you.")
    ctx.account(args.accountId, CORE, write=True)
    copied: dict[str, str] = {}
    not_copied: dict[str, SetError] = {}
    with ctx.snapshot(args.fromAccountId) as snap:
        contents = {}
        for blob_id in dict.fromkeys(args.blobIds):
            contents[blob_id] = ctx.core.read_blob(ctx.principal, snap, blob_id)
    for blob_id in dict.fromkeys(args.blobIds):
        data = contents.get(blob_id)
        if data is None:
            not_copied[blob_id] = SetError("notFound", "No blob with that id.")
            continue
        copied[blob_id] = ctx.backend.put_blob(args.accountId, data, ctx.principal.name).blob_id
    return {
        "fromAccountId": args.fromAccountId,
        "accountId": args.accountId,
        "copied": copied or None,
        "notCopied": not_copied or None,
    }


plugin = Plugin(
    capability=CORE,
    methods=[
        Method("Core/echo", echo),
        Method("Blob/copy", blob_copy, BlobCopyArgs, writes=True),
        Method("PushSubscription/get", push_get, PushGetArgs),
        Method("PushSubscription/set", push_set, PushSetArgs, writes=True),
    ],
    push_types=(),
    background=[delivery_job],
)
