"""Listing a folder's messages, and telling cheaply whether that listing is stale.

Issue 4 asks that changes made by other programs (a delivery agent dropping
a file into new/, an IMAP server moving it to cur/ with flags, a deletion)
be found without a full scan per request. Every such change renames,
creates or removes an entry of new/ or cur/, which updates that
directory's mtime; so a :class:`FolderStamp` (the mtimes of new/ and cur/,
the folder directory's identity and the ``dovecot-keywords`` file's
stamp) costs a few ``stat`` calls and no listing, and only a directory
whose stamp moved is listed again. Files already known by name and inode
are not even stat'ed again: a Maildir file's contents never change.

Granularity: a change in the same clock tick as the mtime recorded by the
last listing would leave that mtime unchanged. As Dovecot does, a
directory whose mtime was less than :data:`SETTLE_NS` (1 s) old when it was
listed is not trusted (``settled=False``) and is listed again next time.

Listing again is cheap where little changed: a scan keeps every name of
new/ and cur/ with its inode as the directory listed it
(:attr:`FolderScan.files`), so a later listing compares two dicts (C
speed) and parses and stats only the names that came or went; a large
folder costs one ``scandir`` pass, not a Python loop over its messages.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import UnsafePath
from .flags import MaildirFlags, keywords_of, parse_info, split_name
from .keywords_file import Stamp
from .names import FolderPath

Subdir = Literal["new", "cur"]
SUBDIRS: tuple[Subdir, ...] = ("new", "cur")
SETTLE_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class MessageFile:
    """Where one message is: folder path, subdir and file name. It carries
    no absolute path, so it can only ever be resolved inside the tree it
    is handed to. ``unmapped``: keywords the last write could not put into
    the file name (no ``dovecot-keywords`` letter left); keep them
    elsewhere."""

    folder: FolderPath
    subdir: Subdir
    name: str
    unmapped: frozenset[str] = frozenset()

    @property
    def base(self) -> str:
        """The unique base name: the message's identity within its folder,
        unchanged by flag changes and by the move from new/ to cur/."""
        return split_name(self.name)[0]

    @property
    def flags(self) -> MaildirFlags:
        return parse_info(split_name(self.name)[1])


@dataclass(frozen=True, slots=True)
class MessageEntry:
    """One message as a listing saw it."""

    folder: FolderPath
    base: str
    subdir: Subdir
    name: str
    flags: MaildirFlags
    keywords: frozenset[str]
    size: int
    mtime_ns: int
    dev: int
    ino: int

    @property
    def deleted(self) -> bool:
        """T (IMAP \\Deleted): RFC 8621 §4.1.1 wants it invisible to JMAP."""
        return self.flags.deleted

    @property
    def link_id(self) -> tuple[int, int]:
        """(device, inode): equal for the hard links of one message in
        several folders (not for copies made where a link was impossible)."""
        return (self.dev, self.ino)

    @property
    def file(self) -> MessageFile:
        return MessageFile(self.folder, self.subdir, self.name)


@dataclass(frozen=True, slots=True)
class DirStamp:
    mtime_ns: int
    settled: bool


@dataclass(frozen=True, slots=True)
class FolderStamp:
    """What must stay equal for a listing to still be true."""

    dir_id: tuple[int, int]
    new: DirStamp | None
    cur: DirStamp
    keywords: Stamp | None

    def token(self) -> str:
        """A compact string form, for a caller that stores stamps."""
        parts = [
            f"{self.dir_id[0]}.{self.dir_id[1]}",
            _dir_token(self.new),
            _dir_token(self.cur),
            "-" if self.keywords is None else ".".join(map(str, self.keywords)),
        ]
        return "v1:" + ":".join(parts)

    @classmethod
    def from_token(cls, token: str) -> FolderStamp:
        version, dir_id, new, cur, keywords = token.split(":")
        if version != "v1":
            raise ValueError(f"unknown stamp token {token!r}")
        dev, ino = (int(x) for x in dir_id.split("."))
        parsed_new = _parse_dir_token(new)
        parsed_cur = _parse_dir_token(cur)
        if parsed_cur is None:
            raise ValueError(f"stamp token {token!r} has no cur/")
        kw: Stamp | None = None
        if keywords != "-":
            mtime_ns, size, inode = (int(x) for x in keywords.split("."))
            kw = (mtime_ns, size, inode)
        return cls((dev, ino), parsed_new, parsed_cur, kw)


def _dir_token(stamp: DirStamp | None) -> str:
    return "-" if stamp is None else f"{stamp.mtime_ns}{'s' if stamp.settled else 'u'}"


def _parse_dir_token(text: str) -> DirStamp | None:
    return None if text == "-" else DirStamp(int(text[:-1]), text[-1] == "s")


@dataclass(frozen=True, slots=True)
class FolderScan:
    """Every message of one folder, by unique base name, with the stamp the
    listing was taken at. ``duplicates``: names ignored because another
    file had the same base (cur/ wins over new/, then the smaller name)."""

    folder: FolderPath
    stamp: FolderStamp
    entries: Mapping[str, MessageEntry] = field(default_factory=dict)
    duplicates: tuple[str, ...] = ()
    #: subdir -> {name: inode} of every name the listing saw (hidden
    #: names and non-files too): what the next listing compares with.
    files: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Change:
    """A message still in the folder under the same base, renamed."""

    old: MessageEntry
    new: MessageEntry

    @property
    def moved_to_cur(self) -> bool:
        return self.old.subdir == "new" and self.new.subdir == "cur"

    @property
    def flags_changed(self) -> bool:
        return self.old.keywords != self.new.keywords or self.old.deleted != self.new.deleted


@dataclass(frozen=True, slots=True)
class FolderChanges:
    """The difference between two listings of one folder. ``listed`` names
    the subdirectories that had to be listed (empty: nothing changed and
    the answer cost only stats)."""

    scan: FolderScan
    added: tuple[MessageEntry, ...] = ()
    removed: tuple[MessageEntry, ...] = ()
    changed: tuple[Change, ...] = ()
    listed: tuple[Subdir, ...] = ()

    @property
    def flags_changed(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changed if c.flags_changed)

    @property
    def moved_to_cur(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changed if c.moved_to_cur)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def dir_stamp(path: Path, now_ns: int) -> DirStamp | None:
    """The directory's mtime, or None if it is missing or not a real
    directory (a symlink is never trusted)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return DirStamp(st.st_mtime_ns, now_ns - st.st_mtime_ns >= SETTLE_NS)


