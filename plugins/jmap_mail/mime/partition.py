"""textBody / htmlBody / attachments from the body structure, following the algorithm
RFC 8621 §4.1.4 suggests ([mail-4.1.4-partitionAlgorithm]), step for step."""

from __future__ import annotations

from .structure import BodyPart


def is_inline_media(type_: str) -> bool:
    return type_.startswith(("image/", "audio/", "video/"))


def _is_inline(part: BodyPart, index: int, multipart_type: str) -> bool:
    """Could this leaf be shown in the body (vs. offered as an attachment)?"""
    type_ = part.type
    return (
        part.disposition != "attachment"
        and (type_ in ("text/plain", "text/html") or is_inline_media(type_))
        # in multipart/related only the first part; a named text part after the
        # first is taken for an attachment
        and (index == 0 or (multipart_type != "related" and (is_inline_media(type_) or not part.name)))
    )


def _walk(parts: list[BodyPart], multipart_type: str, in_alternative: bool,
          html_body: list[BodyPart] | None, text_body: list[BodyPart] | None,
          attachments: list[BodyPart]) -> None:
    text_length = len(text_body) if text_body is not None else -1
    html_length = len(html_body) if html_body is not None else -1
    for index, part in enumerate(parts):
        type_ = part.type
        if part.sub_parts is not None:
            sub_type = type_.split("/", 1)[1]
            _walk(part.sub_parts, sub_type, in_alternative or sub_type == "alternative",
                  html_body, text_body, attachments)
        elif not _is_inline(part, index, multipart_type):
            attachments.append(part)
        elif multipart_type == "alternative":
            target = {"text/plain": text_body, "text/html": html_body}.get(type_, attachments)
            if target is not None:
                target.append(part)
        else:
            if in_alternative and type_ == "text/plain":
                html_body = None  # this branch of the alternative is the plain one
            if in_alternative and type_ == "text/html":
                text_body = None
            for body in (text_body, html_body):
                if body is not None:
                    body.append(part)
            if (text_body is None or html_body is None) and is_inline_media(type_):
                attachments.append(part)
    if multipart_type == "alternative" and text_body is not None and html_body is not None:
        if text_length == len(text_body) and html_length != len(html_body):
            text_body.extend(html_body[html_length:])  # only HTML found
        if html_length == len(html_body) and text_length != len(text_body):
            html_body.extend(text_body[text_length:])  # only plain text found


def partition(root: BodyPart) -> tuple[list[BodyPart], list[BodyPart], list[BodyPart]]:
    """(textBody, htmlBody, attachments), starting as if inside multipart/mixed."""
    text_body: list[BodyPart] = []
    html_body: list[BodyPart] = []
    attachments: list[BodyPart] = []
    _walk([root], "mixed", False, html_body, text_body, attachments)
    return text_body, html_body, attachments
