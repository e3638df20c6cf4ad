"""ContactCard (RFC 9610 §3): a JSContact Card (RFC 9553) in address books.

The type is described once for the standard methods; this module adds what
a Card needs beyond a flat record:

* **properties**: a Card may hold any JSContact property, vendor ones
  included, so :class:`CardProperties` answers "is this a property?" for
  every valid name while listing only the few with defaults; the whole card
  is checked by :func:`jmap_contacts.jscontact.card_problems` on every create
  and update, so a bad card fails with ``invalidProperties`` naming the paths
  (``emails/e1/address``) [jscontact-1.7-validation];
* **server-maintained values**: ``uid`` defaults to a ``urn:uuid:`` URN,
  ``created`` to the time of the create (a client or an importer may give its
  own; it is immutable afterwards), ``updated`` to the time of every write
  (a create may give its own); null-valued properties are removed;
* **uid uniqueness** [contacts-3-uidUnique] through the ``uid`` index, for the
  state the whole /set leaves;
* **search**: the text of each written card goes to the search role with the
  batch; text filters start from its hits [contacts-3.3.1-matching];
* **indexes** by address book, uid, group member and kind, and sort indexes,
  so no query scans an address book where an index can answer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from jmapcore.context import CallContext
from jmapcore.datatype import Candidates, DataType, Filter, Property, Sort
from jmapcore.errors import MethodError, SetError
from jmapcore.standard.args import CopyArgs, GetArgs, SetArgs
from jmapcore.standard.copy import copy_through_set
from jmapcore.standard.get import make_get, request_too_large
from jmapcore.standard.set import SetOutcome, run_set
from jmapcore.state import type_state
from jmapcore.storage import IndexSpec, Record, SearchDocument, Snapshot
from jmapcore.textsearch import parse_query, term_in, words
from jmapcore.wire import Id

from .addressbook import default_book_id, ensure_default_book
from .constants import ADDRESS_BOOK, BOOK_INDEX, CARD, CONTACTS, KIND_INDEX, MEMBER_INDEX, UID_INDEX
from .jscontact import card_problems, is_utc_datetime, property_name_ok

# -- properties ----------------------------------------------------------------

#: Any JSContact property not listed below: stored and returned as given,
#: checked by the Card validator.
_FREE = Property(Any)

#: The properties with a JMAP meaning or a default (the rest are free).
_FIXED: dict[str, Property] = {
    "id": Property(str, server_set=True, immutable=True),
    # [contacts-3-props] true values, at least one book, existing books.
    "addressBookIds": Property(dict[Id, Literal[True]], ref=ADDRESS_BOOK),
    "@type": Property(str, default="Card"),
    "version": Property(str, default="1.0"),
}


class CardProperties(Mapping[str, Property]):
    """Every valid JSContact property name is a property; iterating lists
    only the fixed ones (those with a default or a JMAP meaning), so absent
    optional properties stay absent instead of being stored as null."""

    def __getitem__(self, name: str) -> Property:
        fixed = _FIXED.get(name)
        if fixed is not None:
            return fixed
        if property_name_ok(name):
            return _FREE
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in _FIXED or property_name_ok(name))

    def __iter__(self) -> Iterator[str]:
        return iter(_FIXED)

    def __len__(self) -> int:
        return len(_FIXED)


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _compute(ctx: CallContext, record: Record, old: Record | None) -> None:
    for name in [name for name, value in record.items() if value is None]:
        del record[name]  # a patch to null removes a JSContact property
    if old is None:
        record.setdefault("uid", f"urn:uuid:{uuid.uuid4()}")
        now = now_utc()
        record.setdefault("created", now)
        record.setdefault("updated", now)
    else:
        record["updated"] = now_utc()


def _validate(ctx: CallContext, record: Record, old: Record | None) -> SetError | None:
    problems = card_problems({k: v for k, v in record.items() if k not in ("id", "addressBookIds")})
    books = record.get("addressBookIds")
    if not books:
        return SetError.invalid_properties(["addressBookIds"], "A card belongs to at least one address book.")
    if old is not None and record.get("created") != old.get("created"):
        return SetError.invalid_properties(["created"], "created cannot change.")
    if problems:
        return SetError.invalid_properties(
            [p.path for p in problems], "Invalid card: " + "; ".join(f"{p.path or '(card)'} {p.message}" for p in problems[:10]) + "."
        )
    return None


# -- text of a card, per filter ------------------------------------------------


def _values(record: Record, prop: str, *fields: str) -> list[str]:
    found: list[str] = []
    entries = record.get(prop)
    if not isinstance(entries, dict):
        return found
    for entry in entries.values():
        if isinstance(entry, dict):
            found.extend(entry[f] for f in fields if isinstance(entry.get(f), str))
    return found


def _name_parts(record: Record, kind: str | None) -> list[str]:
    name = record.get("name")
    if not isinstance(name, dict):
        return []
    parts = [
        c["value"]
        for c in name.get("components") or ()
        if isinstance(c, dict) and isinstance(c.get("value"), str) and c.get("kind") != "separator"
        and (kind is None or c.get("kind") == kind)
    ]
    if kind is None:
        if len(parts) > 1:
            parts.append(" ".join(parts))  # so that a quoted "given surname" matches
        if isinstance(name.get("full"), str):
            parts.append(name["full"])
    return parts


def _address_parts(record: Record) -> list[str]:
    found: list[str] = []
    for address in (record.get("addresses") or {}).values():
        if not isinstance(address, dict):
            continue
        found.extend(
            c["value"] for c in address.get("components") or () if isinstance(c, dict) and isinstance(c.get("value"), str)
        )
        if isinstance(address.get("full"), str):
            found.append(address["full"])
    return found


#: Filter name -> (the search field that holds its text, the text itself).
TEXT_FILTERS: dict[str, tuple[str, Callable[[Record], list[str]]]] = {
    "name": ("name", lambda r: _name_parts(r, None)),
    "name/given": ("name", lambda r: _name_parts(r, "given")),
    "name/surname": ("name", lambda r: _name_parts(r, "surname")),
    "name/surname2": ("name", lambda r: _name_parts(r, "surname2")),
    "nickname": ("name", lambda r: _values(r, "nicknames", "name")),
    "organization": ("org", lambda r: _values(r, "organizations", "name")),
    "email": ("contact", lambda r: _values(r, "emails", "address", "label")),
    "phone": ("contact", lambda r: _values(r, "phones", "number", "label")),
    "onlineService": ("contact", lambda r: _values(r, "onlineServices", "service", "uri", "user", "label")),
    "address": ("contact", _address_parts),
    "note": ("note", lambda r: _values(r, "notes", "note")),
}


def _other_text(record: Record) -> list[str]:
    found = _values(record, "titles", "name") + _values(record, "personalInfo", "value")
    for org in (record.get("organizations") or {}).values():
        if isinstance(org, dict):
            found.extend(u["name"] for u in org.get("units") or () if isinstance(u, dict) and isinstance(u.get("name"), str))
    found.extend(k for k in record.get("keywords") or {} if isinstance(k, str))
    return found


def search_document(record: Record) -> SearchDocument:
    """The card's text for the search role, in four fields (the FTS backend
    has 16 field slots for every type together): name (name and nicknames),
    org (organizations, units, titles, personal info, keywords), contact
    (emails, phones, online services, addresses) and note (notes)."""
    fields: dict[str, list[str]] = {
        "name": _name_parts(record, None) + _values(record, "nicknames", "name"),
        "org": _values(record, "organizations", "name") + _other_text(record),
        "contact": [text for name in ("email", "phone", "onlineService", "address") for text in TEXT_FILTERS[name][1](record)],
        "note": _values(record, "notes", "note"),
    }
    return SearchDocument(CARD, record["id"], {name: "\n".join(parts) for name, parts in fields.items()})


def search_documents(snap: Snapshot) -> Iterator[SearchDocument]:
    """Every card's search document (``jmapcore reindex``)."""
    ids = list(snap.ids(CARD))
    for start in range(0, len(ids), 256):
        for record in snap.get_many(CARD, ids[start : start + 256]):
            if record is not None:
                yield search_document(record)


