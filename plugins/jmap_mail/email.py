"""The Email type for queries (RFC 8621 §4.4): filters, sorts, the query
planner, collapseThreads, and what /queryChanges must re-check.

"Open the inbox" (inMailbox + receivedAt) walks the ``mbox`` index
(mailbox, receivedAt, id) and stops when the page is full; text conditions
start from the full-text index's hits; everything else is checked record by
record by the standard /query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from jmapcore.datatype import Candidates, DataType, Filter, Property, Sort
from jmapcore.errors import MethodError
from jmapcore.standard.query_changes import changed_since
from jmapcore.storage import IndexSpec, LogPosition, Record, Snapshot
from jmapcore.wire import Id, UnsignedInt

from .constants import EMAIL, MAIL, MAILBOX, THREAD
from .dates import AwareDateTime, sort_seconds, utc_date
from .keywords import normalise
from .mime import base_subject
from .store import email_index_keys, mailbox_index_keys

#: Conditions answered by the full-text index, and the field each searches.
SEARCH_FIELDS: dict[str, str | None] = {
    "text": None,
    "from": "from",
    "to": "to",
    "cc": "cc",
    "bcc": "bcc",
    "subject": "subject",
    "body": "body",
}


def _keyword(value: str) -> str:
    keywords = normalise({value: True})
    if keywords is None:
        raise MethodError.invalid_arguments(f"{value!r} is not a valid keyword.")
    return next(iter(keywords))


class ThreadKeywords:
    """Keywords of every Email of a Thread, read once per thread per query."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self._cache: dict[str, list[dict[str, bool]]] = {}

    def of(self, thread_id: str) -> list[dict[str, bool]]:
        hit = self._cache.get(thread_id)
        if hit is None:
            thread = self.snap.get(THREAD, thread_id)
            emails = self.snap.get_many(EMAIL, thread["emailIds"]) if thread else []
            hit = [email["keywords"] for email in emails if email is not None]
            self._cache[thread_id] = hit
        return hit


def _thread_filter(test: Callable[[list[bool]], bool]) -> Filter:
    def bind(snap: Snapshot, value: str) -> Callable[[Record], bool]:
        keyword, threads = _keyword(value), ThreadKeywords(snap)
        return lambda record: test([keyword in k for k in threads.of(record["threadId"])])

    return Filter(str, bind=bind)


def _has_keyword(keyword: str, wanted: bool) -> Callable[[Record], bool]:
    return lambda record: (keyword in record["keywords"]) is wanted


def _search_filter(field: str | None) -> Filter:
    def bind(snap: Snapshot, value: str) -> Callable[[Record], bool]:
        hits = snap.search(EMAIL, field, value)
        return lambda record: record["id"] in hits

    return Filter(str, bind=bind)


def _header_filter(snap: Snapshot, value: list[str]) -> Callable[[Record], bool]:
    """``header: [name]`` (present) or ``[name, text]`` (contains), read from
    the message itself: rare, and exact."""
    from .mime import parse

    if not 1 <= len(value) <= 2:
        raise MethodError.invalid_arguments("header takes [name] or [name, value].")
    name, wanted = value[0], (value[1].casefold() if len(value) == 2 else None)

    def match(record: Record) -> bool:
        raw = snap.read_blob(record["blobId"])
        if raw is None:
            return False
        found = parse(raw).header_value(name, "Raw", True)
        return bool(found) and (wanted is None or any(wanted in v.casefold() for v in found))

    return match


