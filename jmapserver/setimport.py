"""What the imports share: :class:`JmapApi` (in-process JMAP calls, the mail
import's too), :func:`find_account` and :class:`ImportFailed`; and all the
vCard and iCalendar import/export have in common.  Records go in through
``Foo/set`` and come out through ``Foo/query`` + ``Foo/get``, exactly as a
client's would, so the two formats differ only in how a file is read and
written and in how a refused record is rescued.

:class:`SetImporter` creates records in batches, retries a batch refused as
a whole one record at a time (so only the culprit fails) and leaves the
rescue of a refused record to its subclass; :class:`SetImportSummary` counts
what happened.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import msgspec

from jmapcore.api import Core
from jmapcore.auth import Principal
from jmapcore.wire import CORE

from .progress import Progress

#: Records created per Foo/set.
BATCH = 100
#: How many skipped records the summary lists one by one.
LISTED = 20
#: Records asked for per Foo/get while exporting.
EXPORT_PAGE = 200

#: One record read from a file: its label, the record (None when unreadable),
#: the problems it was read despite, and why it is unreadable.
Parsed = tuple[str, dict[str, Any] | None, list[str], str | None]
#: A record waiting for its batch: label, record, problems.
Pending = tuple[str, dict[str, Any], list[str]]


class ImportFailed(Exception):
    """A JMAP call failed as a whole (the message says why); before the
    first record it stops the import, after it fails one record."""


class JmapApi:
    """JMAP calls in-process with one capability, exactly as the HTTP front would make them."""

    def __init__(self, core: Core, principal: Principal, account_id: str, capability: str) -> None:
        self.core, self.principal, self.account_id, self.capability = core, principal, account_id, capability

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """One call; its response arguments.  Raises ImportFailed when it fails as a whole."""
        body = {"using": [CORE, self.capability],
                "methodCalls": [[name, {"accountId": self.account_id, **arguments}, "0"]]}
        result = self.core.api(self.principal, msgspec.json.encode(body))
        answer = msgspec.json.decode(result.body)
        if result.status != 200:
            raise ImportFailed(f"{name}: HTTP {result.status}: {answer.get('detail') or answer.get('type')}")
        response, args, _ = answer["methodResponses"][0]
        if response == "error":
            raise ImportFailed(f"{name}: {args.get('type')}: {args.get('description', '')}".rstrip(": "))
        return args


def find_account(core: Core, name: str) -> tuple[Principal, str]:
    """The principal ``name`` and its personal account (of the same name)."""
    from jmapcore.accounts import principal_for

    principal = principal_for(core, name)
    for account_id in principal.account_ids:
        info = core.account_info(account_id)
        if info is not None and info.name == name:
            return principal, account_id
    if not principal.account_ids:
        raise ImportFailed(f"{name!r} has no account")
    return principal, principal.account_ids[0]


def starts_like(path: Path, suffixes: tuple[str, ...], begin: bytes) -> bool:
    """A file named with one of ``suffixes``, or one whose text starts with ``begin``
    (past a byte-order mark, blank lines and UTF-16 zero bytes)."""
    if path.suffix.lower() in suffixes:
        return True
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        head = handle.read(64).lstrip(b"\xef\xbb\xbf\xff\xfe\r\n\t ").replace(b"\x00", b"")
    return head.upper().startswith(begin)


def api_for(core: Core, name: str, capability: str, plugin: str) -> JmapApi:
    """In-process JMAP calls with ``capability`` as ``name`` in its own account;
    fails when the ``plugin`` serving it is not installed."""
    if capability not in core.registry.plugins:
        raise ImportFailed(f"the {plugin} plugin ({capability}) is not installed")
    principal, account_id = find_account(core, name)
    return JmapApi(core, principal, account_id, capability)


def find_collection(api: JmapApi, type_name: str, name: str | None, noun: str) -> tuple[str, str]:
    """The ``type_name`` (AddressBook, Calendar) called ``name`` (the default one when None):
    its id and name."""
    collections = api.call(f"{type_name}/get", {"properties": ["name", "isDefault"]})["list"]
    for collection in collections:
        if (name is None and collection.get("isDefault")) or (name is not None and collection["name"] == name):
            return collection["id"], collection["name"]
    if name is None and collections:
        return collections[0]["id"], collections[0]["name"]
    raise ImportFailed(f"no {noun} named {name!r}" if name else f"the account has no {noun}")


def read_file(path: Path) -> bytes:
    """The file's bytes; a file that cannot be read stops the import before it starts."""
    try:
        return path.read_bytes()
    except OSError as ex:
        raise ImportFailed(f"cannot read {path}: {ex.strerror or ex}") from None


def problem_reason(problem: str) -> str:
    """A problem without its detail (counts, line numbers, names), to count records by reason."""
    return problem.split(": ", 1)[0]


def listed(entries: list[tuple[str, str]], limit: int = LISTED) -> list[str]:
    """Summary lines for the first ``limit`` of ``entries``, and how many more there are."""
    out = [f"    {label}: {reason}" for label, reason in entries[:limit]]
    if len(entries) > limit:
        out.append(f"    ... and {len(entries) - limit:,} more")
    return out


def per_second(count: int, elapsed: float) -> float:
    """The rate a summary reports (0 for an import too quick to time)."""
    return count / elapsed if elapsed > 0 else 0.0


