"""Modified UTF-7, the IMAP mailbox name encoding (RFC 3501 §5.1.3).

Dovecot and Courier store folder names on disk in this form, so a folder a
JMAP client calls "Réunions" is the directory ``.R&AOk-unions``.

The rules: printable US-ASCII (0x20-0x7E) stands for itself, except ``&``,
written ``&-``; every other character is written as UTF-16BE (astral
characters as surrogate pairs) in base64 with ``,`` in place of ``/`` and no
``=`` padding, between ``&`` and ``-``. A run covers a maximal stretch of
such characters, and printable ASCII must never be base64-encoded.
"""

from __future__ import annotations

import base64
import binascii

from .errors import InvalidName

_ALTCHARS = b"+,"


class ModifiedUtf7Error(InvalidName):
    """Text that is not valid (or not canonical) modified UTF-7."""


def _printable(char: str) -> bool:
    return "\x20" <= char <= "\x7e"


def _shift(run: list[str]) -> str:
    """One base64 run for characters that cannot stand for themselves."""
    raw = "".join(run).encode("utf-16-be")
    return "&" + base64.b64encode(raw, altchars=_ALTCHARS).decode("ascii").rstrip("=") + "-"


def encode(text: str) -> str:
    """Encode any Unicode text (without lone surrogates) as modified UTF-7.

    Raises :class:`ModifiedUtf7Error` for lone surrogates, which UTF-16
    cannot carry."""
    out: list[str] = []
    run: list[str] = []
    for char in text:
        if _printable(char):
            if run:
                out.append(_shift(run))
                run = []
            out.append("&-" if char == "&" else char)
        else:
            if "\ud800" <= char <= "\udfff":
                raise ModifiedUtf7Error(f"lone surrogate U+{ord(char):04X} cannot be encoded")
            run.append(char)
    if run:
        out.append(_shift(run))
    return "".join(out)


def _unshift(chunk: str) -> str:
    """Decode the base64 between ``&`` and ``-``."""
    padded = chunk + "=" * (-len(chunk) % 4)
    try:
        raw = base64.b64decode(padded.encode("ascii"), altchars=_ALTCHARS, validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ModifiedUtf7Error(f"bad base64 run {chunk!r}") from exc
    if len(raw) % 2:
        raise ModifiedUtf7Error(f"base64 run {chunk!r} is not whole UTF-16 units")
    try:
        return raw.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise ModifiedUtf7Error(f"base64 run {chunk!r} holds an unpaired surrogate") from exc


def decode(text: str, *, strict: bool = True) -> str:
    """Decode modified UTF-7.

    With ``strict`` (the default) only the canonical form is accepted: no
    printable ASCII inside a run, no two adjacent runs, no non-zero padding
    bits. Two directory names could otherwise stand for one mailbox name."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if not _printable(char):
            raise ModifiedUtf7Error(f"character U+{ord(char):04X} must be base64-encoded")
        if char != "&":
            out.append(char)
            i += 1
            continue
        end = text.find("-", i + 1)
        if end < 0:
            raise ModifiedUtf7Error(f"unterminated '&' run in {text!r}")
        chunk = text[i + 1 : end]
        out.append(_unshift(chunk) if chunk else "&")
        i = end + 1
    decoded = "".join(out)
    if strict and encode(decoded) != text:
        raise ModifiedUtf7Error(f"{text!r} is not canonical modified UTF-7")
    return decoded
