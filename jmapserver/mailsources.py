"""Reading mail to import: mbox files, Maildir trees, .eml files and folders.

Each source yields :class:`Item` objects: the message's bytes exactly as
stored (only an mbox's ``>From`` quoting is undone), where it goes relative
to the target mailbox, its flags as JMAP keywords and its receivedAt.  A
message that cannot even be read is still yielded, with ``error`` set, so
the importer counts it as failed instead of losing it silently.

Flag and folder rules (documented in ``jmapcore import --help``):

* Maildir: ``S``→$seen, ``F``→$flagged, ``R``→$answered, ``D``→$draft,
  ``P``→$forwarded, lowercase letters through ``dovecot-keywords``;
  ``T`` (trashed: deleted, not yet expunged) sends the message to the
  Trash mailbox instead of its folder, since JMAP has no "deleted" flag and
  importing it where it was would bring deleted mail back.  Messages in
  ``tmp/`` are deliveries in progress and are not read.  Maildir++ folders
  ``.Sub.Folder`` (modified UTF-7 names) become mailboxes ``Sub/Folder``;
  directories that are themselves Maildirs (Dovecot's ``fs`` layout) too.
  receivedAt is the file's mtime (the delivery time, by Maildir convention).
* mbox: messages split on ``From `` lines by :mod:`mailbox`; lines quoted
  as ``>From `` (mboxrd) lose one ``>``.  ``Status``/``X-Status`` and
  ``X-Mozilla-Status`` give keywords (a message marked deleted goes to
  Trash, as with Maildir ``T``).  receivedAt is the From_ line's date
  (UTC unless it names a zone).
* .eml: a file, or every ``*.eml`` below a folder; receivedAt is left to
  Email/import (the newest Received header, else the import time).
"""

from __future__ import annotations

import mailbox
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

__all__ = ["Item", "Source", "SourceError", "detect"]


class SourceError(Exception):
    """PATH is not something we can import from (the message says why)."""


@dataclass(slots=True)
class Item:
    """One message to import."""

    label: str
    raw: bytes | None
    folder: tuple[str, ...] = ()
    keywords: dict[str, bool] = field(default_factory=dict)
    received_at: str | None = None
    trashed: bool = False
    error: str | None = None


@dataclass(slots=True)
class Source:
    """What PATH turned out to be, how many messages it holds, and a reader."""

    kind: str
    path: Path
    total: int
    read: Callable[[], Iterator[Item]]

    def describe(self) -> str:
        return f"{self.kind} {self.path}"


def detect(path: Path) -> Source:
    """An mbox (a file starting with ``From ``), a single message (any other
    file), a Maildir (a folder with cur/ or new/), or a folder of .eml files."""
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    if path.is_file():
        try:
            with path.open("rb") as stream:
                head = stream.read(5)
        except OSError as ex:
            raise SourceError(f"cannot read {path}: {ex.strerror}") from None
        if head == b"From ":
            return _mbox_source(path)
        return Source("message", path, 1, lambda: iter([_eml_item(path, path.name)]))
    if not path.is_dir():
        raise SourceError(f"{path} is neither a file nor a folder")
    if _is_maildir(path):
        folders = list(_maildir_folders(path, ()))
        total = sum(len(_maildir_files(folder)) for _, folder in folders)
        return Source("Maildir", path, total, lambda: _maildir_items(path, folders))
    files = _eml_files(path)
    if not files:
        raise SourceError(f"{path} is not a Maildir (no cur/ or new/) and holds no .eml files")
    return Source(".eml folder", path, len(files), lambda: (_eml_item(f, str(f.relative_to(path))) for f in files))


# -- .eml ----------------------------------------------------------------------


def _eml_files(root: Path) -> list[Path]:
    found = []
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        found.extend(Path(directory, n) for n in sorted(names) if n.lower().endswith(".eml"))
    return found


def _eml_item(path: Path, label: str) -> Item:
    try:
        return Item(label, path.read_bytes())
    except OSError as ex:
        return Item(label, None, error=f"cannot read the file: {ex.strerror}")


# -- mbox ----------------------------------------------------------------------

_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_FROM_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\w*\s+(\w{3})\w*\s+(\d{1,2})\s+(\d{1,2}):(\d\d)(?::(\d\d))?"
    r"(?:\s+([+-]\d{4}|[A-Z]{2,5}))?\s+(\d{4})(?:\s+([+-]\d{4}))?"
)
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}


def _mbox_source(path: Path) -> Source:
    try:
        box = mailbox.mbox(path, create=False)
        total = len(box)
    except (OSError, mailbox.Error) as ex:
        raise SourceError(f"cannot read mbox {path}: {ex}") from None
    return Source("mbox", path, total, lambda: _mbox_items(box, path))


def _mbox_items(box: mailbox.mbox, path: Path) -> Iterator[Item]:
    try:
        for number, key in enumerate(box.keys(), 1):
            label = f"{path.name} message {number}"
            try:
                with box.get_file(key, from_=True) as stream:
                    data = stream.read()
            except OSError as ex:
                yield Item(label, None, error=f"cannot read the message: {ex.strerror}")
                continue
            from_line, _, raw = data.partition(b"\n")
            raw = _QUOTED_FROM.sub(rb"\1", raw)
            keywords, trashed = _mbox_status(raw)
            yield Item(label, raw, keywords=keywords, received_at=from_line_date(from_line), trashed=trashed)
    finally:
        box.close()


