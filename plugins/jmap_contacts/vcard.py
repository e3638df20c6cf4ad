"""vCard ↔ JSContact, as RFC 9555 maps them.

Pure functions, no JMAP and no storage:

* :func:`read_vcards` takes the bytes of a ``.vcf`` file (vCard 4.0, 3.0 or
  the 2.1 still found in phone exports) and returns one JSContact Card
  (RFC 9553) per vCard, each with the problems met while reading it, plus the
  problems of the file as a whole.  It reads best effort and counts what it
  repaired or left out: lines that are not UTF-8 (read as Windows-1252),
  continuation lines without their folding space, a missing ``END:VCARD``,
  text between cards, content lines that do not parse.
* :func:`write_vcards` / :func:`card_to_vcard` turn Cards back into vCard 4.0.

The content-line grammar (parameters, quoting, quoted-printable, base64,
folding on output) is vobject's; the mapping of each property is this
module's, following RFC 9555 §2 (vCard to JSContact) and §3 (back):

* multivalued properties keep their map keys through ``PROP-ID``, so a Card
  that goes to vCard and back has the same ids;
* vCard properties with no JSContact counterpart (GENDER, X-… extensions,
  a second FN, CLIENTPIDMAP, …) are kept in ``vCardProps`` as jCard arrays
  and written back unchanged; unknown parameters of known properties in the
  object's ``vCardParams``;
* top-level Card properties that vCard cannot hold (vendor properties,
  ``localizations``, …) are written as ``JSPROP;JSPTR=…`` and read back.

Not converted: the LANGUAGE/ALTID alternatives of one property (the first is
kept, the others go to vCardProps rather than ``localizations``), PHONETIC
and SCRIPT, and JSCOMPS (names and addresses come back unordered).
"""

from __future__ import annotations

import base64
import codecs
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vobject.base import ContentLine, ParseError, parseLine

__all__ = [
    "ParsedCard",
    "VCardFile",
    "card_to_vcard",
    "read_vcards",
    "write_vcards",
]

# -- reading a file: decode, split into cards, repair ------------------------------------


@dataclass
class ParsedCard:
    """One vCard of a file: its Card, or ``None`` with the reason it could not be read.

    Each problem reads ``reason: detail``; the reason has no numbers in it, so a
    summary can count cards by reason."""

    line: int  # where BEGIN:VCARD is (1-based)
    card: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        name = ""
        if self.card is not None:
            name = (self.card.get("name") or {}).get("full") or ""
            if not name:
                name = " ".join(c.get("value", "") for c in (self.card.get("name") or {}).get("components", []))
        return f"card at line {self.line}" + (f" ({name.strip()})" if name.strip() else "")


@dataclass
class VCardFile:
    cards: list[ParsedCard]
    problems: list[str] = field(default_factory=list)  # the file's, not one card's


_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")
#: Properties whose value JSContact holds as a URI (a vCard 3 one may be text).
_URI_PROPERTIES = {"PHOTO", "LOGO", "SOUND", "CONTACT-URI", "KEY", "CALADRURI", "CALURI", "FBURL",
                   "SOURCE", "ORG-DIRECTORY"}
_KINDS = {"individual", "group", "org", "location", "device", "application"}
_CONTENT_START = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)?[;:]")
_BEGIN = re.compile(r"^BEGIN:VCARD\s*$", re.IGNORECASE)
_END = re.compile(r"^END:VCARD\s*$", re.IGNORECASE)


def _decode(data: bytes | str) -> tuple[list[str], list[int]]:
    """The file's physical lines, and the numbers of those that were not UTF-8."""
    if isinstance(data, str):
        return data.splitlines(), []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16").splitlines(), []
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8").splitlines(), []
    except UnicodeDecodeError:
        pass
    lines, bad = [], []
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            bad.append(number)
            try:
                lines.append(raw.decode("cp1252"))
            except UnicodeDecodeError:
                lines.append(raw.decode("latin-1"))
    return lines, bad


def read_vcards(data: bytes | str) -> VCardFile:
    """Every vCard in ``data`` as a JSContact Card (see the module doc)."""
    lines, not_utf8 = _decode(data)
    bad_lines = set(not_utf8)
    result = VCardFile(cards=[])
    outside: list[int] = []
    current: list[tuple[int, str]] | None = None
    start = 0

    def close(ended: bool) -> None:
        assert current is not None
        result.cards.append(_read_card(start, current, ended, bad_lines))

    for number, line in enumerate(lines, 1):
        if _BEGIN.match(line.strip()):
            if current is not None:
                close(False)
            current, start = [], number
        elif _END.match(line.strip()) and current is not None:
            close(True)
            current = None
        elif current is not None:
            current.append((number, line))
        elif line.strip():
            outside.append(number)
    if current is not None:
        close(False)
    if outside:
        result.problems.append(f"lines outside BEGIN:VCARD … END:VCARD skipped: {len(outside)} "
                               f"(the first is line {outside[0]})")
    if not result.cards and not outside:
        result.problems.append("no vCard in the file")
    return result


def _logical_lines(body: list[tuple[int, str]], problems: list[str]) -> list[tuple[int, str]]:
    """Unfold; a line that is neither folded nor a content line is taken as a broken fold."""
    out: list[tuple[int, str]] = []
    joined = 0
    for number, line in body:
        if not line.strip():
            continue
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + line[1:])
        elif out and _quoted_printable_soft_break(out[-1][1]):
            out[-1] = (out[-1][0], out[-1][1][:-1] + line)  # a quoted-printable soft line break
        elif not _CONTENT_START.match(line) and out:
            # A line break inside a value, written without the folding space:
            # a short previous line was a real line break, a long one a fold.
            previous = out[-1][1]
            out[-1] = (out[-1][0], previous + ("" if len(previous) >= 70 else "\\n") + line)
            joined += 1
        else:
            out.append((number, line))
    if joined:
        problems.append(f"lines without the folding space joined to the line before: {joined}")
    return out


def _quoted_printable_soft_break(line: str) -> bool:
    head = line.split(":", 1)[0].upper()
    return "QUOTED-PRINTABLE" in head and line.endswith("=")


def _read_card(start: int, body: list[tuple[int, str]], ended: bool, bad_lines: set[int]) -> ParsedCard:
    problems: list[str] = []
    latin = sum(1 for number, _ in body if number in bad_lines)
    if latin:
        problems.append(f"lines not UTF-8, read as Windows-1252: {latin}")
    if not ended:
        problems.append("no END:VCARD: the card ends where the next begins or the file ends")
    lines = []
    for number, text in _logical_lines(body, problems):
        try:
            lines.append(_content_line(text, number))
        except (ParseError, ValueError, LookupError, UnicodeError, TypeError, IndexError):
            problems.append(f"a line that does not parse was left out: line {number} {text[:60]!r}")
    if not lines:
        return ParsedCard(start, None, problems, error="no property could be read")
    try:
        card, conversion = vcard_to_card(lines)
    except Exception as ex:  # noqa: BLE001 - one card's failure is reported, not fatal
        return ParsedCard(start, None, problems, error=f"cannot convert: {type(ex).__name__}: {ex}")
    return ParsedCard(start, card, problems + conversion)


