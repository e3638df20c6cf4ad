"""Mailbox paths <-> directory names, for Maildir++ and Dovecot's LAYOUT=fs.

A mailbox path is a tuple of name segments: ``()`` is INBOX, ``("Work",
"Projects")`` a subfolder. On disk (issue 4):

- Maildir++ (Dovecot's and Courier's default): INBOX is the root itself and
  every other folder is one directory in the root, ``.Work.Projects``;
- LAYOUT=fs: nested directories, ``Work/Projects``.

Each segment is written in modified UTF-7 (RFC 3501 §5.1.3, see
:mod:`.mutf7`). Characters the layout cannot hold (``.`` inside a Maildir++
segment, ``/`` anywhere, ``~`` or ``.`` leading a segment, and the escape
character itself) are written as ``\\xx`` hex, as Dovecot's listescape
plugin does with its default escape character ``\\``. With
``escape_char=None`` (a Dovecot without listescape) such names are refused
instead, with an :class:`~.errors.InvalidName` saying why.

Children of INBOX are ``("INBOX", "Sub")`` (``.INBOX.Sub``), as Dovecot
stores them; a top-level segment spelled like INBOX in any other case is
refused, since IMAP treats INBOX case-insensitively.

Every name is checked before it reaches the file system, and
:func:`inside` checks that a path resolves inside the account root.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from . import mutf7
from .errors import InvalidName, UnsafePath

Layout = Literal["maildir++", "fs"]
LAYOUTS: tuple[Layout, ...] = ("maildir++", "fs")
FolderPath = tuple[str, ...]
INBOX: FolderPath = ()
DEFAULT_ESCAPE = "\\"
NAME_MAX = 255  # bytes in one directory entry (Linux, BSD)

# Entries a LAYOUT=fs folder directory holds besides its subfolders: a
# subfolder with one of these names would collide with them.
MAILDIR_SUBDIRS = frozenset({"cur", "new", "tmp"})
_RESERVED_FS = MAILDIR_SUBDIRS | {"maildirfolder", "maildirsize", "subscriptions"}
_RESERVED_FS_PREFIXES = ("dovecot.", "dovecot-", "courierimap")


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")


def validate_segment(segment: str) -> None:
    """Refuse what no layout may store: empty names, ``.`` and ``..``, NUL,
    control characters (Unicode Cc) and lone surrogates."""
    if not isinstance(segment, str):
        raise InvalidName(f"mailbox name segment must be a string, not {type(segment).__name__}")
    if segment == "":
        raise InvalidName("empty mailbox name segment")
    if segment in (".", ".."):
        raise InvalidName(f"mailbox name segment {segment!r} is a path traversal")
    for char in segment:
        category = unicodedata.category(char)
        if category == "Cc":
            raise InvalidName(f"control character U+{ord(char):04X} in mailbox name {segment!r}")
        if category == "Cs":
            raise InvalidName(f"lone surrogate U+{ord(char):04X} in mailbox name")


def validate_path(path: Iterable[str]) -> FolderPath:
    """Check every segment and the INBOX rule; return the path as a tuple."""
    if isinstance(path, str):
        raise InvalidName("a mailbox path is a sequence of segments, not a string")
    result = tuple(path)
    for segment in result:
        validate_segment(segment)
    if result and result[0].casefold() == "inbox":
        if result[0] != "INBOX":
            raise InvalidName(
                f"{result[0]!r} clashes with INBOX; children of INBOX are ('INBOX', ...)"
            )
        if len(result) == 1:
            raise InvalidName("('INBOX',) is INBOX itself: use ()")
    return result


def _needs_escape(char: str, index: int, layout: Layout, escape_char: str | None) -> bool:
    if char == "/" or (escape_char is not None and char == escape_char):
        return True
    if char == "." and (layout == "maildir++" or index == 0):
        return True
    return char == "~" and index == 0


def encode_segment(segment: str, layout: Layout, escape_char: str | None = DEFAULT_ESCAPE) -> str:
    """One segment as it appears on disk: modified UTF-7, then escaped."""
    _check_layout(layout)
    validate_segment(segment)
    out: list[str] = []
    for index, char in enumerate(mutf7.encode(segment)):
        if not _needs_escape(char, index, layout, escape_char):
            out.append(char)
        elif escape_char is None:
            raise InvalidName(
                f"{char!r} cannot appear in {segment!r} in the {layout} layout "
                "without an escape character (Dovecot's listescape)"
            )
        else:
            out.append(f"{escape_char}{ord(char):02x}")
    encoded = "".join(out)
    if layout == "fs":
        folded = encoded.casefold()
        if folded in _RESERVED_FS or folded.startswith(_RESERVED_FS_PREFIXES):
            raise InvalidName(
                f"{segment!r} would collide with a Maildir file or directory in LAYOUT=fs"
            )
    return encoded


def decode_segment(text: str, layout: Layout, escape_char: str | None = DEFAULT_ESCAPE) -> str:
    """Inverse of :func:`encode_segment` (strict: non-canonical forms raise)."""
    _check_layout(layout)
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if escape_char is not None and char == escape_char:
            digits = text[i + 1 : i + 3]
            if len(digits) != 2 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise InvalidName(f"bad escape in {text!r}")
            out.append(chr(int(digits, 16)))
            i += 3
        else:
            out.append(char)
            i += 1
    segment = mutf7.decode("".join(out))
    if encode_segment(segment, layout, escape_char) != text:
        raise InvalidName(f"{text!r} is not the canonical encoding of {segment!r}")
    return segment


def folder_dirname(
    path: Iterable[str], layout: Layout, escape_char: str | None = DEFAULT_ESCAPE
) -> str:
    """The folder's directory relative to the root: ``""`` for INBOX,
    ``.Work.Projects`` (Maildir++) or ``Work/Projects`` (fs)."""
    _check_layout(layout)
    segments = validate_path(path)
    if not segments:
        return ""
    encoded = [encode_segment(s, layout, escape_char) for s in segments]
    if layout == "maildir++":
        dirname = "." + ".".join(encoded)
        if len(dirname.encode()) > NAME_MAX:
            raise InvalidName(f"folder name longer than {NAME_MAX} bytes on disk")
        return dirname
    for part in encoded:
        if len(part.encode()) > NAME_MAX:
            raise InvalidName(f"folder name segment longer than {NAME_MAX} bytes on disk")
    return "/".join(encoded)


def folder_path(
    dirname: str, layout: Layout, escape_char: str | None = DEFAULT_ESCAPE
) -> FolderPath:
    """Inverse of :func:`folder_dirname`; raises :class:`InvalidName` for a
    directory that is not the canonical name of any mailbox path."""
    _check_layout(layout)
    if dirname == "":
        return INBOX
    if layout == "maildir++":
        if not dirname.startswith(".") or "/" in dirname:
            raise InvalidName(f"{dirname!r} is not a Maildir++ folder directory")
        parts = dirname[1:].split(".")
    else:
        parts = dirname.split("/")
    path = validate_path(decode_segment(part, layout, escape_char) for part in parts)
    if folder_dirname(path, layout, escape_char) != dirname:
        raise InvalidName(f"{dirname!r} is not canonical")
    return path


def storage_name(
    path: Iterable[str], layout: Layout, escape_char: str | None = DEFAULT_ESCAPE
) -> list[str]:
    """The encoded segments Dovecot writes in ``subscriptions``: ``["INBOX"]``
    for INBOX, else the directory name's segments."""
    segments = validate_path(path)
    if not segments:
        return ["INBOX"]
    return [encode_segment(s, layout, escape_char) for s in segments]


def check_message_name(name: str) -> str:
    """A message file name must be one plain directory entry."""
    if not isinstance(name, str) or not name or name.startswith(".") or "/" in name or "\0" in name:
        raise InvalidName(f"{name!r} is not a Maildir message file name")
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise InvalidName("message file name too long")
    return name


def inside(root: Path, relative: str | Path) -> Path:
    """``root / relative`` resolved, refusing anything (a symlink, a ``..``)
    that lands outside ``root``. ``root`` must already be resolved."""
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        raise UnsafePath(f"{relative!s} resolves outside the account's tree")
    return candidate
