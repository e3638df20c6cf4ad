"""Foo/query (RFC 8620 §5.5): filter trees, sorting with collations, paging.

The full result order is a pure function of the stored records, the filter
and the sort: ties are broken by id, in the direction of the first
comparator.  /queryChanges relies on that.  A query sorted by one indexed
property walks the backend index and stops as soon as the page is full;
anything else filters and sorts in memory.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from ..context import CallContext
from ..datatype import DataType, Sort, casemap
from ..errors import MethodError
from ..state import type_state
from ..storage import Record, Snapshot
from .args import QueryArgs

Predicate = Callable[[Record], bool]

#: The most ids one /query returns; a larger (or no) limit is capped and
#: the cap reported back as ``limit`` ([core-5.5-limit]).
MAX_QUERY_LIMIT = 10_000
DEFAULT_COLLATION = "i;unicode-casemap"


# -- filters -----------------------------------------------------------------


def compile_filter(data_type: DataType, tree: dict[str, Any] | None, snap: Snapshot) -> Predicate | None:
    """[core-5.5-filterOperator] a FilterOperator/FilterCondition tree to a predicate."""
    if tree is None:
        return None
    return _compile(data_type, tree, "filter", snap)


def _compile(data_type: DataType, node: Any, where: str, snap: Snapshot) -> Predicate:
    if not isinstance(node, dict):
        raise MethodError.invalid_arguments(f"{where} must be an object.")
    if "operator" in node:
        return _compile_operator(data_type, node, where, snap)
    tests: list[Predicate] = []
    for name, value in node.items():
        spec = data_type.filters.get(name)
        if spec is None:
            raise MethodError("unsupportedFilter", f"{where}: {data_type.name} cannot be filtered by {name!r}.")
        try:
            value = msgspec.convert(value, spec.type, strict=True)
        except msgspec.ValidationError as ex:
            raise MethodError.invalid_arguments(f"{where}.{name}: {ex}") from None
        tests.append(spec.predicate(snap, value))
    if len(tests) == 1:
        return tests[0]
    return lambda record: all(test(record) for test in tests)


def _compile_operator(data_type: DataType, node: dict[str, Any], where: str, snap: Snapshot) -> Predicate:
    operator = node["operator"]
    conditions = node.get("conditions")
    if set(node) - {"operator", "conditions"}:
        raise MethodError.invalid_arguments(f"{where}: a FilterOperator has only operator and conditions.")
    if operator not in ("AND", "OR", "NOT") or not isinstance(conditions, list):
        raise MethodError.invalid_arguments(f"{where}: operator must be AND, OR or NOT with a conditions list.")
    children = [_compile(data_type, child, f"{where}.conditions[{i}]", snap) for i, child in enumerate(conditions)]
    if operator == "AND":
        return lambda record: all(child(record) for child in children)
    if operator == "OR":
        return lambda record: any(child(record) for child in children)
    return lambda record: not any(child(record) for child in children)


# -- sorting -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparator:
    name: str
    sort: Sort
    ascending: bool
    collation: str
    #: The record's sort key, bound to this query's snapshot and arguments.
    key: Callable[[Record], Any]
    #: The whole Comparator object as the client sent it.
    members: dict[str, Any]


def parse_sort(
    ctx: CallContext, data_type: DataType, sort: list[dict[str, Any]] | None, snap: Snapshot
) -> list[Comparator]:
    """[core-5.5-comparator] validate comparators; unknown ones are unsupportedSort."""
    comparators = []
    for index, item in enumerate(sort or []):
        prop = item.get("property")
        ascending = item.get("isAscending", True)
        collation = item.get("collation", DEFAULT_COLLATION)
        if not isinstance(prop, str) or not isinstance(ascending, bool) or not isinstance(collation, str):
            raise MethodError.invalid_arguments(f"sort[{index}] is not a valid Comparator.")
        spec = data_type.sorts.get(prop)
        if spec is None:
            raise MethodError("unsupportedSort", f"{data_type.name} cannot be sorted by {prop!r}.")
        # Unknown members are ignored, not refused: RFC 8620 lets types add
        # their own, and real clients (jmapc) send query arguments in here.
        missing = [name for name in spec.arguments if name not in item]
        if missing:
            raise MethodError.invalid_arguments(f"sort[{index}] needs {missing}.")
        if collation not in ctx.limits.collationAlgorithms:
            raise MethodError("unsupportedSort", f"Unknown collation {collation!r}.")
        comparators.append(Comparator(prop, spec, ascending, collation, spec.key_for(snap, item), item))
    return comparators


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_LEADING_DIGITS = re.compile(r"\d+")


def collate(value: Any, collation: str) -> Any:
    """The key a string sorts by under an RFC 4790 collation."""
    if not isinstance(value, str):
        return value
    if collation == "i;ascii-casemap":
        return value.translate(_ASCII_LOWER)
    if collation == "i;ascii-numeric":
        digits = _LEADING_DIGITS.match(value)
        # RFC 4790: strings that do not start with a digit sort last.
        return int(digits.group()) if digits else float("inf")
    return casemap(value)


def sortable(value: Any) -> tuple[int, Any]:
    """Order across kinds like the index codec: None < bool < number < str."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    return (4, str(value))


def _key(comparator: Comparator) -> Callable[[Record], tuple[int, Any]]:
    key, collation = comparator.key, comparator.collation
    if comparator.sort.text:
        return lambda record: sortable(collate(key(record), collation))
    return lambda record: sortable(key(record))


def _uses_index(comparators: list[Comparator]) -> bool:
    if len(comparators) != 1:
        return False
    comparator = comparators[0]
    return (
        comparator.sort.indexed
        and comparator.sort.key is not None
        and (not comparator.sort.text or comparator.collation == DEFAULT_COLLATION)
    )


