"""Accounts, principals and bearer tokens, in the same environment as the data.

Deleting an account first makes it unknown (one small transaction), then
purges its rows in bounded chunks.  A purge interrupted by a crash is
recorded in the ``meta`` database and resumed when the backend is next
opened; since a re-created account gets a new key number, leftovers of the
old one are never visible to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jmapcore.storage import AccountExists, AccountInfo, PrincipalInfo, UnknownAccount

from . import blobs, keys
from .codec import AccountMeta, decode_account, decode_account_meta, decode_principal, encode
from .env import Dbs, LmdbEnv

_NEXT_NUM = b"next-account-num"
_PURGE = b"purge\0"
#: Keys deleted per purge transaction.
PURGE_CHUNK = 5000
#: Per-account databases whose keys start with the account number.
_ACCOUNT_DBS = ("records", "index", "log", "typemeta", "modtime", "blobexp")


def _principal_key(name: str) -> bytes:
    raw = name.encode()
    if not raw or len(raw) > 400 or b"\0" in raw:
        raise ValueError(f"invalid principal name {name!r}")
    return raw


def _token_owner_key(principal: str, token_hash: str) -> bytes:
    return _principal_key(principal) + b"\0" + token_hash.encode()


class LmdbDirectory:
    """Implements :class:`jmapcore.storage.Directory`."""

    def __init__(self, env: LmdbEnv, on_purge: Callable[[int], None] | None = None) -> None:
        self._env = env
        #: Called with the number of a deleted account before its rows are
        #: purged (the search documents); a crash in between repeats it.
        self._on_purge = on_purge

    # -- accounts ----------------------------------------------------------

    def create_account(self, account: AccountInfo) -> None:
        account_key = keys.check_id(account.account_id, "account id").encode()

        def create(txn: Any, dbs: Dbs) -> None:
            if txn.get(account_key, db=dbs.accounts) is not None:
                raise AccountExists(account.account_id)
            num = keys.decode_u64(txn.get(_NEXT_NUM, db=dbs.meta)) + 1
            txn.put(_NEXT_NUM, keys.encode_u64(num), db=dbs.meta)
            txn.put(account_key, encode(account), db=dbs.accounts)
            txn.put(account_key, encode(AccountMeta(num)), db=dbs.acctmeta)

        self._env.write(create)

    def update_account(self, account: AccountInfo) -> None:
        account_key = account.account_id.encode()

        def update(txn: Any, dbs: Dbs) -> None:
            if txn.get(account_key, db=dbs.accounts) is None:
                raise UnknownAccount(account.account_id)
            txn.put(account_key, encode(account), db=dbs.accounts)

        self._env.write(update)

    def delete_account(self, account_id: str) -> None:
        account_key = account_id.encode()

        def unlink(txn: Any, dbs: Dbs) -> None:
            raw = txn.get(account_key, db=dbs.acctmeta)
            if raw is None and txn.get(account_key, db=dbs.accounts) is None:
                raise UnknownAccount(account_id)
            txn.delete(account_key, db=dbs.accounts)
            if raw is not None:
                txn.delete(account_key, db=dbs.acctmeta)
                num = decode_account_meta(raw).num
                txn.put(_PURGE + keys.account(num), b"", db=dbs.meta)

        self._env.write(unlink)
        self.resume_purges()

    def resume_purges(self) -> None:
        """Finish every pending account purge, one bounded chunk at a time."""
        while True:
            pending = self._env.read(_pending_purges)
            if not pending:
                return
            for num in pending:
                if self._on_purge is not None:
                    self._on_purge(num)
                while not self._env.write(lambda txn, dbs, num=num: _purge_chunk(txn, dbs, num)):
                    pass

    def get_account(self, account_id: str) -> AccountInfo | None:
        raw = self._env.read(lambda txn, dbs: txn.get(account_id.encode(), db=dbs.accounts))
        return None if raw is None else decode_account(raw)

    def list_accounts(self) -> list[AccountInfo]:
        return self._env.read(
            lambda txn, dbs: [decode_account(v) for _k, v in txn.cursor(db=dbs.accounts)]
        )

    # -- principals ----------------------------------------------------------

    def put_principal(self, principal: PrincipalInfo) -> None:
        key = _principal_key(principal.name)
        self._env.write(lambda txn, dbs: txn.put(key, encode(principal), db=dbs.principals))

    def get_principal(self, name: str) -> PrincipalInfo | None:
        raw = self._env.read(lambda txn, dbs: txn.get(name.encode(), db=dbs.principals))
        return None if raw is None else decode_principal(raw)

    def delete_principal(self, name: str) -> None:
        """Delete a principal and its bearer tokens."""
        key = _principal_key(name)

        def delete(txn: Any, dbs: Dbs) -> None:
            txn.delete(key, db=dbs.principals)
            _delete_tokens(txn, dbs, name)

        self._env.write(delete)

    def list_principals(self) -> list[PrincipalInfo]:
        return self._env.read(
            lambda txn, dbs: [decode_principal(v) for _k, v in txn.cursor(db=dbs.principals)]
        )

    # -- tokens --------------------------------------------------------------

    def put_token(self, token_hash: str, principal: str) -> None:
        owner_key = _token_owner_key(principal, token_hash)
        token_key = token_hash.encode()

        def put(txn: Any, dbs: Dbs) -> None:
            previous = txn.get(token_key, db=dbs.tokens)
            if previous is not None:
                txn.delete(_token_owner_key(previous.decode(), token_hash), db=dbs.tokenowners)
            txn.put(token_key, principal.encode(), db=dbs.tokens)
            txn.put(owner_key, b"", db=dbs.tokenowners)

        self._env.write(put)

    def token_principal(self, token_hash: str) -> str | None:
        raw = self._env.read(lambda txn, dbs: txn.get(token_hash.encode(), db=dbs.tokens))
        return None if raw is None else bytes(raw).decode()

    def delete_tokens(self, principal: str) -> None:
        self._env.write(lambda txn, dbs: _delete_tokens(txn, dbs, principal))


def _delete_tokens(txn: Any, dbs: Dbs, principal: str) -> None:
    prefix = _principal_key(principal) + b"\0"
    hashes: list[bytes] = []
    with txn.cursor(db=dbs.tokenowners) as cursor:
        found = cursor.set_range(prefix)
        while found and cursor.key().startswith(prefix):
            hashes.append(cursor.key()[len(prefix) :])
            found = cursor.delete()
    for token_hash in hashes:
        txn.delete(token_hash, db=dbs.tokens)


def _pending_purges(txn: Any, dbs: Dbs) -> list[int]:
    nums: list[int] = []
    with txn.cursor(db=dbs.meta) as cursor:
        found = cursor.set_range(_PURGE)
        while found and cursor.key().startswith(_PURGE):
            nums.append(keys.account_num_from(cursor.key()[len(_PURGE) :]))
            found = cursor.next()
    return nums


def _purge_chunk(txn: Any, dbs: Dbs, num: int) -> bool:
    """Delete up to :data:`PURGE_CHUNK` rows of a deleted account; True when done."""
    prefix = keys.account(num)
    budget = PURGE_CHUNK
    blob_ids: list[str] = []
    with txn.cursor(db=dbs.blobmeta) as cursor:
        found = cursor.set_range(prefix)
        while found and len(blob_ids) < budget and cursor.key().startswith(prefix):
            blob_ids.append(cursor.key()[len(prefix) :].decode())
            found = cursor.next()
    for blob_id in blob_ids:
        blobs.drop(txn, dbs, num, blob_id)
    budget -= len(blob_ids)
    for name in _ACCOUNT_DBS:
        with txn.cursor(db=getattr(dbs, name)) as cursor:
            found = cursor.set_range(prefix)
            while found and budget > 0 and cursor.key().startswith(prefix):
                found = cursor.delete()
                budget -= 1
    if budget <= 0:
        return False
    txn.delete(_PURGE + prefix, db=dbs.meta)
    return True
