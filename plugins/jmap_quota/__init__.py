"""Quotas (RFC 9425): ``urn:ietf:params:jmap:quota``.

One storage quota per account, when the operator sets one
(``jmapcore account quota NAME --octets N``): resourceType ``octets``,
scope ``account``, ``used`` = the total size of the account's Emails, kept
incrementally in the same commit as the Emails (through the mail plugin's
size hook, :mod:`jmap_mail.hooks`), and ``hardLimit`` enforced: Email/set
create, Email/import and Email/copy answer ``overQuota``
([mail-4.8-errors]), LMTP delivery a 452/552 reply.

Quota/get, /changes, /query and /queryChanges are the standard methods of a
:class:`~jmapcore.datatype.DataType` ([quota-4-methods]); there is no
/set.  A change of ``used`` alone is logged as such, so Quota/changes says
``updatedProperties: ["used"]``.
"""

from __future__ import annotations

from typing import Any

from jmapcore.context import CallContext
from jmapcore.datatype import DataType, Filter, Property, property_sort
from jmapcore.registry import Method, Plugin
from jmapcore.standard.args import GetArgs
from jmapcore.standard.get import make_get

from .usage import QUOTA, QUOTA_CAP, install_hook

MAIL = "urn:ietf:params:jmap:mail"
#: Data type name -> the capability a client must use to see it.
TYPE_CAPABILITIES = {"Email": MAIL}

Quota = DataType(
    name=QUOTA,
    capability=QUOTA_CAP,
    methods=("get", "changes", "query", "queryChanges"),
    # [quota-4.1-props]
    properties={
        "resourceType": Property(str, server_set=True),
        "used": Property(int, server_set=True),
        "hardLimit": Property(int, server_set=True),
        "warnLimit": Property(int | None, server_set=True, default=None),
        "softLimit": Property(int | None, server_set=True, default=None),
        "scope": Property(str, server_set=True),
        "name": Property(str, server_set=True),
        "types": Property(list[str], server_set=True),
        "description": Property(str | None, server_set=True, default=None),
    },
    # [quota-4-methods] name contains, scope and resourceType exact, type in types.
    filters={
        "name": Filter(str, lambda record, value: value.casefold() in record.get("name", "").casefold()),
        "scope": Filter(str, lambda record, value: record.get("scope") == value),
        "resourceType": Filter(str, lambda record, value: record.get("resourceType") == value),
        "type": Filter(str, lambda record, value: value in record.get("types", ())),
    },
    sorts={"name": property_sort("name", text=True), "used": property_sort("used")},
    id_prefix="Q",
)

_standard_get = make_get(Quota)


def quota_get(ctx: CallContext, args: GetArgs) -> dict[str, Any]:
    """[quota-4.1-typesFiltered] ``types`` keeps only the data types whose
    capability the request uses; a Quota left with none is not returned."""
    result = _standard_get(ctx, args)
    using = ctx.request.using
    kept: list[dict[str, Any]] = []
    for record in result["list"]:
        types = record.get("types")
        if types is None:
            kept.append(record)
            continue
        visible = [t for t in types if TYPE_CAPABILITIES.get(t) in using]
        if not visible:
            if args.ids is not None:
                result["notFound"].append(record["id"])
            continue
        kept.append({**record, "types": visible} if visible != types else record)
    result["list"] = kept
    return result


install_hook()

plugin = Plugin(
    capability=QUOTA_CAP,
    session_capability={},  # [quota-2-capability]
    account_capability={},
    types=[Quota],
    methods=[Method("Quota/get", quota_get, GetArgs, QUOTA_CAP)],
)
