"""Names and limits of the contacts capability (RFC 9610)."""

from __future__ import annotations

CONTACTS = "urn:ietf:params:jmap:contacts"
ADDRESS_BOOK = "AddressBook"
CARD = "ContactCard"

#: [contacts-1.4.1-capability] null: a card may be in any number of books.
MAX_ADDRESS_BOOKS_PER_CARD: int | None = None
#: [contacts-2-props] a name is 1 to 255 octets of UTF-8.
MAX_NAME_OCTETS = 255
DEFAULT_BOOK_NAME = "Contacts"

#: [contacts-2-rights] the owner may do everything.
OWNER_RIGHTS = {"mayRead": True, "mayWrite": True, "mayShare": True, "mayDelete": True}

#: Index of cards by address book id: (bookId, cardId).
BOOK_INDEX = "book"
#: Index of cards by uid.
UID_INDEX = "uid"
#: Index of group cards by member uid.
MEMBER_INDEX = "member"
#: Index of cards by kind.
KIND_INDEX = "kind"
