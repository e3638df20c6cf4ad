"""ParticipantIdentity (draft-ietf-jmap-calendars-27 §3): the calendar
addresses the user schedules as.

An account starts with none (the server does not know which addresses a
user receives mail for); the first one created becomes the default, and
``onSuccessSetIsDefault`` moves it [cal-3.3-set].  At most one is the
default [cal-3-props].  Events whose ``organizerCalendarAddress`` is one of
these addresses (after RFC 3986 §6.2.2 normalisation [cal-3-matching]) are
``isOrigin``.
"""

from __future__ import annotations

from typing import Any

from jmapcore.collection import set_default
from jmapcore.context import CallContext
from jmapcore.datatype import DataType, Property
from jmapcore.errors import SetError
from jmapcore.standard.args import SetArgs
from jmapcore.standard.set import SetOutcome, run_set
from jmapcore.storage import Record, Snapshot

from .constants import CALENDARS, IDENTITY
from .jscalendar import _VENDOR


def _compute(ctx: CallContext, record: Record, old: Record | None) -> None:
    if old is None:
        record["isDefault"] = False


def _validate(ctx: CallContext, record: Record, old: Record | None) -> SetError | None:
    address = record.get("calendarAddress")
    if not isinstance(address, str) or not _VENDOR.match(address) or " " in address:
        return SetError.invalid_properties(["calendarAddress"], "A calendarAddress is a URI (mailto:...).")
    return None


ParticipantIdentity = DataType(
    name=IDENTITY,
    capability=CALENDARS,
    properties={
        "name": Property(str, default=""),
        "calendarAddress": Property(str),
        "isDefault": Property(bool, server_set=True),
    },
    methods=(),
    id_prefix="P",
    validate=_validate,
    compute=_compute,
)


class IdentitySetArgs(SetArgs, kw_only=True):
    onSuccessSetIsDefault: str | None = None


def _first_is_default(ctx: CallContext, snap: Snapshot, outcome: SetOutcome) -> None:
    """With no default identity left, the first one becomes it."""
    pending = {put.record["id"]: put for put in outcome.batch.puts if put.type_name == IDENTITY}
    records = {r["id"]: r for r in snap.get_many(IDENTITY, list(snap.ids(IDENTITY))) if r is not None}
    records.update({record_id: put.record for record_id, put in pending.items()})
    for record_id in outcome.destroyed:
        records.pop(record_id, None)
    if not records or any(r.get("isDefault") for r in records.values()):
        return
    first = min(records)
    target = outcome.created_ids and next(iter(outcome.created_ids.values())) or first
    set_default(ctx, snap, outcome, target, IDENTITY)


def identity_set(ctx: CallContext, args: IdentitySetArgs) -> dict[str, Any]:
    def extend(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, set_args: Any) -> None:
        set_default(ctx, snap, outcome, args.onSuccessSetIsDefault, IDENTITY)
        _first_is_default(ctx, snap, outcome)

    return run_set(ctx, ParticipantIdentity, args, extend=extend)
