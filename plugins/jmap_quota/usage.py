"""The account's storage usage and its limit, as the mail write path sees them.

Two records per account: ``QuotaUsage/octets`` (internal, never served:
the total size of the account's Emails, always kept, so that a quota set
later starts right) and, when the operator set a limit, the served
``Quota/storage``, whose ``used`` is updated in the same batch.
"""

from __future__ import annotations

from jmapcore.errors import SetError
from jmapcore.storage import Put, Record, Snapshot, WriteBatch

QUOTA_CAP = "urn:ietf:params:jmap:quota"
QUOTA = "Quota"
USAGE = "QuotaUsage"
USAGE_ID = "octets"
QUOTA_ID = "storage"
EMAIL = "Email"


def total_size(snap: Snapshot) -> int:
    """Every Email's size, summed: read once per account (or per epoch of
    a rebuilt Maildir index), then kept incrementally."""
    ids = list(snap.ids(EMAIL))
    total = 0
    for start in range(0, len(ids), 512):
        total += sum(r.get("size", 0) for r in snap.get_many(EMAIL, ids[start : start + 512]) if r is not None)
    return total


def current_usage(snap: Snapshot) -> tuple[int, Record | None]:
    """(octets used as the snapshot stands, the stored usage record if valid)."""
    usage = snap.get(USAGE, USAGE_ID)
    if usage is not None and usage.get("epoch") == snap.epoch():
        return usage["used"], usage
    return total_size(snap), usage


def stage_usage(snap: Snapshot, batch: WriteBatch, delta: int) -> None:
    """Put the usage (and the Quota's ``used``) after a change of ``delta`` octets."""
    batch.expect.setdefault(USAGE, snap.type_modseq(USAGE))
    batch.expect.setdefault(QUOTA, snap.type_modseq(QUOTA))
    used, stored = current_usage(snap)
    used = max(0, used + delta)
    batch.puts = [p for p in batch.puts if p.type_name not in (USAGE, QUOTA)]
    record = {"id": USAGE_ID, "used": used, "epoch": snap.epoch()}
    batch.puts.append(Put(USAGE, record, created=snap.get(USAGE, USAGE_ID) is None))
    quota = snap.get(QUOTA, QUOTA_ID)
    if quota is not None and quota.get("used") != used:
        batch.puts.append(Put(QUOTA, {**quota, "used": used}, created=False, changed=("used",)))



def admit(snap: Snapshot, pending: int, size: int) -> SetError | None:
    """Refuse a message of ``size`` octets that would take the account
    over its hard limit.  ``permanent`` (not sent to clients) tells LMTP
    whether it could ever fit (5.2.2) or not now (4.2.2)."""
    quota = snap.get(QUOTA, QUOTA_ID)
    if quota is None:
        return None
    limit = quota["hardLimit"]
    if quota["used"] + pending + size <= limit:
        return None
    error = SetError("overQuota", f"The account's storage quota ({limit} octets) would be exceeded.")
    error.permanent = size > limit  # type: ignore[attr-defined]
    return error


def install_hook() -> None:
    from jmap_mail.hooks import SizeHook, register_size_hook

    register_size_hook(SizeHook(QUOTA_CAP, admit, stage_usage))