def needs_listing(old: DirStamp | None, new: DirStamp | None) -> bool:
    """Whether a subdirectory must be listed again."""
    if old is None or new is None:
        return old != new
    return old.mtime_ns != new.mtime_ns or not old.settled


def _open_subdir(directory: Path, subdir: Subdir) -> int | None:
    """A descriptor of new/ or cur/ (None if missing), never through a
    symlink: a new/ or cur/ swapped for one is refused."""
    try:
        return os.open(directory / subdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(f"{directory / subdir} is not a real directory") from None
        raise


def list_names(directory: Path, subdir: Subdir) -> dict[str, int]:
    """{name: inode} of everything in new/ or cur/ (one ``scandir`` pass,
    no stat, no parsing): what :attr:`FolderScan.files` holds."""
    fd = _open_subdir(directory, subdir)
    if fd is None:
        return {}
    try:
        with os.scandir(fd) as iterator:
            return {item.name: item.inode() for item in iterator}
    finally:
        os.close(fd)


def list_subdir(
    folder: FolderPath,
    directory: Path,
    subdir: Subdir,
    known: Mapping[str, MessageEntry],
    letter_names: Mapping[str, str],
    names: dict[str, int] | None = None,
) -> list[MessageEntry]:
    """Every message file of new/ or cur/. Hidden names and anything that
    is not a regular file (symlinks included) are skipped; files known by
    the same name and inode keep their earlier stat. ``names``, if given,
    receives every name listed with its inode (see :func:`list_names`)."""
    fd = _open_subdir(directory, subdir)
    if fd is None:
        return []
    try:
        with os.scandir(fd) as iterator:
            return _entries(folder, subdir, iterator, known, letter_names, {} if names is None else names)
    finally:
        os.close(fd)


def message_entry(
    folder: FolderPath,
    subdir: Subdir,
    name: str,
    st: os.stat_result | None,
    letter_names: Mapping[str, str],
) -> MessageEntry:
    """The entry of one file from its name and ``lstat`` (None: a file
    known to have been there, gone now: no size, time or inode)."""
    base, info = split_name(name)
    flags = parse_info(info)
    keywords = keywords_of(flags, letter_names)
    if st is None:
        return MessageEntry(folder, base, subdir, name, flags, keywords, 0, 0, -1, -1)
    return MessageEntry(
        folder, base, subdir, name, flags, keywords, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino
    )


def _entries(
    folder: FolderPath,
    subdir: Subdir,
    iterator: Iterable[os.DirEntry[str]],
    known: Mapping[str, MessageEntry],
    letter_names: Mapping[str, str],
    names: dict[str, int],
) -> list[MessageEntry]:
    entries: list[MessageEntry] = []
    for item in iterator:
        name = item.name
        names[name] = item.inode()
        if name.startswith(".") or not item.is_file(follow_symlinks=False):
            continue
        base, info = split_name(name)
        flags = parse_info(info)
        earlier = known.get(name)
        if earlier is not None and earlier.subdir == subdir and earlier.ino == item.inode():
            size, mtime_ns, dev, ino = earlier.size, earlier.mtime_ns, earlier.dev, earlier.ino
        else:
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:  # renamed or removed while listing
                continue
            size, mtime_ns, dev, ino = st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino
        keywords = keywords_of(flags, letter_names)
        entries.append(
            MessageEntry(folder, base, subdir, name, flags, keywords, size, mtime_ns, dev, ino)
        )
    return entries


def by_base(entries: Iterable[MessageEntry]) -> tuple[dict[str, MessageEntry], tuple[str, ...]]:
    """Index entries by base; on a clash cur/ wins, then the smaller name."""
    chosen: dict[str, MessageEntry] = {}
    dropped: list[str] = []
    for entry in sorted(entries, key=lambda e: (e.subdir != "cur", e.name)):
        if entry.base in chosen:
            dropped.append(entry.name)
        else:
            chosen[entry.base] = entry
    return chosen, tuple(sorted(dropped))


def diff(
    old: Mapping[str, MessageEntry], new: Mapping[str, MessageEntry]
) -> tuple[tuple[MessageEntry, ...], tuple[MessageEntry, ...], tuple[Change, ...]]:
    """(added, removed, changed) by base. A base whose file was replaced (a
    new inode under the same name) counts as removed and added again: the
    contents may differ."""
    added: list[MessageEntry] = []
    removed: list[MessageEntry] = []
    changed: list[Change] = []
    for base, entry in new.items():
        before = old.get(base)
        if before is None:
            added.append(entry)
        elif (
            before.name == entry.name and before.subdir == entry.subdir and before.ino != entry.ino
        ):
            removed.append(before)
            added.append(entry)
        elif (
            before.name != entry.name
            or before.subdir != entry.subdir
            or before.keywords != entry.keywords
        ):
            changed.append(Change(before, entry))
    removed.extend(entry for base, entry in old.items() if base not in new)
    return tuple(added), tuple(removed), tuple(changed)
