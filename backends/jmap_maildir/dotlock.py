"""Read-modify-write of a small shared file under a Dovecot-style dot-lock.

Dovecot updates ``dovecot-keywords`` and ``subscriptions`` by creating
``<file>.lock`` exclusively, writing the new contents into it and renaming
it over the file. Doing the same here means the two servers exclude each
other, and a reader (or a crash) only ever sees the old or the new file,
never half of one.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

from .errors import LockTimeout

DEFAULT_TIMEOUT = 10.0
# A lock not touched for this long belongs to a writer that died: Dovecot
# gives up on subscriptions locks after 30 s too.
DEFAULT_STALE = 30.0
FILE_MODE = 0o600


def fsync_dir(path: Path) -> None:
    """Make a rename or a new directory entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _acquire(lock: Path, timeout: float, stale: float) -> int:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        except FileExistsError:
            pass
        try:
            age = time.time() - os.lstat(lock).st_mtime
        except FileNotFoundError:
            continue
        if age > stale:
            try:
                os.unlink(lock)
            except FileNotFoundError:
                pass
            continue
        if time.monotonic() >= deadline:
            raise LockTimeout(f"{lock} is held by another writer")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def read_bytes(path: Path) -> bytes | None:
    """The file's contents, or None if it does not exist. Never follows a
    symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def update(
    path: Path,
    change: Callable[[bytes | None], bytes | None],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    stale: float = DEFAULT_STALE,
) -> bytes | None:
    """Under ``path.lock``, call ``change(current contents or None)``; if it
    returns bytes they replace the file atomically (write, fsync, rename,
    fsync the directory). Returns what the file holds afterwards."""
    lock = lock_path(path)
    fd = _acquire(lock, timeout, stale)
    renamed = False
    try:
        current = read_bytes(path)
        new = change(current)
        if new is None or new == current:
            return current
        view = memoryview(new)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.rename(lock, path)
        renamed = True
        fsync_dir(path.parent)
        return new
    finally:
        os.close(fd)
        if not renamed:
            try:
                os.unlink(lock)
            except FileNotFoundError:
                pass
