"""``jmapcore lmtp``: inbound mail from an MTA over LMTP (RFC 2033).

A long-running process (beside ``jmapcore serve``, sharing its data
directory) built on aiosmtpd's LMTP server.  It answers

- each ``RCPT TO`` on its own: ``250 2.1.5`` for an address of an account
  (:func:`jmapcore.accounts.account_for_address`), ``550 5.1.1`` for an
  unknown one, ``452 4.2.2`` when the account is already at its quota;
- ``DATA`` with one reply per accepted recipient, in order (LMTP's point):
  ``250 2.0.0`` delivered, ``452 4.2.2`` over quota (temporary: the user may
  free space), ``552 5.2.2`` larger than the whole quota, ``451 4.3.0`` on an
  unexpected failure; a message over ``--max-size`` gets ``552 5.3.4`` for
  every recipient.

Delivery goes through the mail plugin's own write path
(:func:`jmap_mail.delivery.deliver`: threads, counts, search, the
``EmailDelivery`` push state; on Maildir the file is written into the Inbox
folder) with ``Return-Path`` and ``Received`` prepended.  Malformed messages
are delivered as they are.  After a delivery, the account's vacation
response (if the plugin is installed and the response enabled) may queue an
auto-reply.

Store calls run in one worker thread: the event loop keeps taking
connections while a commit is in flight, and commits from this process do
not race each other.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiosmtpd.lmtp import LMTP

from jmapcore.accounts import account_for_address, normalize_address
from jmapcore.api import Core
from jmapcore.context import new_id
from jmapcore.storage import AccountInfo, UnknownAccount

log = logging.getLogger("jmapserver.lmtp")

DEFAULT_LISTEN = "127.0.0.1:2424"
DEFAULT_MAX_SIZE = 50_000_000
VACATION = "urn:ietf:params:jmap:vacationresponse"


def find_recipient(core: Core, address: str, *, by_name: bool = True) -> AccountInfo | None:
    """The account mail to ``address`` goes to: one listing the address;
    failing that (``by_name``), the account whose name is the address's
    local part (``alice@anything`` for account ``alice``: handy when the MTA
    already decided the domain is ours).  A ``+detail`` subaddress
    (``alice+lists@example.com``, RFC 5233) reaches the same account.  An
    exact local part wins; otherwise it compares case-insensitively
    (``Alice@example.com``), as RFC 5321 §2.4 asks of receiving hosts."""
    if "@" not in address:
        return None
    local, _, domain = normalize_address(address).rpartition("@")
    candidates = [local]
    if "+" in local[1:]:  # subaddress: alice+lists@example.com
        candidates.append(local.split("+", 1)[0])
    for wanted in candidates:
        account = account_for_address(core, f"{wanted}@{domain}")
        if account is not None:
            return account
    folded = {f"{wanted}@{domain}".lower() for wanted in candidates}
    for account in core.backend.directory.list_accounts():
        if any(own.lower() in folded for own in account.addresses):
            return account
    if not by_name:
        return None
    for wanted in dict.fromkeys([*candidates, *(c.lower() for c in candidates)]):
        principal = core.backend.directory.get_principal(wanted)
        if principal is not None and principal.account_ids:
            return core.backend.directory.get_account(principal.account_ids[0])
    return None


def trace_headers(mail_from: str, helo: str | None, peer: Any, hostname: str) -> bytes:
    """Return-Path and Received, as the final delivery agent adds them (RFC 5321 §4.4)."""
    peer_ip = peer[0] if isinstance(peer, tuple) and peer else "unknown"
    stamp = format_datetime(datetime.now(UTC))
    received = (
        f"Received: from {helo or 'unknown'} ([{peer_ip}])\r\n"
        f"\tby {hostname} (jmapcore) with LMTP id {new_id('L')[1:]};\r\n\t{stamp}\r\n"
    )
    return f"Return-Path: <{mail_from}>\r\n{received}".encode("utf-8", "surrogateescape")


@dataclass(slots=True)
class _Outcome:
    status: str
    email_id: str | None = None


@dataclass(slots=True)
class DeliveryHandler:
    """aiosmtpd's handler: recipients checked and messages delivered."""

    core: Core
    hostname: str
    by_name: bool = True
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "lmtp-store"))
    #: (account_id, mail_from, raw, recipient) after each delivery: the vacation response.
    after_delivery: Callable[[str, str, bytes, str], None] | None = None

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        try:
            account_id, status = await self._run(self._check_recipient, address)
        except Exception:  # noqa: BLE001 - one recipient's failure must not end the session
            log.exception("checking recipient %s", address)
            return "451 4.3.0 Temporary failure, try again later"
        if account_id is None:
            return status
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        accounts = getattr(envelope, "jmap_accounts", None)
        if accounts is None:
            accounts = envelope.jmap_accounts = []
        accounts.append(account_id)
        return status

    def _check_recipient(self, address: str) -> tuple[str | None, str]:
        from jmap_mail.delivery import accepts

        account = find_recipient(self.core, address, by_name=self.by_name)
        if account is None:
            return None, f"550 5.1.1 <{address}>: Recipient address rejected: no such user here"
        refused = accepts(self.core, account.account_id, 1)
        if refused is not None:
            return None, f"452 4.2.2 <{address}>: Mailbox full (over quota)"
        return account.account_id, "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        accounts: list[str] = getattr(envelope, "jmap_accounts", [])
        # aiosmtpd keeps the null reverse path of MAIL FROM:<> as "<>".
        mail_from = "" if envelope.mail_from in (None, "<>") else envelope.mail_from
        raw = trace_headers(mail_from, session.host_name, session.peer, self.hostname)
        raw += bytes(envelope.original_content or b"")
        try:
            recipients = dict(zip(accounts, envelope.rcpt_tos, strict=False))
            outcomes = await self._run(self._deliver_all, recipients, mail_from, raw)
        except Exception:  # noqa: BLE001
            log.exception("delivery failed")
            outcomes = {a: _Outcome("451 4.3.0 Temporary failure, try again later") for a in accounts}
        # One reply per accepted recipient, in RCPT order (RFC 2033 §4.2).
        return "\r\n".join(outcomes[a].status for a in accounts)

    def _deliver_all(self, recipients: dict[str, str], mail_from: str, raw: bytes) -> dict[str, _Outcome]:
        """One copy per account (``recipients``: account id -> the address it was reached at)."""
        outcomes: dict[str, _Outcome] = {}
        for account_id, address in recipients.items():
            outcomes[account_id] = outcome = self._deliver_one(account_id, raw)
            if outcome.email_id is not None and self.after_delivery is not None:
                try:
                    self.after_delivery(account_id, mail_from, raw, address)
                except Exception:  # noqa: BLE001 - the message is delivered whatever happens here
                    log.exception("after delivery to %s", account_id)
        return outcomes

    def _deliver_one(self, account_id: str, raw: bytes) -> _Outcome:
        from jmap_mail.delivery import DeliveryRefused, NoMailbox, deliver

        try:
            delivered = deliver(self.core, account_id, raw)
        except DeliveryRefused as ex:
            if getattr(ex.error, "permanent", False):
                return _Outcome("552 5.2.2 Message is larger than the mailbox quota")
            if ex.error.kind == "overQuota":
                return _Outcome("452 4.2.2 Mailbox full (over quota)")
            return _Outcome(f"550 5.7.1 Refused: {ex}")
        except UnknownAccount:
            return _Outcome("550 5.1.1 No such user (the account is gone)")
        except NoMailbox:
            return _Outcome("450 4.2.0 The account has no Inbox")
        except Exception:  # noqa: BLE001 - report, keep serving
            log.exception("delivering to %s", account_id)
            return _Outcome("451 4.3.0 Temporary failure, try again later")
        log.info("delivered %s to %s (%d octets)", delivered.email_id, account_id, delivered.size)
        return _Outcome(f"250 2.0.0 Delivered as {delivered.email_id}", delivered.email_id)