@dataclass
class SetImportSummary:
    """The counts both formats report; subclasses add their own and write the lines."""

    source: str
    account: str
    read: int = 0
    imported: int = 0
    repaired: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    file_problems: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return per_second(self.imported, self.elapsed)

    def head_lines(self, unit: str, into: str, imported_detail: str = "") -> list[str]:
        """What every summary opens with: how many ``unit`` went ``into`` what, how fast,
        and how many were repaired, by reason (the commonest first)."""
        return [
            f"imported {self.imported:,} of {self.read:,} {unit} from {self.source} into {self.account} "
            f"({into}) in {self.elapsed:.1f} s ({self.rate:,.0f} {unit}/s)",
            f"  imported:   {self.imported:,}{imported_detail}",
            f"  repaired:   {self.repaired:,} (imported best effort)",
            *(f"    {count:,} × {reason}" for reason, count in self.reasons.most_common()),
        ]

    def tail_lines(self) -> list[str]:
        """The skipped records and the file's own problems, which end every summary."""
        out = [f"  skipped:    {len(self.skipped):,}", *listed(self.skipped)]
        out.extend(f"  file: {problem}" for problem in self.file_problems)
        return out


def describe(error: dict[str, Any], record: dict[str, Any], noun: str) -> str:
    """A SetError as the summary lists it; a uid already taken is said so plainly."""
    properties = error.get("properties") or []
    if error.get("type") == "invalidProperties" and properties == ["uid"]:
        return f"{noun} with uid {record.get('uid')!r} is already in the account (not replaced)"
    text = str(error.get("type"))
    if properties:
        text += f" ({', '.join(properties)})"
    if error.get("description"):
        text += f": {error['description']}"
    return text


class SetImporter:
    """Creates ``type_name`` records in one collection through ``type_name/set``.

    A subclass names the type, the collection property and the noun its
    summary uses, and may rescue a refused record in :meth:`rescue`.
    """

    type_name = ""
    collection_property = ""
    #: "a card", "an event": how :func:`describe` names a record.
    noun = ""

    def __init__(self, api: JmapApi, collection_id: str, summary: SetImportSummary) -> None:
        self.api, self.collection_id, self.summary = api, collection_id, summary
        self.pending: list[Pending] = []

    def add(self, label: str, record: dict[str, Any], problems: list[str]) -> None:
        self.pending.append((label, {**record, self.collection_property: {self.collection_id: True}}, problems))
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            outcome = self._create([record for _, record, _ in batch])
        except ImportFailed:
            for one in batch:  # refused as a whole: one at a time, so only the culprit fails
                try:
                    self._record([one], self._create([one[1]]))
                except ImportFailed as ex:
                    self.summary.skipped.append((one[0], str(ex)))
            return
        self._record(batch, outcome)

    def _create(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return self.api.call(f"{self.type_name}/set", {"create": {str(n): record for n, record in enumerate(records)}})

    def create_one(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """None when ``record`` was created; else the SetError (empty when the server gave none)."""
        outcome = self._create([record])
        if "0" in (outcome.get("created") or {}):
            return None
        return (outcome.get("notCreated") or {}).get("0") or {}

    def _record(self, batch: list[Pending], outcome: dict[str, Any]) -> None:
        created = outcome.get("created") or {}
        refused = outcome.get("notCreated") or {}
        for number, (label, record, problems) in enumerate(batch):
            key = str(number)
            if key in created:
                self.imported(record, problems)
                continue
            error = self.rescue(label, record, problems, refused.get(key) or {"type": "missing from the response"})
            if error is not None:
                self.summary.skipped.append((label, describe(error, record, self.noun)))

    def rescue(self, label: str, record: dict[str, Any], problems: list[str],
               error: dict[str, Any]) -> dict[str, Any] | None:
        """Another try for a refused record: None when it was imported after all,
        else the error to report it skipped with."""
        return error

    def imported(self, record: dict[str, Any], problems: list[str]) -> None:
        self.summary.imported += 1
        if problems:
            self.summary.repaired += 1
            self.summary.reasons.update({problem_reason(p) for p in problems})


def import_file(importer: SetImporter, path: Path, read: Callable[[bytes], tuple[list[Parsed], list[str]]],
                unit: str, progress_stream: TextIO | None, quiet: bool) -> None:
    """Read ``path`` (into records and the file's own problems) and feed the records to
    ``importer``, with progress; the summary's time includes the reading."""
    data = read_file(path)
    summary = importer.summary
    started = time.monotonic()
    parsed, summary.file_problems = read(data)
    summary.read = len(parsed)
    progress = Progress(len(parsed), progress_stream or sys.stderr, enabled=not quiet, unit=unit)
    for number, (label, record, problems, error) in enumerate(parsed, 1):
        if record is None:
            summary.skipped.append((label, error or "unreadable"))
        else:
            importer.add(label, record, problems)
        progress.update(number)
    importer.flush()
    progress.finish(len(parsed))
    summary.elapsed = time.monotonic() - started


def query_all(api: JmapApi, type_name: str, query_filter: dict[str, Any] | None,
              sort_property: str) -> Iterator[dict[str, Any]]:
    """Every ``type_name`` record matching ``query_filter``, page by page in ``sort_property`` order."""
    position = 0
    query: dict[str, Any] = {"filter": query_filter, "sort": [{"property": sort_property, "isAscending": True}]}
    while True:
        ids = api.call(f"{type_name}/query", {**query, "position": position, "limit": EXPORT_PAGE})["ids"]
        if not ids:
            return
        yield from api.call(f"{type_name}/get", {"ids": ids})["list"]
        position += len(ids)

