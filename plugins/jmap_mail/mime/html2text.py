"""HTML to plain text, for ``preview`` and for search indexing of HTML-only mail.

Deliberately a linear scanner instead of ``html.parser`` (several times slower, and
preview is on the import path): comments, script/style/head blocks and tags are cut
with bounded searches, block elements become line breaks, entities are unescaped.
"""

from __future__ import annotations

import html
import re

_HIDDEN = re.compile(r"<(script|style|head|title|template|noscript|xml)\b", re.I)
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)[^<>]*(?:>|(?=<)|\Z)|<[!?/][^<>]*(?:>|(?=<)|\Z)")
_BLOCK = frozenset(
    "address article aside blockquote br caption center dd div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table tbody td tfoot th "
    "thead tr ul".split()
)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u200b\u200c\u200d\ufeff]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*(?:\n\s*)+")


def _drop_comments(text: str) -> str:
    if "<!--" not in text:
        return text
    out: list[str] = []
    pos = 0
    while True:
        start = text.find("<!--", pos)
        if start < 0:
            out.append(text[pos:])
            break
        out.append(text[pos:start])
        end = text.find("-->", start + 4)
        if end < 0:
            break
        pos = end + 3
    return "".join(out)


def _drop_hidden(text: str) -> str:
    out: list[str] = []
    pos = 0
    unclosed: set[str] = set()  # names with no closing tag further on: never search again
    while True:
        found = _HIDDEN.search(text, pos)
        if found is None:
            out.append(text[pos:])
            break
        out.append(text[pos : found.start()])
        name = found.group(1).lower()
        closing = None
        if name not in unclosed:
            closing = re.compile(r"</" + name + r"\s*>", re.I).search(text, found.end())
        if closing is None:
            unclosed.add(name)
            if name != "head":  # raw-text elements swallow the rest, as in a browser
                break
            tag_end = text.find(">", found.end())
            if tag_end < 0:
                break
            pos = tag_end + 1  # unclosed: drop just the opening tag
        else:
            pos = closing.end()
    return "".join(out)


def _tag(match: re.Match[str]) -> str:
    name = match.group(2)
    return "\n" if name and name.lower() in _BLOCK else ""


def html_to_text(markup: str) -> str:
    """Readable text of an HTML document or fragment (line structure kept)."""
    text = _drop_hidden(_drop_comments(markup))
    text = _TAG.sub(_tag, text)
    text = html.unescape(text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()
