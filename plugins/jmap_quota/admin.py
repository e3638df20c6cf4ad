"""``jmapcore account quota NAME --octets N|--none``."""

from __future__ import annotations

from jmapcore.api import Core
from jmapcore.storage import Destroy, Put, StateConflict, WriteBatch

from .usage import EMAIL, QUOTA, QUOTA_ID, USAGE, USAGE_ID, current_usage

MAX_ATTEMPTS = 8


def quota_record(used: int, hard_limit: int) -> dict:
    """[quota-4.1-props] [quota-3-enums]"""
    return {
        "id": QUOTA_ID,
        "resourceType": "octets",
        "used": used,
        "hardLimit": hard_limit,
        "warnLimit": None,
        "softLimit": None,
        "scope": "account",
        "name": "Mail storage",
        "types": [EMAIL],
        "description": "The total size of the messages stored in this account.",
    }


def set_quota(core: Core, account_id: str, octets: int | None) -> None:
    """Set (or with None, remove) the account's hard limit; used is
    computed from the Emails if no valid usage record exists yet."""
    for attempt in range(MAX_ATTEMPTS):
        with core.backend.snapshot(account_id) as snap:
            batch = WriteBatch(account_id)
            for type_name in (EMAIL, USAGE, QUOTA):
                batch.expect[type_name] = snap.type_modseq(type_name)
            used, usage = current_usage(snap)
            if usage is None or usage.get("used") != used or usage.get("epoch") != snap.epoch():
                record = {"id": USAGE_ID, "used": used, "epoch": snap.epoch()}
                batch.puts.append(Put(USAGE, record, created=snap.get(USAGE, USAGE_ID) is None))
            stored = snap.get(QUOTA, QUOTA_ID)
            if octets is None:
                if stored is not None:
                    batch.destroys.append(Destroy(QUOTA, QUOTA_ID))
            else:
                record = {**(stored or {}), **quota_record(used, octets)}
                if record != stored:
                    batch.puts.append(Put(QUOTA, record, created=stored is None))
        if batch.is_empty():
            return
        try:
            core.backend.commit(batch)
            return
        except StateConflict:
            if attempt == MAX_ATTEMPTS - 1:
                raise


def quota_line(core: Core, account_id: str) -> str:
    with core.backend.snapshot(account_id) as snap:
        used, _ = current_usage(snap)
        quota = snap.get(QUOTA, QUOTA_ID)
    limit = "none" if quota is None else f"{quota['hardLimit']} octets"
    return f"used {used} octets, limit {limit}"
