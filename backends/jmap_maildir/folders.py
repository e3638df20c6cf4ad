"""Finding the folders of a tree, and noticing when they change.

A directory is a folder when it holds a ``cur/`` directory (what Dovecot
checks too). Symlinked directories are never listed: nothing may lead out
of the account's tree, and an alias inside it would show one folder twice.
Directories whose names are not the canonical encoding of a mailbox path
(see :mod:`.names`) are skipped and reported in ``skipped``.

A listing keeps the mtime of every directory it read (the root for
Maildir++, each walked directory for LAYOUT=fs): creating, renaming or
removing a folder changes one of them, so checking costs only ``stat``
calls. A folder renamed by hand keeps its inode, which is how a removed
and an added folder are recognised as one rename.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidName
from .names import (
    INBOX,
    MAILDIR_SUBDIRS,
    FolderPath,
    Layout,
    decode_segment,
    folder_path,
    validate_path,
)
from .scan import DirStamp, dir_stamp, needs_listing

MAX_DEPTH = 64  # LAYOUT=fs nesting; deeper trees are not walked


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder: its mailbox path, its directory relative to the root
    (``""`` for INBOX) and that directory's (device, inode), which a rename
    keeps."""

    path: FolderPath
    relpath: str
    dev: int
    ino: int

    @property
    def dir_id(self) -> tuple[int, int]:
        return (self.dev, self.ino)


@dataclass(frozen=True, slots=True)
class FolderListing:
    folders: Mapping[FolderPath, Folder] = field(default_factory=dict)
    dirs: Mapping[str, DirStamp] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FolderListChanges:
    listing: FolderListing
    added: tuple[Folder, ...] = ()
    removed: tuple[Folder, ...] = ()
    renamed: tuple[tuple[Folder, Folder], ...] = ()
    listed: bool = False

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.renamed)


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _folder(path: FolderPath, relpath: str, directory: Path) -> Folder | None:
    if not _is_real_dir(directory / "cur"):
        return None
    st = os.lstat(directory)
    return Folder(path, relpath, st.st_dev, st.st_ino)


def _inbox(root: Path, folders: dict[FolderPath, Folder]) -> None:
    inbox = _folder(INBOX, "", root)
    if inbox is not None:
        folders[INBOX] = inbox


def _list_maildirpp(root: Path, escape_char: str | None, now_ns: int) -> FolderListing:
    folders: dict[FolderPath, Folder] = {}
    skipped: list[str] = []
    root_stamp = dir_stamp(root, now_ns)
    _inbox(root, folders)
    with os.scandir(root) as items:
        for item in items:
            name = item.name
            if (
                not name.startswith(".")
                or name in (".", "..")
                or not item.is_dir(follow_symlinks=False)
            ):
                continue
            try:
                path = folder_path(name, "maildir++", escape_char)
            except InvalidName:
                skipped.append(name)
                continue
            folder = _folder(path, name, root / name)
            if folder is not None:
                folders[path] = folder
    dirs = {"": root_stamp} if root_stamp is not None else {}
    return FolderListing(folders, dirs, tuple(sorted(skipped)))


def _list_fs(root: Path, escape_char: str | None, now_ns: int) -> FolderListing:
    folders: dict[FolderPath, Folder] = {}
    dirs: dict[str, DirStamp] = {}
    skipped: list[str] = []
    _inbox(root, folders)

    def walk(relpath: str, segments: tuple[str, ...]) -> None:
        directory = root / relpath if relpath else root
        stamp = dir_stamp(directory, now_ns)
        if stamp is None:
            return
        dirs[relpath] = stamp
        if len(segments) >= MAX_DEPTH:
            return
        with os.scandir(directory) as items:
            children = [i.name for i in items if i.is_dir(follow_symlinks=False)]
        for name in sorted(children):
            if name.startswith(".") or name in MAILDIR_SUBDIRS:
                continue
            child_rel = f"{relpath}/{name}" if relpath else name
            try:
                segment = decode_segment(name, "fs", escape_char)
            except InvalidName:
                skipped.append(child_rel)
                continue
            path = (*segments, segment)
            try:
                validate_path(path)
                valid = True
            except InvalidName:  # ("INBOX",): a parent only, never a folder
                valid = False
            if valid:
                folder = _folder(path, child_rel, root / child_rel)
                if folder is not None:
                    folders[path] = folder
            walk(child_rel, path)

    walk("", ())
    return FolderListing(folders, dirs, tuple(sorted(skipped)))


def list_folders(root: Path, layout: Layout, escape_char: str | None, now_ns: int) -> FolderListing:
    if layout == "maildir++":
        return _list_maildirpp(root, escape_char, now_ns)
    return _list_fs(root, escape_char, now_ns)


def unchanged(root: Path, previous: FolderListing, now_ns: int) -> bool:
    """Whether every directory the listing read still has its mtime (and
    was settled then): stats only."""
    for relpath, old in previous.dirs.items():
        new = dir_stamp(root / relpath if relpath else root, now_ns)
        if needs_listing(old, new):
            return False
    return bool(previous.dirs)


def compare(previous: FolderListing, current: FolderListing) -> FolderListChanges:
    """Added, removed and renamed folders. A removed and an added folder
    with the same directory inode are one rename; a path whose directory
    was replaced (new inode) is removed and added."""
    gone = {p: f for p, f in previous.folders.items() if current.folders.get(p) != f}
    new = {p: f for p, f in current.folders.items() if previous.folders.get(p) != f}
    gone_by_id = {f.dir_id: f for f in gone.values()}
    renamed: list[tuple[Folder, Folder]] = []
    for path, folder in list(new.items()):
        old = gone_by_id.get(folder.dir_id)
        if old is not None and old.path != path and old.path in gone:
            renamed.append((old, folder))
            del new[path]
            del gone[old.path]
    return FolderListChanges(
        current,
        added=tuple(new.values()),
        removed=tuple(gone.values()),
        renamed=tuple(renamed),
        listed=True,
    )
