"""What a client does with a /queryChanges response, for plugin tests that
check a type's queryChanges against a fresh /query ([core-5.6-spliceModel])."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def splice(old: Sequence[str], removed: Sequence[str], added: Sequence[dict[str, Any]], total: int) -> list[str]:
    """Remove ``removed`` from the cached ids, insert ``added`` at their
    indexes in ascending order, and cut to ``total``: the new results."""
    gone = set(removed)
    result = [record_id for record_id in old if record_id not in gone]
    for item in added:
        result.insert(item["index"], item["id"])
    return result[:total]
