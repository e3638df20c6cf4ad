"""Byte layout of every key the backend stores.

All per-account keys start with the account's 4-byte *number* (allocated when
the account is created, never reused), not its id: keys stay short enough for
LMDB's 511-byte limit, one account can never bleed into another whatever its
id, and a re-created account starts empty even while the old one's rows are
still being purged.  Text parts (type, index name) end with NUL, which cannot
appear in them, so one type is never a prefix of another.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence

from jmapcore import keycodec
from jmapcore.storage import KeyPart

#: LMDB's compile-time key limit (``Environment.max_key_size()``).
MAX_KEY = 511
MAX_NAME = 64
MAX_ID = 255
#: Longest ``keycodec.pack((id,))``: tag, 255 bytes, two-byte terminator.
_MAX_PACKED_ID = 1 + MAX_ID + 2
_STR_TAG = keycodec.pack(("",))[:1]
_CONTROL = re.compile(r"[\x00-\x1f]")

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_LOGPOS = struct.Struct(">QI")
LOGPOS_SIZE = _LOGPOS.size


def name_part(name: str, what: str) -> bytes:
    """Encode a type or index name, NUL-terminated; reject what would break the layout."""
    raw = name.encode()
    if not raw or len(raw) > MAX_NAME or b"\0" in raw:
        raise ValueError(f"invalid {what} {name!r}")
    return raw + b"\0"


def check_id(record_id: object, what: str = "id") -> str:
    """Ids are JMAP Ids; the layout needs 1-255 bytes without control characters."""
    if (
        not isinstance(record_id, str)
        or not 0 < len(record_id.encode()) <= MAX_ID
        or _CONTROL.search(record_id)
    ):
        raise ValueError(f"invalid {what} {record_id!r}")
    return record_id


def account(num: int) -> bytes:
    return _U32.pack(num)


def account_num_from(key: bytes) -> int:
    return _U32.unpack_from(key)[0]


def type_key(num: int, type_name: str) -> bytes:
    return account(num) + name_part(type_name, "type name")


def record_prefix(num: int, type_name: str) -> bytes:
    return type_key(num, type_name)


def record_key(prefix: bytes, record_id: str) -> bytes:
    return prefix + record_id.encode()


def index_base(num: int, type_name: str, index: str) -> bytes:
    return type_key(num, type_name) + name_part(index, "index name")


def index_cut(base: bytes) -> int:
    """How many bytes of packed key fit beside the base and any id."""
    return MAX_KEY - len(base) - _MAX_PACKED_ID


def index_entry(base: bytes, parts: Sequence[KeyPart], record_id: str) -> tuple[bytes, bytes]:
    """Key and value of one index entry.

    A packed key too long for LMDB is cut; the full packed key then goes in
    the value so that reads can restore it, re-sort ties and filter prefixes
    exactly.  Short keys (nearly all) have an empty value.
    """
    packed = keycodec.pack(tuple(parts))
    cut = index_cut(base)
    tail = keycodec.pack((record_id,))
    if len(packed) > cut:
        return base + packed[:cut] + tail, packed
    return base + packed + tail, b""


def split_index_key(base_len: int, key: bytes) -> tuple[bytes, str]:
    """(packed key bytes as stored, record id) of an index key.

    The id is the last string part; ids contain neither the string tag byte
    nor NUL, so its tag is the last occurrence of that byte.
    """
    at = key.rindex(_STR_TAG)
    return key[base_len:at], key[at + 1 : -2].decode()


def log_prefix(num: int, type_name: str) -> bytes:
    return type_key(num, type_name)


def log_key(prefix: bytes, modseq: int, seq: int) -> bytes:
    return prefix + _LOGPOS.pack(modseq, seq)


def log_position(key: bytes) -> tuple[int, int]:
    """(modseq, seq) from the fixed-size tail of a change-log key."""
    return _LOGPOS.unpack_from(key, len(key) - LOGPOS_SIZE)


def modtime_key(num: int, modseq: int) -> bytes:
    return account(num) + _U64.pack(modseq)


def modseq_of_modtime(key: bytes) -> int:
    return _U64.unpack_from(key, 4)[0]


def blob_meta_key(num: int, blob_id: str) -> bytes:
    return account(num) + blob_id.encode()


def blob_expiry_key(num: int, uploaded_at: float, blob_id: str) -> bytes:
    return account(num) + keycodec.pack((uploaded_at, blob_id))


def blob_expiry_bound(num: int, older_than: float) -> bytes:
    """Every expiry key of blobs uploaded before ``older_than`` sorts below this."""
    return account(num) + keycodec.pack((older_than,))


def blob_expiry_id(key: bytes) -> str:
    blob_id = keycodec.unpack(key[4:])[1]
    assert isinstance(blob_id, str)
    return blob_id


def successor(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def encode_u64(value: int) -> bytes:
    return _U64.pack(value)


def decode_u64(raw: bytes | memoryview | None) -> int:
    return 0 if raw is None else _U64.unpack(bytes(raw))[0]
