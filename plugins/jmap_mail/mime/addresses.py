"""The Addresses and GroupedAddresses forms ([mail-4.1.2.3-addresses], [mail-4.1.2.4-grouped]).

A forgiving address-list reader: real headers carry unquoted ``@`` in names, missing
angle brackets, stray ``>``, unterminated quotes and comments, empty groups and raw
UTF-8 (RFC 6532). Every mailbox yields ``{name, email}`` on a best-effort basis (the
email may lack ``@``); nothing raises. Linear in the length of the value.
"""

from __future__ import annotations

import re
from typing import Any

from .encodedwords import decode_words, nfc

_TOKEN_PATTERN = r"""(?P<ws>[ \t\r\n]+)
      | (?P<atom>[^ \t\r\n()<>",:;]+)
      | (?P<qs>"(?:[^"\\]|\\.)*"?)
      | (?P<angle><[^>]*>?)
      | (?P<special>[,:;>])
      | (?P<comment>\()"""
_TOKEN = re.compile(_TOKEN_PATTERN, re.X | re.S)
# After one unterminated quoted string no later quote can close (a closing quote
# would have ended the first), so quotes are read as plain text: keeps tokenizing linear.
_TOKEN_NO_QUOTES = re.compile(_TOKEN_PATTERN.replace('"(?:[^"\\\\]|\\\\.)*"?', '"'), re.X | re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_WS = re.compile(r"[ \t\r\n]+")
_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)", re.S)

# token kinds
ATOM, QUOTED, ANGLE, COMMENT, SPECIAL = range(5)
Token = tuple[int, str, bool]  # (kind, text, whitespace before)


