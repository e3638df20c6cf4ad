"""``jmapcore import NAME file.vcf`` and ``jmapcore export NAME --contacts out.vcf``.

Cards go in exactly as a client's would: each vCard becomes a JSContact Card
(:mod:`jmap_contacts.vcard`, RFC 9555), and ``ContactCard/set`` creates them
in batches of 100 through :meth:`Core.api`, so the contacts plugin's
validation, uid uniqueness and search index see nothing special.

Nothing stored is lost: the import only creates.  A card whose uid is
already in the account is skipped (and counted), never merged or replaced.
A batch refused as a whole is retried one card at a time; a card refused
for its ``vCardProps``/``vCardParams`` (the vCard properties without a
JSContact counterpart) is retried without them, and counted.

What the summary counts:

* **imported**: every card that became a ContactCard;
* **repaired** (imported all the same): a card read best effort, by reason
  (lines not UTF-8, broken folding, no END:VCARD, lines that did not parse,
  no UID, ...);
* **imported without values the server refused**: a card refused for some
  of its values (an EMAIL that is no address, ...) is created without the
  entries named (``emails/e1``), each listed;
* **skipped**: a vCard that could not be read or that the server did not
  create, each listed with its reason;
* the file's own problems (text between cards).
"""

from __future__ import annotations

import base64
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import msgspec

from jmapcore.api import Core
from jmapcore.auth import Principal
from jmapcore.wire import CORE

from .importer import ImportFailed, find_account
from .progress import Progress

CONTACTS = "urn:ietf:params:jmap:contacts"
BATCH = 100
LISTED = 20
#: Cards asked for per ContactCard/get while exporting.
EXPORT_PAGE = 200


def is_vcard_file(path: Path) -> bool:
    """A .vcf/.vcard file, or a file that starts with BEGIN:VCARD."""
    if path.suffix.lower() in (".vcf", ".vcard"):
        return True
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        head = handle.read(64).lstrip(b"\xef\xbb\xbf\xff\xfe\r\n\t ").replace(b"\x00", b"")
    return head.upper().startswith(b"BEGIN:VCARD")


class ContactsApi:
    """JMAP calls in-process with the contacts capability."""

    def __init__(self, core: Core, principal: Principal, account_id: str) -> None:
        self.core, self.principal, self.account_id = core, principal, account_id

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        body = {"using": [CORE, CONTACTS], "methodCalls": [[name, {"accountId": self.account_id, **arguments}, "0"]]}
        result = self.core.api(self.principal, msgspec.json.encode(body))
        answer = msgspec.json.decode(result.body)
        if result.status != 200:
            raise ImportFailed(f"{name}: HTTP {result.status}: {answer.get('detail') or answer.get('type')}")
        response, args, _ = answer["methodResponses"][0]
        if response == "error":
            raise ImportFailed(f"{name}: {args.get('type')}: {args.get('description', '')}".rstrip(": "))
        return args


def _api(core: Core, name: str) -> ContactsApi:
    if CONTACTS not in core.registry.plugins:
        raise ImportFailed(f"the contacts plugin ({CONTACTS}) is not installed")
    principal, account_id = find_account(core, name)
    return ContactsApi(core, principal, account_id)


def find_book(api: ContactsApi, name: str | None) -> tuple[str, str]:
    """The address book called ``name`` (the default one when None): its id and name."""
    books = api.call("AddressBook/get", {"properties": ["name", "isDefault"]})["list"]
    for book in books:
        if (name is None and book.get("isDefault")) or (name is not None and book["name"] == name):
            return book["id"], book["name"]
    if name is None and books:
        return books[0]["id"], books[0]["name"]
    raise ImportFailed(f"no address book named {name!r}" if name else "the account has no address book")


# -- import --------------------------------------------------------------------------------


