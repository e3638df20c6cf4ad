"""Foo/changes (RFC 8620 §5.2), read from the backend's change log."""

from __future__ import annotations

from typing import Any

from ..context import CallContext
from ..datatype import DataType
from ..errors import MethodError
from ..state import State
from .args import ChangesArgs

#: The most ids one /changes answers when the client sets no maxChanges.
DEFAULT_MAX_CHANGES = 5000


def cannot_calculate(detail: str = "The state is too old or unknown; resynchronise.") -> MethodError:
    return MethodError("cannotCalculateChanges", detail)


def decode_since(text: str) -> State:
    state = State.decode(text)
    if state is None:
        raise cannot_calculate(f"{text!r} is not a state this server issued.")
    return state


def make_changes(data_type: DataType):
    def changes(ctx: CallContext, args: ChangesArgs) -> dict[str, Any]:
        ctx.account(args.accountId, data_type.capability)
        if args.maxChanges == 0:
            raise MethodError.invalid_arguments("maxChanges must be greater than 0.")  # [core-5.2-maxChangesPositive]
        since = decode_since(args.sinceState)
        limit = min(args.maxChanges or DEFAULT_MAX_CHANGES, DEFAULT_MAX_CHANGES)
        with ctx.snapshot(args.accountId) as snap:
            epoch = snap.epoch()
            if since.epoch != epoch:
                raise cannot_calculate("The account was re-indexed since that state.")
            try:
                page = snap.changes(data_type.name, since.position, limit)
            except LookupError:
                raise cannot_calculate() from None
            if page.has_more:
                # [core-5.2-intermediate]
                new_state = State(epoch, *page.position).encode()
            else:
                new_state = State(epoch, snap.type_modseq(data_type.name)).encode()
        result: dict[str, Any] = {
            "accountId": args.accountId,
            "oldState": args.sinceState,
            "newState": new_state,
            "hasMoreChanges": page.has_more,
            "created": page.created,
            "updated": page.updated,
            "destroyed": page.destroyed,
        }
        if page.updated_properties is not None:
            result["updatedProperties"] = page.updated_properties
        return result

    return changes
