"""Data type descriptors: what a plugin says about its type.

The standard methods (:mod:`jmapcore.standard`) are written once and driven by
a :class:`DataType`: its properties (with their value types, and which are
server-set or immutable), its filter conditions, its sort properties and a few
optional hooks.  A plugin describes a type; it gets /get, /changes, /set,
/copy, /query and /queryChanges for free.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from .storage import IndexSpec, KeyPart, LogPosition, Record, Snapshot

if TYPE_CHECKING:
    from .context import CallContext
    from .errors import SetError

STANDARD_METHODS = ("get", "changes", "set", "copy", "query", "queryChanges")


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


#: Marks a property that has no default: a create must give it.
NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True, slots=True)
class Property:
    """One property of a data type.

    ``type`` is any type msgspec can validate (``str``, ``int | None``,
    ``dict[Id, bool]``, a Struct...).  ``ref`` names the data type whose ids
    this property holds, so ``#creationId`` values are resolved and dangling
    references refused.
    """

    type: Any = Any
    server_set: bool = False
    immutable: bool = False
    default: Any = NO_DEFAULT
    ref: str | None = None
    #: The value is a blobId: references are counted and checked.
    blob: bool = False

    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT


Predicate = Callable[[Record], bool]


@dataclass(frozen=True, slots=True)
class Filter:
    """A FilterCondition property: its value type and how a record matches.

    ``match`` sees only the record.  A condition that needs more (other
    records, the search index) gives ``bind`` instead: called once per query
    with the snapshot and the value, it returns the predicate.
    """

    type: Any
    match: Callable[[Record, Any], bool] | None = None
    bind: Callable[[Snapshot, Any], Predicate] | None = None

    def predicate(self, snap: Snapshot, value: Any) -> Predicate:
        if self.bind is not None:
            return self.bind(snap, value)
        match = self.match
        assert match is not None, "a Filter needs match or bind"
        return lambda record: match(record, value)


@dataclass(frozen=True, slots=True)
class Sort:
    """A sortable property: the key one record sorts by.

    ``text`` keys are strings compared with the comparator's collation
    (the index holds them under the default, i;unicode-casemap).
    ``indexed`` sorts are kept as a backend index, so a query sorted by them
    alone walks the index instead of sorting.
    """

    key: Callable[[Record], KeyPart] | None = None
    text: bool = False
    indexed: bool = False
    #: Extra Comparator members this sort requires (e.g. ``keyword``).
    arguments: tuple[str, ...] = ()
    #: For keys that need the snapshot or the comparator's arguments:
    #: called once per query, returns the key function.
    bind: Callable[[Snapshot, Mapping[str, Any]], Callable[[Record], KeyPart]] | None = None

    def key_for(self, snap: Snapshot, comparator: Mapping[str, Any]) -> Callable[[Record], KeyPart]:
        if self.bind is not None:
            return self.bind(snap, comparator)
        assert self.key is not None, "a Sort needs key or bind"
        return self.key


def property_sort(name: str, *, text: bool = False, indexed: bool = True) -> Sort:
    """The common case: sort by a scalar property's value."""
    return Sort(lambda record: record.get(name), text=text, indexed=indexed)


def casemap(value: Any) -> Any:
    """The i;unicode-casemap key of a string (NFKD, then case folded)."""
    if isinstance(value, str):
        return unicodedata.normalize("NFKD", value).casefold()
    return value


#: Validates one record against the whole type (beyond property types);
#: gets the new record and the stored one (None on create).
Validator = Callable[["CallContext", Record, "Record | None"], "SetError | None"]
#: Fills server-set properties of a record about to be stored (for example
#: a timestamp); gets the new record and the stored one (None on create).
Computer = Callable[["CallContext", Record, "Record | None"], None]
#: Says whether a record may be destroyed (for example a mailbox with children).
DestroyCheck = Callable[["CallContext", Record], "SetError | None"]


@dataclass(frozen=True, slots=True)
class Candidates:
    """What a type's query planner offers instead of scanning every record:
    a superset of the matching ids, either already in the query's order
    (ties by id in the first comparator's direction) or in no order."""

    ids: Iterable[str]
    ordered: bool
    #: The ids are exactly the matches (read from the same snapshot's index),
    #: so records need not be read to check the filter.
    exact: bool = False


#: A query planner: given the snapshot, the filter tree and the parsed
#: comparators (jmapcore.standard.query.Comparator), offer candidates, or
#: None to let the standard method scan.
Planner = Callable[[Snapshot, "Mapping[str, Any] | None", Sequence[Any]], "Candidates | None"]
#: For /queryChanges: the ids whose match or position may have changed
#: because the given ids changed since the log position (for Email: every
#: Email of a Thread that changed).
Related = Callable[[Snapshot, set[str], LogPosition], set[str]]


@dataclass(slots=True)
class DataType:
    """Everything the standard methods need to know about one data type."""

    name: str
    capability: str
    properties: Mapping[str, Property]
    methods: Sequence[str] = STANDARD_METHODS
    filters: Mapping[str, Filter] = field(default_factory=dict)
    sorts: Mapping[str, Sort] = field(default_factory=dict)
    #: Properties /get returns when ``properties`` is null (default: all).
    default_properties: Sequence[str] | None = None
    #: Letter that starts every id of this type ([core-1.2-idAllocation]).
    id_prefix: str = ""
    #: Whether ``ids: null`` may fetch every record.
    get_all: bool = True
    validate: Validator | None = None
    compute: Computer | None = None
    can_destroy: DestroyCheck | None = None
    #: Extra indexes a plugin wants kept for its own methods.
    extra_indexes: Sequence[IndexSpec] = ()
    plan: Planner | None = None
    related: Related | None = None
    #: [core-5.3-finalValid] checks rules that span records (unique names, no
    #: cycles) on every record as a /set would leave them (untouched ones
    #: first), given the ids this call changed; returns id -> error.
    check_final: Callable[[CallContext, dict[str, Record], set[str]], dict[str, SetError]] | None = None
    _validators: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if "id" not in self.properties:
            self.properties = {"id": Property(type=str, server_set=True, immutable=True), **self.properties}
        if not self.id_prefix:
            self.id_prefix = self.name[0].upper()

    def indexes(self) -> list[IndexSpec]:
        """The backend indexes this type needs: one per indexed sort."""
        specs = [
            IndexSpec(self.name, f"sort:{name}", _single_key(sort.key, sort.text))
            for name, sort in self.sorts.items()
            if sort.indexed and sort.key is not None
        ]
        return specs + list(self.extra_indexes)

    def blob_ids(self, record: Record) -> list[str]:
        """The blobIds a record references (counted by the blob store)."""
        return [
            record[name]
            for name, prop in self.properties.items()
            if prop.blob and isinstance(record.get(name), str)
        ]

    def check_value(self, name: str, value: Any) -> Any:
        """Validate one property value; raise ``msgspec.ValidationError``."""
        prop = self.properties[name]
        if prop.type is Any:
            return value
        return msgspec.convert(value, prop.type, strict=True)

    def default_record(self) -> dict[str, Any]:
        return {
            name: _copy(prop.default)
            for name, prop in self.properties.items()
            if prop.has_default()
        }


def _copy(value: Any) -> Any:
    if isinstance(value, dict | list):
        return msgspec.json.decode(msgspec.json.encode(value))
    return value


def _single_key(
    key: Callable[[Record], KeyPart], text: bool
) -> Callable[[Record], list[tuple[KeyPart, ...]]]:
    if text:
        return lambda record: [(casemap(key(record)),)]
    return lambda record: [(key(record),)]
