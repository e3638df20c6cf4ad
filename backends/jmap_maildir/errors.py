"""Errors of the Maildir file layer.

They do not derive from ``jmapcore.storage.StorageError`` on purpose: this
package knows nothing about JMAP, and the backend built on it translates
them where it needs to.
"""

from __future__ import annotations


class MaildirError(Exception):
    """Base of every error this package raises itself."""


class InvalidName(MaildirError, ValueError):
    """A mailbox name (or a message file name) that cannot be stored safely:
    empty, ``.``/``..``, NUL or control characters, a reserved name, too long,
    or a character the layout cannot hold without an escape character."""


class UnsafePath(MaildirError):
    """A path would leave the account's tree (a symlink pointing outside)."""


class FolderNotFound(MaildirError, FileNotFoundError):
    """The folder does not exist (any more): deleted or renamed meanwhile."""


class FolderExists(MaildirError, FileExistsError):
    """``create_folder``/``rename_folder`` onto a folder that already exists."""


class FolderNotEmpty(MaildirError, OSError):
    """``delete_folder`` on a folder that still holds messages."""


class FolderHasChildren(MaildirError, OSError):
    """``delete_folder`` on a folder that still has subfolders."""


class MessageGone(MaildirError, FileNotFoundError):
    """The message file is no longer in its folder under any name."""


class LockTimeout(MaildirError, TimeoutError):
    """A dot-lock (``dovecot-keywords.lock``, ``subscriptions.lock``) stayed
    held by another writer for longer than the timeout."""