def _matches(query: str, texts: list[str]) -> bool:
    """The search role's semantics, on one property's text: every term must
    occur in one of the values (the reference matcher of jmapcore.textsearch)."""
    terms = parse_query(query)
    if not terms:
        return False
    value_words = [words(text) for text in texts]
    return all(
        any(term_in(words(term.text), not term.phrase, found) for found in value_words) for term in terms
    )


def _text_filter(name: str) -> Filter:
    field, text = TEXT_FILTERS[name]

    def bind(snap: Snapshot, value: str) -> Callable[[Record], bool]:
        hits = snap.search(CARD, field, value)
        return lambda record: record["id"] in hits and _matches(value, text(record))

    return Filter(str, bind=bind)


def _search_all(snap: Snapshot, value: str) -> Callable[[Record], bool]:
    hits = snap.search(CARD, None, value)
    return lambda record: record["id"] in hits


# -- dates ---------------------------------------------------------------------


def seconds(value: Any) -> float | None:
    """A UTCDate(Time) as seconds since the epoch (fractions and all), or None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _utc_filter(prop: str, before: bool) -> Filter:
    def bind(snap: Snapshot, value: str) -> Callable[[Record], bool]:
        bound = seconds(value) if is_utc_datetime(value) or value.endswith("Z") else None
        if bound is None:
            raise MethodError.invalid_arguments(f"{value!r} is not a UTCDate.")

        def match(record: Record) -> bool:
            when = seconds(record.get(prop))
            return when is not None and (when < bound if before else when >= bound)

        return match

    return Filter(str, bind=bind)


# -- filters, sorts, indexes -----------------------------------------------------

FILTERS: dict[str, Filter] = {
    # [contacts-3.3.1-filter]
    "inAddressBook": Filter(Id, match=lambda r, v: v in (r.get("addressBookIds") or {})),
    "uid": Filter(str, match=lambda r, v: r.get("uid") == v),
    "hasMember": Filter(str, match=lambda r, v: v in (r.get("members") or {})),
    "kind": Filter(str, match=lambda r, v: r.get("kind", "individual") == v),
    "createdBefore": _utc_filter("created", True),
    "createdAfter": _utc_filter("created", False),
    "updatedBefore": _utc_filter("updated", True),
    "updatedAfter": _utc_filter("updated", False),
    "text": Filter(str, bind=_search_all),
    **{name: _text_filter(name) for name in TEXT_FILTERS},
}


def _first_component(kind: str) -> Callable[[Record], str | None]:
    """[contacts-3.3.2-sort] the first NameComponent of that kind."""

    def key(record: Record) -> str | None:
        parts = _name_parts(record, kind)
        return parts[0] if parts else None

    return key


SORTS: dict[str, Sort] = {
    # [contacts-3.3.2-sort]
    "created": Sort(lambda r: seconds(r.get("created")), indexed=True),
    "updated": Sort(lambda r: seconds(r.get("updated")), indexed=True),
    "name/given": Sort(_first_component("given"), text=True, indexed=True),
    "name/surname": Sort(_first_component("surname"), text=True, indexed=True),
    "name/surname2": Sort(_first_component("surname2"), text=True, indexed=True),
}

INDEXES = (
    IndexSpec(CARD, BOOK_INDEX, lambda r: [(book,) for book in r.get("addressBookIds") or {}]),
    IndexSpec(CARD, UID_INDEX, lambda r: [(r["uid"],)] if isinstance(r.get("uid"), str) else []),
    IndexSpec(CARD, MEMBER_INDEX, lambda r: [(m,) for m in r.get("members") or {} if isinstance(m, str)]),
    IndexSpec(CARD, KIND_INDEX, lambda r: [(r.get("kind", "individual"),)]),
)


def _top_conditions(tree: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if tree is None:
        return []
    if "operator" not in tree:
        return [tree]
    if tree.get("operator") != "AND":
        return []
    return [c for c in tree.get("conditions") or () if isinstance(c, dict) and "operator" not in c]


def _index_ids(snap: Snapshot, index: str, value: Any) -> set[str]:
    return {card_id for _, card_id in snap.scan_index(CARD, index, (value,))}


def _range_walk(snap: Snapshot, prop: str, conditions: list[Mapping[str, Any]]) -> set[str] | None:
    """Cards in a created/updated range, from the sort index, stopping at the bound."""
    for condition in conditions:
        for suffix, before in (("Before", True), ("After", False)):
            value = condition.get(f"{prop}{suffix}")
            bound = seconds(value) if isinstance(value, str) else None
            if bound is None:
                continue
            found: set[str] = set()
            for key, card_id in snap.scan_index(CARD, f"sort:{prop}", reverse=not before):
                when = key[0]
                if when is None or not isinstance(when, int | float):
                    if before:
                        continue
                    break
                if (before and when >= bound) or (not before and when < bound):
                    break
                found.add(card_id)
            return found
    return None


#: Above this many candidates, walking a sort index and keeping the
#: candidates beats reading and sorting every one of them.
MANY_CANDIDATES = 256


def _narrowed(snap: Snapshot, ids: set[str], comparators: Sequence[Any]) -> Candidates:
    """Candidates from an index or the search role: in id order without a
    sort (so only the page is read), through the sort index when there are
    many, else unordered (read and sorted)."""
    if not comparators:
        return Candidates(sorted(ids), ordered=True)
    first = comparators[0]
    if (
        len(ids) > MANY_CANDIDATES
        and len(comparators) == 1
        and first.sort.indexed
        and first.collation == "i;unicode-casemap"
    ):
        walk = snap.scan_index(CARD, f"sort:{first.name}", reverse=not first.ascending)
        return Candidates((card_id for _, card_id in walk if card_id in ids), ordered=True)
    return Candidates(ids, ordered=False)


def plan(snap: Snapshot, tree: Mapping[str, Any] | None, comparators: Sequence[Any]) -> Candidates | None:
    """Offer candidates from an index or the search role instead of a scan."""
    conditions = _top_conditions(tree)
    narrow: set[str] | None = None

    def meet(ids: set[str]) -> None:
        nonlocal narrow
        narrow = ids if narrow is None else narrow & ids

    for condition in conditions:
        if isinstance(condition.get("uid"), str):
            meet(_index_ids(snap, UID_INDEX, condition["uid"]))
        if isinstance(condition.get("hasMember"), str):
            meet(_index_ids(snap, MEMBER_INDEX, condition["hasMember"]))
        if isinstance(condition.get("text"), str):
            meet(snap.search(CARD, None, condition["text"]))
        for name, (field, _) in TEXT_FILTERS.items():
            if isinstance(condition.get(name), str):
                meet(snap.search(CARD, field, condition[name]))
    if narrow is None:
        for prop in ("created", "updated"):
            found = _range_walk(snap, prop, conditions)
            if found is not None:
                meet(found)
                break
    if narrow is not None:
        return _narrowed(snap, narrow, comparators)
    book = next((c["inAddressBook"] for c in conditions if isinstance(c.get("inAddressBook"), str)), None)
    kind = next((c["kind"] for c in conditions if isinstance(c.get("kind"), str)), None)
    if book is None and kind is None:
        return None
    index, value = (BOOK_INDEX, book) if book is not None else (KIND_INDEX, kind)
    if not comparators:
        # The index yields the book's cards in id order: the query's order.
        walk = (card_id for _, card_id in snap.scan_index(CARD, index, (value,)))
        only = tree is not None and "operator" not in tree and len(tree) == 1
        return Candidates(walk, ordered=True, exact=only)
    if len(comparators) == 1 and comparators[0].sort.indexed and comparators[0].collation == "i;unicode-casemap":
        return None  # the standard /query walks the sort index
    return Candidates(_index_ids(snap, index, value), ordered=False)


ContactCard = DataType(
    name=CARD,
    capability=CONTACTS,
    properties=CardProperties(),
    methods=(),
    filters=FILTERS,
    sorts=SORTS,
    id_prefix="C",
    get_all=True,
    validate=_validate,
    compute=_compute,
    extra_indexes=INDEXES,
    plan=plan,
)

# -- methods ---------------------------------------------------------------------


def _check_uids(snap: Snapshot, outcome: SetOutcome) -> None:
    """[contacts-3-uidUnique] at most one card per uid in the account, for
    the state the call leaves: a create or update that takes a uid another
    card keeps fails with invalidProperties (the first in the call wins)."""
    destroyed = {d.id for d in outcome.batch.destroys if d.type_name == CARD}
    puts = [put for put in outcome.batch.puts if put.type_name == CARD]
    written = {put.record["id"] for put in puts}
    taken: dict[str, str] = {}
    failed: set[str] = set()
    for put in puts:
        record = put.record
        uid = record.get("uid")
        old = None if put.created else snap.get(CARD, record["id"])
        if not isinstance(uid, str) or (old is not None and old.get("uid") == uid):
            taken.setdefault(uid, record["id"])
            continue
        holders = _index_ids(snap, UID_INDEX, uid) - destroyed - written - {record["id"]}
        if holders or taken.get(uid, record["id"]) != record["id"]:
            failed.add(record["id"])
        else:
            taken[uid] = record["id"]
    if not failed:
        return
    error = SetError.invalid_properties(["uid"], "Another card in this account has that uid.")
    _fail(outcome, dict.fromkeys(failed, error))


def _fail(outcome: SetOutcome, errors: dict[str, SetError]) -> None:
    """Take cards out of a planned /set: their creates or updates fail."""
    outcome.batch.puts = [p for p in outcome.batch.puts if not (p.type_name == CARD and p.record["id"] in errors)]
    for creation_id, record_id in list(outcome.created_ids.items()):
        if record_id in errors:
            del outcome.created_ids[creation_id]
            outcome.created.pop(creation_id, None)
            outcome.not_created[creation_id] = errors[record_id]
    for record_id in list(outcome.updated):
        if record_id in errors:
            del outcome.updated[record_id]
            outcome.not_updated[record_id] = errors[record_id]


# -- media blobs ([contacts-3-mediaBlobId] [contacts-3.5-photo]) ---------------------

#: Leading octets of the image formats a photo or logo may be in.
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def looks_like_image(head: bytes) -> bool:
    if head.startswith(_IMAGE_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"heic", b"heix", b"mif1"):
        return True
    text = head.lstrip()[:5].lower()
    return text.startswith((b"<svg", b"<?xml"))


def media_blobs(record: Record | None) -> dict[str, tuple[str, str]]:
    """blobId -> (path of the Media object, its kind), for a card's media."""
    found: dict[str, tuple[str, str]] = {}
    media = (record or {}).get("media")
    if isinstance(media, dict):
        for key, item in media.items():
            if isinstance(item, dict) and isinstance(item.get("blobId"), str):
                found.setdefault(item["blobId"], (f"media/{key}", str(item.get("kind"))))
    return found


