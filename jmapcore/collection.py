"""Helpers for data types that group other records (address books of cards,
calendars of events): written once here, used by every such plugin.

* each account starts with one default collection (``on_account_created``),
  and accounts that predate the plugin get it at their first call;
* ``onSuccessSetIsDefault`` moves the ``isDefault`` flag after a wholly
  successful /set;
* destroying a collection that still has members is refused unless the
  client asked for its contents to go (``onDestroyRemove...``): the members
  then leave it, and those left in no collection are destroyed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .errors import SetError
from .storage import AccountInfo, Destroy, Put, Record, Snapshot, StateConflict, WriteBatch

if TYPE_CHECKING:
    from .api import Core
    from .context import CallContext
    from .standard.set import SetOutcome


def create_default(core: Core, account_id: str, type_name: str, record: Record) -> None:
    """Store ``record`` as the account's first record of ``type_name``,
    unless one was ever written (a concurrent first call made it already)."""
    batch = WriteBatch(account_id, expect={type_name: 0})
    batch.puts.append(Put(type_name, record, created=True))
    try:
        core.backend.commit(batch)
    except StateConflict:
        pass


def ensure_default(
    ctx: CallContext, account_id: str, type_name: str, make_record: Callable[[], Record]
) -> None:
    """For accounts that predate the plugin: create the default collection
    when the type was never written at all (a user who later destroys every
    collection is not given one back)."""
    with ctx.snapshot(account_id) as snap:
        if snap.type_modseq(type_name) != 0:
            return
    info: AccountInfo | None = ctx.core.account_info(account_id)
    if info is None or info.is_read_only:
        return
    create_default(ctx.core, account_id, type_name, make_record())


def default_id(snap: Snapshot, type_name: str) -> str | None:
    """The id of the record flagged ``isDefault`` (collections are few: read them all)."""
    ids = list(snap.ids(type_name))
    for record in snap.get_many(type_name, ids):
        if record is not None and record.get("isDefault"):
            return record["id"]
    return None


def set_default(
    ctx: CallContext, snap: Snapshot, outcome: SetOutcome, wanted: str | None, type_name: str
) -> None:
    """``onSuccessSetIsDefault``: after a wholly successful call, make the
    named record (an id or ``#creationId``) the only default; unknown ids
    are ignored silently, as the specs ask."""
    if wanted is None or outcome.not_created or outcome.not_updated or outcome.not_destroyed:
        return
    if wanted.startswith("#"):
        target = outcome.created_ids.get(wanted[1:]) or ctx.resolve_id(wanted)
    else:
        target = wanted
    if target is None or target in outcome.destroyed:
        return
    pending = {put.record["id"]: put for put in outcome.batch.puts if put.type_name == type_name}
    records = {r["id"]: r for r in snap.get_many(type_name, list(snap.ids(type_name))) if r is not None}
    records.update({record_id: put.record for record_id, put in pending.items()})
    for record_id in outcome.destroyed:
        records.pop(record_id, None)
    if target not in records:
        return
    creation = {record_id: cid for cid, record_id in outcome.created_ids.items()}
    for record_id, record in records.items():
        should = record_id == target
        if bool(record.get("isDefault")) == should:
            continue
        if record_id in pending:
            pending[record_id].record["isDefault"] = should
        else:
            outcome.batch.puts.append(Put(type_name, {**record, "isDefault": should}, created=False))
        if record_id in creation:
            outcome.created[creation[record_id]]["isDefault"] = should
        else:
            outcome.updated[record_id] = {**(outcome.updated.get(record_id) or {}), "isDefault": should}


def remove_members(
    ctx: CallContext,
    snap: Snapshot,
    outcome: SetOutcome,
    *,
    collection_type: str,
    member_type: str,
    membership: str,
    members_of: Callable[[Snapshot, str], list[str]],
    destroy_keys: Iterable[str],
    remove_contents: bool,
    refusal: Callable[[], SetError],
    kept: Callable[[Record], None] | None = None,
    dropped: Callable[[Record], None] | None = None,
) -> None:
    """The destroy rule of collections with members.

    A destroyed collection with members is put back (``refusal()`` in
    notDestroyed) unless ``remove_contents``; otherwise its members leave
    it (their ``membership`` map loses it) and members left in none are
    destroyed.  ``kept``/``dropped`` see each rewritten or destroyed member
    (to add its search document, or release its blobs).
    """
    if not outcome.destroyed:
        return
    outcome.batch.expect[member_type] = snap.type_modseq(member_type)
    keys = {ctx.resolve_id(key) or key: key for key in destroy_keys}
    gone = set()
    for collection_id in list(outcome.destroyed):
        if not members_of(snap, collection_id):
            continue
        if not remove_contents:
            outcome.destroyed.remove(collection_id)
            outcome.batch.destroys = [
                d for d in outcome.batch.destroys
                if not (d.type_name == collection_type and d.id == collection_id)
            ]
            outcome.not_destroyed[keys.get(collection_id, collection_id)] = refusal()
            continue
        gone.add(collection_id)
    changed: dict[str, Record] = {}
    for collection_id in gone:
        members = members_of(snap, collection_id)
        for member_id, member in zip(members, snap.get_many(member_type, members), strict=True):
            if member is None:
                continue
            member = changed.get(member_id, member)
            remaining = {c: True for c in member.get(membership) or {} if c not in gone}
            changed[member_id] = {**member, membership: remaining}
    for member_id, member in changed.items():
        if member[membership]:
            outcome.batch.puts.append(Put(member_type, member, created=False))
            if kept is not None:
                kept(member)
        else:
            outcome.batch.destroys.append(Destroy(member_type, member_id))
            if dropped is not None:
                dropped(member)