FILTERS: dict[str, Filter] = {
    # [mail-4.4.1-filter]
    "inMailbox": Filter(Id, match=lambda r, v: v in r["mailboxIds"]),
    "inMailboxOtherThan": Filter(list[Id], match=lambda r, v: any(m not in v for m in r["mailboxIds"])),
    "before": Filter(AwareDateTime, match=lambda r, v: r["receivedAt"] < utc_date(v)),
    "after": Filter(AwareDateTime, match=lambda r, v: r["receivedAt"] >= utc_date(v)),
    "minSize": Filter(UnsignedInt, match=lambda r, v: r["size"] >= v),
    "maxSize": Filter(UnsignedInt, match=lambda r, v: r["size"] < v),
    "allInThreadHaveKeyword": _thread_filter(all),
    "someInThreadHaveKeyword": _thread_filter(any),
    "noneInThreadHaveKeyword": _thread_filter(lambda found: not any(found)),
    "hasKeyword": Filter(str, bind=lambda snap, v: _has_keyword(_keyword(v), True)),
    "notKeyword": Filter(str, bind=lambda snap, v: _has_keyword(_keyword(v), False)),
    "hasAttachment": Filter(bool, match=lambda r, v: r.get("hasAttachment") is v),
    "header": Filter(list[str], bind=_header_filter),
    **{name: _search_filter(field) for name, field in SEARCH_FIELDS.items()},
}


def _first_address(name: str) -> Callable[[Record], str]:
    """[mail-4.4.2-sort] the first address's name, else its email, else ""."""

    def key(record: Record) -> str:
        addresses = record.get(name) or []
        if not addresses:
            return ""
        return addresses[0].get("name") or addresses[0].get("email") or ""

    return key


def _keyword_sort(thread: Callable[[list[bool]], bool] | None) -> Sort:
    def bind(snap: Snapshot, comparator: Mapping[str, Any]) -> Callable[[Record], Any]:
        keyword = _keyword(comparator["keyword"]) if isinstance(comparator["keyword"], str) else None
        if keyword is None:
            raise MethodError.invalid_arguments("keyword must be a string.")
        if thread is None:
            return lambda record: keyword in record["keywords"]
        threads = ThreadKeywords(snap)
        return lambda record: thread([keyword in k for k in threads.of(record["threadId"])])

    return Sort(arguments=("keyword",), bind=bind)


SORTS: dict[str, Sort] = {
    "receivedAt": Sort(lambda r: r["receivedAt"], indexed=True),
    "size": Sort(lambda r: r["size"], indexed=True),
    "sentAt": Sort(lambda r: sort_seconds(r.get("sentAt")), indexed=True),
    "from": Sort(_first_address("from"), text=True),
    "to": Sort(_first_address("to"), text=True),
    "subject": Sort(lambda r: base_subject(r.get("subject")), text=True),
    "hasKeyword": _keyword_sort(None),
    "allInThreadHaveKeyword": _keyword_sort(all),
    "someInThreadHaveKeyword": _keyword_sort(any),
}


