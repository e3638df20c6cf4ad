"""Helpers for the mail tests: messages, imports, role lookups, and a
brute-force recount of mailbox counts to check the incremental ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import msgspec

from jmapcore.testing.client import Client
from jmapcore.wire import CORE

MAIL = "urn:ietf:params:jmap:mail"
USING = [CORE, MAIL]


def message(
    subject: str = "Hello",
    body: str = "Hi there",
    *,
    sender: str = "Alice <alice@example.com>",
    to: str = "Bob <bob@example.com>",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    date: datetime | None = None,
    attachment: tuple[str, bytes, str] | None = None,
    html: str | None = None,
) -> bytes:
    """A well-formed RFC 5322 message as bytes."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    msg["Message-ID"] = message_id or make_msgid(domain="example.com")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    if attachment is not None:
        name, data, mime_type = attachment
        main, sub = mime_type.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes()


def upload(client: Client, raw: bytes, account_id: str | None = None) -> str:
    result = client.core.upload(client.principal, account_id or client.account_id, raw, "message/rfc822")
    assert result.status == 201, result.body
    return msgspec.json.decode(result.body)["blobId"]


def mailboxes(client: Client, account_id: str | None = None) -> dict[str, dict[str, Any]]:
    """role (or name when no role) -> Mailbox object."""
    listed = client.call("Mailbox/get", {"accountId": account_id or client.account_id}, using=USING)["list"]
    return {m["role"] or m["name"]: m for m in listed}


def import_messages(
    client: Client,
    raws: list[bytes],
    mailbox: str = "inbox",
    keywords: dict[str, bool] | None = None,
    received: list[datetime] | None = None,
) -> list[dict[str, Any]]:
    """Upload and Email/import each message; return the created objects in order."""
    boxes = mailboxes(client)
    emails = {}
    for index, raw in enumerate(raws):
        item: dict[str, Any] = {"blobId": upload(client, raw), "mailboxIds": {boxes[mailbox]["id"]: True}}
        if keywords:
            item["keywords"] = keywords
        if received:
            item["receivedAt"] = received[index].strftime("%Y-%m-%dT%H:%M:%SZ")
        emails[f"m{index}"] = item
    result = client.call("Email/import", {"accountId": client.account_id, "emails": emails}, using=USING)
    assert not result["notCreated"], result["notCreated"]
    return [result["created"][f"m{index}"] for index in range(len(raws))]


def recount(client: Client) -> dict[str, dict[str, int]]:
    """[mail-2-counts] counts computed from scratch, for comparison."""
    with client.core.backend.snapshot(client.account_id) as snap:
        emails = [r for r in snap.get_many("Email", list(snap.ids("Email"))) if r]
        boxes = list(snap.ids("Mailbox"))
    unread = lambda r: "$seen" not in r["keywords"] and "$draft" not in r["keywords"]  # noqa: E731
    threads: dict[str, list[dict[str, Any]]] = {}
    for record in emails:
        threads.setdefault(record["threadId"], []).append(record)
    counts = {}
    for box in boxes:
        inside = [r for r in emails if box in r["mailboxIds"]]
        thread_ids = {r["threadId"] for r in inside}
        counts[box] = {
            "totalEmails": len(inside),
            "unreadEmails": sum(unread(r) for r in inside),
            "totalThreads": len(thread_ids),
            "unreadThreads": sum(any(unread(r) for r in threads[t]) for t in thread_ids),
        }
    return counts


def stored_counts(client: Client) -> dict[str, dict[str, int]]:
    listed = client.call("Mailbox/get", {"accountId": client.account_id}, using=USING)["list"]
    names = ("totalEmails", "unreadEmails", "totalThreads", "unreadThreads")
    return {m["id"]: {n: m[n] for n in names} for m in listed}


def days(n: int) -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n)
