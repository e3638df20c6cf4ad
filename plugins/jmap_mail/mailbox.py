"""Mailbox (RFC 8621 §2): the type, its rules, and its methods.

Mailbox records carry their four counts, kept exact by the mail write path
(:mod:`jmap_mail.store`) on every change of an Email; a count-only change is
logged naming just those properties, so Mailbox/changes can say so in
``updatedProperties`` ([mail-2.2-changes]).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from msgspec import Meta

from jmapcore.context import CallContext
from jmapcore.datatype import DataType, Filter, Property, property_sort
from jmapcore.errors import SetError
from jmapcore.registry import Method
from jmapcore.standard import make_changes, make_get, make_query, make_query_changes
from jmapcore.standard.args import ChangesArgs, GetArgs, QueryArgs, QueryChangesArgs, SetArgs
from jmapcore.standard.query import parse_sort
from jmapcore.standard.set import run_set
from jmapcore.storage import Record, Snapshot
from jmapcore.wire import Id

from .constants import (
    COUNT_PROPERTIES,
    EMAIL,
    MAIL,
    MAILBOX,
    MAX_MAILBOX_DEPTH,
    MAX_SIZE_MAILBOX_NAME,
    ROLES,
    THREAD,
)

#: [mail-2-rights] the owner may do everything.
ALL_RIGHTS = {
    "mayReadItems": True,
    "mayAddItems": True,
    "mayRemoveItems": True,
    "maySetSeen": True,
    "maySetKeywords": True,
    "mayCreateChild": True,
    "mayRename": True,
    "mayDelete": True,
    "maySubmit": True,
}


def _fill_server_set(ctx: CallContext, record: Record, old: Record | None) -> None:
    if old is None:
        record.update(dict.fromkeys(COUNT_PROPERTIES, 0))
    record["myRights"] = dict(ALL_RIGHTS)


def _validate(ctx: CallContext, record: Record, old: Record | None) -> SetError | None:
    """[mail-2-name] [mail-2-role] [mail-2-sortOrder] one record's own rules."""
    name = record["name"]
    if not name or len(name.encode("utf-8")) > MAX_SIZE_MAILBOX_NAME:
        return SetError.invalid_properties(["name"], f"A name has 1 to {MAX_SIZE_MAILBOX_NAME} octets.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name) or name != name.strip():
        return SetError.invalid_properties(["name"], "A name has no control characters or outer spaces.")
    if unicodedata.normalize("NFC", name) != name:
        return SetError.invalid_properties(["name"], "A name must be in Unicode NFC (RFC 5198).")
    role = record.get("role")
    if role is not None and role not in ROLES:
        return SetError.invalid_properties(["role"], f"Unknown role {role!r} (roles are lowercase IANA names).")
    return None


def _check_final(ctx: CallContext, mailboxes: dict[str, Record], changed: set[str]) -> dict[str, SetError]:
    """[mail-2-noLoops] [mail-2-name] [mail-2-role] [mail-2.5-mailboxHasChild]
    rules over every mailbox as the call would leave them."""
    errors: dict[str, SetError] = {}
    for record in mailboxes.values():
        parent = record.get("parentId")
        if parent is not None and parent not in mailboxes:
            errors[parent] = SetError("mailboxHasChild", "The mailbox still has child mailboxes.")
    for record_id in mailboxes:
        seen, current, depth = set(), record_id, 0
        while current is not None and current in mailboxes and current not in seen:
            seen.add(current)
            current = mailboxes[current].get("parentId")
            depth += 1
        if current is not None and current in seen:
            errors.setdefault(record_id, SetError.invalid_properties(["parentId"], "Mailboxes cannot form a loop."))
        elif depth > MAX_MAILBOX_DEPTH:
            errors.setdefault(record_id, SetError.invalid_properties(["parentId"], "The mailbox is nested too deeply."))
    # The first holder of a name or role keeps it: untouched mailboxes come
    # first, then this call's in order, so a change never takes one away.
    names: set[tuple[str | None, str]] = set()
    roles: set[str] = set()
    for record_id, record in mailboxes.items():
        name = (record.get("parentId"), unicodedata.normalize("NFC", record["name"]))
        if name in names:
            errors.setdefault(record_id, SetError.invalid_properties(["name"], "A sibling has the same name."))
        names.add(name)
        role = record.get("role")
        if role is not None and role in roles:
            errors.setdefault(record_id, SetError.invalid_properties(["role"], "Another mailbox has that role."))
        if role is not None:
            roles.add(role)
    return errors


UnsignedInt31 = Annotated[int, Meta(ge=0, lt=2**31)]

Mailbox = DataType(
    name=MAILBOX,
    capability=MAIL,
    properties={
        "name": Property(str),
        "parentId": Property(Id | None, default=None, ref=MAILBOX),
        "role": Property(str | None, default=None),
        "sortOrder": Property(UnsignedInt31, default=0),
        "totalEmails": Property(int, server_set=True),
        "unreadEmails": Property(int, server_set=True),
        "totalThreads": Property(int, server_set=True),
        "unreadThreads": Property(int, server_set=True),
        "myRights": Property(dict, server_set=True),
        "isSubscribed": Property(bool, default=True),
    },
    methods=(),  # every method is written below, on top of the standard ones
    filters={
        # [mail-2.3-filter]
        "parentId": Filter(Id | None, match=lambda r, v: r.get("parentId") == v),
        "name": Filter(str, match=lambda r, v: v.casefold() in r["name"].casefold()),
        "role": Filter(str | None, match=lambda r, v: r.get("role") == v),
        "hasAnyRole": Filter(bool, match=lambda r, v: (r.get("role") is not None) is v),
        "isSubscribed": Filter(bool, match=lambda r, v: r.get("isSubscribed") is v),
    },
    sorts={"sortOrder": property_sort("sortOrder"), "name": property_sort("name", text=True)},
    id_prefix="M",
    validate=_validate,
    compute=_fill_server_set,
    check_final=_check_final,
)


# -- methods ---------------------------------------------------------------------


class MailboxChangesArgs(ChangesArgs, kw_only=True):
    pass


def _changes(ctx: CallContext, args: ChangesArgs) -> dict[str, Any]:
    """[mail-2.2-changes] updatedProperties is always there (null if unknown)."""
    result = _standard_changes(ctx, args)
    props = result.pop("updatedProperties", None)
    only_counts = props is not None and set(props) <= set(COUNT_PROPERTIES)
    result["updatedProperties"] = sorted(props) if only_counts else None
    return result


_standard_changes = make_changes(Mailbox)


class MailboxSetArgs(SetArgs, kw_only=True):
    onDestroyRemoveEmails: bool = False


def _set(ctx: CallContext, args: MailboxSetArgs) -> dict[str, Any]:
    """[mail-2.5-onDestroyRemoveEmails] a non-empty mailbox is destroyed only
    when asked to take its Emails out (and destroy those left nowhere)."""
    from .store import MailWriter  # the mail write path needs the Email type too

    has_email: dict[str, SetError] = {}
    destroy = list(args.destroy or [])
    if destroy and not args.onDestroyRemoveEmails:
        with ctx.snapshot(args.accountId) as snap:
            for key in destroy:
                record = snap.get(MAILBOX, ctx.resolve_id(key) or "")
                if record is not None and record.get("totalEmails", 0) > 0:
                    has_email[key] = SetError("mailboxHasEmail", "The mailbox is not empty.")
        destroy = [key for key in destroy if key not in has_email]

    def take_emails_out(ctx: CallContext, snap: Snapshot, outcome: Any, set_args: Any) -> None:
        if not outcome.destroyed:
            return
        writer = MailWriter(ctx, snap, outcome.batch)
        for mailbox_id in outcome.destroyed:
            writer.empty_mailbox(mailbox_id)
        writer.finish()

    narrowed = MailboxSetArgs(
        accountId=args.accountId,
        ifInState=args.ifInState,
        create=args.create,
        update=args.update,
        destroy=destroy if args.destroy is not None else None,
        onDestroyRemoveEmails=args.onDestroyRemoveEmails,
    )
    result = run_set(ctx, Mailbox, narrowed, extend=take_emails_out)
    if has_email:
        result["notDestroyed"] = {**(result["notDestroyed"] or {}), **has_email}
    return result


class MailboxQueryArgs(QueryArgs, kw_only=True):
    sortAsTree: bool = False
    filterAsTree: bool = False


class MailboxQueryChangesArgs(QueryChangesArgs, kw_only=True):
    sortAsTree: bool = False
    filterAsTree: bool = False


def _as_tree(ctx: CallContext):
    """[mail-2.3-queryArgs] sortAsTree / filterAsTree as a result transform."""

    def transform(args: Any, snap: Snapshot, ids: Any) -> Any:
        if not (args.sortAsTree or args.filterAsTree):
            return ids
        matched = list(ids)
        every = {r["id"]: r for r in snap.get_many(MAILBOX, list(snap.ids(MAILBOX))) if r is not None}
        if args.filterAsTree:
            keep = set(matched)

            def ancestors_match(mailbox_id: str) -> bool:
                parent = every[mailbox_id].get("parentId")
                while parent is not None and parent in every:
                    if parent not in keep:
                        return False
                    parent = every[parent].get("parentId")
                return True

            matched = [m for m in matched if ancestors_match(m)]
        if not args.sortAsTree:
            return iter(matched)
        # Walk the tree in sort order; siblings keep the comparators' order.
        from jmapcore.standard.query import ordered_ids

        order = list(ordered_ids(snap, Mailbox, None, parse_sort(ctx, Mailbox, args.sort, snap)))
        children: dict[str | None, list[str]] = {}
        for mailbox_id in order:
            parent = every[mailbox_id].get("parentId")
            children.setdefault(parent if parent in every else None, []).append(mailbox_id)
        wanted = set(matched)
        tree_order: list[str] = []
        stack = list(reversed(children.get(None, [])))
        while stack:
            mailbox_id = stack.pop()
            if mailbox_id in wanted:
                tree_order.append(mailbox_id)
            stack.extend(reversed(children.get(mailbox_id, [])))
        return iter(tree_order)

    return transform


def _query(ctx: CallContext, args: MailboxQueryArgs) -> dict[str, Any]:
    return make_query(Mailbox, _as_tree(ctx))(ctx, args)


def _query_changes(ctx: CallContext, args: MailboxQueryChangesArgs) -> dict[str, Any]:
    return make_query_changes(Mailbox, _as_tree(ctx))(ctx, args)


METHODS = [
    Method("Mailbox/get", make_get(Mailbox), GetArgs, MAIL),
    Method("Mailbox/changes", _changes, MailboxChangesArgs, MAIL),
    Method("Mailbox/set", _set, MailboxSetArgs, MAIL, writes=True),
    Method("Mailbox/query", _query, MailboxQueryArgs, MAIL),
    Method("Mailbox/queryChanges", _query_changes, MailboxQueryChangesArgs, MAIL),
]

__all__ = ["ALL_RIGHTS", "EMAIL", "METHODS", "Mailbox", "THREAD"]
