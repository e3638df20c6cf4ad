"""The Maildir backend: the LMDB sidecar index plus write-through into files.

Every record, index, change-log row and blob still lives in the LMDB
environment (so the storage Protocol and its conformance suite hold
unchanged); each committed batch that writes Emails or Mailboxes is also
mirrored into the account's :class:`MaildirTree` by :mod:`.mirror`, inside
the same write transaction.  Not yet built (design, sections 3-6): blobs
served from the files, folding in external changes, rebuilding the index
from the tree.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from jmap_lmdb import LmdbBackend
from jmap_lmdb.env import Dbs
from jmap_lmdb.errors import UnusablePath
from jmap_lmdb.write import BeforeApply

from jmapcore.storage import UnknownAccount, WriteBatch

from .mirror import Mirror, touches_mail
from .names import Layout
from .records import TxnRecords
from .tree import MaildirTree

_LMDB_OPTIONS = frozenset({"map_size", "max_readers", "sync", "readahead"})


def account_root(template: str, account_name: str) -> str:
    """``template`` with ``%u`` replaced by the account name; a name that
    could climb out of (or into) another account's tree is refused."""
    if "%u" in template and (
        not account_name or "/" in account_name or "\0" in account_name or account_name in (".", "..")
    ):
        raise UnusablePath(f"account name {account_name!r} cannot name a Maildir root")
    return template.replace("%u", account_name)


class MaildirBackend(LmdbBackend):
    """:class:`LmdbBackend` whose mail also lives in one Maildir tree per account."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        maildir_root: str | None = None,
        layout: Layout = "maildir++",
        **lmdb_options: Any,
    ) -> None:
        super().__init__(path, **lmdb_options)
        self.maildir_root = maildir_root or os.path.join(self.path, "maildir", "%u")
        self.layout: Layout = layout
        self._trees: dict[str, MaildirTree] = {}
        self._trees_lock = threading.Lock()

    def tree(self, account_id: str) -> MaildirTree:
        """The account's tree (created if missing); raises UnknownAccount."""
        tree = self._trees.get(account_id)
        if tree is not None:
            return tree
        account = self.directory.get_account(account_id)
        if account is None:
            raise UnknownAccount(account_id)
        with self._trees_lock:
            tree = self._trees.get(account_id)
            if tree is None:
                root = account_root(self.maildir_root, account.name)
                tree = MaildirTree(root, self.layout)
                self._trees[account_id] = tree
        return tree

    def _before_apply(self, batch: WriteBatch) -> BeforeApply | None:
        """Mirror mail batches into the tree (resolved before the write
        transaction opens: the directory read needs its own transaction)."""
        if not touches_mail(batch):
            return None
        try:
            tree = self.tree(batch.account_id)
        except UnknownAccount:
            return None  # apply_batch raises it

        def mirror(txn: Any, dbs: Dbs, num: int, batch: WriteBatch) -> None:
            Mirror(tree, TxnRecords(txn, dbs, num), batch).run()

        return mirror

    def close(self) -> None:
        self._trees.clear()
        super().close()


def open_backend(
    path: str | os.PathLike[str],
    *,
    maildir_root: str | None = None,
    layout: Layout = "maildir++",
    **lmdb_options: Any,
) -> MaildirBackend:
    """The ``jmapcore.backends`` entry point ``maildir``: the LMDB sidecar at
    ``path`` and the Maildir trees at ``maildir_root`` (``%u``: the account
    name; default ``PATH/maildir/%u``).  Other options are LmdbBackend's."""
    unknown = set(lmdb_options) - _LMDB_OPTIONS
    if unknown:
        raise TypeError(f"unknown Maildir backend options: {sorted(unknown)}")
    return MaildirBackend(path, maildir_root=maildir_root, layout=layout, **lmdb_options)