def _filter_stream(
    snap: Snapshot, name: str, ids: Iterable[str], predicate: Predicate | None, first: int = 64
) -> Iterator[str]:
    """Keep the ids whose record exists and matches, reading in batches that
    start at what the page needs and double (a page of 50 reads ~50)."""
    stream = iter(ids)
    size = max(1, first)
    while batch := list(itertools.islice(stream, size)):
        for record_id, record in zip(batch, snap.get_many(name, batch), strict=True):
            if record is not None and (predicate is None or predicate(record)):
                yield record_id
        size = min(size * 2, 1024)


def _sorted(records: list[Record], comparators: list[Comparator]) -> Iterator[str]:
    """The in-memory sort: ties broken by id in the first comparator's direction."""
    records.sort(key=lambda record: record["id"], reverse=bool(comparators) and not comparators[0].ascending)
    for comparator in reversed(comparators):
        records.sort(key=_key(comparator), reverse=not comparator.ascending)
    return (record["id"] for record in records)


def ordered_ids(
    snap: Snapshot,
    data_type: DataType,
    predicate: Predicate | None,
    comparators: list[Comparator],
    tree: dict[str, Any] | None = None,
    need: int = 64,
) -> Iterator[str]:
    """Every matching id, in the query's order, lazily where an index or
    the type's planner allows (``need``: how many the caller expects to take)."""
    name = data_type.name
    planned = data_type.plan(snap, tree, comparators) if data_type.plan is not None else None
    if planned is not None:
        if planned.ordered:
            if planned.exact:
                yield from planned.ids
            else:
                yield from _filter_stream(snap, name, planned.ids, predicate, need)
            return
        candidates = list(dict.fromkeys(planned.ids))
        records = [r for r in snap.get_many(name, candidates) if r is not None and (predicate is None or predicate(r))]
        yield from _sorted(records, comparators)
        return
    if not comparators or _uses_index(comparators):
        if comparators:
            comparator = comparators[0]
            ids: Iterator[str] = (
                record_id
                for _, record_id in snap.scan_index(name, f"sort:{comparator.name}", reverse=not comparator.ascending)
            )
        else:
            ids = snap.ids(name)
        if predicate is None:
            yield from ids
        else:
            yield from _filter_stream(snap, name, ids, predicate, need)
        return
    records = [
        record
        for record in snap.get_many(name, list(snap.ids(name)))
        if record is not None and (predicate is None or predicate(record))
    ]
    yield from _sorted(records, comparators)


# -- the method ----------------------------------------------------------------


def _page(
    ids: Iterator[str], args: QueryArgs, limit: int, known_total: int | None = None
) -> tuple[int, list[str], int | None]:
    """[core-5.5-position] [core-5.5-anchor] pick the page; return (position, ids, total).

    Only what the page needs is read, unless the total or the anchor's
    position is wanted and not known otherwise."""
    if args.anchor is None and (known_total is not None or not args.calculateTotal):
        position = args.position
        if position < 0:
            position = max(0, (known_total or 0) + position) if known_total is not None else None
        if position is not None:
            return position, list(itertools.islice(ids, position, position + limit)), known_total
    everything = list(ids)
    total = len(everything)
    if args.anchor is not None:
        try:
            position = max(0, everything.index(args.anchor) + args.anchorOffset)
        except ValueError:
            raise MethodError("anchorNotFound", "The anchor is not in the results.") from None
    else:
        position = args.position if args.position >= 0 else max(0, total + args.position)
    return position, everything[position : position + limit], total


#: Rewrites the ordered result stream of a query (for example Email's
#: collapseThreads); gets the call's arguments and the snapshot.
Transform = Callable[[Any, Snapshot, Iterator[str]], Iterator[str]]


def query_results(
    ctx: CallContext,
    data_type: DataType,
    args: Any,
    snap: Snapshot,
    transform: Transform | None = None,
    need: int = 64,
) -> Iterator[str]:
    """The full ordered results of a /query or /queryChanges call's filter and sort."""
    predicate = compile_filter(data_type, args.filter, snap)
    comparators = parse_sort(ctx, data_type, args.sort, snap)
    ids = ordered_ids(snap, data_type, predicate, comparators, args.filter, need)
    return transform(args, snap, ids) if transform is not None else ids


#: Knows a query's total without listing the results (for example from a
#: mailbox's kept counts), or returns None.
TotalHint = Callable[[Any, Snapshot], int | None]


def make_query(data_type: DataType, transform: Transform | None = None, total_hint: TotalHint | None = None):
    def query(ctx: CallContext, args: QueryArgs) -> dict[str, Any]:
        ctx.account(args.accountId, data_type.capability)
        limit = MAX_QUERY_LIMIT if args.limit is None else min(args.limit, MAX_QUERY_LIMIT)
        with ctx.snapshot(args.accountId) as snap:
            query_state = type_state(snap.epoch(), snap.type_modseq(data_type.name))
            need = max(args.position, 0) + limit if args.anchor is None else 256
            results = query_results(ctx, data_type, args, snap, transform, need)
            known = total_hint(args, snap) if total_hint is not None and args.calculateTotal else None
            position, ids, total = _page(results, args, limit, known)
        result: dict[str, Any] = {
            "accountId": args.accountId,
            "queryState": query_state,
            "canCalculateChanges": True,
            "position": position,
            "ids": ids,
        }
        if args.calculateTotal:
            result["total"] = total
        if args.limit is None or args.limit > MAX_QUERY_LIMIT:
            result["limit"] = limit
        return result

    return query
