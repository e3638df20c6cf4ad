"""Foo/get (RFC 8620 §5.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..context import CallContext
from ..datatype import DataType
from ..errors import MethodError
from ..state import type_state
from ..storage import Record
from .args import GetArgs


def request_too_large(limit: int, what: str) -> MethodError:
    return MethodError("requestTooLarge", f"At most {limit} {what} in one call.")


def select_properties(data_type: DataType, properties: list[str] | None) -> Sequence[str]:
    """[core-5.1-properties] null means the defaults; ``id`` always comes back."""
    if properties is None:
        return data_type.default_properties or list(data_type.properties)
    unknown = [name for name in properties if name not in data_type.properties]
    if unknown:
        raise MethodError.invalid_arguments(f"Unknown properties: {', '.join(unknown)}.")
    return ["id", *[name for name in dict.fromkeys(properties) if name != "id"]]


def project(record: Record, properties: Sequence[str]) -> dict[str, Any]:
    return {name: record.get(name) for name in properties}


def make_get(data_type: DataType):
    def get(ctx: CallContext, args: GetArgs) -> dict[str, Any]:
        ctx.account(args.accountId, data_type.capability)
        properties = select_properties(data_type, args.properties)
        limit = ctx.limits.maxObjectsInGet
        if args.ids is not None and len(args.ids) > limit:
            raise request_too_large(limit, "ids")
        with ctx.snapshot(args.accountId) as snap:
            state = type_state(snap.epoch(), snap.type_modseq(data_type.name))
            if args.ids is None:
                if not data_type.get_all or snap.count(data_type.name) > limit:
                    # [core-5.1-idsNull] our decision: too many for one /get.
                    raise request_too_large(limit, "records (ids: null)")
                wanted = list(snap.ids(data_type.name))
            else:
                # [core-5.1-dedupe] each id once, in the order first asked.
                wanted = list(dict.fromkeys(args.ids))
            if any(record_id.startswith("#") for record_id in wanted):
                resolved = [ctx.resolve_id(record_id) for record_id in wanted]
            else:
                resolved = wanted
            lookup = [record_id for record_id in resolved if record_id is not None]
            records = dict(zip(lookup, snap.get_many(data_type.name, lookup), strict=True))
        found: list[dict[str, Any]] = []
        not_found: list[str] = []
        wanted_keys = frozenset(properties)
        for asked, record_id in zip(wanted, resolved, strict=True):
            record = records.get(record_id) if record_id is not None else None
            if record is None:
                not_found.append(asked)
            elif record.keys() == wanted_keys:
                found.append(record)  # nothing to leave out
            else:
                found.append(project(record, properties))
        return {"accountId": args.accountId, "state": state, "list": found, "notFound": not_found}

    return get
