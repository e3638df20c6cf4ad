"""Where push subscriptions live, and the conditional writes that change them.

A subscription belongs to a principal and the credential it authenticated
with [core-7.2-credentials], not to an account, but storage is per account.
So each is a record of the type ``PushSubscription`` in the principal's
*first* (personal) account, carrying ``principal`` and ``credential``.  The
type is not a registered data type: it has no standard methods (only
``PushSubscription/get`` and ``/set``, which filter on principal and
credential, so another credential of the same user sees nothing), and it
is not a push type, so writing it never shows in a StateChange.  The
backend keeps it in step with the account's change log like any record, and
every worker process sees it: delivery state (pending push, its lease,
attempts, the push position reached) is kept in the same record and changed
only by writes conditional on the type's modseq, so of several workers
exactly one wins each claim.

Besides the client's properties a record holds: ``code`` (the verification
code sent), ``verified``, ``position`` (the push position already handed to
a delivery), ``pending`` (the one push being delivered or retried: its
body, attempts, next try, lease), ``slow`` (seconds between pushes, raised
by 429 answers), ``lastAt``/``lastResult``, ``failures`` (consecutive),
``sent``.

Erasure [core-7.2-erase]: a destroy deletes the record in one commit; the
change log keeps only ids, never values, so no copy of ``url`` or ``keys``
stays in the log.  (An LMDB page that held the record is freed and reused,
not zeroed, as with any deleted value.)  Per-user creation counts for the
rate limit live in one ``PushSubscriptionQuota`` record of the same account.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from jmapcore.auth import Principal, password_credential
from jmapcore.storage import Destroy, Put, Record, StateConflict, UnknownAccount, WriteBatch

if TYPE_CHECKING:
    from jmapcore.api import Core

log = logging.getLogger("jmap_basics.push")

TYPE = "PushSubscription"
QUOTA_TYPE = "PushSubscriptionQuota"
QUOTA_ID = "quota"
WRITE_ATTEMPTS = 8

#: What /get may return (url and keys never) [core-7.2.1-get].
PUBLIC_PROPERTIES = ("id", "deviceClientId", "verificationCode", "expires", "types")
SECRET_PROPERTIES = ("url", "keys")


def home_account(principal_name: str, account_ids: tuple[str, ...]) -> str | None:
    """The account a principal's subscriptions are stored in."""
    return account_ids[0] if account_ids else None


def owned_by(record: Record, principal: Principal) -> bool:
    """[core-7.2-credentials] only the creating credential sees it."""
    return record.get("principal") == principal.name and record.get("credential") == principal.credential


def credential_alive(core: Core, name: str, credential: str) -> bool:
    """Is the credential a subscription was made with still valid?

    A password credential dies when the password changes, a token one when
    the token is deleted; an in-process principal (empty credential) lives
    as long as the principal does."""
    directory = core.backend.directory
    info = directory.get_principal(name)
    if info is None:
        return False
    if credential.startswith("pw:"):
        return credential == password_credential(info.password_hash)
    if credential.startswith("tok:"):
        return directory.token_principal(credential[4:]) == name
    return credential == ""


def read_all(core: Core, account_id: str) -> tuple[int, list[Record]]:
    """The type modseq and every subscription record of an account."""
    with core.backend.snapshot(account_id) as snap:
        modseq = snap.type_modseq(TYPE)
        ids = list(snap.ids(TYPE))
        records = [r for r in snap.get_many(TYPE, ids) if r is not None]
    return modseq, records


def all_subscriptions(core: Core) -> Iterator[tuple[str, Record]]:
    """(account id, record) of every subscription on the server."""
    for account in core.backend.directory.list_accounts():
        try:
            _, records = read_all(core, account.account_id)
        except UnknownAccount:
            continue
        for record in records:
            yield account.account_id, record


def update(
    core: Core,
    account_id: str,
    record_id: str,
    change: Callable[[Record], Record | None | bool],
) -> Record | None:
    """Apply ``change`` to the current record in a write conditional on the
    type's modseq, re-reading after a conflict.  ``change`` returns the new
    record, None to leave it, or False to destroy it.  Returns what was
    written (None if nothing, or the record is gone)."""
    for _ in range(WRITE_ATTEMPTS):
        try:
            with core.backend.snapshot(account_id) as snap:
                modseq = snap.type_modseq(TYPE)
                current = snap.get(TYPE, record_id)
        except UnknownAccount:
            return None
        if current is None:
            return None
        new = change(dict(current))
        if new is None:
            return None
        batch = WriteBatch(account_id, expect={TYPE: modseq})
        if new is False:
            batch.destroys.append(Destroy(TYPE, record_id))
        else:
            batch.puts.append(Put(TYPE, new, created=False))
        try:
            core.backend.commit(batch)
        except StateConflict:
            time.sleep(0.005)
            continue
        except UnknownAccount:
            return None
        return None if new is False else new
    log.warning("push subscription %s: gave up writing after %d conflicts", record_id, WRITE_ATTEMPTS)
    return None


def erase(core: Core, account_id: str, record_id: str, reason: str) -> None:
    """Destroy a subscription (url and keys with it) [core-7.2-erase]."""
    update(core, account_id, record_id, lambda record: False)
    log.info("push subscription %s erased: %s", record_id, reason)


def public_view(record: Record) -> dict[str, Any]:
    return {name: record.get(name) for name in PUBLIC_PROPERTIES}


def describe_all(core: Core) -> list[dict[str, Any]]:
    """What an operator sees of each subscription (``jmapcore push list``):
    never the url's path or the keys."""
    from datetime import UTC, datetime
    from urllib.parse import urlsplit

    def when(seconds: float | None) -> str:
        if not seconds:
            return "-"
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    rows = []
    for _, record in all_subscriptions(core):
        pending = record.get("pending") or {}
        rows.append(
            {
                "principal": record.get("principal"),
                "id": record.get("id"),
                "device": record.get("deviceClientId"),
                "host": urlsplit(record.get("url") or "").hostname or "-",
                "verified": "yes" if record.get("verified") else "no",
                "expires": record.get("expires") or "-",
                "last": (record.get("lastResult") or "-").replace(" ", ":")
                + (f" (retry {pending.get('attempts')})" if pending.get("attempts") else ""),
                "lastAt": when(record.get("lastAt")),
                "failures": record.get("failures", 0),
                "sent": record.get("sent", 0),
            }
        )
    return sorted(rows, key=lambda row: (str(row["principal"]), str(row["id"])))