def _check_media(ctx: CallContext, snap: Snapshot, outcome: SetOutcome) -> None:
    """A Media blobId must be a blob the caller may use, and a photo or logo
    must be an image; references are counted so the blob is kept."""
    errors: dict[str, SetError] = {}
    for put in outcome.batch.puts:
        if put.type_name != CARD:
            continue
        old = None if put.created else snap.get(CARD, put.record["id"])
        before = media_blobs(old)
        bad: list[str] = []
        for blob_id, (path, kind) in media_blobs(put.record).items():
            if blob_id in before:
                continue
            if not ctx.core.blob_visible(ctx.principal, snap.blob_info(blob_id)):
                bad.append(f"{path}/blobId")
            elif kind in ("photo", "logo") and not looks_like_image(snap.read_blob(blob_id, 0, 16) or b""):
                bad.append(f"{path}/blobId")
        if bad:
            errors[put.record["id"]] = SetError.invalid_properties(bad, "Media blobs must exist, and photos be images.")
    _fail(outcome, errors)
    refs = outcome.batch.blob_refs
    for put in outcome.batch.puts:
        if put.type_name == CARD:
            old = None if put.created else snap.get(CARD, put.record["id"])
            count_media(refs, old, put.record)
    for destroy in outcome.batch.destroys:
        if destroy.type_name == CARD:
            count_media(refs, snap.get(CARD, destroy.id), None)


