"""JMAP for Contacts (RFC 9610): AddressBook and ContactCard (JSContact, RFC 9553).

Registered through the public plugin API only, like a third party's plugin
(the ``jmapcore.plugins`` entry point ``contacts``): two data types described
once, the standard methods built from them, and a few hooks (the default
address book, onDestroyRemoveContents, uid uniqueness, search documents).
:mod:`jmap_contacts.jscontact` validates cards (``validate_card``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jmapcore.context import CallContext
from jmapcore.registry import Method, Plugin
from jmapcore.standard import make_changes, make_get, make_query, make_query_changes
from jmapcore.standard.args import (
    ChangesArgs,
    CopyArgs,
    GetArgs,
    QueryArgs,
    QueryChangesArgs,
    SetArgs,
)
from jmapcore.storage import AccountInfo

from .addressbook import (
    AddressBook,
    AddressBookSetArgs,
    address_book_set,
    create_default_book,
    ensure_default_book,
)
from .card import ContactCard, card_copy, card_get, card_set, search_documents
from .constants import ADDRESS_BOOK, CARD, CONTACTS, MAX_ADDRESS_BOOKS_PER_CARD
from .jscontact import validate_card


def account_capability(account: AccountInfo) -> dict[str, Any]:
    """[contacts-1.4.1-capability]"""
    return {
        "maxAddressBooksPerCard": MAX_ADDRESS_BOOKS_PER_CARD,
        "mayCreateAddressBook": not account.is_read_only,
    }


def _lazy_default(handler: Callable[[CallContext, Any], Any]) -> Callable[[CallContext, Any], Any]:
    """Reads of an account that predates the plugin see its default book too."""

    def call(ctx: CallContext, args: Any) -> Any:
        ctx.account(args.accountId, CONTACTS)
        ensure_default_book(ctx, args.accountId)
        return handler(ctx, args)

    return call


plugin = Plugin(
    capability=CONTACTS,
    session_capability={},
    account_capability=account_capability,
    types=[AddressBook, ContactCard],
    methods=[
        Method(f"{ADDRESS_BOOK}/get", _lazy_default(make_get(AddressBook)), GetArgs, CONTACTS),
        Method(f"{ADDRESS_BOOK}/changes", _lazy_default(make_changes(AddressBook)), ChangesArgs, CONTACTS),
        Method(f"{ADDRESS_BOOK}/set", address_book_set, AddressBookSetArgs, CONTACTS, writes=True),
        Method(f"{CARD}/get", _lazy_default(card_get), GetArgs, CONTACTS),
        Method(f"{CARD}/changes", _lazy_default(make_changes(ContactCard)), ChangesArgs, CONTACTS),
        Method(f"{CARD}/set", card_set, SetArgs, CONTACTS, writes=True),
        Method(f"{CARD}/copy", card_copy, CopyArgs, CONTACTS, writes=True),
        Method(f"{CARD}/query", _lazy_default(make_query(ContactCard)), QueryArgs, CONTACTS),
        Method(f"{CARD}/queryChanges", _lazy_default(make_query_changes(ContactCard)), QueryChangesArgs, CONTACTS),
    ],
    on_account_created=create_default_book,
    push_types=[ADDRESS_BOOK, CARD],
    search_documents={CARD: search_documents},
)

__all__ = ["CONTACTS", "plugin", "validate_card"]