def _comment_end(value: str, start: int) -> int:
    """Index just past the comment opening at ``start`` (nested, escapes; may run to end)."""
    depth = 0
    index = start
    length = len(value)
    while index < length:
        char = value[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return length


def _open_quote(text: str) -> bool:
    """Is the quoted-string match unterminated (its last quote escaped)?"""
    backslashes = len(text[:-1]) - len(text[:-1].rstrip("\\"))
    return backslashes % 2 == 1


def tokenize(value: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    space = False
    unterminated = False
    length = len(value)
    match = _TOKEN.match
    while pos < length:
        found = (_TOKEN_NO_QUOTES.match if unterminated else match)(value, pos)
        if found is None:  # a lone "\" after a quoted string; keep it as text
            tokens.append((ATOM, value[pos], space))
            pos += 1
            space = False
            continue
        kind = found.lastgroup
        if kind == "ws":
            space = True
            pos = found.end()
            continue
        if kind == "comment":
            end = _comment_end(value, pos)
            inner = value[pos + 1 : end - 1 if value[end - 1 : end] == ")" and end - 1 > pos else end]
            tokens.append((COMMENT, _QUOTED_PAIR.sub(r"\1", inner), space))
            pos = end
            space = True  # a comment separates like whitespace
            continue
        text = found.group()
        if kind == "atom":
            tokens.append((ATOM, text, space))
        elif kind == "qs":
            if unterminated or len(text) < 2 or not text.endswith('"') or (
                    text.endswith('\\"') and _open_quote(text)):
                unterminated = True  # later quotes cannot close either: stay linear
                # unterminated: read the quote mark as text and tokenize what follows
                tokens.append((ATOM, '"', space))
                pos += 1
                space = False
                continue
            tokens.append((QUOTED, _QUOTED_PAIR.sub(r"\1", text[1:-1]), space))
        elif kind == "angle":
            tokens.append((ANGLE, text[1:-1] if text.endswith(">") else text[1:], space))
        else:
            tokens.append((SPECIAL, text, space))
        pos = found.end()
        space = False
    return tokens


def _unfold(text: str) -> str:
    return text.replace("\r", "").replace("\n", "") if "\n" in text or "\r" in text else text


def _phrase(tokens: list[Token]) -> str | None:
    """Display-name text of atoms and quoted strings: unquoted, unfolded, RFC 2047-decoded,
    trimmed. Words are joined by one space; spacing inside quotes is kept."""
    parts: list[str] = []
    for kind, text, space in tokens:
        if kind in (ATOM, QUOTED) or (kind == SPECIAL and text not in ","):
            if parts and space:
                parts.append(" ")
            parts.append(_unfold(text) if kind == QUOTED else text)
    name = nfc(decode_words("".join(parts))).strip()
    return name or None


def _comment_name(tokens: list[Token]) -> str | None:
    comments = [text for kind, text, _ in tokens if kind == COMMENT and text.strip()]
    if not comments:
        return None
    name = nfc(decode_words(_unfold(comments[-1]))).strip()
    return name or None


def _clean_email(text: str) -> str:
    for _ in range(8):  # comments inside the brackets: <pete(his account)@silly.test>
        if "(" not in text:
            break
        text = _COMMENT.sub("", text)
    text = _WS.sub("", text)
    if text.startswith("@") and ":" in text:  # obsolete source route
        text = text.rsplit(":", 1)[1]
    return text


def _mailboxes(tokens: list[Token]) -> list[dict[str, Any]]:
    """The mailbox(es) in the tokens between two commas (usually one)."""
    for index, (kind, text, _) in enumerate(tokens):
        if kind == ANGLE:
            before = tokens[:index]
            name = _phrase(before) or _comment_name(tokens)
            return [{"name": name, "email": _clean_email(text)}]
    words = [t for t in tokens if t[0] in (ATOM, QUOTED) or (t[0] == SPECIAL and t[1] == ":")]
    if not words:
        return []
    if len(words) > 1 and all(t[0] == ATOM and "@" in t[1].strip("@") and t[2] for t in words[1:]) \
            and words[0][0] == ATOM and "@" in words[0][1].strip("@"):
        # "a@x b@y": addresses missing their commas
        return [{"name": None, "email": t[1]} for t in words]
    # "John Doe john@example.com": a last word holding the only "@" is the address.
    last = words[-1]
    if (
        len(words) > 1
        and last[0] == ATOM
        and last[2]
        and "@" in last[1]
        and not any("@" in t[1] for t in words[:-1])
        and not last[1].startswith("@")
    ):
        return [{"name": _phrase(words[:-1]) or _comment_name(tokens), "email": last[1]}]
    email = "".join(f'"{text}"' if kind == QUOTED else text for kind, text, _ in words)
    return [{"name": _comment_name(tokens), "email": email}]


def grouped_addresses(raw: str) -> list[dict[str, Any]]:
    """GroupedAddresses: groups in order; ungrouped neighbours share a ``name: null`` group."""
    result: list[dict[str, Any]] = []
    open_ungrouped: list[dict[str, Any]] | None = None
    group: dict[str, Any] | None = None
    pending: list[Token] = []

    def flush() -> None:
        nonlocal open_ungrouped
        found = _mailboxes(pending) if pending else []
        pending.clear()
        if not found:
            return
        if group is not None:
            group["addresses"].extend(found)
        else:
            if open_ungrouped is None:
                open_ungrouped = []
                result.append({"name": None, "addresses": open_ungrouped})
            open_ungrouped.extend(found)

    for token in tokenize(raw):
        kind, text, _ = token
        if kind == SPECIAL and text == ",":
            flush()
        elif kind == SPECIAL and text == ";":
            flush()
            group = None
        elif (
            kind == SPECIAL
            and text == ":"
            and group is None
            and not any(t[0] == ANGLE or (t[0] == ATOM and "@" in t[1]) for t in pending)
        ):
            group = {"name": _phrase(pending), "addresses": []}
            pending.clear()
            result.append(group)
            open_ungrouped = None
        elif kind == SPECIAL and text == ">":
            continue  # stray closing bracket
        else:
            pending.append(token)
    flush()
    return result


def addresses(raw: str) -> list[dict[str, Any]]:
    """Addresses: every mailbox, group structure discarded."""
    return [mailbox for group in grouped_addresses(raw) for mailbox in group["addresses"]]
