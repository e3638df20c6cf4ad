"""AddressBook (RFC 9610 §2): the type, the default address book, and /set
with onDestroyRemoveContents and onSuccessSetIsDefault.

Sharing (RFC 9670) is not offered: every address book is its owner's, so
``myRights`` grants everything and ``shareWith`` stays null; a shareWith
naming any Principal is refused since the server has no Principals
([contacts-2-shareWith]).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from msgspec import Meta

from jmapcore.api import Core
from jmapcore.context import CallContext, new_id
from jmapcore.datatype import DataType, Filter, Property, property_sort
from jmapcore.errors import SetError
from jmapcore.standard.args import SetArgs
from jmapcore.standard.set import SetOutcome, run_set
from jmapcore.storage import AccountInfo, Destroy, Put, Record, Snapshot, StateConflict, WriteBatch
from jmapcore.wire import Id

from .constants import (
    ADDRESS_BOOK,
    BOOK_INDEX,
    CARD,
    CONTACTS,
    DEFAULT_BOOK_NAME,
    MAX_NAME_OCTETS,
    OWNER_RIGHTS,
)

UnsignedInt31 = Annotated[int, Meta(ge=0, lt=2**31)]


def _fill_server_set(ctx: CallContext, record: Record, old: Record | None) -> None:
    record["myRights"] = dict(OWNER_RIGHTS)
    if old is None:
        record["isDefault"] = False
    if record.get("shareWith") == {}:
        record["shareWith"] = None


def _validate(ctx: CallContext, record: Record, old: Record | None) -> SetError | None:
    """[contacts-2-props] [contacts-2-shareWith] one address book's own rules."""
    name = record["name"]
    if not name or len(name.encode("utf-8")) > MAX_NAME_OCTETS:
        return SetError.invalid_properties(["name"], f"A name has 1 to {MAX_NAME_OCTETS} octets of UTF-8.")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
        return SetError.invalid_properties(["name"], "A name has no control characters.")
    if record.get("shareWith") is not None:
        return SetError.invalid_properties(
            ["shareWith"], "This server has no Principals to share with (RFC 9670 is not supported)."
        )
    return None


AddressBook = DataType(
    name=ADDRESS_BOOK,
    capability=CONTACTS,
    properties={
        "name": Property(str),
        "description": Property(str | None, default=None),
        "sortOrder": Property(UnsignedInt31, default=0),
        "isDefault": Property(bool, server_set=True),
        # [contacts-2-isSubscribed] true for books the user creates.
        "isSubscribed": Property(bool, default=True),
        "shareWith": Property(dict[Id, dict[str, bool]] | None, default=None),
        "myRights": Property(dict, server_set=True),
    },
    methods=(),
    filters={
        "name": Filter(str, match=lambda r, v: v.casefold() in r["name"].casefold()),
        "isSubscribed": Filter(bool, match=lambda r, v: r.get("isSubscribed") is v),
    },
    sorts={"sortOrder": property_sort("sortOrder"), "name": property_sort("name", text=True)},
    id_prefix="B",
    validate=_validate,
    compute=_fill_server_set,
)


def default_book_record() -> Record:
    return {
        "id": new_id("B"),
        "name": DEFAULT_BOOK_NAME,
        "description": None,
        "sortOrder": 0,
        "isDefault": True,
        "isSubscribed": True,
        "shareWith": None,
        "myRights": dict(OWNER_RIGHTS),
    }


def create_default_book(core: Core, account: AccountInfo) -> None:
    """``on_account_created``: every account starts with one default address book."""
    batch = WriteBatch(account.account_id, expect={ADDRESS_BOOK: 0})
    batch.puts.append(Put(ADDRESS_BOOK, default_book_record(), created=True))
    try:
        core.backend.commit(batch)
    except StateConflict:
        pass  # made already (lazily, by a request that came first)


def ensure_default_book(ctx: CallContext, account_id: str) -> None:
    """Accounts that predate the plugin get their default address book at the
    first contacts call: when AddressBook has never been written at all (a
    user who later destroys every book is not given one back)."""
    with ctx.snapshot(account_id) as snap:
        if snap.type_modseq(ADDRESS_BOOK) != 0:
            return
    info = ctx.core.account_info(account_id)
    if info is None or info.is_read_only:
        return
    create_default_book(ctx.core, info)