def count_media(refs: dict[str, int], old: Record | None, new: Record | None) -> None:
    """The change in blob references when ``old`` becomes ``new``."""
    for blob_id in media_blobs(old):
        refs[blob_id] = refs.get(blob_id, 0) - 1
    for blob_id in media_blobs(new):
        refs[blob_id] = refs.get(blob_id, 0) + 1


def _finish_batch(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, args: Any) -> None:
    """Uid uniqueness, media blobs, the new ``updated`` of updated cards,
    and the search documents of every card written."""
    _check_uids(snap, outcome)
    _check_media(ctx, snap, outcome)
    for put in outcome.batch.puts:
        if put.type_name != CARD:
            continue
        outcome.batch.search.append(search_document(put.record))
        if put.record["id"] in outcome.updated:
            outcome.updated[put.record["id"]] = {"updated": put.record["updated"]}


def _fill_books(ctx: CallContext, account_id: str, create: dict[str, dict[str, Any]] | None) -> list[str]:
    """Creates without addressBookIds go into the default address book;
    returns their creation ids."""
    missing = [cid for cid, values in (create or {}).items() if "addressBookIds" not in values]
    if not missing:
        return []
    with ctx.snapshot(account_id) as snap:
        book = default_book_id(snap)
    if book is None:
        return []
    for cid in missing:
        create[cid] = {**create[cid], "addressBookIds": {book: True}}  # type: ignore[index]
    return missing