@dataclass(slots=True)
class _Line:
    """One content line as read: what vobject's ContentLine holds, without its per-attribute
    overhead (building ContentLines was half the time of reading a file)."""

    name: str
    params: dict[str, list[str]]
    singletonparams: list[str]
    value: str | bytes
    group: str | None


def _content_line(text: str, number: int) -> _Line:
    """vobject's content-line grammar (groups, parameters, quoting), without its vCard 3 value
    handling, which drops values (NICKNAME and CATEGORIES lists, data: URIs)."""
    name, raw_params, value, group = parseLine(text, number)
    params: dict[str, list[str]] = {}
    singletons: list[str] = []
    for param in raw_params:
        if len(param) == 1:
            singletons.append(param[0])
        else:
            params.setdefault(param[0].upper(), []).extend(param[1:])
    encoding = [v.upper() for v in params.get("ENCODING", [])] + [v.upper() for v in singletons]
    if "QUOTED-PRINTABLE" in encoding:  # vCard 2.1, with its CHARSET
        charset = (params.get("CHARSET") or ["utf-8"])[0]
        value = codecs.decode(value.encode("utf-8"), "quoted-printable").decode(charset)
        params.pop("ENCODING", None)
        singletons = [v for v in singletons if v.upper() != "QUOTED-PRINTABLE"]
    elif "B" in encoding or "BASE64" in encoding:  # vCard 3 inline binary
        value = base64.b64decode("".join(value.split()), validate=False)
    return _Line(name.upper(), params, singletons, value, group)


# -- vCard text values ---------------------------------------------------------------------


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), text)


def _split(text: str, separator: str) -> list[str]:
    """Split on unescaped ``separator``; the parts stay escaped."""
    if "\\" not in text:
        return text.split(separator)
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _structured(text: str) -> list[list[str]]:
    """A structured value: components, each a list of unescaped values (empty ones dropped)."""
    return [[_unescape(v) for v in _split(part, ",") if v] for part in _split(text, ";")]


def _param_decode(value: str) -> str:
    """RFC 6868: ^n, ^' and ^^ in a parameter value."""
    if "^" not in value:
        return value
    return re.sub(r"\^([n'^])", lambda m: {"n": "\n", "'": '"', "^": "^"}[m.group(1)], value)


def _param_encode(value: str) -> str:
    return value.replace("^", "^^").replace("\r\n", "\n").replace("\n", "^n").replace('"', "^'")


def _escape(text: str, structured: bool = True) -> str:
    text = text.replace("\\", "\\\\").replace("\r\n", "\n").replace("\n", "\\n").replace(",", "\\,")
    return text.replace(";", "\\;") if structured else text


# -- vCard → JSContact ----------------------------------------------------------------------

_CONTEXTS = {"home": "private", "work": "work"}
_ADR_CONTEXTS = {"billing": "billing", "delivery": "delivery"}
_TEL_FEATURES = {
    "cell": "mobile", "fax": "fax", "main-number": "main-number", "pager": "pager", "text": "text",
    "textphone": "textphone", "video": "video", "voice": "voice",
}
_IM_PROPERTIES = {  # vCard 3 extensions of Apple, Evolution, KDE for IM accounts
    "X-AIM": "AIM", "X-ICQ": "ICQ", "X-JABBER": "Jabber", "X-MSN": "MSN", "X-YAHOO": "Yahoo",
    "X-SKYPE": "Skype", "X-SKYPE-USERNAME": "Skype", "X-GADUGADU": "GaduGadu", "X-GROUPWISE": "GroupWise",
    "X-QQ": "QQ", "X-TWITTER": "Twitter",
}
_N_KINDS = ["surname", "given", "given2", "title", "credential", "surname2", "generation"]
_ADR_KINDS = [  # RFC 9554 order; ext (1) and street (2) only when the value has 7 components
    "postOfficeBox", "apartment", "name", "locality", "region", "postcode", "country", "room",
    "apartment", "floor", "number", "name", "building", "block", "subdistrict", "district",
    "landmark", "direction",
]
_MEDIA = {"PHOTO": "photo", "LOGO": "logo", "SOUND": "sound"}
_CALENDARS = {"CALURI": "calendar", "FBURL": "freeBusy"}
_PERSONAL = {"EXPERTISE": "expertise", "HOBBY": "hobby", "INTEREST": "interest"}
_EXPERTISE_LEVEL = {"beginner": "low", "average": "medium", "expert": "high"}
_PREFIX = {
    "nicknames": "n", "emails": "e", "phones": "p", "addresses": "a", "organizations": "o",
    "titles": "t", "onlineServices": "s", "notes": "note", "anniversaries": "d", "links": "l",
    "media": "m", "cryptoKeys": "k", "calendars": "c", "schedulingAddresses": "sa",
    "directories": "dir", "personalInfo": "i", "preferredLanguages": "lang", "pronouns": "pr",
}
#: Parameters a property's own conversion uses; any other goes to vCardParams.
_HANDLED_PARAMS = {
    "TYPE", "PREF", "VALUE", "PROP-ID", "CHARSET", "ENCODING", "MEDIATYPE", "ALTID", "LANGUAGE",
    "LABEL", "GEO", "TZ", "CC", "SORT-AS", "SERVICE-TYPE", "USERNAME", "AUTHOR", "AUTHOR-NAME",
    "CREATED", "CALSCALE", "INDEX", "LEVEL", "DERIVED",
}


