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
from jmapcore.collection import (
    create_default,
    default_id,
    ensure_default,
    remove_members,
    set_default,
)
from jmapcore.context import CallContext, new_id
from jmapcore.datatype import DataType, Filter, Property, property_sort
from jmapcore.errors import SetError
from jmapcore.standard.args import SetArgs
from jmapcore.standard.set import SetOutcome, run_set
from jmapcore.storage import AccountInfo, Record, Snapshot
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
    create_default(core, account.account_id, ADDRESS_BOOK, default_book_record())


def ensure_default_book(ctx: CallContext, account_id: str) -> None:
    """Accounts that predate the plugin get their default address book at the first contacts call."""
    ensure_default(ctx, account_id, ADDRESS_BOOK, default_book_record)


def default_book_id(snap: Snapshot) -> str | None:
    return default_id(snap, ADDRESS_BOOK)


class AddressBookSetArgs(SetArgs, kw_only=True):
    onDestroyRemoveContents: bool = False
    onSuccessSetIsDefault: str | None = None


def _book_cards(snap: Snapshot, book_id: str) -> list[str]:
    return [card_id for _, card_id in snap.scan_index(CARD, BOOK_INDEX, (book_id,))]


def _remove_contents(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, args: AddressBookSetArgs) -> None:
    """[contacts-2.3-onDestroyRemoveContents] a non-empty book is destroyed only
    when asked to; its cards then leave it, and those left in no book go."""
    from .card import count_media  # the card module imports this one

    remove_members(
        ctx, snap, outcome,
        collection_type=ADDRESS_BOOK, member_type=CARD, membership="addressBookIds",
        members_of=_book_cards, destroy_keys=args.destroy or [],
        remove_contents=args.onDestroyRemoveContents,
        refusal=lambda: SetError(
            "addressBookHasContents", "The address book still has cards (use onDestroyRemoveContents)."
        ),
        dropped=lambda card: count_media(outcome.batch.blob_refs, card, None),
    )


def address_book_set(ctx: CallContext, args: AddressBookSetArgs) -> dict[str, Any]:
    ctx.account(args.accountId, CONTACTS, write=True)
    ensure_default_book(ctx, args.accountId)

    def extend(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, set_args: Any) -> None:
        _remove_contents(ctx, snap, outcome, args)
        set_default(ctx, snap, outcome, args.onSuccessSetIsDefault, ADDRESS_BOOK)  # [contacts-2.3-onSuccessSetIsDefault]

    return run_set(ctx, AddressBook, args, extend=extend)
