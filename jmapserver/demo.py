"""``jmapcore demo``: a ready-to-try server with a ``demo`` account and sample mail."""

from __future__ import annotations

from datetime import UTC, datetime

from jmapcore.api import Core
from jmapcore.auth import Principal
from jmapcore.storage import AccountInfo

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"
#: The demo account's own address (the samples' owner): it receives and sends as it.
DEMO_ADDRESS = "demo@example.com"
#: Enough for a few screens of inbox with threads, few enough to start in seconds.
DEMO_MESSAGES = 300


def seed_demo(core: Core, account: AccountInfo) -> int:
    """Fill the demo account's empty Inbox with generated sample mail.

    Runs at every ``jmapcore demo`` start but imports only while the Inbox
    is empty, so a user's changes survive a restart.  The messages are
    generated (``jmap_mail.samples``), dated up to now so they look fresh,
    and go through Email/import like any import.  Returns how many were
    imported (0 without the mail plugin).
    """
    from .importer import MAIL, Api, Importer, Summary, ensure_mailboxes
    from .mailsources import Item

    if MAIL not in core.registry.plugins:
        return 0
    from jmap_mail.samples import generate

    api = Api(core, Principal(account.owners[0], (account.account_id,)), account.account_id)
    boxes = ensure_mailboxes(core, api)
    inbox = boxes.target("inbox")
    if api.call("Mailbox/get", {"ids": [inbox], "properties": ["totalEmails"]})["list"][0]["totalEmails"]:
        return 0
    summary = Summary(source="samples", account=account.name)
    importer = Importer(api, boxes, inbox, summary, check=False)
    for number, (raw, meta) in enumerate(generate(DEMO_MESSAGES, seed=7, end=datetime.now(UTC))):
        item = Item(f"sample {number}", raw, keywords=meta["keywords"], received_at=meta["receivedAt"])
        importer.add(item, boxes.target(meta["mailbox"]))
    importer.flush()
    if summary.failures:
        label, reason = summary.failures[0]
        raise RuntimeError(f"demo mail: {summary.failed} sample messages failed ({label}: {reason})")
    return summary.imported