def default_book_id(snap: Snapshot) -> str | None:
    """The default address book's id (address books are few: read them all)."""
    ids = list(snap.ids(ADDRESS_BOOK))
    for record in snap.get_many(ADDRESS_BOOK, ids):
        if record is not None and record.get("isDefault"):
            return record["id"]
    return None


class AddressBookSetArgs(SetArgs, kw_only=True):
    onDestroyRemoveContents: bool = False
    onSuccessSetIsDefault: str | None = None


def _book_cards(snap: Snapshot, book_id: str) -> list[str]:
    return [card_id for _, card_id in snap.scan_index(CARD, BOOK_INDEX, (book_id,))]


def _remove_contents(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, args: AddressBookSetArgs) -> None:
    """[contacts-2.3-onDestroyRemoveContents] a non-empty book is destroyed only
    when asked to; its cards then leave it, and those left in no book go."""
    if not outcome.destroyed:
        return
    outcome.batch.expect[CARD] = snap.type_modseq(CARD)
    keys = {ctx.resolve_id(key) or key: key for key in args.destroy or []}
    gone = set()
    for book_id in list(outcome.destroyed):
        cards = _book_cards(snap, book_id)
        if not cards:
            continue
        if not args.onDestroyRemoveContents:
            outcome.destroyed.remove(book_id)
            outcome.batch.destroys = [
                d for d in outcome.batch.destroys if not (d.type_name == ADDRESS_BOOK and d.id == book_id)
            ]
            outcome.not_destroyed[keys.get(book_id, book_id)] = SetError(
                "addressBookHasContents", "The address book still has cards (use onDestroyRemoveContents)."
            )
            continue
        gone.add(book_id)
    if not gone:
        return
    changed: dict[str, Record] = {}
    for book_id in gone:
        cards = _book_cards(snap, book_id)
        for card_id, card in zip(cards, snap.get_many(CARD, cards), strict=True):
            if card is None:
                continue
            card = changed.get(card_id, card)
            books = {b: True for b in card.get("addressBookIds") or {} if b not in gone}
            changed[card_id] = {**card, "addressBookIds": books}
    from .card import count_media  # the card module imports this one

    for card_id, card in changed.items():
        if card["addressBookIds"]:
            outcome.batch.puts.append(Put(CARD, card, created=False))
        else:
            outcome.batch.destroys.append(Destroy(CARD, card_id))
            count_media(outcome.batch.blob_refs, card, None)


def _set_default(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, args: AddressBookSetArgs) -> None:
    """[contacts-2.3-onSuccessSetIsDefault] after a wholly successful call,
    make the named book the default; unknown ids are ignored silently."""
    wanted = args.onSuccessSetIsDefault
    if wanted is None or outcome.not_created or outcome.not_updated or outcome.not_destroyed:
        return
    if wanted.startswith("#"):
        target = outcome.created_ids.get(wanted[1:]) or ctx.resolve_id(wanted)
    else:
        target = wanted
    if target is None or target in outcome.destroyed:
        return
    pending = {put.record["id"]: put for put in outcome.batch.puts if put.type_name == ADDRESS_BOOK}
    books = {r["id"]: r for r in snap.get_many(ADDRESS_BOOK, list(snap.ids(ADDRESS_BOOK))) if r is not None}
    books.update({record_id: put.record for record_id, put in pending.items()})
    for record_id in outcome.destroyed:
        books.pop(record_id, None)
    if target not in books:
        return
    creation = {record_id: cid for cid, record_id in outcome.created_ids.items()}
    for record_id, record in books.items():
        should = record_id == target
        if bool(record.get("isDefault")) == should:
            continue
        if record_id in pending:
            pending[record_id].record["isDefault"] = should
        else:
            outcome.batch.puts.append(Put(ADDRESS_BOOK, {**record, "isDefault": should}, created=False))
        if record_id in creation:
            outcome.created[creation[record_id]]["isDefault"] = should
        else:
            outcome.updated[record_id] = {**(outcome.updated.get(record_id) or {}), "isDefault": should}


def address_book_set(ctx: CallContext, args: AddressBookSetArgs) -> dict[str, Any]:
    ctx.account(args.accountId, CONTACTS, write=True)
    ensure_default_book(ctx, args.accountId)

    def extend(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, set_args: Any) -> None:
        _remove_contents(ctx, snap, outcome, args)
        _set_default(ctx, snap, outcome, args)

    return run_set(ctx, AddressBook, args, extend=extend)
