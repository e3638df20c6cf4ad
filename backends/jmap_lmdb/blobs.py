"""The content-addressed blob store, as functions over a write transaction.

Data is stored once per environment under its blobId, with a count of the
accounts holding it; each account has its own metadata (size, references,
upload time, uploader).  Unreferenced blobs are also listed in an expiry
index ordered by upload time, so expiry (and a future oldest-first quota
eviction, [core-6-unreferencedQuota]) never scans referenced blobs.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from jmapcore.storage import BlobInfo

from . import keys
from .codec import BlobMeta, decode_blob_meta, encode
from .env import Dbs


def blob_id_for(data: bytes | memoryview) -> str:
    """``B`` + unpadded lowercase base32 of SHA-256: a valid JMAP Id that
    names the octets only [core-6-blobImmutable]."""
    digest = hashlib.sha256(data).digest()
    return "B" + base64.b32encode(digest).decode().rstrip("=").lower()


def info(blob_id: str, meta: BlobMeta) -> BlobInfo:
    return BlobInfo(blob_id, meta.size, meta.refs, meta.uploaded_at, meta.uploader)


def _set_meta(
    txn: Any, dbs: Dbs, num: int, blob_id: str, old: BlobMeta | None, new: BlobMeta | None
) -> None:
    """Write an account's blob metadata and keep the expiry index in step."""
    old_exp = keys.blob_expiry_key(num, old.uploaded_at, blob_id) if old and not old.refs else None
    new_exp = keys.blob_expiry_key(num, new.uploaded_at, blob_id) if new and not new.refs else None
    if old_exp != new_exp:
        if old_exp is not None:
            txn.delete(old_exp, db=dbs.blobexp)
        if new_exp is not None:
            txn.put(new_exp, b"", db=dbs.blobexp)
    meta_key = keys.blob_meta_key(num, blob_id)
    if new is None:
        txn.delete(meta_key, db=dbs.blobmeta)
    else:
        txn.put(meta_key, encode(new), db=dbs.blobmeta)


def _get_meta(txn: Any, dbs: Dbs, num: int, blob_id: str) -> BlobMeta | None:
    raw = txn.get(keys.blob_meta_key(num, blob_id), db=dbs.blobmeta)
    return None if raw is None else decode_blob_meta(raw)


def _hold(txn: Any, dbs: Dbs, blob_id: str, data: bytes | memoryview) -> None:
    key = blob_id.encode()
    holders = keys.decode_u64(txn.get(key, db=dbs.blobholders))
    if not holders:
        txn.put(key, data, db=dbs.blobdata)
    txn.put(key, keys.encode_u64(holders + 1), db=dbs.blobholders)


def _release(txn: Any, dbs: Dbs, blob_id: str) -> None:
    key = blob_id.encode()
    holders = keys.decode_u64(txn.get(key, db=dbs.blobholders))
    if holders <= 1:
        txn.delete(key, db=dbs.blobholders)
        txn.delete(key, db=dbs.blobdata)
    else:
        txn.put(key, keys.encode_u64(holders - 1), db=dbs.blobholders)


def put(
    txn: Any,
    dbs: Dbs,
    num: int,
    blob_id: str,
    data: bytes | memoryview,
    uploader: str | None,
    now: float,
) -> BlobInfo:
    """Add a blob to an account, or refresh its upload time [core-6-blobLifetime].

    Re-uploading an unreferenced blob makes the new uploader its owner, so
    the upload they were just answered with is visible to them
    [core-6.1-uploaderOnly].
    """
    old = _get_meta(txn, dbs, num, blob_id)
    if old is None:
        _hold(txn, dbs, blob_id, data)
        new = BlobMeta(len(data), 0, now, uploader)
    else:
        new = BlobMeta(old.size, old.refs, now, uploader if not old.refs else old.uploader)
    _set_meta(txn, dbs, num, blob_id, old, new)
    return info(blob_id, new)


def add_refs(txn: Any, dbs: Dbs, num: int, blob_id: str, delta: int) -> None:
    """Apply a reference-count delta; blobs the account lacks are ignored."""
    old = _get_meta(txn, dbs, num, blob_id)
    if old is None or not delta:
        return
    new = BlobMeta(old.size, max(0, old.refs + delta), old.uploaded_at, old.uploader)
    _set_meta(txn, dbs, num, blob_id, old, new)


def expire(txn: Any, dbs: Dbs, num: int, older_than: float, limit: int) -> int:
    """Delete up to ``limit`` unreferenced blobs uploaded before ``older_than``."""
    bound = keys.blob_expiry_bound(num, older_than)
    victims: list[str] = []
    with txn.cursor(db=dbs.blobexp) as cursor:
        found = cursor.set_range(keys.account(num))
        while found and len(victims) < limit:
            key = cursor.key()
            if key >= bound:
                break
            victims.append(keys.blob_expiry_id(key))
            found = cursor.next()
    for blob_id in victims:
        drop(txn, dbs, num, blob_id)
    return len(victims)


def drop(txn: Any, dbs: Dbs, num: int, blob_id: str) -> None:
    """Remove a blob from an account, freeing the data if no account holds it."""
    old = _get_meta(txn, dbs, num, blob_id)
    if old is not None:
        _set_meta(txn, dbs, num, blob_id, old, None)
        _release(txn, dbs, blob_id)


#: Public names for backends that keep some blobs' bytes elsewhere (the
#: Maildir backend serves message blobs from their files).
get_meta = _get_meta
set_meta = _set_meta