def _top_conditions(tree: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The FilterConditions every match must satisfy (the top-level AND)."""
    if tree is None:
        return []
    if "operator" not in tree:
        return [tree]
    if tree.get("operator") != "AND":
        return []
    return [c for c in tree.get("conditions") or () if isinstance(c, dict) and "operator" not in c]


#: Above this many search hits, walking an index in the query's order and
#: keeping the hits beats reading and sorting every hit.
MANY_HITS = 1000


def plan(snap: Snapshot, tree: Mapping[str, Any] | None, comparators: Sequence[Any]) -> Candidates | None:
    """Offer candidates from an index instead of a scan of every Email."""
    conditions = _top_conditions(tree)
    mailbox = next((c["inMailbox"] for c in conditions if isinstance(c.get("inMailbox"), str)), None)
    by_date = len(comparators) == 1 and comparators[0].name == "receivedAt"
    hits: set[str] | None = None
    for condition in conditions:
        for name, field in SEARCH_FIELDS.items():
            if isinstance(condition.get(name), str):
                found = snap.search(EMAIL, field, condition[name])
                hits = found if hits is None else hits & found
    if hits is not None and (len(hits) <= MANY_HITS or not (by_date or not comparators)):
        return Candidates(hits, ordered=False)
    if mailbox is not None:
        walk = (email_id for _, email_id in snap.scan_index(EMAIL, "mbox", (mailbox,), reverse=_descending(comparators)))
        ordered = by_date
    elif hits is not None and by_date:
        walk = (email_id for _, email_id in snap.scan_index(EMAIL, "sort:receivedAt", reverse=_descending(comparators)))
        ordered = True
    elif hits is not None:
        walk, ordered = snap.ids(EMAIL), True  # no sort: id order
    else:
        return None
    if hits is not None:
        found_hits = hits
        walk = (email_id for email_id in walk if email_id in found_hits)
    # "Open the inbox": the index holds exactly the mailbox's Emails.
    only_mailbox = tree is not None and set(tree) == {"inMailbox"}
    return Candidates(walk, ordered=ordered, exact=only_mailbox and ordered)


def _descending(comparators: Sequence[Any]) -> bool:
    return bool(comparators) and not comparators[0].ascending


def related(snap: Snapshot, changed: set[str], since: LogPosition) -> set[str]:
    """[mail-4.5-queryChanges] thread keywords and collapseThreads make an
    Email's match depend on its Thread: re-check every Email of a Thread that
    changed."""
    threads = {record["threadId"] for record in snap.get_many(EMAIL, list(changed)) if record is not None}
    created, touched = changed_since(snap, THREAD, since)
    threads |= created | touched
    members: set[str] = set()
    for thread in snap.get_many(THREAD, list(threads)):
        if thread is not None:
            members.update(thread["emailIds"])
    return members


def collapse_threads(args: Any, snap: Snapshot, ids: Iterator[str]) -> Iterator[str]:
    """[mail-4.4-collapseThreads] only the first Email of each Thread."""
    if not getattr(args, "collapseThreads", False):
        yield from ids
        return
    seen: set[str] = set()
    batch: list[str] = []
    for email_id in ids:
        batch.append(email_id)
        if len(batch) < 256:
            continue
        yield from _first_of_threads(snap, batch, seen)
        batch = []
    yield from _first_of_threads(snap, batch, seen)


def _first_of_threads(snap: Snapshot, batch: list[str], seen: set[str]) -> Iterator[str]:
    for email_id, record in zip(batch, snap.get_many(EMAIL, batch), strict=True):
        if record is not None and record["threadId"] not in seen:
            seen.add(record["threadId"])
            yield email_id


def total_hint(args: Any, snap: Snapshot) -> int | None:
    """"How many in this mailbox" comes from the mailbox's kept counts, not
    a count of its Emails ([mail-2-counts] keeps them exact)."""
    collapse = getattr(args, "collapseThreads", False)
    if args.filter is None:
        return snap.count(THREAD if collapse else EMAIL)
    if set(args.filter) == {"inMailbox"} and isinstance(args.filter["inMailbox"], str):
        mailbox = snap.get(MAILBOX, args.filter["inMailbox"])
        return 0 if mailbox is None else mailbox["totalThreads" if collapse else "totalEmails"]
    return None


#: Stored on every Email record; the rest of an Email comes from its message.
LIST_PROPERTIES = (
    "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt", "messageId", "inReplyTo",
    "references", "sender", "from", "to", "cc", "bcc", "replyTo", "subject", "sentAt", "hasAttachment", "preview",
)  # fmt: skip

Email = DataType(
    name=EMAIL,
    capability=MAIL,
    properties={name: Property(server_set=True) for name in LIST_PROPERTIES if name != "id"},
    methods=("changes",),
    filters=FILTERS,
    sorts=SORTS,
    id_prefix="E",
    get_all=False,
    extra_indexes=(
        IndexSpec(EMAIL, "msgid", email_index_keys),
        IndexSpec(EMAIL, "mbox", mailbox_index_keys),
    ),
    plan=plan,
    related=related,
)

Thread = DataType(
    name=THREAD,
    capability=MAIL,
    properties={"emailIds": Property(list[Id], server_set=True)},
    methods=("get", "changes"),
    id_prefix="T",
    get_all=False,
)
