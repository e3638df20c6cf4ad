"""One account's Maildir tree: its folders, their messages, and what changed.

Messages stay files, byte for byte; every write is done the Maildir way so
that a kill at any moment leaves no half message (issue 4):

- a new message is written to ``tmp/`` under a unique name, fsync'ed, given
  its received time as mtime, renamed into ``cur/`` and the directory
  fsync'ed. Mail written through JMAP goes straight to ``cur/`` with its
  flags: ``new/`` means "not yet seen by any mail client" (IMAP \\Recent),
  which JMAP has no use for, and a file in ``new/`` cannot carry flags;
- a flag change is one rename within ``cur/`` (from ``new/`` for mail a
  delivery agent left there); the unique base name before ``:2,`` stays;
- a message in several folders is one file hard-linked into each (a copy,
  written like a new message, where the file system refuses the link);
- ``dovecot-keywords`` and ``subscriptions`` are rewritten whole under
  Dovecot's dot-lock and renamed into place.

When another program renamed a message meanwhile (an IMAP server setting
flags, moving it to ``cur/``), the operations find it again by its base
name and retry.

Safety: names go through :mod:`.names`; folder directories must resolve
inside the root (``Path.resolve`` + ``is_relative_to``); ``cur/``, ``new/``
and ``tmp/`` must be real directories and message files are opened with
``O_NOFOLLOW``, so no symlink is followed out of the tree. A
:class:`~.scan.MessageFile` holds no absolute path, so one account's tree
can never reach into another's.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import dotlock, keywords_file, subscriptions, uniquename
from .errors import (
    FolderExists,
    FolderHasChildren,
    FolderNotEmpty,
    FolderNotFound,
    InvalidName,
    MessageGone,
    UnsafePath,
)
from .flags import (
    SYSTEM_FLAGS,
    MaildirFlags,
    is_valid_keyword,
    join_name,
    keywords_of,
    split_keywords,
    split_name,
)
from .folders import Folder, FolderListChanges, FolderListing, compare, list_folders, unchanged
from .keywords_file import KeywordTable
from .names import (
    DEFAULT_ESCAPE,
    INBOX,
    LAYOUTS,
    FolderPath,
    Layout,
    check_message_name,
    folder_dirname,
    inside,
    validate_path,
)
from .scan import (
    SUBDIRS,
    DirStamp,
    FolderChanges,
    FolderScan,
    FolderStamp,
    MessageEntry,
    MessageFile,
    Subdir,
    by_base,
    diff,
    dir_stamp,
    list_names,
    list_subdir,
    message_entry,
    needs_listing,
)

FILE_MODE = 0o600
DIR_MODE = 0o700
# Maildir's rule for tmp/ files of other writers: gone after 36 hours.
TMP_MAX_AGE = 36 * 3600.0
# Control files a folder may hold that delete_folder may remove with it.
_CONTROL_FILES = (
    "maildirfolder",
    keywords_file.FILE_NAME,
    "dovecot-uidlist",
    "dovecot-uidvalidity",
)
_CONTROL_PREFIXES = (
    "dovecot.index",
    "dovecot-uidvalidity.",
    "dovecot.mailbox.log",
    "dovecot.list.index",
)
_NOT_LINKABLE = {
    errno.EXDEV,
    errno.EPERM,
    errno.EMLINK,
    errno.ENOTSUP,
    errno.EOPNOTSUPP,
    errno.ENOSYS,
}
_RETRIES = 3
_LOCATE_ORDER: tuple[Subdir, ...] = ("cur", "new")  # a copy in cur/ wins
# The stamp of a listing never taken: every directory differs from it.
_NEVER = FolderStamp((-1, -1), None, DirStamp(-1, False), None)


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What :meth:`MaildirTree.recover` cleaned or repaired (paths relative
    to the root)."""

    removed_tmp: tuple[str, ...] = ()
    removed_locks: tuple[str, ...] = ()
    repaired: tuple[FolderPath, ...] = ()


