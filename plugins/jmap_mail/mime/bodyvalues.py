"""Text content of body parts: bodyValues ([mail-4.1.4-bodyValues],
[mail-4.2-maxBodyValueBytes]) and the preview ([mail-4.1.4-preview])."""

from __future__ import annotations

from typing import Any

from .charsets import decode_text, incremental_decode
from .html2text import html_to_text
from .structure import BodyPart
from .transfer import decoded_prefix

PREVIEW_CHARS = 256
_PREVIEW_WINDOW = 16_384  # encoded octets looked at first; enough for almost every message
_MAX_WINDOW = 1 << 22  # never decode more than this for a preview


def part_text(part: BodyPart) -> tuple[str, bool]:
    """(text, is_encoding_problem): transfer- and charset-decoded, CRLF -> LF."""
    data, cte_problem = part.content()
    text, charset_problem = decode_text(data, part.charset)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text, cte_problem or charset_problem


def truncate(text: str, max_bytes: int, is_html: bool) -> tuple[str, bool]:
    """At most ``max_bytes`` UTF-8 octets, cut on a character boundary and, for HTML,
    not inside a tag or an entity. Returns (text, was_truncated)."""
    if max_bytes <= 0 or len(text) * 4 <= max_bytes:
        return text, False
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text, False
    cut = data[:max_bytes].decode("utf-8", "ignore")
    if is_html:
        open_tag = cut.rfind("<")
        if open_tag > cut.rfind(">"):
            cut = cut[:open_tag]
        amp = cut.rfind("&")
        if amp > cut.rfind(";") and len(cut) - amp <= 32 and not any(c.isspace() for c in cut[amp:]):
            cut = cut[:amp]
    return cut, True


def body_value(part: BodyPart, max_bytes: int = 0) -> dict[str, Any]:
    """An EmailBodyValue for a leaf part."""
    text, problem = part_text(part)
    value, truncated = truncate(text, max_bytes, part.type == "text/html")
    return {"value": value, "isEncodingProblem": problem, "isTruncated": truncated}


def _collapse(text: str) -> str:
    return " ".join(text.split())


def preview(text_body: list[BodyPart]) -> str:
    """Up to 256 characters of plain text from the first text part of textBody
    (HTML converted), whitespace collapsed. Decodes only a window of big parts."""
    for part in text_body:
        if part.type not in ("text/plain", "text/html"):
            continue
        is_html = part.type == "text/html"
        encoded = part.encoded()
        window = _PREVIEW_WINDOW
        while True:
            done = len(encoded) <= window
            if done:
                text = part_text(part)[0]
            else:
                text = incremental_decode(decoded_prefix(encoded, part.cte, window), part.charset)
                done = window >= _MAX_WINDOW
            if is_html:
                text = html_to_text(text)
            collapsed = _collapse(text)
            if done or len(collapsed) > PREVIEW_CHARS:
                break
            window *= 8
        if collapsed:
            return collapsed[:PREVIEW_CHARS]
    return ""
