"""The ``dovecot-keywords`` file of one folder: which letter names which keyword.

Dovecot keeps, in each Maildir folder, a file of lines ``N name`` where
``N`` (0..25) is the letter ``a``..``z`` used in that folder's info
suffixes. Reading and extending it exactly as Dovecot does is what lets
both servers see the same keywords on the same files (issue 4). New letters
are taken lowest free first, under Dovecot's ``dovecot-keywords.lock``
dot-lock, and written with an atomic rename.

A folder has at most 26 letters. A keyword that gets none (the table is
full, or the name is no valid IMAP atom) is returned as *unmapped*: the
caller keeps it elsewhere (the backend's index), since the file name
cannot carry it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import dotlock
from .flags import KEYWORD_LETTERS, is_valid_keyword, letters_by_keyword

FILE_NAME = "dovecot-keywords"
MAX_LETTERS = len(KEYWORD_LETTERS)

Stamp = tuple[int, int, int]  # (mtime_ns, size, inode) of the file when read


def parse(data: bytes | None) -> dict[str, str]:
    """letter -> keyword name, from the file's bytes. Lines that are not
    ``N name`` with N in 0..25 are ignored (and kept when rewriting); the
    first line for an index wins."""
    result: dict[str, str] = {}
    if not data:
        return result
    for raw in data.decode("utf-8", "replace").splitlines():
        number, sep, name = raw.partition(" ")
        if not sep or not number.isdigit() or not is_valid_keyword(name):
            continue
        index = int(number)
        if index < MAX_LETTERS:
            result.setdefault(KEYWORD_LETTERS[index], name)
    return result


def file_stamp(folder_dir: Path) -> Stamp | None:
    """What changes whenever the file is rewritten (atomic renames give it a
    new inode), or None when there is no file."""
    try:
        st = os.lstat(folder_dir / FILE_NAME)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass(frozen=True, slots=True)
class KeywordTable:
    """One folder's letters, as read at ``stamp``."""

    names: Mapping[str, str] = field(default_factory=dict)
    stamp: Stamp | None = None

    def keywords(self) -> dict[str, frozenset[str]]:
        """lowercased keyword -> its letters (usually one)."""
        return letters_by_keyword(self.names)

    def letter_for(self, keyword: str) -> str | None:
        """The letter to set for a keyword: the lowest one whose name
        matches case-insensitively."""
        letters = self.keywords().get(keyword.lower())
        return min(letters) if letters else None


def load(folder_dir: Path) -> KeywordTable:
    """Read the table; its stamp comes from the very file read (fstat), so
    a concurrent rewrite can only make the next check reload once more."""
    try:
        fd = os.open(folder_dir / FILE_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return KeywordTable()
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink: never followed, no table
            return KeywordTable()
        raise
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        data = handle.read()
    return KeywordTable(parse(data), (st.st_mtime_ns, st.st_size, st.st_ino))


def _with_new_letters(data: bytes | None, wanted: Iterable[str]) -> bytes | None:
    names = parse(data)
    known = letters_by_keyword(names)
    missing = sorted({k for k in wanted if k.lower() not in known and is_valid_keyword(k)})
    free = [i for i, letter in enumerate(KEYWORD_LETTERS) if letter not in names]
    lines = [f"{index} {keyword}\n" for index, keyword in zip(free, missing, strict=False)]
    if not lines:
        return None
    text = (data or b"").decode("utf-8", "replace")
    if text and not text.endswith("\n"):
        text += "\n"
    return (text + "".join(lines)).encode("utf-8")


def assign(
    folder_dir: Path,
    keywords: Iterable[str],
    *,
    timeout: float = dotlock.DEFAULT_TIMEOUT,
    stale: float = dotlock.DEFAULT_STALE,
) -> KeywordTable:
    """Give every keyword without a letter the lowest free one (as many as
    are left), atomically, re-reading the file under the lock so that a
    concurrent writer's letters are never reused. Returns the table after."""
    wanted = list(keywords)
    dotlock.update(
        folder_dir / FILE_NAME,
        lambda current: _with_new_letters(current, wanted),
        timeout=timeout,
        stale=stale,
    )
    return load(folder_dir)