class _Reader:
    """Builds one Card from a parsed vCard."""

    def __init__(self, lines: list[_Line]) -> None:
        self.lines = lines
        self.card: dict[str, Any] = {"@type": "Card", "version": "1.0"}
        self.problems: list[str] = []
        self.counters: dict[str, int] = {}
        self.groups: dict[str, list[dict[str, Any]]] = {}  # vCard group → objects made from it
        self.org_groups: dict[str, str] = {}
        self.jsprops: list[tuple[str, Any]] = []
        self.unknown = 0
        self.seen_fn = False
        self.altids: set[tuple[str, str]] = set()

    # helpers

    def text(self, line: _Line) -> str:
        value = line.value
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return _unescape(value)

    def raw(self, line: _Line) -> str:
        value = line.value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value

    def types(self, line: _Line) -> list[str]:
        values = [v for item in line.params.get("TYPE", []) for v in item.split(",")]
        values += list(line.singletonparams)  # vCard 2.1: TEL;HOME;VOICE
        return [v.strip().lower() for v in values if v.strip()]

    def param(self, line: _Line, name: str) -> str | None:
        values = line.params.get(name)
        return ",".join(_param_decode(v) for v in values) if values else None

    def pref(self, line: _Line, types: list[str]) -> int | None:
        value = self.param(line, "PREF")
        if value is not None:
            try:
                return min(100, max(1, int(value)))
            except ValueError:
                self.problems.append(f"a PREF that is not a number was ignored: {line.name};PREF={value}")
        return 1 if "pref" in types else None

    def add(self, prop: str, line: _Line, entry: dict[str, Any], container: dict | None = None) -> str:
        target = self.card.setdefault(prop, {}) if container is None else container
        key = self.param(line, "PROP-ID")
        if not key or not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", key) or key in target:
            number = self.counters.get(prop, 0)
            while True:
                number += 1
                key = f"{_PREFIX.get(prop, prop[:1])}{number}"
                if key not in target:
                    break
            self.counters[prop] = number
        extra = {
            name.lower(): values[0] if len(values) == 1 else values
            for name, values in line.params.items()
            if name not in _HANDLED_PARAMS
        }
        if extra:
            entry["vCardParams"] = extra
        target[key] = entry
        if line.group:
            self.groups.setdefault(line.group.lower(), []).append(entry)
        return key

    def common(self, line: _Line, entry: dict[str, Any], known: dict[str, str] | None = None,
               extra_contexts: dict[str, str] | None = None) -> list[str]:
        """Contexts and pref from TYPE and PREF; returns the TYPE values left over."""
        types = self.types(line)
        contexts = {**_CONTEXTS, **(extra_contexts or {})}
        left = []
        for value in types:
            if value in contexts:
                entry.setdefault("contexts", {})[contexts[value]] = True
            elif value == "pref" or (known is not None and value in known):
                continue
            else:
                left.append(value)
        pref = self.pref(line, types)
        if pref is not None:
            entry["pref"] = pref
        return left

    def keep_types(self, entry: dict[str, Any], left: list[str]) -> None:
        if left:
            entry.setdefault("vCardParams", {})["type"] = left[0] if len(left) == 1 else left

    def keep(self, line: _Line) -> None:
        """The line as a jCard property in vCardProps (RFC 9555 §2.15.1)."""
        params: dict[str, Any] = {}
        for name, values in line.params.items():
            params[name.lower()] = values[0] if len(values) == 1 else list(values)
        if line.singletonparams:
            params.setdefault("type", [])
            if isinstance(params["type"], str):
                params["type"] = [params["type"]]
            params["type"] += [v.lower() for v in line.singletonparams]
        if line.group:
            params["group"] = line.group
        value = line.value
        if isinstance(value, bytes):
            params["encoding"] = "b"
            value = base64.b64encode(value).decode("ascii")
        kind = (self.param(line, "VALUE") or "unknown").lower()
        self.card.setdefault("vCardProps", []).append([line.name.lower(), params, kind, value])
        self.unknown += 1

    def uri_of(self, line: _Line) -> str:
        """A URI-valued property; inline binary (vCard 3 ENCODING=b) becomes a data: URI."""
        value = line.value
        if isinstance(value, bytes):
            media = self.media_type(line) or "application/octet-stream"
            return f"data:{media};base64," + base64.b64encode(value).decode("ascii")
        return value.strip()

    def media_type(self, line: _Line) -> str | None:
        media = self.param(line, "MEDIATYPE")
        if media:
            return media
        for value in self.types(line):  # vCard 3: PHOTO;TYPE=JPEG
            if value in ("jpeg", "jpg", "png", "gif", "bmp", "tiff", "webp"):
                return "image/" + ("jpeg" if value == "jpg" else value)
        return None

    # the walk

    _SPECIAL = {
        **dict.fromkeys(_MEDIA, "prop_media"), **dict.fromkeys(_IM_PROPERTIES, "prop_im"),
        **dict.fromkeys(_CALENDARS, "prop_calendar"), **dict.fromkeys(_PERSONAL, "prop_personal"),
    }

    def run(self) -> tuple[dict[str, Any], list[str]]:
        later = {"X-ABLABEL": [], "JSPROP": []}
        for line in self.lines:
            name = line.name.upper()
            if name in later:
                later[name].append(line)  # once the others are converted
            elif name not in ("VERSION", "BEGIN", "END"):
                self.convert(line, name)
        for line in later["X-ABLABEL"]:
            self.label(line)
        self.link_titles()
        if self.card.get("members") and self.card.get("kind") != "group":
            for member in self.card.pop("members"):  # members need KIND:group (RFC 9553 §2.1.6)
                self.card.setdefault("vCardProps", []).append(["member", {}, "uri", member])
                self.unknown += 1
        self.finish_uid()
        for line in later["JSPROP"]:
            self.apply_jsprop(line)
        if self.unknown:
            self.problems.append(f"vCard properties without a JSContact counterpart kept in vCardProps: {self.unknown}")
        return self.card, self.problems

    def convert(self, line: _Line, name: str) -> None:
        if name in _URI_PROPERTIES and isinstance(line.value, str) and not _URI.match(line.value.strip()):
            self.problems.append(f"a value that is not a URI was kept in vCardProps: {name}")
            self.keep(line)
            return
        altid = self.param(line, "ALTID")
        if altid is not None:
            if (name, altid) in self.altids:
                self.keep(line)  # another language of the same property
                return
            self.altids.add((name, altid))
        handler = getattr(self, self._SPECIAL.get(name) or "prop_" + name.replace("-", "_"), None)
        if handler is None or handler(line) is False:
            self.keep(line)

    def label(self, line: _Line) -> None:
        targets = self.groups.get((line.group or "").lower(), [])
        for entry in targets:
            entry["label"] = self.text(line)
        if not targets:
            self.keep(line)

    def link_titles(self) -> None:
        for entries in self.groups.values():
            orgs = [key for key, org in self.card.get("organizations", {}).items() if org in entries]
            if len(orgs) == 1:
                for entry in entries:
                    if entry in self.card.get("titles", {}).values():
                        entry["organizationId"] = orgs[0]

    def finish_uid(self) -> None:
        if "uid" not in self.card:
            # The same vCard gives the same uid each time it is imported (RFC 9555 §2.1.1).
            digest = "\n".join(f"{line.name}:{line.value!r}" for line in self.lines)
            self.card["uid"] = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "vcard:" + digest))
            self.problems.append("no UID: one was made from the card's content")

    def apply_jsprop(self, line: _Line) -> None:
        pointer = self.param(line, "JSPTR")
        try:
            value = json.loads(self.text(line))
        except ValueError:
            value = pointer = None
        if not pointer:
            self.problems.append("a JSPROP line without a valid JSPTR or JSON value was left out")
            return
        path = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
        target: Any = self.card
        for part in path[:-1]:
            if not isinstance(target, dict) or part not in target:
                self.problems.append(f"a JSPROP whose parent is not in the card was left out: {pointer}")
                return
            target = target[part]
        if isinstance(target, dict):
            target[path[-1]] = value

    # properties (RFC 9555 §2.4 onwards)

    def prop_FN(self, line: _Line) -> bool:
        derived = (self.param(line, "DERIVED") or "").lower() == "true"
        if self.seen_fn or (self.param(line, "LANGUAGE") and "name" in self.card and "full" in self.card["name"]):
            return False
        self.seen_fn = True
        value = self.text(line).strip()
        if value and not derived:
            self.card.setdefault("name", {})["full"] = value
        return True

    def prop_N(self, line: _Line) -> bool:
        if "components" in self.card.get("name", {}):
            return False
        parts = _structured(self.raw(line))
        while len(parts) < 7:
            parts.append([])
        surname2, generation = set(parts[5]), set(parts[6])
        components = []
        for index, kind in enumerate(_N_KINDS):
            for value in parts[index] if index < len(parts) else []:
                if (index == 0 and value in surname2) or (index == 4 and value in generation):
                    continue
                components.append({"kind": kind, "value": value})
        name = self.card.setdefault("name", {})
        if components:
            name["components"] = components
            sort_as = self.param(line, "SORT-AS")
            if sort_as:
                keys = _split(sort_as, ",")
                sorts = {_N_KINDS[i]: _unescape(v) for i, v in enumerate(keys[:7]) if v}
                if sorts:
                    name["sortAs"] = sorts
        return True

    def prop_NICKNAME(self, line: _Line) -> bool:
        for value in _structured(self.raw(line))[0]:
            entry: dict[str, Any] = {"name": value}
            self.keep_types(entry, self.common(line, entry))
            self.add("nicknames", line, entry)
        return True

    def prop_media(self, line: _Line) -> bool:
        entry: dict[str, Any] = {"kind": _MEDIA[line.name.upper()], "uri": self.uri_of(line)}
        media = self.media_type(line)
        if media:
            entry["mediaType"] = media
        self.common(line, entry, known={"jpeg", "jpg", "png", "gif", "bmp", "tiff", "webp"})
        self.add("media", line, entry)
        return True

    def _date(self, line: _Line) -> dict[str, Any] | None:
        value = self.text(line).strip()
        date = parse_date(value)
        if date is not None and "utc" not in date:
            scale = self.param(line, "CALSCALE")
            if scale:
                date["calendarScale"] = scale.lower()
        return date

    def _anniversary(self, line: _Line, kind: str) -> bool:
        date = self._date(line)
        if date is None:
            self.problems.append(f"a date JSContact cannot hold was kept in vCardProps: {line.name}:{self.text(line)}")
            return False
        for entry in self.card.get("anniversaries", {}).values():
            if entry["kind"] == kind and "date" not in entry:
                entry["date"] = date
                return True
        self.add("anniversaries", line, {"kind": kind, "date": date})
        return True

    def prop_BDAY(self, line: _Line) -> bool:
        return self._anniversary(line, "birth")

    def prop_DEATHDATE(self, line: _Line) -> bool:
        return self._anniversary(line, "death")

    def prop_ANNIVERSARY(self, line: _Line) -> bool:
        return self._anniversary(line, "wedding")

    def _place(self, line: _Line, kind: str) -> bool:
        place = {"coordinates": line.value.strip()} if line.value.strip().startswith("geo:") else {
            "full": self.text(line)}
        for entry in self.card.get("anniversaries", {}).values():
            if entry["kind"] == kind:
                entry["place"] = place
                return True
        return False  # no date to hang it on: keep the line

    def prop_BIRTHPLACE(self, line: _Line) -> bool:
        return self._place(line, "birth")

    def prop_DEATHPLACE(self, line: _Line) -> bool:
        return self._place(line, "death")

    def prop_GRAMGENDER(self, line: _Line) -> bool:
        value = self.text(line).strip().lower()
        if value not in ("animate", "common", "feminine", "inanimate", "masculine", "neuter"):
            return False
        self.card.setdefault("speakToAs", {})["grammaticalGender"] = value
        return True

    def prop_PRONOUNS(self, line: _Line) -> bool:
        entry: dict[str, Any] = {"pronouns": self.text(line)}
        self.keep_types(entry, self.common(line, entry))
        self.add("pronouns", line, entry, self.card.setdefault("speakToAs", {}).setdefault("pronouns", {}))
        return True

    def prop_ADR(self, line: _Line) -> bool:
        parts = _structured(self.raw(line))
        extended = len(parts) > 7
        components = []
        for index, values in enumerate(parts[: len(_ADR_KINDS)]):
            if extended and index in (1, 2):
                continue
            for value in values:
                components.append({"kind": _ADR_KINDS[index], "value": value})
        entry: dict[str, Any] = {}
        if components:
            entry["components"] = components
        label = self.param(line, "LABEL")
        if label:  # RFC 6350's own example writes its line breaks as \n
            entry["full"] = label.replace("\\n", "\n").replace("\\N", "\n")
        for param, prop in (("GEO", "coordinates"), ("TZ", "timeZone"), ("CC", "countryCode")):
            value = self.param(line, param)
            good = {"countryCode": re.fullmatch(r"[A-Za-z]{2}", value or ""),
                    "coordinates": re.fullmatch(r"geo:\S+", value or "")}.get(prop, True)
            if value and good:
                entry[prop] = value.upper() if prop == "countryCode" else value
            elif value:
                entry.setdefault("vCardParams", {})[param.lower()] = value
        if not entry:
            self.problems.append("an empty ADR was left out")
            return True
        left = self.common(line, entry, extra_contexts=_ADR_CONTEXTS,
                           known={"dom", "intl", "postal", "parcel"})
        self.keep_types(entry, left)
        self.add("addresses", line, entry)
        return True

    def _geo_address(self, line: _Line) -> dict[str, Any]:
        group = (line.group or "").lower()
        for entry in self.groups.get(group, []) if group else []:
            if entry in self.card.get("addresses", {}).values():
                return entry
        entry: dict[str, Any] = {}
        self.add("addresses", line, entry)
        return entry

    def prop_GEO(self, line: _Line) -> bool:
        value = self.text(line).strip()
        if not value.startswith("geo:"):  # vCard 3: GEO:37.386013;-122.082932
            parts = value.split(";")
            if len(parts) != 2:
                return False
            value = f"geo:{parts[0].strip()},{parts[1].strip()}"
        self._geo_address(line)["coordinates"] = value
        return True

    def prop_TZ(self, line: _Line) -> bool:
        value = self.text(line).strip()
        match = re.fullmatch(r"(?:VALUE=)?([+-])(\d\d):?(\d\d)", value)
        if match:
            sign, hours, minutes = match.groups()
            if minutes != "00" or not -12 <= int(sign + hours) <= 14:
                return False
            offset = int(hours)
            value = "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if sign == '+' else '+'}{offset}"
        elif "/" not in value:
            return False
        self._geo_address(line)["timeZone"] = value
        return True

    def prop_EMAIL(self, line: _Line) -> bool:
        entry: dict[str, Any] = {"address": self.text(line).strip()}
        left = self.common(line, entry, known={"internet", "x400"})
        self.keep_types(entry, left)
        self.add("emails", line, entry)
        return True

    def prop_TEL(self, line: _Line) -> bool:
        entry: dict[str, Any] = {"number": self.text(line).strip()}
        left = self.common(line, entry, known=_TEL_FEATURES)
        features = {_TEL_FEATURES[t]: True for t in self.types(line) if t in _TEL_FEATURES}
        if features:
            entry["features"] = features
        self.keep_types(entry, left)
        self.add("phones", line, entry)
        return True

    def _online(self, line: _Line, entry: dict[str, Any]) -> bool:
        service = self.param(line, "SERVICE-TYPE")
        if service:
            entry.setdefault("service", service)
        user = self.param(line, "USERNAME")
        if user:
            entry["user"] = user
        self.keep_types(entry, self.common(line, entry))
        self.add("onlineServices", line, entry)
        return True

    def prop_IMPP(self, line: _Line) -> bool:
        if not _URI.match(self.text(line).strip()):
            return False
        return self._online(line, {"uri": self.text(line).strip(), "vCardName": "impp"})

    def prop_SOCIALPROFILE(self, line: _Line) -> bool:
        value = self.text(line).strip()
        is_uri = (self.param(line, "VALUE") or "uri").lower() == "uri" and bool(_URI.match(value))
        return self._online(line, {"uri": value} if is_uri else {"user": value})

    def prop_X_SOCIALPROFILE(self, line: _Line) -> bool:
        value = self.text(line).strip()
        entry: dict[str, Any] = {"uri": value} if _URI.match(value) else {"user": value}
        entry["vCardName"] = "x-socialprofile"
        types = [t for t in self.types(line) if t not in _CONTEXTS and t != "pref"]
        if types:
            entry["service"] = types[0]
        return self._online(line, entry)

    def prop_im(self, line: _Line) -> bool:
        entry = {"service": _IM_PROPERTIES[line.name.upper()], "user": self.text(line).strip(),
                 "vCardName": line.name.lower()}
        return self._online(line, entry)

    def prop_LANG(self, line: _Line) -> bool:
        if not _LANGUAGE_TAG.match(self.text(line).strip()):
            return False
        entry: dict[str, Any] = {"language": self.text(line).strip()}
        self.keep_types(entry, self.common(line, entry))
        self.add("preferredLanguages", line, entry)
        return True

    def prop_LANGUAGE(self, line: _Line) -> bool:
        if not _LANGUAGE_TAG.match(self.text(line).strip()):
            return False
        self.card["language"] = self.text(line).strip()
        return True

    def prop_CONTACT_URI(self, line: _Line) -> bool:
        entry: dict[str, Any] = {"kind": "contact", "uri": self.uri_of(line)}
        self.keep_types(entry, self.common(line, entry))
        self.add("links", line, entry)
        return True

    def prop_URL(self, line: _Line) -> bool:
        uri = self.uri_of(line)
        if not _URI.match(uri):
            if not re.fullmatch(r"[\w.-]+\.[A-Za-z]{2,}(/\S*)?", uri):
                return False
            self.problems.append(f"a URL without a scheme was read as https: {uri}")
            uri = "https://" + uri  # www.example.com, as address books write them
        entry: dict[str, Any] = {"uri": uri}
        media = self.param(line, "MEDIATYPE")
        if media:
            entry["mediaType"] = media
        self.keep_types(entry, self.common(line, entry))
        self.add("links", line, entry)
        return True

    def prop_KIND(self, line: _Line) -> bool:
        value = self.text(line).strip().lower()
        if value not in _KINDS:
            return False  # an x-name kind: JSContact has no such value
        self.card["kind"] = value
        return True

    def prop_X_ADDRESSBOOKSERVER_KIND(self, line: _Line) -> bool:
        value = self.text(line).strip().lower()
        if value not in _KINDS:
            return False
        self.card.setdefault("kind", value)
        return True

    def prop_MEMBER(self, line: _Line) -> bool:
        self.card.setdefault("members", {})[self.text(line).strip()] = True
        return True

    def prop_X_ADDRESSBOOKSERVER_MEMBER(self, line: _Line) -> bool:
        return self.prop_MEMBER(line)

    def prop_ORG(self, line: _Line) -> bool:
        parts = [",".join(values) for values in _structured(self.raw(line))]
        entry: dict[str, Any] = {}
        if parts and parts[0]:
            entry["name"] = parts[0]
        units = [{"name": unit} for unit in parts[1:] if unit]
        if units:
            entry["units"] = units
        if not entry:
            return True
        sort_as = self.param(line, "SORT-AS")
        if sort_as:
            sorts = [_unescape(v) for v in _split(sort_as, ",")]
            if sorts[0]:
                entry["sortAs"] = sorts[0]
            for unit, value in zip(units, sorts[1:], strict=False):
                if value:
                    unit["sortAs"] = value
        self.keep_types(entry, self.common(line, entry))
        self.add("organizations", line, entry)
        return True

    def prop_RELATED(self, line: _Line) -> bool:
        relation = {t: True for t in self.types(line)}
        self.card.setdefault("relatedTo", {})[self.text(line).strip()] = {"relation": relation}
        return True

    def _title(self, line: _Line, kind: str) -> bool:
        value = self.text(line).strip()
        if not value:
            return True
        self.add("titles", line, {"name": value, "kind": kind})
        return True

    def prop_TITLE(self, line: _Line) -> bool:
        return self._title(line, "title")

    def prop_ROLE(self, line: _Line) -> bool:
        return self._title(line, "role")

    def prop_personal(self, line: _Line) -> bool:
        kind = _PERSONAL[line.name.upper()]
        entry: dict[str, Any] = {"kind": kind, "value": self.text(line)}
        level = (self.param(line, "LEVEL") or "").lower()
        level = _EXPERTISE_LEVEL.get(level, level) if kind == "expertise" else level
        if level in ("high", "medium", "low"):
            entry["level"] = level
        elif level:
            entry["vCardParams"] = {"level": level}
        index = self.param(line, "INDEX")
        if index and index.isdigit() and int(index) > 0:
            entry["listAs"] = int(index)
        self.add("personalInfo", line, entry)
        return True

    def prop_ORG_DIRECTORY(self, line: _Line) -> bool:
        entry: dict[str, Any] = {"kind": "directory", "uri": self.text(line).strip()}
        index = self.param(line, "INDEX")
        if index and index.isdigit() and int(index) > 0:
            entry["listAs"] = int(index)
        self.keep_types(entry, self.common(line, entry))
        self.add("directories", line, entry)
        return True

    def prop_SOURCE(self, line: _Line) -> bool:
        entry: dict[str, Any] = {"kind": "entry", "uri": self.text(line).strip()}
        self.common(line, entry)
        self.add("directories", line, entry)
        return True

    def prop_CATEGORIES(self, line: _Line) -> bool:
        for value in _structured(self.raw(line))[0]:
            if value.strip():
                self.card.setdefault("keywords", {})[value.strip()] = True
        return True

    def prop_NOTE(self, line: _Line) -> bool:
        entry: dict[str, Any] = {"note": self.text(line)}
        created = parse_timestamp(self.param(line, "CREATED") or "")
        if created:
            entry["created"] = created
        author = {k: v for k, v in (("name", self.param(line, "AUTHOR-NAME")),
                                    ("uri", self.param(line, "AUTHOR"))) if v}
        if author:
            entry["author"] = author
        self.add("notes", line, entry)
        return True

    def prop_PRODID(self, line: _Line) -> bool:
        value = self.text(line).strip()
        if value:
            self.card["prodId"] = value
        return True

    def _timestamp(self, line: _Line, prop: str) -> bool:
        value = parse_timestamp(self.text(line).strip())
        if value is None:
            self.problems.append(f"a timestamp that is not UTC was kept in vCardProps: {line.name}:{self.text(line)}")
            return False
        self.card[prop] = value
        return True

    def prop_REV(self, line: _Line) -> bool:
        return self._timestamp(line, "updated")

    def prop_CREATED(self, line: _Line) -> bool:
        return self._timestamp(line, "created")

    def prop_UID(self, line: _Line) -> bool:
        value = self.text(line).strip()
        if not value or "uid" in self.card:
            return False
        self.card["uid"] = value
        return True

    def prop_KEY(self, line: _Line) -> bool:
        entry: dict[str, Any] = {"uri": self.uri_of(line)}
        media = self.param(line, "MEDIATYPE")
        if media:
            entry["mediaType"] = media
        self.keep_types(entry, self.common(line, entry))
        self.add("cryptoKeys", line, entry)
        return True

    def prop_CALADRURI(self, line: _Line) -> bool:
        entry: dict[str, Any] = {"uri": self.text(line).strip()}
        self.keep_types(entry, self.common(line, entry))
        self.add("schedulingAddresses", line, entry)
        return True

    def prop_calendar(self, line: _Line) -> bool:
        entry: dict[str, Any] = {"kind": _CALENDARS[line.name.upper()], "uri": self.text(line).strip()}
        media = self.param(line, "MEDIATYPE")
        if media:
            entry["mediaType"] = media
        self.keep_types(entry, self.common(line, entry))
        self.add("calendars", line, entry)
        return True