class LmtpServer(LMTP):
    """aiosmtpd's LMTP, with a reply per recipient for data refused while
    it was read (too large, a line too long): aiosmtpd sends one."""

    #: Lenient: long lines (malformed mail) are delivered, not refused.
    line_length_limit = 1 << 20

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._data_replies = 0

    async def smtp_DATA(self, arg: str) -> None:
        self._data_replies = len(self.envelope.rcpt_tos) if self.envelope is not None else 0
        try:
            await super().smtp_DATA(arg)
        finally:
            self._data_replies = 0

    async def push(self, status: Any) -> None:
        text = status.decode("ascii", "replace") if isinstance(status, bytes) else str(status)
        if self._data_replies > 1 and text.startswith(("552 Error: Too much", "500 Line too long")):
            reply = "552 5.3.4 Message too big for system" if text.startswith("552") else text
            self._data_replies, count = 0, self._data_replies
            for _ in range(count):
                await super().push(reply)
            return
        if self._data_replies == 1 and text.startswith("552 Error: Too much"):
            status = "552 5.3.4 Message too big for system"
        await super().push(status)


def vacation_hook(core: Core) -> Callable[[str, str, bytes, str], None] | None:
    """The vacation plugin's auto-reply step, if it is installed."""
    if VACATION not in core.registry.plugins:
        return None
    from jmap_vacation.autoreply import after_delivery

    return lambda account_id, mail_from, raw, recipient: after_delivery(core, account_id, mail_from, raw, recipient)


async def serve_lmtp(
    core: Core,
    host: str,
    port: int,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    hostname: str | None = None,
    by_name: bool = True,
    ready: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT when not given)."""
    hostname = hostname or socket.getfqdn()
    handler = DeliveryHandler(core, hostname, by_name=by_name, after_delivery=vacation_hook(core))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: LmtpServer(
            handler, data_size_limit=max_size, enable_SMTPUTF8=True, hostname=hostname, ident="jmapcore LMTP"
        ),
        host,
        port,
        reuse_address=True,
    )
    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready()
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        handler.executor.shutdown(wait=True)
