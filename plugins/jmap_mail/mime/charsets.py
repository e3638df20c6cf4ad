"""Charset names from messages mapped to Python codecs, and decoding with fallbacks.

Mail declares charsets loosely: vendor aliases (``ks_c_5601-1987``), labels that
mean a superset in practice (``iso-8859-1`` is written by programs that emit
windows-1252, ``gb2312`` by ones that emit GBK), and names that are not text
encodings at all in Python (``base64``, ``rot13``) must never reach ``bytes.decode``.
"""

from __future__ import annotations

import codecs
import re
from functools import lru_cache

# Labels whose real-world content is a superset; decoding with the superset loses
# nothing on conforming data and fixes the common mislabelled case (WHATWG does the same).
_SUPERSETS = {
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "iso8859-1": "cp1252",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc-cn": "gb18030",
    "x-gbk": "gb18030",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "korean": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "windows-874": "cp874",
    "x-mac-roman": "mac-roman",
    "x-mac-cyrillic": "mac-cyrillic",
    "x-mac-greek": "mac-greek",
    "x-mac-turkish": "mac-turkish",
    "x-mac-iceland": "mac-iceland",
    "x-mac-ce": "mac-latin2",
    "unicode-1-1-utf-7": "utf-7",
    "utf-16": "utf-16",
    "unicode": "utf-16",
    "x-user-defined": "cp1252",
}
# Codecs that are text encodings by Python's flag but change meaning or always fail.
_REFUSED = {"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "escape"}
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+()-]{0,63}")


def _register_c1_fallback() -> None:
    """cp1252 leaves five octets undefined; map them to U+0080..U+009F like WHATWG
    rather than failing, so the fallback path never raises."""

    def handler(error: UnicodeError) -> tuple[str, int]:
        if not isinstance(error, UnicodeDecodeError):
            raise error
        chunk = error.object[error.start : error.end]
        return "".join(chr(b) for b in chunk), error.end

    codecs.register_error("jmapmime-c1", handler)


_register_c1_fallback()


@lru_cache(maxsize=1024)
def codec_for(charset: str | None) -> str | None:
    """The Python codec name for a MIME charset label, or None when unknown."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    star = label.find("*")  # RFC 2231 language suffix: utf-8*en
    if star > 0:
        label = label[:star]
    if not _LABEL.fullmatch(label):
        return None
    label = _SUPERSETS.get(label, label)
    if label.startswith("cp-") or label.startswith("windows-"):
        label = "cp" + label.split("-", 1)[1]
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED:
        return None
    return info.name


def _scrub(text: str, codec: str) -> str:
    """UTF-7 can decode to lone surrogates, which are not valid in JSON output."""
    if codec == "utf-7" and not text.isascii():
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def decode_with(data: bytes, codec: str) -> tuple[str, bool]:
    """Decode with a known codec: (text, had malformed sequences replaced by U+FFFD)."""
    try:
        return _scrub(data.decode(codec), codec), False
    except UnicodeDecodeError:
        pass
    except Exception:  # a few stateful codecs raise other errors on garbage
        return data.decode("utf-8", "replace"), True
    try:
        return _scrub(data.decode(codec, "replace"), codec), True
    except Exception:
        return data.decode("utf-8", "replace"), True


_NO_UTF8_GUESS = ("utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "utf-7")
_JIS_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b$(D")


def guess_codec(data: bytes, codec: str) -> str:
    """Charset heuristics for the two common mislabellings ([mail-4.1.4-bodyValues] MAY):
    UTF-8 octets under a legacy label (non-ASCII text that is valid UTF-8 is almost
    never anything else), and ISO-2022-JP escapes under an ASCII label."""
    if codec in _NO_UTF8_GUESS:
        if codec == "utf-8" and data.isascii() and b"\x1b" in data and any(e in data for e in _JIS_ESCAPES):
            return "iso2022_jp_ext"
        return codec
    if not data.isascii():
        try:
            data.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError as error:  # a prefix may end inside a character
            if error.reason == "unexpected end of data" and error.start >= len(data) - 3:
                return "utf-8"
    return codec


def decode_text(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Decode octets in ``charset``; returns (text, is_encoding_problem).

    Unknown charsets are tried as UTF-8, then windows-1252 (never fails); malformed
    sequences become U+FFFD. Either case reports a problem ([mail-4.1.4-bodyValues]).
    Declared US-ASCII is read as UTF-8 (a superset); 8-bit octets that are not UTF-8
    then fall back to windows-1252 and are reported.
    """
    codec = codec_for(charset) if charset else "utf-8"
    if codec is None:
        try:
            return data.decode("utf-8"), True
        except UnicodeDecodeError:
            return data.decode("cp1252", "jmapmime-c1"), True
    codec = guess_codec(data, codec)
    text, problem = decode_with(data, codec)
    if problem and charset and charset.strip().lower() in ("us-ascii", "ascii"):
        return data.decode("cp1252", "jmapmime-c1"), True
    return text, problem


def incremental_decode(data: bytes, charset: str | None) -> str:
    """Decode a prefix of a longer text, dropping a character cut at the end."""
    codec = guess_codec(data, codec_for(charset) or "utf-8")
    try:
        decoder = codecs.getincrementaldecoder(codec)("replace")
        return _scrub(decoder.decode(data, final=False), codec)
    except Exception:
        return data.decode("utf-8", "replace")