@dataclass
class VCardSummary:
    source: str
    account: str
    book: str = ""
    read: int = 0
    imported: int = 0
    repaired: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    stripped: int = 0
    partial: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    file_problems: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return self.imported / self.elapsed if self.elapsed > 0 else 0.0

    def lines(self) -> list[str]:
        out = [
            f"imported {self.imported:,} of {self.read:,} cards from {self.source} into {self.account} "
            f"(address book {self.book}) in {self.elapsed:.1f} s ({self.rate:,.0f} cards/s)",
            f"  imported:   {self.imported:,}",
            f"  repaired:   {self.repaired:,} (imported best effort)",
        ]
        out.extend(f"    {count:,} × {reason}" for reason, count in self.reasons.most_common())
        if self.stripped:
            out.append(f"  without their vCard-only properties: {self.stripped:,} (refused with them)")
        if self.partial:
            out.append(f"  imported without values the server refused: {len(self.partial):,}")
            out.extend(f"    {label}: {reason}" for label, reason in self.partial[:LISTED])
            if len(self.partial) > LISTED:
                out.append(f"    ... and {len(self.partial) - LISTED:,} more")
        out.append(f"  skipped:    {len(self.skipped):,}")
        out.extend(f"    {label}: {reason}" for label, reason in self.skipped[:LISTED])
        if len(self.skipped) > LISTED:
            out.append(f"    ... and {len(self.skipped) - LISTED:,} more")
        out.extend(f"  file: {problem}" for problem in self.file_problems)
        return out


def _reason(problem: str) -> str:
    """A problem without its detail (counts, line numbers), to count cards by reason."""
    return problem.split(": ", 1)[0]


def _strip_vcard_only(card: dict[str, Any]) -> dict[str, Any] | None:
    """The card without vCardProps/vCardParams, or None when it has none."""
    stripped, found = {}, False
    for key, value in card.items():
        if key == "vCardProps":
            found = True
            continue
        if isinstance(value, dict) and any(isinstance(v, dict) and "vCardParams" in v for v in value.values()):
            found = True
            value = {k: {p: q for p, q in v.items() if p != "vCardParams"} if isinstance(v, dict) else v
                     for k, v in value.items()}
        stripped[key] = value
    return stripped if found else None


class _CardImporter:
    def __init__(self, api: ContactsApi, book_id: str, summary: VCardSummary) -> None:
        self.api, self.book_id, self.summary = api, book_id, summary
        self.pending: list[tuple[str, dict[str, Any], list[str]]] = []

    def add(self, label: str, card: dict[str, Any], problems: list[str]) -> None:
        self.pending.append((label, {**card, "addressBookIds": {self.book_id: True}}, problems))
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            outcome = self._create([card for _, card, _ in batch])
        except ImportFailed:
            for one in batch:  # refused as a whole: one at a time, so only the culprit fails
                try:
                    self._record([one], self._create([one[1]]))
                except ImportFailed as ex:
                    self.summary.skipped.append((one[0], str(ex)))
            return
        self._record(batch, outcome)

    def _create(self, cards: list[dict[str, Any]]) -> dict[str, Any]:
        return self.api.call("ContactCard/set", {"create": {str(n): card for n, card in enumerate(cards)}})

    def _record(self, batch: list[tuple[str, dict[str, Any], list[str]]], outcome: dict[str, Any]) -> None:
        created = outcome.get("created") or {}
        refused = outcome.get("notCreated") or {}
        for number, (label, card, problems) in enumerate(batch):
            key = str(number)
            if key in created:
                self._imported(problems)
                continue
            error = refused.get(key) or {"type": "missing from the response"}
            paths = error.get("properties") or []
            stripped = _strip_vcard_only(card) if any("vCardProp" in p or "vCardParam" in p for p in paths) else None
            if error.get("type") == "invalidProperties" and stripped is not None and "uid" not in paths:
                retry = self.api.call("ContactCard/set", {"create": {"0": stripped}})
                if "0" in (retry.get("created") or {}):
                    self.summary.stripped += 1
                    self._imported(problems)
                    continue
                error = (retry.get("notCreated") or {}).get("0") or error
                card = stripped
            if self._without_invalid(label, card, error, problems):
                continue
            self.summary.skipped.append((label, _describe(error, card)))

    def _without_invalid(self, label: str, card: dict[str, Any], error: dict[str, Any], problems: list[str]) -> bool:
        """Best effort for a card refused for some of its values (an email address that is
        not one, ...): created without the entries named, which the summary lists."""
        paths = error.get("properties") or []
        if error.get("type") != "invalidProperties" or not paths or "uid" in paths:
            return False
        smaller = {k: dict(v) if isinstance(v, dict) else v for k, v in card.items()}
        dropped = []
        for path in paths:
            top, _, rest = path.partition("/")
            entry = rest.split("/", 1)[0]
            entries = smaller.get(top)
            if top == "addressBookIds" or top not in smaller:
                return False
            if entry and isinstance(entries, dict) and isinstance(entries.get(entry), dict):
                entries.pop(entry)
                dropped.append(f"{top}/{entry}")
                if not entries:
                    smaller.pop(top)
            else:
                smaller.pop(top)
                dropped.append(top)
        retry = self.api.call("ContactCard/set", {"create": {"0": smaller}})
        if "0" not in (retry.get("created") or {}):
            return False
        self._imported(problems + ["invalid values left out: " + ", ".join(dict.fromkeys(dropped))])
        self.summary.partial.append((label, f"without {', '.join(dict.fromkeys(dropped))}: {_describe(error, card)}"))
        return True

    def _imported(self, problems: list[str]) -> None:
        self.summary.imported += 1
        if problems:
            self.summary.repaired += 1
            self.summary.reasons.update({_reason(p) for p in problems})


