"""Writing header fields for messages we build: folding at whitespace (lines kept near
78 and always under 998 octets), RFC 2047 for non-ASCII text and display names,
RFC 2231 for non-ASCII or long parameters. Every writer here is the inverse of a
parsed form in ``headerforms``: parse(write(x)) == x is tested."""

from __future__ import annotations

import datetime
import email.utils
import re
from typing import Any
from urllib.parse import quote

from .encodedwords import encode_words

SOFT_LIMIT = 78
_LONG_WORD = 900
Atom = tuple[str, str]  # (whitespace before, unbreakable text)

_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_CHUNK = re.compile(r"([ \t]*)([^ \t]+)")
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def fold(name: str, atoms: list[Atom]) -> str:
    """``Name: ...`` with CRLF inserted before whitespace wherever a line would pass
    the soft limit (unfolding restores the value exactly). No final CRLF."""
    out = [name, ":"]
    line = len(name) + 1
    for index, (space, text) in enumerate(atoms):
        if index == 0 and not space:
            space = " "
        if space and line + len(space) + len(text) > SOFT_LIMIT and line > len(name) + 1:
            out.append("\r\n")
            line = 0
        out.append(space)
        out.append(text)
        line += len(space) + len(text)
    return "".join(out)


def _needs_encoding(word: str) -> bool:
    return (not word.isascii()) or "=?" in word or len(word) > _LONG_WORD or bool(_CONTROLS.search(word))


def text_atoms(text: str) -> list[Atom]:
    """Unstructured text (Subject, Comments, Text-form headers): ASCII words as they
    are, runs of other words as encoded-words."""
    text = text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    chunks = _CHUNK.findall(text)
    atoms: list[Atom] = []
    index = 0
    while index < len(chunks):
        space, word = chunks[index]
        if not _needs_encoding(word):
            atoms.append((space, word))
            index += 1
            continue
        run = word
        index += 1
        while index < len(chunks) and _needs_encoding(chunks[index][1]):
            run += chunks[index][0] + chunks[index][1]
            index += 1
        for position, encoded in enumerate(encode_words(run)):
            atoms.append((space if position == 0 else " ", encoded))
    return atoms


def phrase_atoms(name: str) -> list[Atom]:
    """A display name: atoms if plain, a quoted string if ASCII with specials,
    encoded-words otherwise."""
    words = name.split(" ")
    if all(_ATEXT.fullmatch(word) for word in words) and "=?" not in name:
        return [(" ", word) for word in words]
    if name.isascii() and not _CONTROLS.search(name) and "=?" not in name and len(name) < _LONG_WORD:
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return [(" ", f'"{escaped}"')]
    return [(" ", word) for word in encode_words(name)]


def mailbox_atoms(address: dict[str, Any]) -> list[Atom]:
    name = address.get("name")
    email_address = address["email"]
    if not name:
        return [(" ", email_address)]
    return [*phrase_atoms(name), (" ", f"<{email_address}>")]


def _separated(groups: list[list[Atom]], separator: str) -> list[Atom]:
    atoms: list[Atom] = []
    for index, group in enumerate(groups):
        group = list(group)
        if index < len(groups) - 1:
            space, text = group[-1]
            group[-1] = (space, text + separator)
        atoms.extend(group)
    return atoms


def addresses_atoms(addresses: list[dict[str, Any]]) -> list[Atom]:
    return _separated([mailbox_atoms(address) for address in addresses], ",")


def grouped_atoms(groups: list[dict[str, Any]]) -> list[Atom]:
    pieces: list[list[Atom]] = []
    for group in groups:
        members = group.get("addresses") or []
        if group.get("name") is None:
            pieces.extend(mailbox_atoms(address) for address in members)
            continue
        atoms = phrase_atoms(group["name"])
        space, text = atoms[-1]
        atoms[-1] = (space, text + ":")
        if members:
            body = addresses_atoms(members)
            space, text = body[-1]
            body[-1] = (space, text + ";")
            atoms.extend(body)
        else:
            atoms[-1] = (space, text + ":;")
        pieces.append(atoms)
    return _separated(pieces, ",")


def message_id_atoms(ids: list[str]) -> list[Atom]:
    return [(" ", f"<{value}>") for value in ids]


def url_atoms(urls: list[str]) -> list[Atom]:
    return _separated([[(" ", f"<{url}>")] for url in urls], ",")


def date_atoms(moment: datetime.datetime) -> list[Atom]:
    return [(" ", email.utils.format_datetime(moment))]


# -- parameters -----------------------------------------------------------------------


def _plain_param(key: str, value: str) -> str:
    if _TOKEN.fullmatch(value):
        return f"{key}={value}"
    return '{}="{}"'.format(key, value.replace("\\", "\\\\").replace('"', '\\"'))


def param_strings(key: str, value: str, *, encoded_words: bool = False) -> list[str]:
    """One MIME parameter as ``k=v`` strings (several for RFC 2231 continuations).

    ASCII values are quoted when needed. Others use RFC 2231 (``key*=utf-8''..``,
    split into ``key*0*``, ``key*1*``... when long), or, with ``encoded_words``, an
    RFC 2047 quoted value (what readers of a Content-Type ``name`` expect).
    """
    if value.isascii() and not _CONTROLS.search(value) and len(value) < 200:
        return [_plain_param(key, value)]
    if encoded_words and len(value) < 200:
        return [f'{key}="' + " ".join(encode_words(value)) + '"']
    data = quote(value.encode("utf-8", "surrogatepass"), safe="!#$&+-.^_`|~")
    if len(data) <= 60:
        return [f"{key}*=utf-8''{data}"]
    pieces = []
    while data:
        size = min(60, len(data))
        if size < len(data) and "%" in data[size - 2 : size]:
            size = data.rindex("%", size - 2, size)  # never split a %XX escape
        head, data = data[:size], data[size:]
        prefix = "utf-8''" if not pieces else ""
        pieces.append(f"{key}*{len(pieces)}*={prefix}{head}")
    return pieces


def content_atoms(value: str, params: list[tuple[str, str, bool]]) -> list[Atom]:
    """``value; k=v; ...`` for Content-Type / Content-Disposition;
    params are (key, value, use RFC 2047 for non-ASCII)."""
    strings = [value]
    for key, param, use_words in params:
        strings.extend(param_strings(key, param, encoded_words=use_words))
    last = len(strings) - 1
    return [(" ", text + (";" if index < last else "")) for index, text in enumerate(strings)]