def vcard_to_card(lines: list[_Line]) -> tuple[dict[str, Any], list[str]]:
    """The content lines of one vCard as a JSContact Card, and the problems met."""
    return _Reader(lines).run()


# -- dates ----------------------------------------------------------------------------------

_DATE = re.compile(
    r"(?P<year>\d{4}|--)-?(?P<month>\d\d|-)?-?(?P<day>\d\d)?"
    r"(?:T(?P<h>\d\d):?(?P<m>\d\d)(?::?(?P<s>\d\d)(?:\.\d+)?)?(?P<zone>Z|[+-]\d\d:?\d\d)?)?"
)


def parse_date(value: str) -> dict[str, Any] | None:
    """A vCard DATE / DATE-AND-OR-TIME as a PartialDate, or a Timestamp when it has a UTC time."""
    if value.startswith("---") and value[3:].isdigit() and len(value) == 5:
        return {"day": int(value[3:])}
    match = _DATE.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day = match.group("year"), match.group("month"), match.group("day")
    if match.group("h") is not None:
        hour, minute, second = int(match.group("h")), int(match.group("m")), int(match.group("s") or 0)
        if year == "--" or month in (None, "-") or day is None:
            return None
        if match.group("zone") is None:
            if (hour, minute, second) != (0, 0, 0):
                return None  # a local time: no JSContact type holds it
        else:
            try:
                moment = datetime(int(year), int(month), int(day), hour, minute, second, tzinfo=UTC)
            except ValueError:
                return None
            zone = match.group("zone")
            if zone != "Z":
                sign = -1 if zone[0] == "-" else 1
                moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[-2:]))
            return {"@type": "Timestamp", "utc": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
    date: dict[str, Any] = {}
    if year != "--":
        date["year"] = int(year)
    if month not in (None, "-"):
        if not 1 <= int(month) <= 12:
            return None
        date["month"] = int(month)
    if day is not None:
        if "month" not in date or not 1 <= int(day) <= 31:
            return None
        date["day"] = int(day)
    return date or None


def parse_timestamp(value: str) -> str | None:
    """A vCard TIMESTAMP (or a vCard 3 date-time) as a JSContact UTCDateTime."""
    date = parse_date(value) if value else None
    if date is None:
        return None
    if "utc" in date:
        return date["utc"]
    if {"year", "month", "day"} <= date.keys():  # a bare date or a midnight without zone
        return f"{date['year']:04d}-{date['month']:02d}-{date['day']:02d}T00:00:00Z"
    return None


def format_date(date: dict[str, Any]) -> tuple[str, dict[str, list[str]]]:
    """A PartialDate or Timestamp as a vCard value and its parameters."""
    if "utc" in date:
        moment = datetime.strptime(date["utc"][:19], "%Y-%m-%dT%H:%M:%S")
        return moment.strftime("%Y%m%dT%H%M%SZ"), {"VALUE": ["timestamp"]}
    params = {"CALSCALE": [date["calendarScale"]]} if date.get("calendarScale") else {}
    year, month, day = date.get("year"), date.get("month"), date.get("day")
    if year is not None and month is not None and day is not None:
        return f"{year:04d}{month:02d}{day:02d}", params
    if year is not None and month is not None:
        return f"{year:04d}-{month:02d}", params
    if year is not None:
        return f"{year:04d}", params
    if month is not None and day is not None:
        return f"--{month:02d}{day:02d}", params
    if month is not None:
        return f"--{month:02d}", params
    return f"---{day:02d}", params


# -- JSContact → vCard 4.0 ------------------------------------------------------------------

#: Top-level Card properties this module writes as vCard properties of their own.
_WRITTEN = {
    "@type", "version", "uid", "kind", "name", "nicknames", "emails", "phones", "addresses",
    "organizations", "titles", "onlineServices", "notes", "anniversaries", "keywords", "members",
    "links", "media", "cryptoKeys", "calendars", "schedulingAddresses", "directories",
    "personalInfo", "preferredLanguages", "language", "prodId", "updated", "created", "relatedTo",
    "speakToAs", "vCardProps",
}
#: Properties a JMAP server adds to the Card (RFC 9610 §3): not the vCard's business.
_JMAP_ONLY = {"id", "addressBookIds"}
_CONTEXT_TYPES = {"private": "home", "work": "work", "billing": "billing", "delivery": "delivery"}
_FEATURE_TYPES = {feature: tel for tel, feature in _TEL_FEATURES.items()}


class _Writer:
    def __init__(self, card: dict[str, Any]) -> None:
        self.card = card
        self.lines: list[ContentLine] = []
        self.groups = 0

    def line(self, name: str, value: str, params: dict[str, list[str]] | None = None,
             group: str | None = None) -> ContentLine:
        line = ContentLine(name, [], value, group=group, encoded=True)
        for key, values in (params or {}).items():
            line.params[key.upper()] = [_param_encode(str(v)) for v in values]
        self.lines.append(line)
        return line

    def params(self, key: str | None, entry: dict[str, Any], types: list[str] | None = None) -> dict[str, list[str]]:
        params: dict[str, list[str]] = {}
        for name, value in (entry.get("vCardParams") or {}).items():
            if isinstance(value, list):
                params[name.upper()] = [str(v) for v in value]
            elif name.lower() != "group":
                params[name.upper()] = [str(value)]
        types = list(types or [])
        for context, on in (entry.get("contexts") or {}).items():
            if on:
                types.append(_CONTEXT_TYPES.get(context, context))
        kept = params.pop("TYPE", [])
        types += kept
        if types:
            params["TYPE"] = types
        if entry.get("pref"):
            params["PREF"] = [str(entry["pref"])]
        if key is not None:
            params["PROP-ID"] = [key]
        return params

    def labelled(self, name: str, value: str, params: dict[str, list[str]], entry: dict[str, Any]) -> None:
        """A property, grouped with an X-ABLabel when the entry has a label (RFC 9555 §2.11.9)."""
        group = (entry.get("vCardParams") or {}).get("group")
        if entry.get("label"):
            if not isinstance(group, str):
                self.groups += 1
                group = f"item{self.groups}"
            self.line("X-ABLabel", _escape(entry["label"], False), group=group)
        self.line(name, value, params, group=group if isinstance(group, str) else None)

    def run(self) -> list[ContentLine]:
        card = self.card
        self.line("VERSION", "4.0")
        if "uid" in card:
            self.line("UID", _escape(card["uid"], False))
        if card.get("kind"):
            self.line("KIND", card["kind"])
        self.name(card.get("name") or {})
        for key, entry in (card.get("nicknames") or {}).items():
            self.line("NICKNAME", _escape(entry.get("name", "")), self.params(key, entry))
        for key, entry in (card.get("emails") or {}).items():
            self.labelled("EMAIL", _escape(entry.get("address", ""), False), self.params(key, entry), entry)
        for key, entry in (card.get("phones") or {}).items():
            features = [_FEATURE_TYPES.get(f, f) for f, on in (entry.get("features") or {}).items() if on]
            self.labelled("TEL", _escape(entry.get("number", ""), False), self.params(key, entry, features), entry)
        for key, entry in (card.get("addresses") or {}).items():
            self.address(key, entry)
        self.organizations()
        self.more()
        self.resources()
        self.speak_to_as(card.get("speakToAs") or {})
        self.rest()
        return self.lines

    def more(self) -> None:
        card = self.card
        for key, entry in (card.get("onlineServices") or {}).items():
            self.online(key, entry)
        for key, entry in (card.get("notes") or {}).items():
            params = self.params(key, entry)
            if entry.get("created"):
                params["CREATED"] = [format_date({"utc": entry["created"]})[0]]
            for prop, param in (("name", "AUTHOR-NAME"), ("uri", "AUTHOR")):
                if (entry.get("author") or {}).get(prop):
                    params[param] = [entry["author"][prop]]
            self.line("NOTE", _escape(entry.get("note", ""), False), params)
        names = {"birth": "BDAY", "death": "DEATHDATE", "wedding": "ANNIVERSARY"}
        for key, entry in (card.get("anniversaries") or {}).items():
            self.anniversary(key, entry, names)
        if card.get("keywords"):
            self.line("CATEGORIES", ",".join(_escape(k) for k, on in card["keywords"].items() if on))
        for member, on in (card.get("members") or {}).items():
            if on:
                self.line("MEMBER", _escape(member, False))
        for target, relation in (card.get("relatedTo") or {}).items():
            types = [t for t, on in (relation.get("relation") or {}).items() if on]
            params = {"TYPE": types} if types else {}
            if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target):
                params["VALUE"] = ["text"]
            self.line("RELATED", _escape(target, False), params)

    def rest(self) -> None:
        card = self.card
        for key, entry in (card.get("preferredLanguages") or {}).items():
            self.line("LANG", entry.get("language", ""), self.params(key, entry))
        for key, entry in (card.get("personalInfo") or {}).items():
            params = self.params(key, entry)
            if entry.get("level"):
                level = entry["level"]
                if entry.get("kind") == "expertise":
                    level = {v: k for k, v in _EXPERTISE_LEVEL.items()}.get(level, level)
                params["LEVEL"] = [level]
            if entry.get("listAs"):
                params["INDEX"] = [str(entry["listAs"])]
            name = {"expertise": "EXPERTISE", "hobby": "HOBBY"}.get(entry.get("kind"), "INTEREST")
            self.line(name, _escape(entry.get("value", ""), False), params)
        if card.get("language"):
            self.line("LANGUAGE", card["language"])
        if card.get("prodId"):
            self.line("PRODID", _escape(card["prodId"], False))
        for prop, name in (("created", "CREATED"), ("updated", "REV")):
            if card.get(prop):
                self.line(name, format_date({"utc": card[prop]})[0])
        for prop in card.get("vCardProps") or []:
            self.vcard_prop(prop)
        for name, value in card.items():
            if name not in _WRITTEN and name not in _JMAP_ONLY:
                pointer = name.replace("~", "~0").replace("/", "~1")
                self.line("JSPROP", _escape(json.dumps(value, separators=(",", ":"), ensure_ascii=False), False),
                          {"JSPTR": [pointer]})

    def name(self, name: dict[str, Any]) -> None:
        components = name.get("components") or []
        if name.get("full"):
            self.line("FN", _escape(name["full"], False))
        elif components:
            joined = " ".join(c["value"] for c in components if c.get("kind") != "separator" and c.get("value"))
            self.line("FN", _escape(joined, False), {"DERIVED": ["TRUE"]})
        else:
            self.line("FN", "")
        if components:
            slots: list[list[str]] = [[] for _ in _N_KINDS]
            for component in components:
                kind = component.get("kind")
                if kind in _N_KINDS:
                    slots[_N_KINDS.index(kind)].append(component.get("value", ""))
            slots[0] += slots[5]  # RFC 9555 table 1: surname2 also in the family name,
            slots[4] += slots[6]  # generation also in the honorific suffixes
            params = {}
            if name.get("sortAs"):
                sorts = [_escape(name["sortAs"].get(kind, "")) for kind in _N_KINDS]
                while sorts and not sorts[-1]:
                    sorts.pop()
                params["SORT-AS"] = [",".join(sorts)]
            width = 7 if slots[5] or slots[6] else 5
            self.line("N", ";".join(",".join(_escape(v) for v in slot) for slot in slots[:width]), params)

    def address(self, key: str, entry: dict[str, Any]) -> None:
        components = entry.get("components") or []
        params = self.params(key, entry)
        for prop, param in (("full", "LABEL"), ("coordinates", "GEO"), ("timeZone", "TZ"), ("countryCode", "CC")):
            if entry.get(prop):
                params[param] = [entry[prop]]
        if not components and not entry.get("full"):
            # GEO/TZ only: their own properties, grouped like an address
            if entry.get("coordinates"):
                self.line("GEO", entry["coordinates"], {"PROP-ID": [key]})
            if entry.get("timeZone"):
                self.line("TZ", entry["timeZone"], {"PROP-ID": [key]})
            if not entry.get("coordinates") and not entry.get("timeZone"):
                self.labelled("ADR", ";;;;;;", params, entry)
            return
        by_kind: dict[str, list[str]] = {}
        for component in components:
            if component.get("kind") != "separator":
                by_kind.setdefault(component.get("kind", ""), []).append(component.get("value", ""))
        classic = set(by_kind) <= {"postOfficeBox", "apartment", "name", "locality", "region", "postcode", "country"}
        if classic:
            slots = [by_kind.get(kind, []) for kind in _ADR_KINDS[:7]]
        else:
            slots = [by_kind.get(kind, []) if index not in (1, 2) else [] for index, kind in enumerate(_ADR_KINDS)]
            # RFC 9555 table 2: ext and street repeat the new components for older readers
            ext = [v for kind in ("room", "floor", "apartment", "building") for v in by_kind.get(kind, [])]
            street = [v for kind in ("number", "name", "block", "direction", "landmark", "subdistrict", "district")
                      for v in by_kind.get(kind, [])]
            slots[1] = [" ".join(ext)] if ext else []
            slots[2] = [" ".join(street)] if street else []
        self.labelled("ADR", ";".join(",".join(_escape(v) for v in slot) for slot in slots), params, entry)

    def organizations(self) -> None:
        card = self.card
        titles = card.get("titles") or {}
        grouped: dict[str, str] = {}
        for key, entry in (card.get("organizations") or {}).items():
            params = self.params(key, entry)
            sorts = [entry.get("sortAs", "")] + [u.get("sortAs", "") for u in entry.get("units") or []]
            if any(sorts):
                while sorts and not sorts[-1]:
                    sorts.pop()
                params["SORT-AS"] = [",".join(_escape(s) for s in sorts)]
            value = ";".join(_escape(v) for v in [entry.get("name", "")] + [u.get("name", "") for u in entry.get("units") or []])
            group = None
            if any(t.get("organizationId") == key for t in titles.values()):
                self.groups += 1
                group = grouped[key] = f"item{self.groups}"
            self.line("ORG", value, params, group=group)
        for key, entry in titles.items():
            name = "ROLE" if entry.get("kind") == "role" else "TITLE"
            self.line(name, _escape(entry.get("name", ""), False), self.params(key, entry),
                      group=grouped.get(entry.get("organizationId", "")))

    def online(self, key: str, entry: dict[str, Any]) -> None:
        vcard_name = (entry.get("vCardName") or "").upper()
        params = self.params(key, entry)
        if vcard_name in _IM_PROPERTIES and entry.get("user"):
            self.labelled(vcard_name, _escape(entry["user"], False), params, entry)
            return
        if entry.get("service"):
            params["SERVICE-TYPE"] = [entry["service"]]
        if vcard_name == "IMPP" and entry.get("uri"):
            if entry.get("user"):
                params["USERNAME"] = [entry["user"]]
            self.labelled("IMPP", _escape(entry["uri"], False), params, entry)
        elif entry.get("uri"):
            if entry.get("user"):
                params["USERNAME"] = [entry["user"]]
            self.labelled("SOCIALPROFILE", _escape(entry["uri"], False), params, entry)
        else:
            params["VALUE"] = ["text"]
            self.labelled("SOCIALPROFILE", _escape(entry.get("user", ""), False), params, entry)

    def anniversary(self, key: str, entry: dict[str, Any], names: dict[str, str]) -> None:
        name = names.get(entry.get("kind", ""))
        date = entry.get("date")
        if name is None or not isinstance(date, dict):
            return
        value, date_params = format_date(date)
        params = {**self.params(key, entry), **date_params}
        if name == "ANNIVERSARY" or "place" not in entry:
            self.line(name, value, params)
            return
        self.line(name, value, params)
        place = entry["place"] or {}
        place_name = "BIRTHPLACE" if name == "BDAY" else "DEATHPLACE"
        if place.get("coordinates"):
            self.line(place_name, place["coordinates"], {"VALUE": ["uri"]})
        elif place.get("full"):
            self.line(place_name, _escape(place["full"], False))

    def resources(self) -> None:
        card = self.card
        for key, entry in (card.get("links") or {}).items():
            name = "CONTACT-URI" if entry.get("kind") == "contact" else "URL"
            params = self.params(key, entry)
            if entry.get("mediaType"):
                params["MEDIATYPE"] = [entry["mediaType"]]
            self.labelled(name, entry.get("uri", ""), params, entry)
        for key, entry in (card.get("media") or {}).items():
            name = {"photo": "PHOTO", "logo": "LOGO", "sound": "SOUND"}.get(entry.get("kind"), "PHOTO")
            params = self.params(key, entry)
            if entry.get("mediaType"):
                params["MEDIATYPE"] = [entry["mediaType"]]
            if entry.get("uri"):
                self.line(name, entry["uri"], params)
        for key, entry in (card.get("cryptoKeys") or {}).items():
            params = self.params(key, entry)
            if entry.get("mediaType"):
                params["MEDIATYPE"] = [entry["mediaType"]]
            self.line("KEY", entry.get("uri", ""), params)
        for key, entry in (card.get("calendars") or {}).items():
            params = self.params(key, entry)
            if entry.get("mediaType"):
                params["MEDIATYPE"] = [entry["mediaType"]]
            self.line("FBURL" if entry.get("kind") == "freeBusy" else "CALURI", entry.get("uri", ""), params)
        for key, entry in (card.get("schedulingAddresses") or {}).items():
            self.line("CALADRURI", entry.get("uri", ""), self.params(key, entry))
        for key, entry in (card.get("directories") or {}).items():
            params = self.params(key, entry)
            if entry.get("listAs"):
                params["INDEX"] = [str(entry["listAs"])]
            self.line("SOURCE" if entry.get("kind") == "entry" else "ORG-DIRECTORY", entry.get("uri", ""), params)

    def speak_to_as(self, speak: dict[str, Any]) -> None:
        if speak.get("grammaticalGender"):
            self.line("GRAMGENDER", speak["grammaticalGender"].upper())
        for key, entry in (speak.get("pronouns") or {}).items():
            self.line("PRONOUNS", _escape(entry.get("pronouns", ""), False), self.params(key, entry))

    def vcard_prop(self, prop: Any) -> None:
        if not (isinstance(prop, list) and len(prop) >= 4 and isinstance(prop[0], str)):
            return
        name, params, kind, value = prop[0], prop[1] if isinstance(prop[1], dict) else {}, prop[2], prop[3]
        out: dict[str, list[str]] = {}
        group = None
        binary = None
        for key, item in params.items():
            if key.lower() == "group":
                group = str(item)
            elif key.lower() == "encoding" and str(item).lower() == "b":
                binary = True
            else:
                out[key.upper()] = [str(v) for v in item] if isinstance(item, list) else [str(item)]
        if kind and kind != "unknown":
            out.setdefault("VALUE", [kind])
        if binary and isinstance(value, str):
            # vCard 4 has no inline binary: a data: URI
            out.pop("TYPE", None)
            value = "data:application/octet-stream;base64," + value
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        self.line(name.upper(), str(value), out, group=group)


def card_to_vcard(card: dict[str, Any]) -> str:
    """One JSContact Card as vCard 4.0 text (CRLF lines, folded at 75 octets)."""
    # vobject folds and quotes each line; the lines stay in the order written (VERSION
    # first, as RFC 6350 wants, which vobject's own sorting of a component would not keep).
    lines = _Writer(card).run()
    return "BEGIN:VCARD\r\n" + "".join(line.serialize(validate=False) for line in lines) + "END:VCARD\r\n"


def write_vcards(cards: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The vCard text of each Card, in turn (join them for a .vcf file)."""
    for card in cards:
        yield card_to_vcard(card)
