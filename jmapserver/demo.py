"""``jmapcore demo``: a ready-to-try server with a ``demo`` account."""

from __future__ import annotations

from jmapcore.api import Core
from jmapcore.storage import AccountInfo

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"


def seed_demo(core: Core, account: AccountInfo) -> None:
    """Fill a fresh demo account with sample data.

    Called once, right after the demo account is created.  Sample mail
    arrives with the mail plugin; until then the account starts empty.
    """
