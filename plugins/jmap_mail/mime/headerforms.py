"""Header parsed forms ([mail-4.1.2.1-raw] .. [mail-4.1.2.7-urls]), which form is
allowed for which header ([mail-4.1.3-forbiddenForm]) and the ``header:{name}[:as{Form}][:all]``
property syntax ([mail-4.1.3-headerProp])."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .addresses import addresses, grouped_addresses
from .dates import date_form
from .encodedwords import text_form

FORMS = ("Raw", "Text", "Addresses", "GroupedAddresses", "MessageIds", "Date", "URLs")

_ADDRESS_HEADERS = {"from", "sender", "reply-to", "to", "cc", "bcc", "resent-from",
                    "resent-sender", "resent-reply-to", "resent-to", "resent-cc", "resent-bcc"}
_MESSAGE_ID_HEADERS = {"message-id", "in-reply-to", "references", "resent-message-id"}
_DATE_HEADERS = {"date", "resent-date"}
_URL_HEADERS = {"list-help", "list-unsubscribe", "list-subscribe", "list-post",
                "list-owner", "list-archive"}
_TEXT_HEADERS = {"subject", "comments", "keywords", "list-id"}
# Headers defined by RFC 5322 or RFC 2369: only their own forms (and Raw) apply.
_DEFINED = (_ADDRESS_HEADERS | _MESSAGE_ID_HEADERS | _DATE_HEADERS | _URL_HEADERS
            | {"subject", "comments", "keywords", "return-path", "received"}) - {"resent-reply-to"}
_ALLOWED = {
    "Text": _TEXT_HEADERS,
    "Addresses": _ADDRESS_HEADERS,
    "GroupedAddresses": _ADDRESS_HEADERS,
    "MessageIds": _MESSAGE_ID_HEADERS,
    "Date": _DATE_HEADERS,
    "URLs": _URL_HEADERS,
}


def form_allowed(header_name: str, form: str) -> bool:
    """May ``form`` be requested for this header? Raw always; the others only for the
    headers they are defined for, or for headers RFC 5322/2369 do not define."""
    if form == "Raw":
        return True
    allowed = _ALLOWED.get(form)
    if allowed is None:
        return False
    name = header_name.lower()
    return name in allowed or name not in _DEFINED


_NAME = re.compile(r"[!-9;-~]+")


def parse_header_property(prop: str) -> tuple[str, str, bool]:
    """``header:From:asAddresses:all`` -> ("From", "Addresses", True). Suffix order is
    ``:as{Form}`` then ``:all``; anything else raises ValueError."""
    if not prop.startswith("header:"):
        raise ValueError(f"not a header property: {prop!r}")
    pieces = prop[7:].split(":")
    name = pieces[0]
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid header name in {prop!r}")
    rest = pieces[1:]
    want_all = False
    if rest and rest[-1] == "all":
        want_all = True
        rest.pop()
    form = "Raw"
    if rest:
        suffix = rest.pop(0)
        if not suffix.startswith("as") or suffix[2:] not in FORMS:
            raise ValueError(f"unknown header form in {prop!r}")
        form = suffix[2:]
    if rest:
        raise ValueError(f"malformed header property {prop!r}")
    return name, form, want_all


_ANGLED = re.compile(r"<([^<>]*)>")
_SPACE = re.compile(r"[ \t\r\n]+")


def message_ids(raw: str) -> list[str] | None:
    """MessageIds: the msg-ids without ``<>`` or CFWS; a lone bare ``id@host`` is
    accepted too (common from broken software); otherwise None."""
    found = [_SPACE.sub("", value) for value in _ANGLED.findall(raw)]
    found = [value for value in found if value]
    if found:
        return found
    words = raw.split()
    if len(words) == 1 and "@" in words[0] and not any(c in words[0] for c in "<>()\",;"):
        return [words[0]]
    return None


def urls(raw: str) -> list[str] | None:
    """URLs (RFC 2369): the ``<url>`` values with brackets and whitespace removed."""
    found = [_SPACE.sub("", value) for value in _ANGLED.findall(raw)]
    return found or None


_PARSERS: dict[str, Callable[[str], Any]] = {
    "Raw": lambda raw: raw,
    "Text": text_form,
    "Addresses": addresses,
    "GroupedAddresses": grouped_addresses,
    "MessageIds": message_ids,
    "Date": date_form,
    "URLs": urls,
}


def parse_form(raw: str, form: str) -> Any:
    """The value of one header occurrence in ``form``."""
    return _PARSERS[form](raw)


def header_values(headers: list[tuple[str, str]], name: str, form: str, want_all: bool) -> Any:
    """``header:{name}:as{form}[:all]`` over a header list; ValueError if the form is
    not allowed for that header."""
    if form not in _PARSERS:
        raise ValueError(f"unknown header form {form!r}")
    if not form_allowed(name, form):
        raise ValueError(f"form {form} is not allowed for header {name}")
    key = name.lower()
    if want_all:
        return [parse_form(value, form) for field, value in headers if field.lower() == key]
    for field, value in reversed(headers):
        if field.lower() == key:
            return parse_form(value, form)
    return None
