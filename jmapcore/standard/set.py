"""Foo/set (RFC 8620 §5.3), written once for every data type.

One call becomes one :class:`~jmapcore.storage.WriteBatch` committed
atomically with the expectation that the type's state has not moved since it
was read.  If another writer got in first, the call is planned again from a
fresh snapshot (or fails with ``stateMismatch`` when the client gave
``ifInState``).  Each record succeeds or fails on its own
([core-5.3-continueOnError]); failures are SetErrors, never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from ..context import CallContext, new_id
from ..datatype import DataType
from ..errors import MethodError, SetError
from ..patch import apply_patch, top_level
from ..state import type_state
from ..storage import Destroy, Put, Record, Snapshot, StateConflict, WriteBatch
from .args import SetArgs
from .get import request_too_large

#: How often a /set is planned again after losing a race to another writer.
MAX_ATTEMPTS = 8


def state_mismatch() -> MethodError:
    return MethodError("stateMismatch", "ifInState does not match the current state.")


@dataclass(slots=True)
class SetOutcome:
    """What one /set (or the writing half of /copy) did."""

    batch: WriteBatch
    created: dict[str, Record] = field(default_factory=dict)
    created_ids: dict[str, str] = field(default_factory=dict)
    not_created: dict[str, SetError] = field(default_factory=dict)
    updated: dict[str, Any] = field(default_factory=dict)
    not_updated: dict[str, SetError] = field(default_factory=dict)
    destroyed: list[str] = field(default_factory=list)
    not_destroyed: dict[str, SetError] = field(default_factory=dict)


class RecordWriter:
    """Plans the records of one /set against one snapshot."""

    def __init__(self, ctx: CallContext, data_type: DataType, snap: Snapshot, batch: WriteBatch) -> None:
        self.ctx = ctx
        self.type = data_type
        self.snap = snap
        self.batch = batch
        #: Records created or updated so far in this call, by id.
        self.pending: dict[str, Record] = {}
        self.local_ids: dict[str, str] = {}
        self.destroying: set[str] = set()

    # -- references --------------------------------------------------------

    def resolve(self, value: str) -> str | None:
        if value.startswith("#"):
            return self.local_ids.get(value[1:]) or self.ctx.request.created_ids.get(value[1:])
        return value

    def _exists(self, type_name: str, record_id: str) -> bool:
        if type_name == self.type.name:
            if record_id in self.destroying:
                return False
            if record_id in self.pending:
                return True
        return self.snap.get(type_name, record_id) is not None

    def _resolve_refs(self, record: Record, names: list[str]) -> list[str]:
        """Replace ``#creationId`` values of reference properties; return
        the properties with a dangling reference ([core-5.3-creationRef])."""
        bad: list[str] = []
        for name in names:
            prop = self.type.properties.get(name)
            if prop is None or prop.ref is None or record.get(name) is None:
                continue
            value = record[name]
            if isinstance(value, str):
                resolved = self.resolve(value)
                if resolved is None or not self._exists(prop.ref, resolved):
                    bad.append(name)
                else:
                    record[name] = resolved
            elif isinstance(value, list | dict):
                keys = list(value)
                resolved_keys = [self.resolve(key) if isinstance(key, str) else None for key in keys]
                if any(r is None or not self._exists(prop.ref, r) for r in resolved_keys):
                    bad.append(name)
                elif isinstance(value, dict):
                    record[name] = {new: value[old] for old, new in zip(keys, resolved_keys, strict=True)}
                else:
                    record[name] = resolved_keys
        return bad

    def _check_values(self, record: Record, names: list[str]) -> list[str]:
        bad = []
        for name in names:
            try:
                record[name] = self.type.check_value(name, record[name])
            except msgspec.ValidationError:
                bad.append(name)
        return bad

    def _check_blobs(self, record: Record) -> list[str]:
        bad = []
        for name, prop in self.type.properties.items():
            if prop.blob and isinstance(record.get(name), str):
                blob = self.snap.blob_info(record[name])
                if not self.ctx.core.blob_visible(self.ctx.principal, blob):
                    bad.append(name)
        return bad

    def _count_blobs(self, old: Record | None, new: Record | None) -> None:
        for blob_id in self.type.blob_ids(old or {}):
            self.batch.blob_refs[blob_id] = self.batch.blob_refs.get(blob_id, 0) - 1
        for blob_id in self.type.blob_ids(new or {}):
            self.batch.blob_refs[blob_id] = self.batch.blob_refs.get(blob_id, 0) + 1

    def _finish(self, record: Record, old: Record | None) -> SetError | None:
        if self.type.compute is not None:
            self.type.compute(self.ctx, record, old)
        if self.type.validate is not None:
            return self.type.validate(self.ctx, record, old)
        return None

    # -- create ------------------------------------------------------------

    def create(self, creation_id: str, values: dict[str, Any], *, allow_server_set: bool = False) -> Record | SetError:
        """[core-5.3-createServerSet] validate one create and stage it."""
        props = self.type.properties
        unknown = [name for name in values if name not in props]
        server_set = [] if allow_server_set else [name for name in values if name in props and props[name].server_set]
        if unknown or server_set:
            return SetError.invalid_properties(
                unknown + server_set,
                f"Unknown or server-set properties: {', '.join(unknown + server_set)}.",
            )
        record = self.type.default_record()
        record.update(values)
        missing = [
            name
            for name, prop in props.items()
            if name not in record and not prop.server_set and not prop.has_default()
        ]
        if missing:
            return SetError.invalid_properties(missing, f"Missing required properties: {', '.join(missing)}.")
        names = list(values)
        bad = self._resolve_refs(record, names) or self._check_values(record, names) or self._check_blobs(record)
        if bad:
            return SetError.invalid_properties(bad)
        record["id"] = new_id(self.type.id_prefix)
        error = self._finish(record, None)
        if error is not None:
            return error
        self.pending[record["id"]] = record
        self.local_ids[creation_id] = record["id"]
        self.batch.puts.append(Put(self.type.name, record, created=True))
        self._count_blobs(None, record)
        return record

    # -- update ------------------------------------------------------------

    def current(self, record_id: str) -> Record | None:
        if record_id in self.pending:
            return self.pending[record_id]
        return self.snap.get(self.type.name, record_id)

    def update(self, record_id: str, patch: dict[str, Any]) -> Record | SetError:
        old = self.current(record_id)
        if old is None:
            return SetError.not_found()
        names = list(dict.fromkeys(top_level(path) for path in patch))
        unknown = [name for name in names if name not in self.type.properties]
        if unknown:
            return SetError.invalid_properties(unknown, f"Unknown properties: {', '.join(unknown)}.")
        defaults = {name: prop.default for name, prop in self.type.properties.items() if prop.has_default()}
        record = apply_patch(old, patch, defaults)
        if isinstance(record, SetError):
            return record
        bad = self._resolve_refs(record, names) or self._check_values(record, names)
        # [core-5.3-patchServerSet] server-set and immutable ones may only be "set" to what they are.
        fixed = [
            name
            for name in names
            if (self.type.properties[name].server_set or self.type.properties[name].immutable)
            and record.get(name) != old.get(name)
        ]
        if bad or fixed:
            return SetError.invalid_properties(bad + fixed)
        bad = self._check_blobs(record)
        if bad:
            return SetError.invalid_properties(bad)
        error = self._finish(record, old)
        if error is not None:
            return error
        created_here = record_id in self.pending and any(
            put.record is old and put.created for put in self.batch.puts
        )
        self.batch.puts = [put for put in self.batch.puts if put.record is not old]
        self.batch.puts.append(Put(self.type.name, record, created=created_here))
        self.pending[record_id] = record
        self._count_blobs(old, record)
        return record

    def final_records(self) -> dict[str, Record]:
        """Every record of the type as this call would leave them, untouched
        ones first (reads the whole type: for small types with rules that
        span records)."""
        ids = list(self.snap.ids(self.type.name))
        records = self.snap.get_many(self.type.name, ids)
        final = {
            record_id: record
            for record_id, record in zip(ids, records, strict=True)
            if record is not None and record_id not in self.pending
        }
        final.update(self.pending)
        for record_id in self.destroying:
            final.pop(record_id, None)
        return final

    # -- destroy -----------------------------------------------------------

    def destroy(self, record_id: str) -> SetError | None:
        old = self.current(record_id)
        if old is None or record_id in self.destroying:
            return SetError.not_found()
        if self.type.can_destroy is not None:
            error = self.type.can_destroy(self.ctx, old)
            if error is not None:
                return error
        self.destroying.add(record_id)
        if record_id in self.pending:
            self.batch.puts = [put for put in self.batch.puts if put.record is not old]
            del self.pending[record_id]
            if self.snap.get(self.type.name, record_id) is None:
                self._count_blobs(old, None)
                return None
        self.batch.destroys.append(Destroy(self.type.name, record_id))
        self._count_blobs(old, None)
        return None


def creation_order(data_type: DataType, create: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """[core-5.3-selfTypeOrder] order creates so a record is created before
    another create of the same type references it; return (order, in a cycle)."""
    ref_props = [name for name, prop in data_type.properties.items() if prop.ref == data_type.name]
    needs: dict[str, set[str]] = {}
    for creation_id, values in create.items():
        wanted: set[str] = set()
        for name in ref_props:
            value = values.get(name)
            keys = [value] if isinstance(value, str) else list(value) if isinstance(value, list | dict) else []
            wanted |= {k[1:] for k in keys if isinstance(k, str) and k.startswith("#") and k[1:] in create}
        needs[creation_id] = wanted - {creation_id} if creation_id not in wanted else wanted
    order: list[str] = []
    done: set[str] = set()
    progress = True
    while progress:
        progress = False
        for creation_id, wanted in needs.items():
            if creation_id not in done and wanted <= done:
                order.append(creation_id)
                done.add(creation_id)
                progress = True
    return order, [creation_id for creation_id in create if creation_id not in done]


def plan_set(ctx: CallContext, data_type: DataType, snap: Snapshot, args: SetArgs) -> SetOutcome:
    """Work out one /set against a snapshot, without writing.

    [core-5.3-finalValid] A type with ``check_final`` has its constraints
    checked against the state the whole call would leave; records that break
    them fail and the call is planned again without them.
    """
    excluded: dict[tuple[str, str], SetError] = {}
    for _ in range(MAX_ATTEMPTS):
        outcome, writer = _plan_once(ctx, data_type, snap, args, excluded)
        if data_type.check_final is None:
            return outcome
        errors = data_type.check_final(ctx, writer.final_records(), set(writer.pending))
        if not errors:
            return outcome
        keys = {record_id: ("create", cid) for cid, record_id in outcome.created_ids.items()}
        keys |= {writer.resolve(key): ("update", key) for key in (args.update or {})}
        keys |= {writer.resolve(key): ("destroy", key) for key in (args.destroy or [])}
        excluded |= {keys[record_id]: error for record_id, error in errors.items() if record_id in keys}
    raise MethodError("serverFail", "The changes could not be made consistent.")


def _plan_once(
    ctx: CallContext, data_type: DataType, snap: Snapshot, args: SetArgs, excluded: dict[tuple[str, str], SetError]
) -> tuple[SetOutcome, RecordWriter]:
    batch = WriteBatch(args.accountId, expect={data_type.name: snap.type_modseq(data_type.name)})
    outcome = SetOutcome(batch)
    writer = RecordWriter(ctx, data_type, snap, batch)
    create = args.create or {}
    destroy_keys = list(dict.fromkeys(args.destroy or []))
    destroy_ids = {writer.resolve(key) for key in destroy_keys} - {None}

    order, cyclic = creation_order(data_type, create)
    for creation_id in cyclic:
        outcome.not_created[creation_id] = SetError.invalid_properties(
            [], "The record is part of a cycle of creation references."
        )
    for creation_id in order:
        if ("create", creation_id) in excluded:
            outcome.not_created[creation_id] = excluded[("create", creation_id)]
            continue
        result = writer.create(creation_id, create[creation_id])
        if isinstance(result, SetError):
            outcome.not_created[creation_id] = result
        else:
            outcome.created_ids[creation_id] = result["id"]
            given = create[creation_id]
            outcome.created[creation_id] = {k: v for k, v in result.items() if k not in given or k == "id"}

    for key, patch in (args.update or {}).items():
        record_id = writer.resolve(key)
        if ("update", key) in excluded:
            outcome.not_updated[key] = excluded[("update", key)]
        elif record_id is None or writer.current(record_id) is None:
            outcome.not_updated[key] = SetError.not_found()
        elif record_id in destroy_ids:
            outcome.not_updated[key] = SetError("willDestroy", "The record is destroyed in this call.")
        else:
            result = writer.update(record_id, patch)
            if isinstance(result, SetError):
                outcome.not_updated[key] = result
            else:
                outcome.updated[record_id] = None

    for key in destroy_keys:
        record_id = writer.resolve(key)
        error = excluded.get(("destroy", key))
        if error is None:
            error = SetError.not_found() if record_id is None else writer.destroy(record_id)
        if error is not None:
            outcome.not_destroyed[key] = error
        else:
            outcome.destroyed.append(record_id)
    return outcome, writer


def set_response(account_id: str, old_state: str, new_state: str, outcome: SetOutcome) -> dict[str, Any]:
    """[core-5.3-response] empty categories are null."""
    return {
        "accountId": account_id,
        "oldState": old_state,
        "newState": new_state,
        "created": outcome.created or None,
        "updated": outcome.updated or None,
        "destroyed": outcome.destroyed or None,
        "notCreated": outcome.not_created or None,
        "notUpdated": outcome.not_updated or None,
        "notDestroyed": outcome.not_destroyed or None,
    }


#: Adds what else a /set must write to its batch (for example the Emails
#: a destroyed Mailbox takes with it), or fails records in the outcome.
Extend = Callable[[CallContext, Snapshot, SetOutcome, Any], None]


Planned = TypeVar("Planned")


def commit_planned(
    ctx: CallContext,
    account_id: str,
    type_name: str,
    if_in_state: str | None,
    plan: Callable[[Snapshot], tuple[WriteBatch, Planned]],
) -> tuple[str, str, Planned]:
    """Plan against a snapshot, commit the batch, and plan again from a
    fresh snapshot if another writer got in first (optimistic concurrency:
    the batch expects the states it read).  With ``if_in_state`` a lost race
    is ``stateMismatch`` instead ([core-5.3-ifInState]).

    Returns the type's (oldState, newState) and what ``plan`` returned.
    """
    for _ in range(MAX_ATTEMPTS):
        with ctx.snapshot(account_id) as snap:
            epoch = snap.epoch()
            old_state = type_state(epoch, snap.type_modseq(type_name))
            if if_in_state is not None and if_in_state != old_state:
                raise state_mismatch()
            batch, planned = plan(snap)
        if batch.is_empty():
            return old_state, old_state, planned
        try:
            result = ctx.commit(batch)
        except StateConflict:
            if if_in_state is not None:
                raise state_mismatch() from None
            continue
        return old_state, type_state(epoch, result.type_modseqs.get(type_name, result.modseq)), planned
    raise MethodError("serverUnavailable", "Too many concurrent changes; try again.")


def run_set(ctx: CallContext, data_type: DataType, args: SetArgs, extend: Extend | None = None) -> dict[str, Any]:
    """Plan and commit one /set, replanning after a lost race."""
    ctx.account(args.accountId, data_type.capability, write=True)
    count = len(args.create or {}) + len(args.update or {}) + len(args.destroy or [])
    if count > ctx.limits.maxObjectsInSet:
        raise request_too_large(ctx.limits.maxObjectsInSet, "records")  # [core-5.3-requestTooLarge]

    def plan(snap: Snapshot) -> tuple[WriteBatch, SetOutcome]:
        outcome = plan_set(ctx, data_type, snap, args)
        if extend is not None:
            extend(ctx, snap, outcome, args)
        return outcome.batch, outcome

    old_state, new_state, outcome = commit_planned(ctx, args.accountId, data_type.name, args.ifInState, plan)
    for creation_id, record_id in outcome.created_ids.items():
        ctx.remember_created(creation_id, record_id)
    return set_response(args.accountId, old_state, new_state, outcome)


def make_set(data_type: DataType):
    def set_(ctx: CallContext, args: SetArgs) -> dict[str, Any]:
        return run_set(ctx, data_type, args)

    return set_