def card_set(ctx: CallContext, args: SetArgs) -> dict[str, Any]:
    """ContactCard/set: the standard /set plus uid uniqueness, search
    documents and the default address book for cards created without one."""
    ctx.account(args.accountId, CONTACTS, write=True)
    ensure_default_book(ctx, args.accountId)
    filled = _fill_books(ctx, args.accountId, args.create)
    result = run_set(ctx, ContactCard, args, extend=_finish_batch)
    for cid in filled:
        if result["created"] and cid in result["created"]:
            result["created"][cid]["addressBookIds"] = args.create[cid]["addressBookIds"]  # type: ignore[index]
    return result


def card_copy(ctx: CallContext, args: CopyArgs) -> None:
    """ContactCard/copy (RFC 8620 §5.4) through ContactCard/set, so copies
    are validated, indexed and searchable in the target; without
    ``addressBookIds`` a copy goes into the target's default address book,
    and its media blobs get their own copy there."""
    copy_through_set(
        ctx, args, type_name=CARD, capability=CONTACTS, source_only=("addressBookIds",),
        set_method=card_set, blob_ids=media_blobs,
    )


def card_get(ctx: CallContext, args: GetArgs) -> dict[str, Any]:
    """ContactCard/get: the standard /get, except that ``properties: null``
    returns every property the card has (unknown and vendor ones included),
    not a fixed list [jscontact-1.7-validation] [jscontact-1.8-vendor]."""
    if args.properties is not None:
        return _standard_get(ctx, args)
    ctx.account(args.accountId, CONTACTS)
    limit = ctx.limits.maxObjectsInGet
    if args.ids is not None and len(args.ids) > limit:
        raise request_too_large(limit, "ids")
    with ctx.snapshot(args.accountId) as snap:
        state = type_state(snap.epoch(), snap.type_modseq(CARD))
        if args.ids is None:
            if snap.count(CARD) > limit:
                raise request_too_large(limit, "records (ids: null)")
            wanted = list(snap.ids(CARD))
        else:
            wanted = list(dict.fromkeys(args.ids))
        resolved = [ctx.resolve_id(record_id) for record_id in wanted]
        lookup = [record_id for record_id in resolved if record_id is not None]
        records = dict(zip(lookup, snap.get_many(CARD, lookup), strict=True))
    found: list[Record] = []
    not_found: list[str] = []
    for asked, record_id in zip(wanted, resolved, strict=True):
        record = records.get(record_id) if record_id is not None else None
        if record is None:
            not_found.append(asked)
        else:
            found.append(record)
    return {"accountId": args.accountId, "state": state, "list": found, "notFound": not_found}


_standard_get = make_get(ContactCard)

__all__ = ["ContactCard", "card_copy", "card_get", "card_set", "search_document", "search_documents"]
