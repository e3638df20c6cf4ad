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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jmapcore.api import Core

from .setimport import (
    JmapApi,
    Parsed,
    SetImporter,
    SetImportSummary,
    api_for,
    describe,
    find_collection,
    import_file,
    listed,
    query_all,
    starts_like,
)

CONTACTS = "urn:ietf:params:jmap:contacts"


def is_vcard_file(path: Path) -> bool:
    """A .vcf/.vcard file, or a file that starts with BEGIN:VCARD."""
    return starts_like(path, (".vcf", ".vcard"), b"BEGIN:VCARD")


def _api(core: Core, name: str) -> JmapApi:
    return api_for(core, name, CONTACTS, "contacts")


def find_book(api: JmapApi, name: str | None) -> tuple[str, str]:
    """The address book called ``name`` (the default one when None): its id and name."""
    return find_collection(api, "AddressBook", name, "address book")


# -- import --------------------------------------------------------------------------------


@dataclass
class VCardSummary(SetImportSummary):
    book: str = ""
    stripped: int = 0
    partial: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = self.head_lines("cards", f"address book {self.book}")
        if self.stripped:
            out.append(f"  without their vCard-only properties: {self.stripped:,} (refused with them)")
        if self.partial:
            out.append(f"  imported without values the server refused: {len(self.partial):,}")
            out.extend(listed(self.partial))
        return out + self.tail_lines()


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


class _CardImporter(SetImporter):
    """ContactCard/set; a card refused for its vCard-only properties or for some
    of its values is created without them."""

    type_name = "ContactCard"
    collection_property = "addressBookIds"
    noun = "a card"
    summary: VCardSummary

    def rescue(self, label: str, card: dict[str, Any], problems: list[str],
               error: dict[str, Any]) -> dict[str, Any] | None:
        paths = error.get("properties") or []
        stripped = _strip_vcard_only(card) if any("vCardProp" in p or "vCardParam" in p for p in paths) else None
        if error.get("type") == "invalidProperties" and stripped is not None and "uid" not in paths:
            refusal = self.create_one(stripped)
            if refusal is None:
                self.summary.stripped += 1
                self.imported(card, problems)
                return None
            error = refusal or error
            card = stripped
        if self._without_invalid(label, card, error, problems):
            return None
        return error

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
        if self.create_one(smaller) is not None:
            return False
        self.imported(card, problems + ["invalid values left out: " + ", ".join(dict.fromkeys(dropped))])
        self.summary.partial.append(
            (label, f"without {', '.join(dict.fromkeys(dropped))}: {describe(error, card, self.noun)}"))
        return True


def import_vcards(core: Core, name: str, path: Path, *, book: str | None = None,
                  progress_stream: TextIO | None = None, quiet: bool = False) -> VCardSummary:
    """Import the vCard file ``path`` into ``name``'s address book ``book`` (default: the default one)."""
    from jmap_contacts.vcard import read_vcards

    def read(data: bytes) -> tuple[list[Parsed], list[str]]:
        parsed = read_vcards(data)
        return [(one.label, one.card, one.problems, one.error) for one in parsed.cards], parsed.problems

    api = _api(core, name)
    book_id, book_name = find_book(api, book)
    summary = VCardSummary(source=str(path), account=name, book=book_name)
    import_file(_CardImporter(api, book_id, summary), path, read, "cards", progress_stream, quiet)
    return summary


# -- export --------------------------------------------------------------------------------


def _cards(api: JmapApi, book_id: str | None) -> Iterator[dict[str, Any]]:
    return query_all(api, "ContactCard", {"inAddressBook": book_id} if book_id else None, "created")


def _inline_blobs(api: JmapApi, card: dict[str, Any]) -> dict[str, Any]:
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
