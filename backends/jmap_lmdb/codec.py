"""Stored value types and their msgpack codecs, built once at import."""

from __future__ import annotations

from typing import Any

import msgspec

from jmapcore.storage import AccountInfo, PrincipalInfo


class AccountMeta(msgspec.Struct, array_like=True):
    """Per-account counters; ``num`` prefixes every key of the account."""

    num: int
    modseq: int = 0
    epoch: int = 1


class TypeMeta(msgspec.Struct, array_like=True):
    """Per (account, type): last modseq, record count (kept incrementally so
    ``count`` is O(1)) and the highest pruned change-log modseq."""

    modseq: int = 0
    count: int = 0
    low_water: int = 0


class LogRow(msgspec.Struct, array_like=True):
    kind: int
    id: str
    #: Properties named by a touch; ``None`` for a full write.
    props: tuple[str, ...] | None = None


class BlobMeta(msgspec.Struct, array_like=True):
    size: int
    refs: int
    uploaded_at: float
    uploader: str | None


encode = msgspec.msgpack.Encoder().encode
decode_record = msgspec.msgpack.Decoder(dict[str, Any]).decode
decode_account_meta = msgspec.msgpack.Decoder(AccountMeta).decode
decode_type_meta = msgspec.msgpack.Decoder(TypeMeta).decode
decode_log_row = msgspec.msgpack.Decoder(LogRow).decode
decode_blob_meta = msgspec.msgpack.Decoder(BlobMeta).decode
decode_account = msgspec.msgpack.Decoder(AccountInfo).decode
decode_principal = msgspec.msgpack.Decoder(PrincipalInfo).decode
