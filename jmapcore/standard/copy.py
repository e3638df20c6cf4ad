"""Foo/copy (RFC 8620 §5.4): read from one account, create in another,
then optionally destroy the originals with an implicit Foo/set."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..context import CallContext
from ..datatype import DataType
from ..errors import MethodError, SetError
from ..state import type_state
from ..storage import Record, Snapshot, WriteBatch
from .args import CopyArgs, SetArgs
from .get import request_too_large
from .set import RecordWriter, SetOutcome, commit_planned, run_set, state_mismatch


def _from_account(ctx: CallContext, capability: str, account_id: str) -> None:
    """[core-5.4-args] errors about the source account say so."""
    try:
        ctx.account(account_id, capability)
    except MethodError as ex:
        kind = {"accountNotFound": "fromAccountNotFound"}.get(
            ex.kind, "fromAccountNotSupportedByMethod" if ex.kind == "accountNotSupportedByMethod" else ex.kind
        )
        raise MethodError(kind, ex.description) from None


def _read_sources(ctx: CallContext, data_type: DataType, args: CopyArgs) -> dict[str, Record | SetError]:
    """Phase one: read every source record (and its blobs' bytes)."""
    sources: dict[str, Record | SetError] = {}
    with ctx.snapshot(args.fromAccountId) as snap:
        state = type_state(snap.epoch(), snap.type_modseq(data_type.name))
        if args.ifFromInState is not None and args.ifFromInState != state:
            raise state_mismatch()
        for creation_id, values in args.create.items():
            source_id = values.get("id")
            if not isinstance(source_id, str):
                sources[creation_id] = SetError.invalid_properties(["id"], "Each create must name the source id.")
                continue
            record = snap.get(data_type.name, ctx.resolve_id(source_id) or "")
            sources[creation_id] = record if record is not None else SetError.not_found()
    return sources


def _copy_blobs(ctx: CallContext, data_type: DataType, args: CopyArgs, sources: dict[str, Any]) -> None:
    """Blobs are per account: give the target its own copy of each."""
    needed = {b for s in sources.values() if isinstance(s, dict) for b in data_type.blob_ids(s)}
    if not needed:
        return
    with ctx.snapshot(args.fromAccountId) as snap:
        contents = {blob_id: snap.read_blob(blob_id) for blob_id in needed}
    for data in contents.values():
        if data is not None:
            ctx.backend.put_blob(args.accountId, data, ctx.principal.name)


def _plan_copies(ctx: CallContext, data_type: DataType, args: CopyArgs, sources: dict[str, Any], snap) -> SetOutcome:
    batch = WriteBatch(args.accountId, expect={data_type.name: snap.type_modseq(data_type.name)})
    outcome = SetOutcome(batch)
    writer = RecordWriter(ctx, data_type, snap, batch)
    for creation_id, source in sources.items():
        if isinstance(source, SetError):
            outcome.not_created[creation_id] = source
            continue
        overrides = {k: v for k, v in args.create[creation_id].items() if k != "id"}
        server_set = [k for k in overrides if k in data_type.properties and data_type.properties[k].server_set]
        if server_set:
            outcome.not_created[creation_id] = SetError.invalid_properties(server_set)
            continue
        values = {
            k: v for k, v in source.items() if k in data_type.properties and not data_type.properties[k].server_set
        }
        values.update(overrides)
        result = writer.create(creation_id, values)
        if isinstance(result, SetError):
            outcome.not_created[creation_id] = result
        else:
            outcome.created_ids[creation_id] = result["id"]
            outcome.created[creation_id] = {k: v for k, v in result.items() if k not in overrides}
    return outcome


def make_copy(data_type: DataType):
    def copy(ctx: CallContext, args: CopyArgs) -> None:
        if args.fromAccountId == args.accountId:
            raise MethodError.invalid_arguments("fromAccountId and accountId must differ.")
        _from_account(ctx, data_type.capability, args.fromAccountId)
        ctx.account(args.accountId, data_type.capability, write=True)
        if len(args.create) > ctx.limits.maxObjectsInSet:
            raise request_too_large(ctx.limits.maxObjectsInSet, "records")
        sources = _read_sources(ctx, data_type, args)
        _copy_blobs(ctx, data_type, args, sources)
        def plan(snap: Snapshot) -> tuple[WriteBatch, SetOutcome]:
            outcome = _plan_copies(ctx, data_type, args, sources, snap)
            return outcome.batch, outcome

        old_state, new_state, outcome = commit_planned(ctx, args.accountId, data_type.name, args.ifInState, plan)
        for creation_id, record_id in outcome.created_ids.items():
            ctx.remember_created(creation_id, record_id)
        ctx.emit(f"{data_type.name}/copy", _copy_response(args, old_state, new_state, outcome))
        if args.onSuccessDestroyOriginal and outcome.created_ids:
            _destroy_originals(ctx, data_type, args, sources, outcome)
        return None

    return copy


def _copy_response(args: CopyArgs, old_state: str, new_state: str, outcome: SetOutcome) -> dict[str, Any]:
    return {
        "fromAccountId": args.fromAccountId,
        "accountId": args.accountId,
        "oldState": old_state,
        "newState": new_state,
        "created": outcome.created or None,
        "notCreated": outcome.not_created or None,
    }


def _destroy_originals(
    ctx: CallContext, data_type: DataType, args: CopyArgs, sources: dict[str, Any], outcome: SetOutcome
) -> None:
    """[core-5.4-destroyOriginal] an implicit Foo/set on the source account."""
    originals = [sources[creation_id]["id"] for creation_id in outcome.created_ids]
    set_args = SetArgs(accountId=args.fromAccountId, ifInState=args.destroyFromIfInState, destroy=originals)
    try:
        ctx.emit(f"{data_type.name}/set", run_set(ctx, data_type, set_args))
    except MethodError as ex:
        ctx.emit("error", ex.to_dict())


def copy_through_set(
    ctx: CallContext,
    args: CopyArgs,
    *,
    type_name: str,
    capability: str,
    source_only: Iterable[str],
    set_method: Callable[[CallContext, Any], dict[str, Any]],
    set_args_type: type = SetArgs,
    blob_ids: Callable[[dict[str, Any]], Iterable[str]] | None = None,
) -> None:
    """Foo/copy for a type whose own Foo/set does more than the standard
    one (validation, uid rules, a default collection): each source record,
    without its ``source_only`` properties (its id, the collections it is
    in) and with the client's overrides, is created in the target through
    ``set_method``, so a copy is checked and indexed exactly like a create.
    Blobs named by ``blob_ids`` get a copy in the target account (blobs are
    per account).  ``onSuccessDestroyOriginal`` runs ``set_method`` too.
    """
    if args.fromAccountId == args.accountId:
        raise MethodError.invalid_arguments("fromAccountId and accountId must differ.")
    _from_account(ctx, capability, args.fromAccountId)
    ctx.account(args.accountId, capability, write=True)
    if len(args.create) > ctx.limits.maxObjectsInSet:
        raise request_too_large(ctx.limits.maxObjectsInSet, "records")
    dropped = {"id", *source_only}
    not_created: dict[str, SetError] = {}
    create: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    with ctx.snapshot(args.fromAccountId) as snap:
        state = type_state(snap.epoch(), snap.type_modseq(type_name))
        if args.ifFromInState is not None and args.ifFromInState != state:
            raise MethodError("stateMismatch", "ifFromInState does not match the current state.")
        for creation_id, values in args.create.items():
            source_id = values.get("id")
            record = snap.get(type_name, ctx.resolve_id(source_id) or "") if isinstance(source_id, str) else None
            if not isinstance(source_id, str):
                not_created[creation_id] = SetError.invalid_properties(["id"], "Each create must name the source id.")
            elif record is None:
                not_created[creation_id] = SetError.not_found()
            else:
                copied = {k: v for k, v in record.items() if k not in dropped}
                create[creation_id] = {**copied, **{k: v for k, v in values.items() if k != "id"}}
                sources[creation_id] = record["id"]
        wanted = {blob_id for values in create.values() for blob_id in blob_ids(values)} if blob_ids else set()
        contents = [snap.read_blob(blob_id) for blob_id in wanted]
    for data in contents:
        if data is not None:
            ctx.backend.put_blob(args.accountId, data, ctx.principal.name)
    result = set_method(ctx, set_args_type(accountId=args.accountId, ifInState=args.ifInState, create=create or None))
    created = result["created"] or {}
    ctx.emit(f"{type_name}/copy", {
        "fromAccountId": args.fromAccountId,
        "accountId": args.accountId,
        "oldState": result["oldState"],
        "newState": result["newState"],
        "created": created or None,
        "notCreated": {**not_created, **(result["notCreated"] or {})} or None,
    })
    if args.onSuccessDestroyOriginal and created:
        destroy = set_args_type(
            accountId=args.fromAccountId, ifInState=args.destroyFromIfInState,
            destroy=[sources[cid] for cid in created],
        )
        try:
            ctx.emit(f"{type_name}/set", set_method(ctx, destroy))
        except MethodError as ex:
            ctx.emit("error", ex.to_dict())
