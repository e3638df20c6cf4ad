"""Base subject (RFC 5256 §2.1) for threading and for sorting by subject
([mail-4.4.2-sort]): reply/forward leaders, ``[list]`` tags, ``(fwd)`` trailers and
``[fwd: ...]`` wrappers removed, whitespace collapsed, case-folded."""

from __future__ import annotations

import re

# RFC 5256 knows re/fw/fwd; the others are the common localised forms (de, nl, sv/no/da,
# fi, fr/it/es/pt, pl) - without them German and Scandinavian replies never thread.
_REFWD = r"(?:re|fwd?|aw|wg|sv|vs|antw|tr|rif|enc|res|odp)"
_BLOB = r"\[[^\[\]]*\]"
# Whitespace is collapsed to single spaces first, so " ?" keeps this linear.
_LEADER = re.compile(rf"(?:{_BLOB} ?)*{_REFWD} ?(?:{_BLOB})? ?: ?", re.I)
_LEADING_BLOB = re.compile(rf"{_BLOB} ?")
_TRAILER = re.compile(r"(?: ?\(fwd\))+ ?$", re.I)
_FWD_WRAPPER = re.compile(r"\[fwd: ?(.*)\]", re.I | re.S)
MAX_ROUNDS = 64


def base_subject(subject: str | None) -> str:
    """The base subject, lowercased (casefold) so that equal subjects compare equal."""
    if not subject:
        return ""
    text = " ".join(subject.split())
    for _ in range(MAX_ROUNDS):
        before = text
        text = _TRAILER.sub("", text)
        for _ in range(MAX_ROUNDS):
            leader = _LEADER.match(text)
            if leader and leader.end():
                text = text[leader.end() :]
                continue
            blob = _LEADING_BLOB.match(text)
            if blob and text[blob.end() :].strip():
                text = text[blob.end() :]
                continue
            break
        wrapper = _FWD_WRAPPER.fullmatch(text)
        if wrapper:
            text = wrapper.group(1).strip()
        if text == before:
            break
    return text.strip().casefold()
