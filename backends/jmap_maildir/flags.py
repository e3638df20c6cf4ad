"""Maildir info suffixes (``:2,FS``) and their mapping to JMAP keywords.

A message's flags live in its file name, after ``:2,``, as characters in
ASCII order: the Maildir system flags in upper case and, the way Dovecot
does it, up to 26 other keywords as the letters ``a``..``z``, named by the
folder's ``dovecot-keywords`` file (see :mod:`.keywords_file`). Issue 4
fixes the system flags:

====  ==============  =======================================
D     ``$draft``      IMAP \\Draft
F     ``$flagged``    IMAP \\Flagged
P     ``$forwarded``  "passed"; no IMAP system flag
R     ``$answered``   IMAP \\Answered
S     ``$seen``       IMAP \\Seen
T     (none)          "trashed", IMAP \\Deleted
====  ==============  =======================================

T is deliberately *not* a keyword: RFC 8621 §4.1.1 says a message carrying
IMAP \\Deleted must be invisible through JMAP, so it is reported as
:attr:`MaildirFlags.deleted` for the backend to hide, and a keyword can
never set it.

Case: JMAP keywords are case-insensitive and always returned lowercased
(RFC 8621 §4.1.1); Dovecot keeps a keyword's spelling as it was first
written. Names are matched case-insensitively, an existing spelling
(``$Label1``, ``NonJunk``) is reused rather than duplicated, a new name is
written lowercased, and every keyword read back is lowercased. Two lines
differing only in case (``Junk``, ``junk``) both mean ``junk``; setting it
sets the lower letter, clearing it clears both.

``$forwarded`` is P, but some IMAP servers record it as a ``$Forwarded``
keyword letter instead: if the folder already has such a letter it is read
as ``$forwarded`` too and kept in step with P, so both servers agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

INFO_SEPARATOR = ":"
INFO_PREFIX = "2,"

FLAG_KEYWORDS: Mapping[str, str] = {
    "D": "$draft",
    "F": "$flagged",
    "P": "$forwarded",
    "R": "$answered",
    "S": "$seen",
}
KEYWORD_FLAGS: Mapping[str, str] = {keyword: flag for flag, keyword in FLAG_KEYWORDS.items()}
TRASHED = "T"
SYSTEM_FLAGS = frozenset(FLAG_KEYWORDS) | {TRASHED}
KEYWORD_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_KEYWORD_SPECIALS = frozenset('(){]%*"\\')


@dataclass(frozen=True, slots=True)
class MaildirFlags:
    """The characters of one info suffix, split by what they mean.

    ``system``: upper-case flags (DFPRST, and any unknown upper-case one,
    kept as found); ``letters``: keyword letters a..z; ``other``: anything
    else after ``2,`` (kept, never interpreted)."""

    system: frozenset[str] = frozenset()
    letters: frozenset[str] = frozenset()
    other: frozenset[str] = frozenset()

    @property
    def deleted(self) -> bool:
        """T: IMAP \\Deleted, to be hidden from JMAP (RFC 8621 §4.1.1)."""
        return TRASHED in self.system

    def chars(self) -> str:
        """The flag characters in ASCII order, as Maildir requires."""
        return "".join(sorted(self.system | self.letters | self.other))


def parse_info(info: str | None) -> MaildirFlags:
    """Flags of an info suffix (the text after ``:``). ``None`` (a file in
    new/ without info) and experimental ``1,`` infos carry no flags."""
    if not info or not info.startswith(INFO_PREFIX):
        return MaildirFlags()
    system: set[str] = set()
    letters: set[str] = set()
    other: set[str] = set()
    for char in info[len(INFO_PREFIX) :]:
        if "A" <= char <= "Z":
            system.add(char)
        elif "a" <= char <= "z":
            letters.add(char)
        elif char != ",":
            other.add(char)
    return MaildirFlags(frozenset(system), frozenset(letters), frozenset(other))


def format_info(flags: MaildirFlags) -> str:
    """``2,`` and the flag characters in ASCII order."""
    return INFO_PREFIX + flags.chars()


def split_name(name: str) -> tuple[str, str | None]:
    """``(unique base, info)`` of a message file name; info is None when the
    name has no ``:``. The base is the message's identity within a folder:
    it survives every flag change and the move from new/ to cur/."""
    base, sep, info = name.partition(INFO_SEPARATOR)
    return base, (info if sep else None)


def join_name(base: str, flags: MaildirFlags) -> str:
    return f"{base}{INFO_SEPARATOR}{format_info(flags)}"


def is_valid_keyword(keyword: str) -> bool:
    """Whether a keyword can be an IMAP atom in ``dovecot-keywords``: 1-255
    characters of ASCII 0x21-0x7E without ``( ) { ] % * " \\`` (the same
    syntax as RFC 8621 §4.1.1 keywords)."""
    return (
        isinstance(keyword, str)
        and 0 < len(keyword) <= 255
        and all("\x21" <= c <= "\x7e" and c not in _KEYWORD_SPECIALS for c in keyword)
    )


def system_keywords(flags: MaildirFlags) -> frozenset[str]:
    """The JMAP keywords the system flags stand for (never T)."""
    return frozenset(FLAG_KEYWORDS[f] for f in flags.system if f in FLAG_KEYWORDS)


def keywords_of(flags: MaildirFlags, letter_names: Mapping[str, str]) -> frozenset[str]:
    """All JMAP keywords (lowercased) of a message: its system flags plus its
    letters named by ``letter_names`` (letter -> keyword as spelled in
    ``dovecot-keywords``). Letters without a name are ignored."""
    names = {letter_names[x].lower() for x in flags.letters if x in letter_names}
    return system_keywords(flags) | frozenset(names)


def split_keywords(keywords: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """``(system flag letters, other keywords lowercased)`` for JMAP keywords."""
    system: set[str] = set()
    other: set[str] = set()
    for keyword in keywords:
        lowered = keyword.lower()
        if lowered in KEYWORD_FLAGS:
            system.add(KEYWORD_FLAGS[lowered])
        else:
            other.add(lowered)
    return frozenset(system), frozenset(other)


def letters_by_keyword(letter_names: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """Lowercased keyword -> every letter whose name matches it (a file may
    hold ``Junk`` and ``junk``: both letters mean ``junk``)."""
    result: dict[str, set[str]] = {}
    for letter, name in letter_names.items():
        result.setdefault(name.lower(), set()).add(letter)
    return {k: frozenset(v) for k, v in result.items()}