def from_line_date(line: bytes) -> str | None:
    """The date of an mbox ``From sender date`` line as a UTCDate, or None."""
    found = _FROM_DATE.search(line.decode("latin-1"))
    if found is None:
        return None
    month, day, hour, minute, second, zone1, year, zone2 = found.groups()
    zone = zone2 or zone1 or ""
    offset = timedelta(0)
    if zone[:1] in "+-" and zone:
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * (-1 if zone[0] == "-" else 1)
    try:
        moment = datetime(
            int(year), _MONTHS[month.lower()], int(day), int(hour), int(minute), int(second or 0),
            tzinfo=timezone(offset),
        )
    except (KeyError, ValueError):
        return None
    return utc_string(moment)


def utc_string(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _header_block(raw: bytes) -> bytes:
    end = raw.find(b"\n\n")
    crlf = raw.find(b"\r\n\r\n")
    if crlf != -1 and (end == -1 or crlf < end):
        end = crlf
    return raw if end == -1 else raw[:end]


_STATUS = re.compile(rb"^(X-Status|Status|X-Mozilla-Status):[ \t]*([^\r\n]*)", re.MULTILINE | re.IGNORECASE)


def _mbox_status(raw: bytes) -> tuple[dict[str, bool], bool]:
    """Keywords and "deleted" from the flag headers mail user agents write into an mbox."""
    keywords: dict[str, bool] = {}
    trashed = False
    for name, value in _STATUS.findall(_header_block(raw)):
        name, value = name.lower(), value.strip()
        if name == b"status":
            if b"R" in value:
                keywords["$seen"] = True
        elif name == b"x-status":
            for letter, keyword in ((b"A", "$answered"), (b"F", "$flagged"), (b"T", "$draft")):
                if letter in value:
                    keywords[keyword] = True
            trashed = trashed or b"D" in value
        else:
            try:
                bits = int(value, 16)
            except ValueError:
                continue
            for bit, keyword in ((0x1, "$seen"), (0x2, "$answered"), (0x4, "$flagged"), (0x1000, "$forwarded")):
                if bits & bit:
                    keywords[keyword] = True
            trashed = trashed or bool(bits & 0x8)
    return keywords, trashed


# -- Maildir -------------------------------------------------------------------

_MAILDIR_FLAGS = {"S": "$seen", "F": "$flagged", "R": "$answered", "D": "$draft", "P": "$forwarded"}


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def _maildir_folders(root: Path, prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Path]]:
    """(mailbox path, folder) for the root, its Maildir++ ``.A.B`` folders,
    and subdirectories that are Maildirs themselves."""
    yield prefix, root
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name in ("cur", "new", "tmp") or not _is_maildir(entry):
            continue
        if entry.name.startswith("."):
            names = tuple(decode_mutf7(part) for part in entry.name[1:].split(".") if part)
            if names:
                yield from _maildir_folders(entry, prefix + names)
        else:
            yield from _maildir_folders(entry, prefix + (decode_mutf7(entry.name),))


def _maildir_files(folder: Path) -> list[tuple[str, os.DirEntry[str]]]:
    files = []
    for sub in ("new", "cur"):
        try:
            entries = sorted(os.scandir(folder / sub), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        # Not is_file(): a dangling link must be reported as unreadable, not skipped.
        files.extend((sub, e) for e in entries if not e.name.startswith(".") and not e.is_dir())
    return files


def _custom_keywords(folder: Path) -> dict[str, str]:
    """Dovecot's lowercase flag letters: ``dovecot-keywords`` lines "0 name" → a, …"""
    try:
        lines = (folder / "dovecot-keywords").read_text("utf-8", "replace").splitlines()
    except OSError:
        return {}
    letters = {}
    for line in lines:
        number, _, name = line.partition(" ")
        if number.isdigit() and int(number) < 26 and _KEYWORD.fullmatch(name.strip()):
            letters[chr(ord("a") + int(number))] = name.strip()
    return letters


#: [mail-4.1.1-keywordSyntax] what a JMAP keyword may be; others are not carried over.
_KEYWORD = re.compile(r'(?:(?![(){\]%*"\\])[\x21-\x7e]){1,255}')


def _maildir_items(root: Path, folders: list[tuple[tuple[str, ...], Path]]) -> Iterator[Item]:
    for names, folder in folders:
        custom = _custom_keywords(folder)
        for sub, entry in _maildir_files(folder):
            label = os.path.relpath(entry.path, root)
            info = _info(entry.name) if sub == "cur" else ""
            keywords = {_MAILDIR_FLAGS[c]: True for c in info if c in _MAILDIR_FLAGS}
            keywords.update({custom[c]: True for c in info if c in custom})
            try:
                raw = Path(entry.path).read_bytes()
                received = utc_string(datetime.fromtimestamp(entry.stat().st_mtime, UTC))
            except OSError as ex:
                yield Item(label, None, folder=names, error=f"cannot read the file: {ex.strerror}")
                continue
            yield Item(label, raw, folder=names, keywords=keywords, received_at=received, trashed="T" in info)


def _info(name: str) -> str:
    """The flag letters after ``:2,`` (``!2,`` where ``:`` is not allowed in names)."""
    for separator in (":2,", "!2,"):
        if separator in name:
            return name.rpartition(separator)[2]
    return ""


def decode_mutf7(name: str) -> str:
    """IMAP's modified UTF-7 (RFC 3501 §5.1.3), as Maildir++ folder names use it."""
    if "&" not in name:
        return name
    out, rest = [], name
    while "&" in rest:
        before, _, after = rest.partition("&")
        encoded, dash, rest = after.partition("-")
        out.append(before)
        if not dash:  # no closing "-": not mUTF-7 after all
            out.append("&" + encoded)
            break
        if not encoded:
            out.append("&")
            continue
        try:
            out.append(("+" + encoded.replace(",", "/") + "-").encode("ascii").decode("utf-7"))
        except (UnicodeError, ValueError):
            out.append("&" + encoded + "-")
    out.append(rest)
    return "".join(out)
