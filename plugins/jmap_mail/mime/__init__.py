"""The MIME layer of the JMAP Mail plugin (RFC 8621 §4.1, §4.6, §4.9).

Pure functions over message octets: parse a message into the JMAP Email views
(headers in every parsed form, body structure, textBody/htmlBody/attachments,
bodyValues, preview) and build a message from an Email/set create object. No
storage and no method plumbing; the mail plugin calls these.
"""

from __future__ import annotations

from .build import BuildError, build_message
from .headerforms import FORMS, form_allowed, parse_header_property
from .html2text import html_to_text
from .message import DEFAULT_BODY_PROPERTIES, ParsedEmail, parse, part_json
from .structure import BodyPart
from .subject import base_subject

__all__ = [
    "DEFAULT_BODY_PROPERTIES",
    "FORMS",
    "BodyPart",
    "BuildError",
    "ParsedEmail",
    "base_subject",
    "build_message",
    "form_allowed",
    "html_to_text",
    "parse",
    "parse_header_property",
    "part_json",
]
