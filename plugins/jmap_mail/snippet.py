"""SearchSnippet/get (RFC 8621 §5): matched terms in <mark>, HTML-escaped."""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

from jmapcore.context import CallContext
from jmapcore.standard.args import Args
from jmapcore.standard.get import request_too_large
from jmapcore.wire import Id

from .constants import EMAIL, MAIL
from .mime import parse
from .store import body_text

#: [mail-5-props] a preview snippet is at most 255 octets.
MAX_PREVIEW_OCTETS = 255
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_SUBJECT_CONDITIONS = ("text", "subject")
_BODY_CONDITIONS = ("text", "body")


class SearchSnippetArgs(Args, kw_only=True):
    accountId: Id
    filter: dict[str, Any] | None = None
    emailIds: list[Id]


def _terms(node: Any, names: tuple[str, ...], negated: bool = False) -> list[str]:
    """The words and phrases a filter searches for (not under NOT)."""
    if not isinstance(node, dict):
        return []
    if "operator" in node:
        inner = negated or node.get("operator") == "NOT"
        return [t for child in node.get("conditions") or () for t in _terms(child, names, inner)]
    if negated:
        return []
    terms: list[str] = []
    for name in names:
        value = node.get(name)
        if isinstance(value, str):
            for phrase, word in _TOKEN.findall(value):
                term = re.sub(r"\\(.)", r"\1", phrase) if phrase else word
                if term.strip():
                    terms.append(term)
    return terms


def _fold(text: str) -> str:
    """Case- and accent-folded, one character per character of ``text``."""
    return "".join(
        (unicodedata.normalize("NFKD", ch)[0] if ch.isalpha() else ch).casefold()[:1] or ch for ch in text
    )


def _spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    folded = _fold(text)
    spans = []
    for term in terms:
        needle = _fold(term)
        start = folded.find(needle)
        while needle and start != -1:
            spans.append((start, start + len(needle)))
            start = folded.find(needle, start + len(needle))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, spans: list[tuple[int, int]]) -> str:
    out, position = [], 0
    for start, end in spans:
        out.append(html.escape(text[position:start], quote=False))
        out.append(f"<mark>{html.escape(text[start:end], quote=False)}</mark>")
        position = end
    out.append(html.escape(text[position:], quote=False))
    return "".join(out)


def _preview(text: str, terms: list[str]) -> str | None:
    """A window of the body around the first match, marked, ≤ 255 octets."""
    text = " ".join(text.split())
    spans = _spans(text, terms)
    if not spans:
        return None
    start = max(0, spans[0][0] - 40)
    window = text[start:]
    while True:
        marked = highlight(window, [(s - start, e - start) for s, e in spans if e - start <= len(window)])
        if len(marked.encode("utf-8")) <= MAX_PREVIEW_OCTETS or not window:
            return marked
        window = window[: max(0, len(window) - max(1, (len(marked.encode("utf-8")) - MAX_PREVIEW_OCTETS) // 2))]


def search_snippet_get(ctx: CallContext, args: SearchSnippetArgs) -> dict[str, Any]:
    """[mail-5.1-get] [mail-5-props]"""
    ctx.account(args.accountId, MAIL)
    if len(args.emailIds) > ctx.limits.maxObjectsInGet:
        raise request_too_large(ctx.limits.maxObjectsInGet, "emailIds")
    subject_terms = _terms(args.filter, _SUBJECT_CONDITIONS)
    body_terms = _terms(args.filter, _BODY_CONDITIONS)
    found, not_found = [], []
    with ctx.snapshot(args.accountId) as snap:
        ids = list(dict.fromkeys(args.emailIds))
        for email_id, record in zip(ids, snap.get_many(EMAIL, ids), strict=True):
            if record is None:
                not_found.append(email_id)
                continue
            subject = record.get("subject") or ""
            spans = _spans(subject, subject_terms)
            preview = None
            if body_terms:
                raw = snap.read_blob(record["blobId"])
                preview = _preview(body_text(parse(raw), 100_000), body_terms) if raw else None
            found.append({"emailId": email_id, "subject": highlight(subject, spans) if spans else None, "preview": preview})
    return {"accountId": args.accountId, "list": found, "notFound": not_found or None}