def _describe(error: dict[str, Any], card: dict[str, Any]) -> str:
    properties = error.get("properties") or []
    if error.get("type") == "invalidProperties" and properties == ["uid"]:
        return f"a card with uid {card.get('uid')!r} is already in the account (not replaced)"
    text = str(error.get("type"))
    if properties:
        text += f" ({', '.join(properties)})"
    if error.get("description"):
        text += f": {error['description']}"
    return text


def import_vcards(core: Core, name: str, path: Path, *, book: str | None = None,
                  progress_stream: TextIO | None = None, quiet: bool = False) -> VCardSummary:
    """Import the vCard file ``path`` into ``name``'s address book ``book`` (default: the default one)."""
    from jmap_contacts.vcard import read_vcards

    api = _api(core, name)
    book_id, book_name = find_book(api, book)
    try:
        data = path.read_bytes()
    except OSError as ex:
        raise ImportFailed(f"cannot read {path}: {ex.strerror or ex}") from None
    summary = VCardSummary(source=str(path), account=name, book=book_name)
    started = time.monotonic()
    parsed = read_vcards(data)
    summary.read = len(parsed.cards)
    summary.file_problems = parsed.problems
    importer = _CardImporter(api, book_id, summary)
    progress = Progress(len(parsed.cards), progress_stream or sys.stderr, enabled=not quiet, unit="cards")
    for number, one in enumerate(parsed.cards, 1):
        if one.card is None:
            summary.skipped.append((one.label, one.error or "unreadable"))
        else:
            importer.add(one.label, one.card, one.problems)
        progress.update(number)
    importer.flush()
    progress.finish(len(parsed.cards))
    summary.elapsed = time.monotonic() - started
    return summary


# -- export --------------------------------------------------------------------------------


def _cards(api: ContactsApi, book_id: str | None) -> Iterator[dict[str, Any]]:
    position = 0
    query: dict[str, Any] = {"filter": {"inAddressBook": book_id} if book_id else None,
                             "sort": [{"property": "created", "isAscending": True}]}
    while True:
        ids = api.call("ContactCard/query", {**query, "position": position, "limit": EXPORT_PAGE})["ids"]
        if not ids:
            return
        yield from api.call("ContactCard/get", {"ids": ids})["list"]
        position += len(ids)


def _inline_blobs(api: ContactsApi, card: dict[str, Any]) -> dict[str, Any]:
    """Media given by ``blobId`` (RFC 9610 §3) as the data: URI vCard carries them in."""
    for prop in ("media", "cryptoKeys"):
        entries = card.get(prop)
        if not isinstance(entries, dict):
            continue
        for key, entry in list(entries.items()):
            if isinstance(entry, dict) and entry.get("blobId") and not entry.get("uri"):
                found = api.core.download(api.principal, api.account_id, entry["blobId"])
                if found is not None:
                    media = entry.get("mediaType") or "application/octet-stream"
                    uri = f"data:{media};base64," + base64.b64encode(found[0]).decode("ascii")
                    entries[key] = {**{k: v for k, v in entry.items() if k != "blobId"}, "uri": uri}
    return card


def export_vcards(core: Core, name: str, out: TextIO, *, book: str | None = None) -> int:
    """Write ``name``'s cards (of address book ``book``, or all) to ``out`` as vCard 4.0."""
    from jmap_contacts.vcard import card_to_vcard

    api = _api(core, name)
    book_id = find_book(api, book)[0] if book is not None else None
    count = 0
    for card in _cards(api, book_id):
        out.write(card_to_vcard(_inline_blobs(api, card)))
        count += 1
    return count
