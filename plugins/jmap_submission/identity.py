"""Identity (RFC 8621 §6): who an account may send as.

Every address the account owns (``AccountInfo.addresses``) has an Identity
made by the server, with ``mayDelete: false``: at account creation
(``on_account_created``) and, for addresses added later, on demand at the
next Identity/get, /changes or /set ([mail-6-props]); when the account loses
the address its Identity becomes deletable (and sending from it fails).  A client may create
more (other names, signatures, replyTo/bcc) for any email the account may
send from: one of its addresses, or any address of a domain it owns as
``*@domain``; other emails fail with ``forbiddenFrom`` [mail-6.3-forbiddenFrom].
"""

from __future__ import annotations

import time
from typing import Any, NotRequired, TypedDict

from jmapcore.api import Core
from jmapcore.context import CallContext, new_id
from jmapcore.datatype import DataType, Property
from jmapcore.errors import SetError
from jmapcore.standard import make_changes, make_get
from jmapcore.standard.args import ChangesArgs, GetArgs, SetArgs
from jmapcore.standard.set import SetOutcome, run_set
from jmapcore.storage import (
    AccountInfo,
    Put,
    Record,
    Snapshot,
    StateConflict,
    UnknownAccount,
    WriteBatch,
)

from .constants import IDENTITY, SUBMISSION
from .message import normalize


class EmailAddress(TypedDict):
    name: NotRequired[str | None]
    email: str


def may_send_from(account: AccountInfo, email: str) -> bool:
    """Whether the account may send as ``email``: an address it owns, or one
    of a domain it owns as ``*@domain``; ``*@domain`` itself only if owned."""
    wanted = normalize(email)
    local, _, domain = wanted.rpartition("@")
    if not local or not domain:
        return False
    for own in account.addresses:
        own = normalize(own)
        if own == wanted or (own.startswith("*@") and own[2:] == domain):
            return True
    return False


def identity_allows(identity: Record, address: str) -> bool:
    """Whether an Identity covers ``address`` (its email, or its domain for ``*@domain``)."""
    email = normalize(identity.get("email", ""))
    wanted = normalize(address)
    if email.startswith("*@"):
        return wanted.rpartition("@")[2] == email[2:]
    return email == wanted


def _check_email(ctx: CallContext, record: Record, old: Record | None) -> SetError | None:
    if old is None:
        record["mayDelete"] = True
    return None


def _can_destroy(ctx: CallContext, record: Record) -> SetError | None:
    """[mail-6-mayDelete]"""
    if not record.get("mayDelete", True):
        return SetError("forbidden", "This identity is the account's own address and cannot be deleted.")
    return None


IDENTITY_TYPE = DataType(
    name=IDENTITY,
    capability=SUBMISSION,
    methods=("get", "changes", "set"),  # [mail-6-methods] no query
    properties={
        "name": Property(str, default=""),
        "email": Property(str, immutable=True),
        "replyTo": Property(list[EmailAddress] | None, default=None),
        "bcc": Property(list[EmailAddress] | None, default=None),
        "textSignature": Property(str, default=""),
        "htmlSignature": Property(str, default=""),
        "mayDelete": Property(bool, server_set=True),
    },
    id_prefix="I",
    compute=_check_email,
    can_destroy=_can_destroy,
)


def ensure_identities(core: Core, account: AccountInfo) -> None:
    """Keep the server-made Identities in step with the account's addresses
    (a write conditional on the type, so two workers make one each): an
    address without one gets one; one whose address the account no longer
    owns becomes deletable (``mayDelete: true``), and cannot send."""
    owned = {normalize(a) for a in account.addresses}
    for _ in range(8):
        try:
            with core.backend.snapshot(account.account_id) as snap:
                modseq = snap.type_modseq(IDENTITY)
                records = [r for r in snap.get_many(IDENTITY, list(snap.ids(IDENTITY))) if r is not None]
        except UnknownAccount:
            return
        fixed = [r for r in records if not r.get("mayDelete", True)]
        have = {normalize(r["email"]) for r in fixed}
        missing = [a for a in account.addresses if normalize(a) not in have]
        orphaned = [r for r in fixed if normalize(r["email"]) not in owned]
        if not missing and not orphaned:
            return
        batch = WriteBatch(account.account_id, expect={IDENTITY: modseq})
        for address in missing:
            record = {
                **IDENTITY_TYPE.default_record(),
                "id": new_id(IDENTITY_TYPE.id_prefix),
                "name": account.name if "@" not in account.name else "",
                "email": address,
                "mayDelete": False,
            }
            batch.puts.append(Put(IDENTITY, record, created=True))
        for record in orphaned:
            batch.puts.append(Put(IDENTITY, dict(record, mayDelete=True), created=False, changed=("mayDelete",)))
        try:
            core.backend.commit(batch)
            return
        except StateConflict:
            time.sleep(0.005)


def on_account_created(core: Core, account: AccountInfo) -> None:
    ensure_identities(core, account)


def _ensure(ctx: CallContext, account_id: str) -> AccountInfo:
    account = ctx.account(account_id, SUBMISSION)
    ensure_identities(ctx.core, account)
    return account


_standard_get = make_get(IDENTITY_TYPE)
_standard_changes = make_changes(IDENTITY_TYPE)


def identity_get(ctx: CallContext, args: GetArgs) -> dict[str, Any]:
    """[mail-6-methods] the standard /get, after adding the Identities of
    addresses the account gained."""
    _ensure(ctx, args.accountId)
    return _standard_get(ctx, args)


def identity_changes(ctx: CallContext, args: ChangesArgs) -> dict[str, Any]:
    _ensure(ctx, args.accountId)
    return _standard_changes(ctx, args)


def identity_set(ctx: CallContext, args: SetArgs) -> dict[str, Any]:
    """[mail-6.3-forbiddenFrom] the standard /set; a create whose email the
    account may not send from fails."""
    account = _ensure(ctx, args.accountId)

    def check(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, args: Any) -> None:
        for creation_id, record_id in list(outcome.created_ids.items()):
            record = next(p.record for p in outcome.batch.puts if p.record["id"] == record_id)
            if not may_send_from(account, record["email"]):
                fail_create(
                    outcome,
                    creation_id,
                    SetError("forbiddenFrom", f"This account may not send from {record['email']}."),
                )

    return run_set(ctx, IDENTITY_TYPE, args, extend=check)


def fail_create(outcome: SetOutcome, creation_id: str, error: SetError) -> None:
    """Turn a planned create into a SetError (after the standard checks)."""
    record_id = outcome.created_ids.pop(creation_id)
    outcome.created.pop(creation_id, None)
    outcome.batch.puts = [p for p in outcome.batch.puts if p.record.get("id") != record_id]
    outcome.not_created[creation_id] = error
