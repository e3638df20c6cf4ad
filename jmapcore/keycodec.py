"""Order-preserving encoding of index keys to bytes.

Backends keep secondary indexes in ordered byte-keyed stores (an LMDB
database, a B-tree column).  :func:`pack` turns a tuple of scalars into bytes
whose byte order is the tuple's order, so a range scan of the bytes walks the
tuples in order, and :func:`pack` of a prefix is a byte prefix of the packed
tuple.  Order across kinds: None < False < True < numbers < str < bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .storage import KeyPart

_NONE, _FALSE, _TRUE, _NUM, _STR, _BYTES = 1, 2, 3, 4, 5, 6
_END = b"\x00\x00"
_DOUBLE = struct.Struct(">d")
_U64 = struct.Struct(">Q")
_SIGN = 1 << 63
_ALL = (1 << 64) - 1


def _escape(data: bytes) -> bytes:
    # 0x00 inside data becomes 0x00 0xFF so that the 0x00 0x00 terminator
    # still sorts below any continuation.
    return data.replace(b"\x00", b"\x00\xff") + _END


def _pack_number(value: float) -> bytes:
    (bits,) = _U64.unpack(_DOUBLE.pack(float(value)))
    bits = (bits ^ _ALL) if bits & _SIGN else (bits | _SIGN)
    return _U64.pack(bits)


def _unpack_number(data: bytes, pos: int) -> float | int:
    (bits,) = _U64.unpack_from(data, pos)
    bits = (bits ^ _SIGN) if bits & _SIGN else (bits ^ _ALL)
    (value,) = _DOUBLE.unpack(_U64.pack(bits))
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def pack(parts: Sequence[KeyPart]) -> bytes:
    """Encode a tuple of scalars, preserving order."""
    out = bytearray()
    for part in parts:
        if part is None:
            out.append(_NONE)
        elif part is True:
            out.append(_TRUE)
        elif part is False:
            out.append(_FALSE)
        elif isinstance(part, int | float):
            out.append(_NUM)
            out += _pack_number(part)
        elif isinstance(part, str):
            out.append(_STR)
            out += _escape(part.encode("utf-8", "surrogatepass"))
        elif isinstance(part, bytes):
            out.append(_BYTES)
            out += _escape(part)
        else:
            raise TypeError(f"cannot index a {type(part).__name__}")
    return bytes(out)


def _read_escaped(data: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    while True:
        zero = data.index(b"\x00", pos)
        out += data[pos:zero]
        if data[zero + 1] == 0:
            return bytes(out), zero + 2
        out.append(0)
        pos = zero + 2


def unpack(data: bytes) -> tuple[KeyPart, ...]:
    """Decode what :func:`pack` made."""
    parts: list[KeyPart] = []
    pos = 0
    while pos < len(data):
        tag = data[pos]
        pos += 1
        if tag == _NONE:
            parts.append(None)
        elif tag == _FALSE:
            parts.append(False)
        elif tag == _TRUE:
            parts.append(True)
        elif tag == _NUM:
            parts.append(_unpack_number(data, pos))
            pos += 8
        elif tag in (_STR, _BYTES):
            raw, pos = _read_escaped(data, pos)
            parts.append(raw.decode("utf-8", "surrogatepass") if tag == _STR else raw)
        else:
            raise ValueError(f"bad key tag {tag} at {pos - 1}")
    return tuple(parts)
