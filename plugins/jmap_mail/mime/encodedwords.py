"""RFC 2047 encoded-words: decoding for the Text form and display names, encoding
for messages we build.

Placement matters ([mail-4.1.2.2-text]): an encoded-word is decoded only when it is a
whole whitespace-separated word, so ``foo=?utf-8?q?x?=`` stays literal. A word made
only of several encoded-words glued together is still decoded (common, unambiguous).
Adjacent encoded-words in the same charset are decoded as one octet string, so a
multi-byte character split across two words survives.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

from .charsets import codec_for, decode_with

_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_ONLY_WORDS = re.compile(r"(?:=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)+")
_SPACES = re.compile(r"([ \t]+)")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def _octets(encoding: str, text: str) -> bytes:
    data = text.encode("ascii", "replace")
    if encoding in "bB":
        data = _B64_JUNK.sub(b"", data)
        data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
        try:
            return base64.b64decode(data + b"=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            return b""
    return _Q_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data.replace(b"_", b" "))


def _decode_run(run: list[tuple[str, bytes]]) -> str:
    """Decode consecutive (codec, octets) pieces, joining same-codec neighbours."""
    out: list[str] = []
    index = 0
    while index < len(run):
        codec, data = run[index]
        index += 1
        while index < len(run) and run[index][0] == codec:
            data += run[index][1]
            index += 1
        out.append(decode_with(data, codec)[0])
    return _CONTROLS.sub("", "".join(out))


def _pieces(word: str) -> list[tuple[str, bytes]] | None:
    """The (codec, octets) of a word made only of encoded-words with known charsets."""
    if not word.startswith("=?") or not _ONLY_WORDS.fullmatch(word):
        return None
    pieces = []
    for match in _WORD.finditer(word):
        codec = codec_for(match.group(1))
        if codec is None:
            return None
        pieces.append((codec, _octets(match.group(2), match.group(3))))
    return pieces


def decode_words(text: str) -> str:
    """Decode whitespace-delimited encoded-words in ``text``; whitespace between two
    encoded-words is dropped, everything else is kept as is."""
    if "=?" not in text:
        return text
    out: list[str] = []
    run: list[tuple[str, bytes]] = []
    pending_space = ""
    for token in _SPACES.split(text):
        if not token:
            continue
        if token[0] in " \t":
            pending_space = token
            continue
        pieces = _pieces(token)
        if pieces is not None:
            if not run:
                out.append(pending_space)
            run.extend(pieces)
        else:
            if run:
                out.append(_decode_run(run))
                run = []
            out.append(pending_space)
            out.append(token)
        pending_space = ""
    if run:
        out.append(_decode_run(run))
    out.append(pending_space)
    return "".join(out)


def nfc(text: str) -> str:
    """NFC-normalise, skipping the work for ASCII."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def text_form(raw: str) -> str:
    """The Text form ([mail-4.1.2.2-text]) of a Raw value: unfold, drop leading
    spaces, decode well-placed encoded-words, NFC."""
    if "\n" in raw or "\r" in raw:
        raw = raw.replace("\r\n", "").replace("\n", "").replace("\r", "")
    return nfc(decode_words(raw.lstrip(" \t")))


# -- encoding, for build ------------------------------------------------------------

_MAX_WORD = 75


def encode_words(text: str, budget: int = _MAX_WORD) -> list[str]:
    """``text`` as UTF-8 "B" encoded-words of at most ``budget`` characters each,
    never splitting a character between words."""
    prefix, suffix = "=?utf-8?b?", "?="
    room = (budget - len(prefix) - len(suffix)) // 4 * 3  # raw octets per word
    words: list[str] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8", "surrogatepass")
        if chunk and len(chunk) + len(data) > room:
            words.append(prefix + base64.b64encode(chunk).decode("ascii") + suffix)
            chunk = b""
        chunk += data
    if chunk or not words:
        words.append(prefix + base64.b64encode(chunk).decode("ascii") + suffix)
    return words
