"""JSContact (RFC 9553) Card validation, shared by ContactCard/set and vCard import.

:func:`validate_card` takes one Card as a JSON-shaped ``dict`` and returns the
JSON Pointer paths (without the leading ``/``, as JMAP's ``invalidProperties``
wants them) of everything wrong with it; an empty list means valid.
:func:`card_problems` gives the same with a message for each.

What it accepts (the rules of RFC 9553 §1.3-§2.8):

* the top-level object must have ``@type: "Card"`` [jscontact-1.3.4-type],
  ``version`` of the form ``major.minor`` [jscontact-1.9-version] and a
  non-empty ``uid`` [jscontact-2.1-metadata];
* every property RFC 9553 defines on Card and on its nested objects (Name,
  NameComponent, Nickname, Organization, OrgUnit, SpeakToAs, Pronouns, Title,
  EmailAddress, OnlineService, Phone, LanguagePref, Calendar,
  SchedulingAddress, Address, AddressComponent, CryptoKey, Directory, Link,
  Media, Anniversary, PartialDate, Timestamp, Note, Author, PersonalInfo,
  Relation) is checked for its value type, its mandatory sub-properties and
  the rules that span properties (``name`` needs ``components`` or ``full``,
  ``members`` needs ``kind: "group"``, an Address needs one of its location
  properties, phonetics need a script or system...);
* nested objects may omit ``@type``; if given it must name the right type;
* ``Id[...]`` map keys must be 1-255 base64url characters
  [jscontact-1.4.1-id]; ``pref`` is 1-100; ``contexts``, ``keywords``,
  ``features``, ``members``... are ``String[Boolean]`` with ``true`` values;
  dates are UTCDateTime (``Z``, no trailing zeros) [jscontact-1.4.5-utcDateTime];
* enumerated values (``kind``, NameComponent kinds, phone features...) must
  be one of the registered values, or a vendor value ``domain:name``; a value
  that differs only in case from a registered one is invalid;
* unknown properties with a syntactically valid name (no ``/`` or ``~``)
  are accepted and must be preserved by the caller [jscontact-1.7-validation]
  [jscontact-1.8-vendor], except names that differ only in case from a known
  property and the reserved name ``extra``;
* the JMAP properties of a ContactCard (``id``, ``addressBookIds``, and
  ``blobId`` in a Media object, RFC 9610 §3) are allowed and not checked here.

The value of ``localizations`` is only checked to be patch objects (maps of
pointer to value); patches are not applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CardProblem", "card_problems", "validate_card", "is_utc_datetime"]


@dataclass(frozen=True, slots=True)
class CardProblem:
    #: JSON Pointer of the bad value, without the leading ``/`` (``emails/e1/address``).
    path: str
    message: str


_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d*[1-9])?Z$")
_VERSION = re.compile(r"^\d+\.\d+$")
_LANG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
_SCRIPT = re.compile(r"^[A-Za-z]{4}$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_VENDOR = re.compile(r"^[A-Za-z0-9.-]+\.[A-Za-z0-9-]+:[^/~]+$|^[A-Za-z0-9-]+:[^/~]+$")


def is_utc_datetime(value: Any) -> bool:
    """RFC 9553 §1.4.5 UTCDateTime."""
    return isinstance(value, str) and _UTC.match(value) is not None


def _is_vendor(value: str) -> bool:
    return ":" in value and _VENDOR.match(value) is not None


# -- value checkers: each returns an error message or None, and may recurse -------

Check = Callable[[Any, str, list[CardProblem]], None]


def _err(problems: list[CardProblem], path: str, message: str) -> None:
    problems.append(CardProblem(path, message))


def _string(nonempty: bool = False, pattern: re.Pattern[str] | None = None, what: str = "a string") -> Check:
    def check(value: Any, path: str, problems: list[CardProblem]) -> None:
        if not isinstance(value, str) or (nonempty and not value) or (pattern is not None and not pattern.match(value)):
            _err(problems, path, f"must be {what}")

    return check


def _boolean(value: Any, path: str, problems: list[CardProblem]) -> None:
    if not isinstance(value, bool):
        _err(problems, path, "must be a boolean")


def _uint(low: int = 0, high: int = 2**53 - 1) -> Check:
    def check(value: Any, path: str, problems: list[CardProblem]) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            _err(problems, path, f"must be an integer from {low} to {high}")

    return check


def _enum(*values: str) -> Check:
    known = frozenset(values)
    folded = {v.casefold(): v for v in values}

    def check(value: Any, path: str, problems: list[CardProblem]) -> None:
        if not isinstance(value, str):
            _err(problems, path, "must be a string")
        elif value not in known and (value.casefold() in folded or not _is_vendor(value)):
            _err(problems, path, f"must be one of {', '.join(sorted(known))} (or a vendor value domain:name)")

    return check


def _bool_map(keys: Check | None = None) -> Check:
    """String[Boolean] with every value true (contexts, keywords, members...)."""

    def check(value: Any, path: str, problems: list[CardProblem]) -> None:
        if not isinstance(value, dict):
            _err(problems, path, "must be an object of string to true")
            return
        for key, flag in value.items():
            if flag is not True:
                _err(problems, f"{path}/{_escape(key)}", "must be true")
            elif keys is not None:
                keys(key, f"{path}/{_escape(key)}", problems)
            elif not key:
                _err(problems, f"{path}/", "keys must not be empty")

    return check


def _list(item: Check) -> Check:
    def check(value: Any, path: str, problems: list[CardProblem]) -> None:
        if not isinstance(value, list):
            _err(problems, path, "must be an array")
            return
        for index, element in enumerate(value):
            item(element, f"{path}/{index}", problems)

    return check


def _map(item: Check, ids: bool = True) -> Check:
    """Id[T] (``ids``) or String[T]."""

    def check(value: Any, path: str, problems: list[CardProblem]) -> None:
        if not isinstance(value, dict):
            _err(problems, path, "must be an object")
            return
        for key, element in value.items():
            if ids and not _ID.match(key):
                _err(problems, f"{path}/{_escape(key)}", "map keys must be 1-255 characters A-Z a-z 0-9 _ -")
            else:
                item(element, f"{path}/{_escape(key)}", problems)

    return check


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


# -- object types ------------------------------------------------------------

#: A rule across an object's properties: returns (property or "", message) pairs.
Rule = Callable[[dict[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class ObjectType:
    name: str
    props: dict[str, Check]
    required: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    #: Other @type values this property accepts (A|B properties).
    also: tuple[str, ...] = ()


_TYPES: dict[str, ObjectType] = {}
_RESERVED = frozenset({"extra"})


def _object(name: str) -> Check:
    def check(value: Any, path: str, problems: list[CardProblem]) -> None:
        _check_object(_TYPES[name], value, path, problems)

    return check


def _check_object(spec: ObjectType, value: Any, path: str, problems: list[CardProblem], top: bool = False) -> None:
    prefix = f"{path}/" if path else ""
    if not isinstance(value, dict):
        _err(problems, path, f"must be a {spec.name} object")
        return
    kind = value.get("@type")
    if kind is not None and kind != spec.name:
        if kind in spec.also:
            _check_object(_TYPES[kind], value, path, problems)
            return
        _err(problems, f"{prefix}@type", f"must be {spec.name!r}")
    elif top and kind is None:
        _err(problems, f"{prefix}@type", f"is mandatory and must be {spec.name!r}")
    folded = {name.casefold(): name for name in spec.props}
    for name in spec.required:
        if name not in value:
            _err(problems, f"{prefix}{name}", "is mandatory")
    for name, element in value.items():
        check = spec.props.get(name)
        if check is not None:
            check(element, f"{prefix}{_escape(name)}", problems)
        elif name == "@type":
            continue
        elif not name or "/" in name or "~" in name or name in _RESERVED:
            _err(problems, f"{prefix}{_escape(name)}", "is not a valid property name")
        elif name.casefold() in folded or name.casefold() == "@type":
            _err(problems, f"{prefix}{_escape(name)}", f"differs only in case from {folded.get(name.casefold(), '@type')!r}")
    for rule in spec.rules:
        for prop, message in rule(value):
            _err(problems, f"{prefix}{prop}" if prop else path, message)


def _define(name: str, props: dict[str, Check], required: tuple[str, ...] = (), *rules: Rule, also: tuple[str, ...] = ()) -> None:
    _TYPES[name] = ObjectType(name, props, required, rules, also)


_str = _string()
_nonempty = _string(nonempty=True, what="a non-empty string")
_utc = _string(pattern=_UTC, what="a UTCDateTime (YYYY-MM-DDThh:mm:ss[.fff]Z)")
_uri = _string(pattern=_URI, what="a URI")
_lang = _string(pattern=_LANG, what="a language tag (RFC 5646)")
_id = _string(pattern=_ID, what="an Id")
_contexts = _bool_map()
_pref = _uint(1, 100)
_phonetic_system = _enum("ipa", "jyut", "piny")
_script = _string(pattern=_SCRIPT, what="a script subtag (4 letters)")


def _one_of(*names: str) -> Rule:
    return lambda obj: [] if any(n in obj for n in names) else [("", f"needs one of {', '.join(names)}")]


def _phonetics_need_script(components: str) -> Rule:
    def rule(obj: dict[str, Any]) -> list[tuple[str, str]]:
        items = obj.get(components)
        if not isinstance(items, list) or "phoneticScript" in obj or "phoneticSystem" in obj:
            return []
        return [
            (f"{components}/{i}/phonetic", "needs phoneticScript or phoneticSystem on the parent")
            for i, c in enumerate(items)
            if isinstance(c, dict) and "phonetic" in c
        ]

    return rule


def _separator_needs_order(obj: dict[str, Any]) -> list[tuple[str, str]]:
    if "defaultSeparator" in obj and (obj.get("isOrdered") is not True or "components" not in obj):
        return [("defaultSeparator", "is only allowed with isOrdered true and components")]
    return []


def _name_rules(obj: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    components = obj.get("components")
    if isinstance(components, list) and components and all(
        isinstance(c, dict) and c.get("kind") == "separator" for c in components
    ):
        out.append(("components", "must hold a component other than a separator"))
    if "sortAs" in obj and "components" not in obj:
        out.append(("sortAs", "needs components"))
    return out


_NAME_KINDS = ("title", "given", "given2", "surname", "surname2", "credential", "generation", "separator")
_ADDRESS_KINDS = (
    "room", "apartment", "floor", "building", "number", "name", "block", "subdistrict", "district",
    "locality", "region", "postcode", "country", "direction", "landmark", "postOfficeBox", "separator",
)  # fmt: skip
_RESOURCE = {"uri": _uri, "mediaType": _str, "contexts": _contexts, "pref": _pref, "label": _str}

_define("Relation", {"relation": _bool_map()})
_define("NameComponent", {"value": _str, "kind": _enum(*_NAME_KINDS), "phonetic": _str}, ("value", "kind"))
_define(
    "Name",
    {
        "components": _list(_object("NameComponent")),
        "isOrdered": _boolean,
        "defaultSeparator": _str,
        "full": _str,
        "sortAs": _map(_str, ids=False),
        "phoneticScript": _script,
        "phoneticSystem": _phonetic_system,
    },
    (),
    _one_of("components", "full"),
    _name_rules,
    _separator_needs_order,
    _phonetics_need_script("components"),
)
_define("Nickname", {"name": _str, "contexts": _contexts, "pref": _pref}, ("name",))
_define("OrgUnit", {"name": _str, "sortAs": _str}, ("name",))
_define(
    "Organization",
    {"name": _str, "units": _list(_object("OrgUnit")), "sortAs": _str, "contexts": _contexts},
    (),
    _one_of("name", "units"),
)
_define("Pronouns", {"pronouns": _str, "contexts": _contexts, "pref": _pref}, ("pronouns",))
_define(
    "SpeakToAs",
    {
        "grammaticalGender": _enum("animate", "common", "feminine", "inanimate", "masculine", "neuter"),
        "pronouns": _map(_object("Pronouns")),
    },
    (),
    _one_of("grammaticalGender", "pronouns"),
)
_define("Title", {"name": _str, "kind": _enum("title", "role"), "organizationId": _id}, ("name",))
_define(
    "EmailAddress",
    {"address": _string(pattern=_EMAIL, what="an email address"), "contexts": _contexts, "pref": _pref, "label": _str},
    ("address",),
)
_define(
    "OnlineService",
    {"service": _str, "uri": _uri, "user": _str, "contexts": _contexts, "pref": _pref, "label": _str},
    (),
    _one_of("uri", "user"),
)
_PHONE_FEATURES = _enum("mobile", "voice", "text", "video", "main-number", "textphone", "fax", "pager")
_define(
    "Phone",
    {"number": _nonempty, "features": _bool_map(_PHONE_FEATURES), "contexts": _contexts, "pref": _pref, "label": _str},
    ("number",),
)
_define("LanguagePref", {"language": _lang, "contexts": _contexts, "pref": _pref}, ("language",))
_define("Calendar", {**_RESOURCE, "kind": _enum("calendar", "freeBusy")}, ("uri", "kind"))
_define("SchedulingAddress", {"uri": _uri, "contexts": _contexts, "pref": _pref, "label": _str}, ("uri",))
_define("AddressComponent", {"value": _str, "kind": _enum(*_ADDRESS_KINDS), "phonetic": _str}, ("value", "kind"))
_define(
    "Address",
    {
        "components": _list(_object("AddressComponent")),
        "isOrdered": _boolean,
        "countryCode": _string(pattern=_COUNTRY, what="an ISO 3166-1 alpha-2 code"),
        "coordinates": _string(pattern=re.compile(r"^geo:\S+$", re.I), what="a geo: URI"),
        "timeZone": _nonempty,
        "contexts": _contexts,
        "full": _str,
        "defaultSeparator": _str,
        "pref": _pref,
        "phoneticScript": _script,
        "phoneticSystem": _phonetic_system,
    },
    (),
    _one_of("components", "coordinates", "countryCode", "full", "timeZone"),
    _separator_needs_order,
    _phonetics_need_script("components"),
)
_define("CryptoKey", {**_RESOURCE, "kind": _str}, ("uri",))
_define(
    "Directory",
    {**_RESOURCE, "kind": _enum("directory", "entry"), "listAs": _uint(1)},
    ("uri", "kind"),
)
_define("Link", {**_RESOURCE, "kind": _enum("contact")}, ("uri",))


def _media_source(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """RFC 9610 §3: a Media object carries ``uri`` or ``blobId``."""
    return [] if "uri" in obj or "blobId" in obj else [("uri", "is mandatory (or blobId)")]


_define(
    "Media",
    {**_RESOURCE, "kind": _enum("photo", "sound", "logo"), "blobId": _id},
    ("kind",),
    _media_source,
)


def _partial_date_rules(obj: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not any(k in obj for k in ("year", "month", "day")):
        out.append(("", "needs year, month or day"))
    if "month" in obj and "year" not in obj and "day" not in obj:
        out.append(("month", "needs year or day"))
    if "day" in obj and "month" not in obj:
        out.append(("day", "needs month"))
    return out


_define(
    "PartialDate",
    {"year": _uint(1), "month": _uint(1, 12), "day": _uint(1, 31), "calendarScale": _nonempty},
    (),
    _partial_date_rules,
    also=("Timestamp",),
)
_define("Timestamp", {"utc": _utc}, ("utc",))
_define(
    "Anniversary",
    {"kind": _enum("birth", "death", "wedding"), "date": _object("PartialDate"), "place": _object("Address")},
    ("kind", "date"),
)
_define("Author", {"name": _str, "uri": _uri}, (), _one_of("name", "uri"))
_define("Note", {"note": _str, "created": _utc, "author": _object("Author")}, ("note",))
_define(
    "PersonalInfo",
    {
        "kind": _enum("expertise", "hobby", "interest"),
        "value": _str,
        "level": _enum("high", "medium", "low"),
        "listAs": _uint(1),
        "label": _str,
    },
    ("kind", "value"),
)


def _patch_object(value: Any, path: str, problems: list[CardProblem]) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        _err(problems, path, "must be a PatchObject (pointer -> value)")


def _members_need_group(obj: dict[str, Any]) -> list[tuple[str, str]]:
    if "members" in obj and obj.get("kind") != "group":
        return [("members", 'needs kind "group"')]
    return []


_ALWAYS_OK: Check = lambda value, path, problems: None  # noqa: E731 (JMAP's own properties)

_define(
    "Card",
    {
        "version": _string(pattern=_VERSION, what='a version "major.minor" (current: "1.0")'),
        "created": _utc,
        "kind": _enum("individual", "group", "org", "location", "device", "application"),
        "language": _lang,
        "members": _bool_map(),
        "prodId": _nonempty,
        "relatedTo": _map(_object("Relation"), ids=False),
        "uid": _nonempty,
        "updated": _utc,
        "name": _object("Name"),
        "nicknames": _map(_object("Nickname")),
        "organizations": _map(_object("Organization")),
        "speakToAs": _object("SpeakToAs"),
        "titles": _map(_object("Title")),
        "emails": _map(_object("EmailAddress")),
        "onlineServices": _map(_object("OnlineService")),
        "phones": _map(_object("Phone")),
        "preferredLanguages": _map(_object("LanguagePref")),
        "calendars": _map(_object("Calendar")),
        "schedulingAddresses": _map(_object("SchedulingAddress")),
        "addresses": _map(_object("Address")),
        "cryptoKeys": _map(_object("CryptoKey")),
        "directories": _map(_object("Directory")),
        "links": _map(_object("Link")),
        "media": _map(_object("Media")),
        "localizations": _map(_patch_object, ids=False),
        "anniversaries": _map(_object("Anniversary")),
        "keywords": _bool_map(),
        "notes": _map(_object("Note")),
        "personalInfo": _map(_object("PersonalInfo")),
        # RFC 9610 §3: the ContactCard's JMAP properties, checked by the server.
        "id": _ALWAYS_OK,
        "addressBookIds": _ALWAYS_OK,
    },
    ("version", "uid"),
    _members_need_group,
)

#: Property names RFC 9553 defines on a Card (plus RFC 9610's id and addressBookIds).
CARD_PROPERTIES: tuple[str, ...] = ("@type", *_TYPES["Card"].props)


def card_problems(card: Any) -> list[CardProblem]:
    """Everything wrong with ``card``, each with its path and a message."""
    problems: list[CardProblem] = []
    _check_object(_TYPES["Card"], card, "", problems, top=True)
    return problems


def validate_card(card: Any) -> list[str]:
    """The paths of the invalid properties of ``card`` (empty when valid).

    See the module docstring for what is accepted.  Paths are JSON Pointers
    without the leading ``/``: ``["emails/e1/address", "name/components/0/kind"]``.
    """
    return list(dict.fromkeys(problem.path for problem in card_problems(card)))


def property_name_ok(name: str, known: frozenset[str] | set[str] | None = None) -> bool:
    """Whether ``name`` may be a top-level Card property: a known one, or an
    unknown one with a valid name (no ``/`` or ``~``, not ``extra``, not a
    case variant of a known property)."""
    known = known if known is not None else _KNOWN
    if name in known:
        return True
    if not name or "/" in name or "~" in name or name in _RESERVED:
        return False
    return name.casefold() not in _KNOWN_FOLDED


_KNOWN = frozenset(CARD_PROPERTIES)
_KNOWN_FOLDED = frozenset(name.casefold() for name in CARD_PROPERTIES)
