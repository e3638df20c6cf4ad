"""Foo/queryChanges (RFC 8620 §5.6), exact for every filter and sort.

Every record that changed since the old query state is reported removed
(over-reporting is allowed, [core-5.6-removed]) and re-added at its index in
the new results if it still matches ([core-5.6-added]).  Records that did not
change keep their relative order, because the order is a pure function of the
records (ties broken by id), so splicing the client's cached list gives the
new list ([core-5.6-spliceModel]).
"""

from __future__ import annotations

from typing import Any

from ..context import CallContext
from ..datatype import DataType
from ..errors import MethodError
from ..state import type_state
from ..storage import LogPosition, Snapshot
from .args import QueryChangesArgs
from .changes import cannot_calculate, decode_since
from .query import Transform, query_results


def changed_since(snap: Snapshot, type_name: str, since: LogPosition) -> tuple[set[str], set[str]]:
    """(ids created since, ids updated or destroyed since) — all pages."""
    created: set[str] = set()
    touched: set[str] = set()
    position = since
    while True:
        try:
            page = snap.changes(type_name, position, None)
        except LookupError:
            raise cannot_calculate() from None
        created.update(page.created)
        touched.update(page.updated)
        touched.update(page.destroyed)
        if not page.has_more:
            return created, touched
        position = page.position


def make_query_changes(data_type: DataType, transform: Transform | None = None):
    def query_changes(ctx: CallContext, args: QueryChangesArgs) -> dict[str, Any]:
        ctx.account(args.accountId, data_type.capability)
        since = decode_since(args.sinceQueryState)
        with ctx.snapshot(args.accountId) as snap:
            epoch = snap.epoch()
            if since.epoch != epoch:
                raise cannot_calculate("The account was re-indexed since that state.")
            created, touched = changed_since(snap, data_type.name, since.position)
            if data_type.related is not None and (created or touched):
                # Records whose match or position depends on the changed ones.
                touched |= data_type.related(snap, created | touched, since.position) - created
            new_state = type_state(epoch, snap.type_modseq(data_type.name))
            results = query_results(ctx, data_type, args, snap, transform)
            results = list(results) if created or touched or args.calculateTotal else []
        # Ids created since the old state cannot have been in the old results.
        removed = sorted(touched - created)
        index = {record_id: position for position, record_id in enumerate(results)}
        added = sorted(
            ((record_id, index[record_id]) for record_id in created | touched if record_id in index),
            key=lambda item: item[1],
        )
        if args.upToId is not None and args.upToId in index:
            # [core-5.6-upToId] the client caches nothing beyond it.
            added = [item for item in added if item[1] <= index[args.upToId]]
        if args.maxChanges is not None and len(removed) + len(added) > args.maxChanges:
            raise MethodError("tooManyChanges", "More changes than maxChanges; query again.")
        result: dict[str, Any] = {
            "accountId": args.accountId,
            "oldQueryState": args.sinceQueryState,
            "newQueryState": new_state,
            "removed": removed,
            "added": [{"id": record_id, "index": position} for record_id, position in added],
        }
        if args.calculateTotal:
            result["total"] = len(results)
        return result

    return query_changes
