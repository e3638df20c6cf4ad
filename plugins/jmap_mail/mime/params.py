"""Content-Type / Content-Disposition values and their parameters, including RFC 2231
(charset, language, continuations) and the common-but-illegal RFC 2047 words inside
quoted ``name``/``filename`` values, so ``BodyPart.name`` is what a person would read."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from .charsets import decode_text
from .encodedwords import decode_words, nfc

_KEY = re.compile(r'[;\s]*([^=;\s"]+)\s*=\s*')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"?', re.S)
# An unquoted value ends at ";" or at whitespace followed by another "key=" (a missing ";").
_UNQUOTED_END = re.compile(r';|\s(?=[^=;\s"]+\s*=)')
_MAIN = re.compile(r'\s*([^\s;]*(?:\s*/\s*[^\s;]*)?)')
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_COMMENT = re.compile(r"\([^()]*\)")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
_SECTION = re.compile(r"(.+?)\*(\d{1,3})(\*?)$|(.+?)(\*)$")
MAX_PARAMS = 64


def parse_params(rest: str) -> dict[str, str]:
    """``; a=b; c*=utf-8''%C3%A9`` -> {"a": "b", "c": "é"} (keys lowercased).

    Lenient: junk between parameters is skipped, a missing ``;`` is tolerated, an
    unterminated quoted string runs to the end. One pass, linear in the input.
    """
    plain: dict[str, str] = {}
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    pos, length, count = 0, len(rest), 0
    while pos < length and count < MAX_PARAMS:
        key_match = _KEY.match(rest, pos)
        if key_match is None:
            semicolon = rest.find(";", pos + 1)
            if semicolon < 0:
                break
            pos = semicolon
            continue
        count += 1
        key = key_match.group(1).lower()
        pos = key_match.end()
        if rest.startswith('"', pos):
            quoted = _QUOTED.match(rest, pos)
            assert quoted is not None  # the pattern always matches at a quote
            value = _QUOTED_PAIR.sub(r"\1", quoted.group(1))
            pos = quoted.end()
        else:
            stop = _UNQUOTED_END.search(rest, pos)
            end = stop.start() if stop else length
            value = _COMMENT.sub("", rest[pos:end]).strip()
            pos = end
        section = _SECTION.match(key)
        if section is None:
            plain.setdefault(key, value)
        elif section.group(1) is not None:
            sections.setdefault(section.group(1), {}).setdefault(
                int(section.group(2)), (value, bool(section.group(3)))
            )
        else:
            sections.setdefault(section.group(4), {}).setdefault(0, (value, True))
    for key, pieces in sections.items():
        plain[key] = _join_sections(pieces)
    return plain


def _join_sections(pieces: dict[int, tuple[str, bool]]) -> str:
    """Reassemble RFC 2231 continuations: the first encoded piece may carry charset'lang'."""
    charset = None
    data = bytearray()
    for index in sorted(pieces):
        value, encoded = pieces[index]
        if encoded:
            if index == min(pieces) and value.count("'") >= 2:
                charset, _, value = value.split("'", 2)
            data += unquote_to_bytes(value)
        else:
            data += value.encode("utf-8", "surrogatepass")
    text, _ = decode_text(bytes(data), charset or "utf-8")
    return text


def parse_content_header(raw: str) -> tuple[str, dict[str, str]]:
    """(main value, lowercased and CFWS-free; params) of a Content-* Raw value."""
    raw = raw.replace("\r", "").replace("\n", "")
    main = _MAIN.match(raw)
    assert main is not None  # every group in the pattern may be empty
    value = _COMMENT.sub("", main.group(1)).lower()
    value = "".join(value.split())
    rest = raw[main.end() :]
    return value, parse_params(rest) if rest.strip() else {}


def mime_type(value: str) -> str | None:
    """``type/subtype`` if syntactically valid, else None (the caller applies the default)."""
    main, slash, sub = value.partition("/")
    if not slash or not _TOKEN.fullmatch(main) or not _TOKEN.fullmatch(sub):
        return None
    return value


def display_name(value: str | None) -> str | None:
    """A ``name``/``filename`` value made readable: RFC 2047 words decoded, NFC."""
    if value is None:
        return None
    return nfc(decode_words(value)) if "=?" in value else nfc(value)