@dataclass(frozen=True, slots=True)
class _Wanted:
    """Flags a write asked for, resolved against one folder's letters."""

    flags: MaildirFlags
    unmapped: frozenset[str] = field(default_factory=frozenset)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ns(seconds: float) -> int:
    """Unix seconds to nanoseconds without the float error of ``* 1e9``
    (1.7e18 needs more bits than a double has)."""
    whole = math.floor(seconds)
    return whole * 1_000_000_000 + round((seconds - whole) * 1e9)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class MaildirTree:
    """The Maildir++ (or LAYOUT=fs) tree of one account, rooted at ``root``.

    ``escape_char``: Dovecot listescape's escape character for names the
    layout cannot hold (``None`` refuses such names). ``host``: the host
    part of new file names. ``create``: make the root and INBOX's cur/,
    new/ and tmp/ if missing."""

    def __init__(
        self,
        root: Path | str,
        layout: Layout = "maildir++",
        *,
        escape_char: str | None = DEFAULT_ESCAPE,
        create: bool = True,
        host: str | None = None,
        lock_timeout: float = dotlock.DEFAULT_TIMEOUT,
        lock_stale: float = dotlock.DEFAULT_STALE,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
        if escape_char is not None and (
            len(escape_char) != 1
            or not "\x21" <= escape_char <= "\x7e"
            or escape_char.isalnum()
            or escape_char in "./&-~+,"
        ):
            raise ValueError(f"unusable escape character {escape_char!r}")
        self.layout: Layout = layout
        self.escape_char = escape_char
        self.lock_timeout = lock_timeout
        self.lock_stale = lock_stale
        root = Path(root)
        if create:
            root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self.root = root.resolve(strict=True)
        if create:
            self._make_subdirs(self.root)
        self._names = uniquename.NameGenerator(host)
        self._tables: dict[FolderPath, KeywordTable] = {}

    # -- paths ---------------------------------------------------------------

    def folder_dir(self, folder: Iterable[str]) -> Path:
        """The folder's directory, checked to resolve inside the root and to
        pass through no symlink at all (the root is already resolved and
        the name holds no ``..``, so any difference is a symlink)."""
        relative = folder_dirname(folder, self.layout, self.escape_char)
        if not relative:
            return self.root
        resolved = inside(self.root, relative)
        if resolved != self.root / relative:
            raise UnsafePath(f"{relative} passes through a symlink")
        return resolved

    def _subdir(self, folder_dir: Path, name: str) -> Path:
        """cur/, new/ or tmp/ of a folder: must be a real directory."""
        path = folder_dir / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise FolderNotFound(f"{path} is missing") from None
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(f"{path} is a symlink")
        if not stat.S_ISDIR(st.st_mode):
            raise FolderNotFound(f"{path} is not a directory")
        return path

    def _existing(self, folder: Iterable[str]) -> tuple[FolderPath, Path]:
        path = validate_path(folder)
        directory = self.folder_dir(path)
        self._subdir(directory, "cur")
        return path, directory

    def _make_subdirs(self, directory: Path) -> bool:
        """tmp/, new/, then cur/ (whose presence makes a folder); True if
        any was missing."""
        made = False
        for name in ("tmp", "new", "cur"):
            try:
                os.mkdir(directory / name, DIR_MODE)
                made = True
            except FileExistsError:
                self._subdir(directory, name)
        if made:
            dotlock.fsync_dir(directory)
        return made

    def _message_path(self, message: MessageFile) -> tuple[Path, Path]:
        """(folder directory, message file path), every part validated."""
        if message.subdir not in SUBDIRS:
            raise InvalidName(f"subdir must be new or cur, not {message.subdir!r}")
        check_message_name(message.name)
        directory = self.folder_dir(message.folder)
        return directory, self._subdir(directory, message.subdir) / message.name

    # -- folders -------------------------------------------------------------

    def list_folders(self) -> FolderListing:
        """Every folder (INBOX is ``()``), with the stamps that tell later
        whether the list changed."""
        return list_folders(self.root, self.layout, self.escape_char, time.time_ns())

    def folders(self) -> dict[FolderPath, Folder]:
        return dict(self.list_folders().folders)

    def folder_changes_since(self, previous: FolderListing) -> FolderListChanges:
        """Folders created, removed or renamed (by anyone) since ``previous``;
        costs one stat per directory read before when nothing changed."""
        if unchanged(self.root, previous, time.time_ns()):
            return FolderListChanges(previous)
        return compare(previous, self.list_folders())

    def create_folder(self, folder: Iterable[str]) -> Folder:
        """Make the folder (and, for LAYOUT=fs, plain parent directories).
        A directory left half-made by a crash is completed."""
        path = validate_path(folder)
        if path == INBOX:
            raise FolderExists("INBOX always exists")
        directory = self.folder_dir(path)
        directory.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        inside(self.root, directory.parent)
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if os.path.islink(directory) or not os.path.isdir(directory):
                raise UnsafePath(f"{directory} is not a directory") from None
            if os.path.isdir(directory / "cur"):
                raise FolderExists(f"{path!r} already exists") from None
        dotlock.fsync_dir(directory.parent)
        if self.layout == "maildir++":
            self._touch(directory / "maildirfolder")
        self._make_subdirs(directory)
        st = os.lstat(directory)
        return Folder(path, str(directory.relative_to(self.root)), st.st_dev, st.st_ino)

    def _touch(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
        os.close(fd)

    def _children(self, path: FolderPath) -> list[FolderPath]:
        return sorted(p for p in self.folders() if len(p) > len(path) and p[: len(path)] == path)

    def rename_folder(self, old: Iterable[str], new: Iterable[str]) -> None:
        """Rename a folder with its subfolders. Maildir++ renames each
        directory (a crash part-way leaves valid folders under both names);
        LAYOUT=fs renames one directory."""
        source, target = validate_path(old), validate_path(new)
        if INBOX in (source, target):
            raise InvalidName("INBOX cannot be renamed, nor be a rename target")
        if target[: len(source)] == source:
            raise InvalidName("a folder cannot move inside itself")
        moves = [(source, target)]
        if self.layout == "maildir++":
            moves += [(c, target + c[len(source) :]) for c in self._children(source)]
        pairs = [(self.folder_dir(a), self.folder_dir(b)) for a, b in moves]
        if not any(os.path.isdir(a) for a, _ in pairs):
            raise FolderNotFound(f"{source!r} does not exist")
        for _, b in pairs:
            if os.path.lexists(b):
                raise FolderExists(f"{b.relative_to(self.root)} already exists")
        for a, b in pairs:
            if not os.path.isdir(a):
                continue
            b.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            inside(self.root, b.parent)
            # mkdir claims the name (it fails if anyone holds it); rename then
            # replaces that empty directory atomically.
            try:
                os.mkdir(b, DIR_MODE)
            except FileExistsError:
                raise FolderExists(f"{b.relative_to(self.root)} already exists") from None
            try:
                os.rename(a, b)
            except OSError:
                os.rmdir(b)  # give the claimed name back
                raise
            dotlock.fsync_dir(b.parent)
            if a.parent != b.parent:
                dotlock.fsync_dir(a.parent)
        self._tables.clear()

    def delete_folder(self, folder: Iterable[str]) -> None:
        """Delete a folder that has no messages and no subfolders. new/ and
        cur/ go with ``rmdir``, which refuses a directory that is not empty,
        so a message delivered meanwhile is never lost."""
        path, directory = self._existing(folder)
        if path == INBOX:
            raise InvalidName("INBOX cannot be deleted")
        if self._children(path):
            raise FolderHasChildren(f"{path!r} has subfolders")
        try:
            os.rmdir(directory / "new")
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                raise FolderNotEmpty(f"{path!r} has messages in new/") from None
            raise
        try:
            os.rmdir(directory / "cur")
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                os.mkdir(directory / "new", DIR_MODE)
                raise FolderNotEmpty(f"{path!r} has messages in cur/") from None
            raise
        self._remove_leftovers(directory)
        self._tables.pop(path, None)

    def _remove_leftovers(self, directory: Path) -> None:
        """tmp/ files and known control files; the directory itself only if
        nothing else (such as LAYOUT=fs children) remains. Never a tree
        removal: an unknown file stays."""
        tmp = directory / "tmp"
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            with os.scandir(tmp) as items:
                for item in items:
                    if not item.is_dir(follow_symlinks=False):
                        os.unlink(item.path)
            os.rmdir(tmp)
        with os.scandir(directory) as items:
            for item in items:
                name = item.name
                if item.is_dir(follow_symlinks=False):
                    continue
                if (
                    name in _CONTROL_FILES
                    or name.startswith(_CONTROL_PREFIXES)
                    or name.endswith(".lock")
                ):
                    os.unlink(item.path)
        try:
            os.rmdir(directory)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        dotlock.fsync_dir(directory.parent)

    def subscriptions(self) -> set[FolderPath]:
        """The subscribed folders, from the ``subscriptions`` file."""
        return subscriptions.read(self.root, self.layout, self.escape_char)

    def set_subscriptions(self, folders: Iterable[Iterable[str]]) -> None:
        """Make exactly ``folders`` subscribed."""
        wanted = [validate_path(f) for f in folders]
        self._update_subscriptions(lambda _current: wanted)

    def subscribe(self, folder: Iterable[str], subscribed: bool = True) -> None:
        """Add or drop one subscription, re-reading the file under the lock."""
        path = validate_path(folder)
        self._update_subscriptions(
            lambda current: (current | {path}) if subscribed else (current - {path})
        )

    def _update_subscriptions(
        self, decide: Callable[[set[FolderPath]], Iterable[Iterable[str]]]
    ) -> None:
        subscriptions.update(
            self.root,
            decide,
            self.layout,
            self.escape_char,
            timeout=self.lock_timeout,
            stale=self.lock_stale,
        )

    # -- keywords ------------------------------------------------------------

    def keyword_table(self, folder: Iterable[str]) -> KeywordTable:
        """The folder's ``dovecot-keywords`` letters (cached while the file's
        stamp is unchanged)."""
        path = validate_path(folder)
        return self._table(path, self.folder_dir(path))

    def _table(self, path: FolderPath, directory: Path) -> KeywordTable:
        cached = self._tables.get(path)
        if cached is not None and cached.stamp == keywords_file.file_stamp(directory):
            return cached
        table = keywords_file.load(directory)
        self._tables[path] = table
        return table

    def _wanted(
        self, path: FolderPath, directory: Path, flags: Iterable[str], keywords: Iterable[str]
    ) -> _Wanted:
        """System letters from ``flags`` (DFPRST) and from system keywords;
        letters for the other keywords, assigning new ones when needed."""
        system = {f for f in flags}
        unknown = system - SYSTEM_FLAGS
        if unknown:
            raise ValueError(f"unknown Maildir flags {sorted(unknown)}")
        from_keywords, others = split_keywords(keywords)
        system |= from_keywords
        table = self._table(path, directory)
        missing = [k for k in others if table.letter_for(k) is None and is_valid_keyword(k)]
        if missing:
            table = keywords_file.assign(
                directory, missing, timeout=self.lock_timeout, stale=self.lock_stale
            )
            self._tables[path] = table
        letters: set[str] = set()
        unmapped: set[str] = set()
        for keyword in others:
            letter = table.letter_for(keyword)
            if letter is None:
                unmapped.add(keyword)
            else:
                letters.add(letter)
        forwarded = table.letter_for("$forwarded")
        if "P" in system and forwarded is not None:
            letters.add(forwarded)  # keep another server's $Forwarded letter in step with P
        return _Wanted(MaildirFlags(frozenset(system), frozenset(letters)), frozenset(unmapped))

    def _merged(self, wanted: _Wanted, old: MaildirFlags, table: KeywordTable) -> MaildirFlags:
        """The wanted flags plus what the old name carried that we do not
        interpret: letters with no name in the table, unknown upper-case
        flags, other characters."""
        keep_letters = {letter for letter in old.letters if letter not in table.names}
        keep_system = old.system - SYSTEM_FLAGS
        return MaildirFlags(
            wanted.flags.system | keep_system,
            wanted.flags.letters | keep_letters,
            wanted.flags.other | old.other,
        )

    # -- messages ------------------------------------------------------------

    def deliver(
        self,
        folder: Iterable[str],
        data: bytes,
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        received: float | None = None,
    ) -> MessageFile:
        """Store a new message in ``cur/`` with the given flags (Maildir
        letters DFPRST) and keywords (JMAP keywords; ``$seen`` and the
        other system keywords become their letters). ``received`` (Unix
        seconds) becomes the file's mtime, which IMAP servers read as the
        received date."""
        path, directory = self._existing(folder)
        wanted = self._wanted(path, directory, flags, keywords)
        base = self._names.next(len(data))
        name = join_name(base, wanted.flags)
        mtime_ns = None if received is None else _ns(received)
        self._write_new(directory, base, name, data, mtime_ns)
        return MessageFile(path, "cur", name, wanted.unmapped)

    def _tmp_dir(self, directory: Path) -> Path:
        try:
            return self._subdir(directory, "tmp")
        except FolderNotFound:
            os.mkdir(directory / "tmp", DIR_MODE)  # some writers never make tmp/
            return self._subdir(directory, "tmp")

    def _write_new(
        self,
        directory: Path,
        base: str,
        name: str,
        data: bytes | Iterable[bytes],
        mtime_ns: int | None,
    ) -> None:
        """tmp/ -> fsync -> mtime -> rename into cur/ -> fsync cur/."""
        tmp_path = self._tmp_dir(directory) / base
        cur = self._subdir(directory, "cur")
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        try:
            try:
                for chunk in [data] if isinstance(data, bytes | bytearray | memoryview) else data:
                    _write_all(fd, chunk)
                os.fsync(fd)
                if mtime_ns is not None:
                    os.utime(fd, ns=(time.time_ns(), mtime_ns))
            finally:
                os.close(fd)
            os.rename(tmp_path, cur / name)
        except BaseException:
            try:
                os.unlink(tmp_path)
            except FileNotFoundError:
                pass
            raise
        dotlock.fsync_dir(cur)

    def locate(self, folder: Iterable[str], base: str) -> MessageFile | None:
        """Where the message with this unique base is now (another program
        may have moved it to cur/ or changed its flags), or None."""
        path = validate_path(folder)
        check_message_name(base)
        directory = self.folder_dir(path)
        found: list[tuple[int, str, Subdir]] = []
        for rank, subdir in enumerate(_LOCATE_ORDER):
            try:
                sub = self._subdir(directory, subdir)
            except FolderNotFound:
                continue
            with os.scandir(sub) as items:
                for item in items:
                    if split_name(item.name)[0] == base and item.is_file(follow_symlinks=False):
                        found.append((rank, item.name, subdir))
        if not found:
            return None
        _, name, subdir = min(found)
        return MessageFile(path, subdir, name)

    def _current(self, message: MessageFile, attempt: int) -> MessageFile:
        if attempt == 0:
            return message
        current = self.locate(message.folder, message.base)
        if current is None:
            raise MessageGone(f"{message.base} is no longer in {message.folder!r}")
        return current

    def read(self, message: MessageFile) -> bytes:
        """The message's bytes, exactly as stored."""
        for attempt in range(_RETRIES):
            current = self._current(message, attempt)
            _, file_path = self._message_path(current)
            try:
                fd = os.open(file_path, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UnsafePath(f"{file_path} is a symlink") from None
                raise
            with os.fdopen(fd, "rb") as handle:
                return handle.read()
        raise MessageGone(f"{message.base} keeps moving in {message.folder!r}")

    def read_range(self, message: MessageFile, offset: int = 0, length: int | None = None) -> bytes:
        """``length`` bytes (None: to the end) from ``offset`` of the file
        exactly as named (no search for a renamed file: see :meth:`locate`);
        raises FileNotFoundError if it is not there, UnsafePath for a symlink."""
        _, file_path = self._message_path(message)
        try:
            fd = os.open(file_path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath(f"{file_path} is a symlink") from None
            raise
        try:
            if length is None:
                length = max(0, os.fstat(fd).st_size - offset)
            chunks: list[bytes] = []
            while length > 0:
                chunk = os.pread(fd, min(length, 1 << 24), offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
                length -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def set_flags(
        self, message: MessageFile, flags: Iterable[str] = (), keywords: Iterable[str] = ()
    ) -> MessageFile:
        """Give the message exactly these flags and keywords (see
        :meth:`deliver`) by renaming it within cur/ (or from new/ into
        cur/). Letters and characters this layer does not interpret are
        kept."""
        path = validate_path(message.folder)
        directory = self.folder_dir(path)
        wanted = self._wanted(path, directory, list(flags), list(keywords))
        table = self._table(path, directory)
        for attempt in range(_RETRIES):
            current = self._current(message, attempt)
            _, source = self._message_path(current)
            name = join_name(current.base, self._merged(wanted, current.flags, table))
            if current.subdir == "cur" and name == current.name:
                return replace(current, unmapped=wanted.unmapped)
            cur = self._subdir(directory, "cur")
            try:
                os.rename(source, cur / name)
            except FileNotFoundError:
                continue
            dotlock.fsync_dir(cur)
            return MessageFile(path, "cur", name, wanted.unmapped)
        raise MessageGone(f"{message.base} keeps moving in {message.folder!r}")

    def link(self, message: MessageFile, folder: Iterable[str]) -> MessageFile:
        """Put the message into another folder as a hard link of the same
        file (a copy where the file system cannot link), under a new unique
        name whose keyword letters are the target folder's."""
        target, target_dir = self._existing(folder)
        source_path = validate_path(message.folder)
        source_dir = self.folder_dir(source_path)
        for attempt in range(_RETRIES):
            current = self._current(message, attempt)
            _, source = self._message_path(current)
            flags = current.flags
            keywords = keywords_of(flags, self._table(source_path, source_dir).names)
            wanted = self._wanted(target, target_dir, flags.system & SYSTEM_FLAGS, keywords)
            out = replace(
                wanted.flags,
                system=wanted.flags.system | (flags.system - SYSTEM_FLAGS),
                other=flags.other,
            )
            try:
                st = os.lstat(source)
            except FileNotFoundError:
                continue
            base = self._names.next(st.st_size)
            name = join_name(base, out)
            cur = self._subdir(target_dir, "cur")
            try:
                os.link(source, cur / name, follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno not in _NOT_LINKABLE:
                    raise
                self._copy(source, target_dir, base, name, st.st_mtime_ns)
                return MessageFile(target, "cur", name, wanted.unmapped)
            dotlock.fsync_dir(cur)
            return MessageFile(target, "cur", name, wanted.unmapped)
        raise MessageGone(f"{message.base} keeps moving in {message.folder!r}")

    def _copy(self, source: Path, target_dir: Path, base: str, name: str, mtime_ns: int) -> None:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            self._write_new(
                target_dir, base, name, iter(lambda: handle.read(1 << 20), b""), mtime_ns
            )

    def remove(self, message: MessageFile) -> bool:
        """Unlink the message from its folder (its hard links elsewhere
        stay). False if it was already gone."""
        for attempt in range(_RETRIES):
            try:
                current = self._current(message, attempt)
            except MessageGone:
                return False
            _, file_path = self._message_path(current)
            try:
                os.unlink(file_path)
            except FileNotFoundError:
                continue
            return True
        return False

    # -- listing and changes ---------------------------------------------------

    def stamp(self, folder: Iterable[str]) -> FolderStamp:
        """The folder's stamp now: a handful of stats, no listing."""
        path, directory = self._existing(folder)
        return self._stamp(directory, time.time_ns())

    def _stamp(self, directory: Path, now_ns: int) -> FolderStamp:
        cur = dir_stamp(directory / "cur", now_ns)
        if cur is None:
            raise FolderNotFound(f"{directory} has no cur/")
        st = os.lstat(directory)
        return FolderStamp(
            (st.st_dev, st.st_ino),
            dir_stamp(directory / "new", now_ns),
            cur,
            keywords_file.file_stamp(directory),
        )

    def is_unchanged(self, folder: Iterable[str], previous: FolderStamp | str) -> bool:
        """Whether nothing can have changed since ``previous`` (a stamp or
        its token) was taken: stats only."""
        if isinstance(previous, str):
            previous = FolderStamp.from_token(previous)
        now = self.stamp(folder)
        return (
            now.dir_id == previous.dir_id
            and now.keywords == previous.keywords
            and not needs_listing(previous.new, now.new)
            and not needs_listing(previous.cur, now.cur)
        )

    def scan(self, folder: Iterable[str]) -> FolderScan:
        """List every message of the folder (new/ and cur/)."""
        path = validate_path(folder)
        return self.changes_since(path, FolderScan(path, _NEVER)).scan

    def changes_since(self, folder: Iterable[str], previous: FolderScan) -> FolderChanges:
        """What changed in the folder since ``previous``: added, removed and
        renamed (flags changed, moved from new/ to cur/) messages. Only a
        subdirectory whose stamp moved is listed; when none did, this costs
        four stats. A listed subdirectory costs one ``scandir`` pass, and
        only names that came or went are parsed and stat'ed (see
        :mod:`.scan`). Raises :class:`FolderNotFound` if the folder is gone
        (see :meth:`folder_changes_since` for renames)."""
        path = validate_path(folder)
        if previous.folder != path:
            raise ValueError(f"previous scan is of {previous.folder!r}, not {path!r}")
        directory = self.folder_dir(path)
        stamp = self._stamp(directory, time.time_ns())
        old = previous.stamp
        same_dir = stamp.dir_id == old.dir_id
        to_list = tuple(
            s for s in SUBDIRS if not same_dir or needs_listing(getattr(old, s), getattr(stamp, s))
        )
        if not to_list and stamp.keywords == old.keywords:
            return FolderChanges(previous)
        if (
            same_dir
            and stamp.keywords == old.keywords
            and not previous.duplicates
            and all(s in previous.files for s in SUBDIRS)
        ):
            delta = self._delta(path, directory, previous, stamp, to_list)
            if delta is not None:
                return delta
        table = self._table(path, directory)
        known = {e.name: e for e in previous.entries.values()} if same_dir else {}
        entries: list[MessageEntry] = []
        files: dict[str, Mapping[str, int]] = {}
        for subdir in SUBDIRS:
            if subdir in to_list:
                names: dict[str, int] = {}
                entries += list_subdir(path, directory, subdir, known, table.names, names)
                files[subdir] = names
            else:
                kept = [_rekeyed(e, table) for e in previous.entries.values() if e.subdir == subdir]
                entries += kept
                files[subdir] = previous.files.get(subdir) or {e.name: e.ino for e in kept}
        current, duplicates = by_base(entries)
        added, removed, changed = diff(previous.entries, current)
        return FolderChanges(
            FolderScan(path, stamp, current, duplicates, files), added, removed, changed, to_list
        )

    def _delta(
        self,
        path: FolderPath,
        directory: Path,
        previous: FolderScan,
        stamp: FolderStamp,
        to_list: tuple[Subdir, ...],
    ) -> FolderChanges | None:
        """:meth:`changes_since` from the names that came or went since
        ``previous`` (same directory, same keyword table, no duplicate
        bases); None where a full pass is needed (two files of one base)."""
        files = dict(previous.files)
        gone: list[tuple[Subdir, str]] = []
        came: list[tuple[Subdir, str]] = []
        for subdir in to_list:
            now = list_names(directory, subdir)
            before = previous.files[subdir]
            files[subdir] = now
            if now == before:
                continue
            left = before.keys() - now.keys()
            new = now.keys() - before.keys()
            patched = dict(before)
            for name in left:
                del patched[name]
            for name in new:
                patched[name] = now[name]
            if patched != now:  # a name kept with another inode: replaced
                new = {n for n, ino in now.items() if before.get(n, ino) != ino} | new
                left = {n for n, ino in before.items() if now.get(n, ino) != ino} | left
            gone += [(subdir, n) for n in left]
            came += [(subdir, n) for n in new]
        if not gone and not came:
            return FolderChanges(FolderScan(path, stamp, previous.entries, (), files), listed=to_list)
        entries = dict(previous.entries)
        affected: set[str] = set()
        for subdir, name in gone:
            base = split_name(name)[0]
            entry = entries.get(base)
            if entry is not None and entry.name == name and entry.subdir == subdir:
                del entries[base]
                affected.add(base)
        table = self._table(path, directory) if came else None
        for subdir, name in came:
            if name.startswith("."):
                continue
            try:
                st = os.lstat(directory / subdir / name)
            except FileNotFoundError:  # gone again: the next listing sees it missing
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            assert table is not None
            entry = message_entry(path, subdir, name, st, table.names)
            if entry.base in entries:
                return None  # two files of one base: by_base picks
            earlier = previous.entries.get(entry.base)
            if earlier is not None and (earlier.name, earlier.subdir, earlier.ino) == (name, subdir, st.st_ino):
                entry = earlier  # the same file (a directory inode that differs from stat's)
            entries[entry.base] = entry
            affected.add(entry.base)
        added, removed, changed = diff(
            {b: previous.entries[b] for b in affected if b in previous.entries},
            {b: entries[b] for b in affected if b in entries},
        )
        return FolderChanges(FolderScan(path, stamp, entries, (), files), added, removed, changed, to_list)

    # -- recovery ------------------------------------------------------------

    def recover(self, max_age: float = TMP_MAX_AGE) -> RecoveryReport:
        """Clean what crashed writers left, at startup or from time to time.

        In every folder's tmp/: files older than ``max_age`` (Maildir's 36
        hours by default, the rule for other writers' files), and at once
        every file this host's naming shows was written by a process that
        no longer runs (our own crashed deliveries). Dot-locks older than
        ``min(max_age, lock_stale)``. Folders missing new/ or tmp/ (a crash
        inside create or delete) get them back. ``max_age=0`` clears every
        tmp/ file: only when no other program writes to the tree."""
        now = time.time()
        removed_tmp: list[str] = []
        removed_locks: list[str] = []
        repaired: list[FolderPath] = []
        lock_age = min(max_age, self.lock_stale)
        for path, folder in sorted(self.folders().items()):
            directory = self.root / folder.relpath if folder.relpath else self.root
            if self._make_subdirs(directory):
                repaired.append(path)
            removed_tmp += self._clean_tmp(directory, now, max_age)
            removed_locks += self._clean_lock(
                directory / (keywords_file.FILE_NAME + ".lock"), now, lock_age
            )
        removed_locks += self._clean_lock(
            self.root / (subscriptions.FILE_NAME + ".lock"), now, lock_age
        )
        return RecoveryReport(tuple(removed_tmp), tuple(removed_locks), tuple(repaired))

    def _clean_tmp(self, directory: Path, now: float, max_age: float) -> list[str]:
        removed: list[str] = []
        with os.scandir(self._subdir(directory, "tmp")) as items:
            for item in items:
                if item.is_dir(follow_symlinks=False):
                    continue
                try:
                    age = now - item.stat(follow_symlinks=False).st_mtime
                except FileNotFoundError:
                    continue
                parts = uniquename.parse(item.name)
                ours_dead = (
                    parts is not None
                    and parts.host == self._names.host
                    and not _pid_alive(parts.pid)
                )
                if ours_dead or age >= max_age:
                    try:
                        os.unlink(item.path)
                    except FileNotFoundError:
                        continue
                    removed.append(os.path.relpath(item.path, self.root))
        return removed

    def _clean_lock(self, lock: Path, now: float, max_age: float) -> list[str]:
        try:
            age = now - os.lstat(lock).st_mtime
        except FileNotFoundError:
            return []
        if age < max_age:
            return []
        try:
            os.unlink(lock)
        except FileNotFoundError:
            return []
        return [str(lock.relative_to(self.root))]


def _rekeyed(entry: MessageEntry, table: KeywordTable) -> MessageEntry:
    """The entry with keywords re-read from a (possibly changed) table."""
    keywords = keywords_of(entry.flags, table.names)
    return entry if keywords == entry.keywords else replace(entry, keywords=keywords)
