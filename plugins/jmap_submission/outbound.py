"""The outbound queue and the background job that empties it into the relay.

A message waiting to leave is an ``OutboundMessage`` record in the sending
account's store (so it survives a restart and every worker sees it), holding
the envelope, a reference to the octets to send (a blob, counted while the
record lives), when it may go (``notBefore``), the state of each recipient
and the lease of the worker sending it.  EmailSubmission/set writes it in
the same batch as the EmailSubmission (same id); other senders (vacation
auto-replies, MDNs) call :func:`enqueue`.

The server runs :func:`sender_job` in a thread of every worker process
(``Plugin.background``).  It waits for a commit (``wait_for_change``, which
works across processes) or for the next message due, then *claims* the due
messages of an account in one write conditional on the queue's modseq: a
lease (:data:`LEASE` seconds) with the worker's token.  Of several workers
exactly one wins each claim; the others find the lease.  A claimed batch is
sent over one SMTP connection (STARTTLS and AUTH when configured), one
MAIL/RCPT.../DATA per message, and each outcome is written back:

* 2xx for a recipient: done (``delivered: unknown``, the relay has it: RFC
  8621 §7 keeps ``yes`` for a DSN saying it reached the mailbox);
* 5xx: a permanent failure, ``delivered: no`` with the reply;
* 4xx, or no answer (connection refused, reset, timeout): retried, only for
  those recipients, after :func:`backoff` (doubling from ``retry_first``
  up to ``retry_max`` seconds), until the message is ``give_up_after``
  seconds old; then ``delivered: no`` with the last reply.

``smtpReply`` is the last reply, on one line, as RFC 8621 §7 asks
[mail-7-deliveryStatus].  When every recipient is done the record goes, and
its blob reference with it.  A worker that dies mid-send leaves a lease that
runs out; another worker then sends again (only then may a message go
twice).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jmapcore.context import new_id
from jmapcore.storage import Destroy, Put, Record, StateConflict, UnknownAccount, WriteBatch

from .constants import EMAIL_SUBMISSION, QUEUE
from .message import outgoing, valid_mailbox

if TYPE_CHECKING:
    from jmapcore.api import Core

log = logging.getLogger("jmap_submission.outbound")

#: How long a claimed message is a worker's alone (seconds).
LEASE = 300.0
#: Socket timeout of each SMTP step.
SMTP_TIMEOUT = 30.0
#: At most this many messages are claimed (and sent over one connection) at once.
CLAIM_MAX = 50
#: The longest the job sleeps without looking (stop requests, messages due).
IDLE_WAIT = 1.0
#: How often a pass reads every account anyway.
FULL_PASS_SECONDS = 60.0
WRITE_ATTEMPTS = 50
#: An outcome not written means a resend when the lease runs out: keep
#: trying (re-reading after each conflict) for this long.
OUTCOME_WRITE_SECONDS = 30.0


# -- settings -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """The operator's settings, from ``Core.options["submission"]``::

        {"relay": "host:port" or (host, port) or None, "starttls": bool,
         "username": str | None, "password": str | None,
         "cafile": None (CA bundle to check the relay's certificate with),
         "retry_first": 2.0, "retry_max": 600.0, "give_up_after": 86400.0,
         "max_per_hour": 10000}
    """

    host: str | None = None
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    #: PEM CA bundle for the relay's STARTTLS certificate (default: the system's).
    cafile: str | None = None
    retry_first: float = 2.0
    retry_max: float = 600.0
    give_up_after: float = 86400.0
    #: EmailSubmissions one account may create per hour (forbiddenToSend beyond).
    max_per_hour: int = 10000
    timeout: float = SMTP_TIMEOUT

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> RelaySettings:
        options = dict(options or {})
        relay = options.pop("relay", None)
        host, port = None, 25
        if isinstance(relay, str) and relay:
            host, sep, port_text = relay.rpartition(":")
            if not sep or "]" in port_text:
                host, port_text = relay, ""
            host = host.strip("[]")
            port = int(port_text) if port_text else 25
        elif isinstance(relay, list | tuple) and len(relay) == 2:
            host, port = str(relay[0]), int(relay[1])
        known = {name for name in cls.__slots__ if name not in ("host", "port")}  # type: ignore[attr-defined]
        values = {key: value for key, value in options.items() if key in known and value is not None}
        return cls(host=host, port=port, **values)

    @property
    def configured(self) -> bool:
        return self.host is not None


def settings_of(core: Core) -> RelaySettings:
    cached = getattr(core, "_submission_settings", None)
    if cached is None:
        cached = RelaySettings.from_options(core.options.get("submission"))
        core._submission_settings = cached  # type: ignore[attr-defined]
    return cached


# -- queue records ------------------------------------------------------------------


def queue_record(
    record_id: str,
    blob_id: str,
    mail_from: str,
    recipients: Sequence[str],
    *,
    not_before: float,
    submission_id: str | None = None,
    mail_parameters: dict[str, str | None] | None = None,
    now: float | None = None,
) -> Record:
    """A new ``OutboundMessage`` record (see the module docstring)."""
    return {
        "id": record_id,
        "blobId": blob_id,
        "mailFrom": mail_from,
        "mailParameters": mail_parameters or {},
        "rcpts": {address: {"state": "queued", "reply": ""} for address in dict.fromkeys(recipients)},
        "notBefore": not_before,
        "createdAt": time.time() if now is None else now,
        "attempts": 0,
        "lease": 0.0,
        "owner": "",
        "token": "",
        "submissionId": submission_id,
        "lastError": None,
    }


def enqueue(core: Core, account_id: str, mail_from: str, recipients: list[str], message: bytes) -> str:
    """Queue ``message`` for the relay, outside of any EmailSubmission, and
    return the queue id (vacation auto-replies, MDNs...).

    ``mail_from`` may be ``""`` (the null reverse-path of auto-replies,
    RFC 3834).  The octets leave without ``Bcc`` and with ``Date`` and
    ``Message-ID`` added if missing.  Raises ``ValueError`` for no or
    malformed recipients and ``UnknownAccount`` for an unknown account.
    """
    recipients = list(dict.fromkeys(recipients))
    if not recipients:
        raise ValueError("no recipients")
    bad = [r for r in recipients if not valid_mailbox(r)]
    if bad or (mail_from and not valid_mailbox(mail_from)):
        raise ValueError(f"not an address: {', '.join(bad or [mail_from])}")
    domain = (mail_from or recipients[0]).rpartition("@")[2]
    data = outgoing(message, domain=domain)
    blob = core.backend.put_blob(account_id, data, None)
    record = queue_record(new_id("Q"), blob.blob_id, mail_from, recipients, not_before=0.0)
    core.backend.commit(
        WriteBatch(account_id, puts=[Put(QUEUE, record, created=True)], blob_refs={blob.blob_id: 1})
    )
    log.info("queued %s from account %s for %d recipient(s)", record["id"], account_id, len(recipients))
    return record["id"]


def pending_messages(core: Core, account_id: str) -> list[Record]:
    """Every message still in an account's queue."""
    with core.backend.snapshot(account_id) as snap:
        return [r for r in snap.get_many(QUEUE, list(snap.ids(QUEUE))) if r is not None]


# -- SMTP ---------------------------------------------------------------------------


@dataclass(slots=True)
class Reply:
    """What the relay said about one recipient (``code`` None: no answer)."""

    code: int | None
    text: str

    @property
    def line(self) -> str:
        """[mail-7-deliveryStatus] one line: the code, then the text."""
        text = " ".join(part.strip() for part in self.text.replace("\r", "").split("\n") if part.strip())
        return f"{self.code} {text}".strip() if self.code is not None else text

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code is not None and self.code >= 500


@dataclass(slots=True)
class Outgoing:
    """One claimed message, as the sender needs it."""

    record_id: str
    mail_from: str
    parameters: dict[str, str | None]
    recipients: list[str]
    data: bytes


#: Sends messages over one connection; returns, per message, the reply for
#: each recipient tried.
Transport = Callable[[Sequence[Outgoing]], list[dict[str, Reply]]]


def _decode(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


def smtp_transport(settings: RelaySettings) -> Transport:
    """A :data:`Transport` speaking SMTP to the relay with the stdlib."""

    def send(messages: Sequence[Outgoing]) -> list[dict[str, Reply]]:
        results: list[dict[str, Reply]] = [{} for _ in messages]
        index = 0
        try:
            assert settings.host is not None
            with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
                smtp.ehlo()
                if settings.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=settings.cafile))
                    smtp.ehlo()
                if settings.username:
                    smtp.login(settings.username, settings.password or "")
                stop_at = time.monotonic() + LEASE / 2
                for index, message in enumerate(messages):  # noqa: B007 - read after an error
                    if time.monotonic() > stop_at:  # the rest would outlive the lease: retried soon
                        later = Reply(None, "not tried: the relay is slow")
                        for position in range(index, len(messages)):
                            results[position] = {r: later for r in messages[position].recipients}
                        break
                    results[index] = _send_one(smtp, message)
                index = len(messages)
        except (OSError, smtplib.SMTPException) as ex:
            reply = _failure_reply(ex)
            for position in range(index, len(messages)):
                results[position] = {r: reply for r in messages[position].recipients}
        return results

    return send


def _failure_reply(ex: Exception) -> Reply:
    """A connection-level failure as a recipient's reply: the relay's own
    reply when it gave one (AUTH refused, 421), else no code (retried)."""
    code = getattr(ex, "smtp_code", None)
    text = _decode(getattr(ex, "smtp_error", b"") or b"") or f"{type(ex).__name__}: {ex}"
    if isinstance(ex, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError):
        code = None  # the operator's settings, not the message: keep retrying
        text = f"relay: {text}"
    return Reply(code if isinstance(code, int) and code >= 400 else None, text[:500])


def _send_one(smtp: smtplib.SMTP, message: Outgoing) -> dict[str, Reply]:
    options = [f"{k}={v}" if v is not None else k for k, v in message.parameters.items()]
    if smtp.has_extn("size"):
        options.append(f"SIZE={len(message.data)}")
    if smtp.has_extn("8bitmime") and any(b > 127 for b in message.data):
        options.append("BODY=8BITMIME")
    if not (message.mail_from + "".join(message.recipients)).isascii():
        if not smtp.has_extn("smtputf8"):  # RFC 6531: such addresses need it
            return {r: Reply(553, "5.6.7 The relay does not support SMTPUTF8 addresses") for r in message.recipients}
        options.append("SMTPUTF8")
    code, text = smtp.mail(message.mail_from, options)
    if not 200 <= code < 300:
        smtp.rset()
        return {r: Reply(code, _decode(text)) for r in message.recipients}
    replies: dict[str, Reply] = {}
    accepted: list[str] = []
    for recipient in message.recipients:
        code, text = smtp.rcpt(recipient)
        replies[recipient] = Reply(code, _decode(text))
        if 200 <= code < 300:
            accepted.append(recipient)
    if not accepted:
        smtp.rset()
        return replies
    code, text = smtp.data(message.data)
    for recipient in accepted:
        replies[recipient] = Reply(code, _decode(text))
    return replies


# -- the sender ---------------------------------------------------------------------


def backoff(settings: RelaySettings, attempts: int) -> float:
    """Seconds before try ``attempts + 1``: doubling, bounded."""
    return min(settings.retry_first * 2 ** max(attempts - 1, 0), settings.retry_max)


def delivery_status(rcpts: dict[str, Any]) -> dict[str, Any]:
    """[mail-7-deliveryStatus] a submission's deliveryStatus from its queue
    record's recipients."""
    delivered = {"queued": "queued", "sent": "unknown", "failed": "no"}
    return {
        address: {"smtpReply": state.get("reply", ""), "delivered": delivered[state["state"]], "displayed": "unknown"}
        for address, state in rcpts.items()
    }


def utc_date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Sender:
    """One worker's share of the sending (see the module docstring).

    ``transport`` and ``clock`` are replaceable for tests; without an
    ``executor`` sends run inline in :meth:`run_once`.
    """

    def __init__(
        self,
        core: Core,
        *,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        executor: Executor | None = None,
    ) -> None:
        self.core = core
        self.settings = settings_of(core)
        self.transport = transport or smtp_transport(self.settings)
        self.clock = clock
        self.executor = executor
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._modseqs: dict[str, int] = {}
        self._holding: set[str] = set()
        self._next_full_pass = 0.0
        self._lock = threading.Lock()

    def run_once(self) -> float:
        """One pass over the queues; seconds until a message is due
        (``inf``: nothing until the next change)."""
        now = self.clock()
        due = math.inf
        accounts = [a.account_id for a in self.core.backend.directory.list_accounts()]
        modseqs = self.core.backend.current_modseqs(accounts)
        full = now >= self._next_full_pass
        if full:
            self._next_full_pass = now + FULL_PASS_SECONDS
        for account_id in accounts:
            moved = modseqs.get(account_id) != self._modseqs.get(account_id)
            if not (full or moved or account_id in self._holding):
                continue
            try:
                due = min(due, self._account(account_id, now))
            except UnknownAccount:
                continue
            except Exception:  # one broken account must not stop the others
                log.exception("outbound queue of account %s: pass failed", account_id)
        self._modseqs = modseqs
        return max(0.0, due - now)

    def _account(self, account_id: str, now: float) -> float:
        claimed, due = self._claim(account_id, now)
        if claimed is None:
            self._holding.discard(account_id)
            return math.inf
        self._holding.add(account_id)
        if claimed:
            if self.executor is None:
                self._send(account_id, *claimed)
                return now  # look again: retries may be due
            self.executor.submit(self._send, account_id, *claimed)
        return due

    def _claim(self, account_id: str, now: float) -> tuple[tuple[list[Record], str] | None | tuple[()], float]:
        """Lease the due messages of an account in one conditional write.

        Returns ((records, token) or () if none claimable, or None for an
        empty queue; when the next message is due)."""
        for _ in range(WRITE_ATTEMPTS):
            with self.core.backend.snapshot(account_id) as snap:
                modseq = snap.type_modseq(QUEUE)
                ids = list(snap.ids(QUEUE))
                if not ids:
                    return None, math.inf
                records = [r for r in snap.get_many(QUEUE, ids) if r is not None]
            due = math.inf
            ready: list[Record] = []
            for record in records:
                when = max(record.get("notBefore", 0.0), record.get("lease", 0.0))
                if when > now:
                    due = min(due, when)
                elif len(ready) < CLAIM_MAX:
                    ready.append(record)
                else:
                    due = now
            if not ready or not self.settings.configured:
                return (), due
            token = secrets.token_hex(8)
            batch = WriteBatch(account_id, expect={QUEUE: modseq})
            for record in ready:
                record.update(lease=now + LEASE, owner=self.owner, token=token)
                batch.puts.append(Put(QUEUE, record, created=False))
            try:
                self.core.backend.commit(batch)
            except StateConflict:
                time.sleep(0.002)
                continue
            return (ready, token), min(due, now + LEASE)
        return (), now + 0.05

    def _send(self, account_id: str, records: list[Record], token: str) -> None:
        messages: list[Outgoing] = []
        for record in records:
            with self.core.backend.snapshot(account_id) as snap:
                data = snap.read_blob(record["blobId"])
            recipients = [a for a, s in record["rcpts"].items() if s["state"] == "queued"]
            if data is None:
                log.error("outbound %s: its octets are gone; dropped", record["id"])
                self._record(account_id, record["id"], token, {r: Reply(554, "5.3.0 Message content lost") for r in recipients})
                continue
            messages.append(Outgoing(record["id"], record["mailFrom"], dict(record.get("mailParameters") or {}), recipients, data))
        try:
            results = self.transport(messages) if messages else []
        except Exception as ex:  # noqa: BLE001 - a transport bug is a failed try
            log.exception("outbound: sending failed")
            results = [{r: Reply(None, f"{type(ex).__name__}: {ex}"[:300]) for r in m.recipients} for m in messages]
        for message, replies in zip(messages, results, strict=True):
            self._record(account_id, message.record_id, token, replies)

    def _record(self, account_id: str, record_id: str, token: str, replies: dict[str, Reply]) -> None:
        """Write one message's outcome (and its submission's deliveryStatus),
        conditional on the queue and the submissions not having moved."""
        now = self.clock()
        give_up = time.monotonic() + OUTCOME_WRITE_SECONDS
        conflicts = 0
        while conflicts < WRITE_ATTEMPTS or time.monotonic() < give_up:
            try:
                with self.core.backend.snapshot(account_id) as snap:
                    expect = {QUEUE: snap.type_modseq(QUEUE), EMAIL_SUBMISSION: snap.type_modseq(EMAIL_SUBMISSION)}
                    current = snap.get(QUEUE, record_id)
                    if current is None or current.get("token") != token:
                        log.warning("outbound %s: lease lost before its outcome was written", record_id)
                        return
                    submission_id = current.get("submissionId")
                    submission = snap.get(EMAIL_SUBMISSION, submission_id) if submission_id else None
            except UnknownAccount:
                return
            record, rcpts, summary = self._outcome(dict(current), replies, now)
            batch = WriteBatch(account_id, expect=expect)
            if record is None:
                batch.destroys.append(Destroy(QUEUE, record_id))
                batch.blob_refs[current["blobId"]] = -1
            else:
                batch.puts.append(Put(QUEUE, record, created=False))
            if submission is not None:
                changed = dict(submission, deliveryStatus=delivery_status(rcpts), undoStatus="final")
                if changed != submission:
                    batch.puts.append(Put(EMAIL_SUBMISSION, changed, created=False))
            try:
                self.core.backend.commit(batch)
            except StateConflict:
                conflicts += 1
                time.sleep(min(0.001 * conflicts, 0.05))
                continue
            except UnknownAccount:
                return
            level = logging.INFO if all(r.ok for r in replies.values()) else logging.WARNING
            log.log(level, "outbound %s (account %s): %s", record_id, account_id, summary)
            return
        log.error("outbound %s: gave up writing its outcome after %d conflicts", record_id, conflicts)

    def _outcome(
        self, record: Record, replies: dict[str, Reply], now: float
    ) -> tuple[Record | None, dict[str, Any], str]:
        """The record after a try (None when every recipient is done), the
        recipients' states, and a summary for the log."""
        attempts = record.get("attempts", 0) + 1
        rcpts = {address: dict(state) for address, state in record["rcpts"].items()}
        retry = False
        for address, reply in replies.items():
            if address not in rcpts:
                continue
            state = _final_state(reply, now, record, self.settings)
            rcpts[address] = state
            retry = retry or state["state"] == "queued"
        parts = [f"{a}: {r.line or 'no reply'}" for a, r in replies.items()]
        if not retry and all(s["state"] != "queued" for s in rcpts.values()):
            return None, rcpts, f"done after {attempts} attempt(s); " + "; ".join(parts)
        wait = backoff(self.settings, attempts)
        errors = [r.line for r in replies.values() if not r.ok and not r.permanent]
        record.update(
            rcpts=rcpts,
            attempts=attempts,
            notBefore=now + wait,
            lease=0.0,
            owner="",
            token="",
            lastError=errors[0] if errors else None,
        )
        return record, rcpts, f"retry in {wait:g}s (attempt {attempts}); " + "; ".join(parts)


def _final_state(reply: Reply, now: float, record: Record, settings: RelaySettings) -> dict[str, Any]:
    """A recipient's state after a reply: sent, failed, or still queued
    (temporary, unless the message is too old to keep trying)."""
    if reply.ok:
        return {"state": "sent", "reply": reply.line}
    if reply.permanent:
        return {"state": "failed", "reply": reply.line}
    if now - record.get("createdAt", now) >= settings.give_up_after:
        return {"state": "failed", "reply": reply.line or "451 4.4.1 The relay could not be reached"}
    return {"state": "queued", "reply": reply.line if reply.code is not None else ""}


def sender_job(core: Core, stopping: threading.Event) -> None:
    """The background job: send queued messages until ``stopping`` is set."""
    settings = settings_of(core)
    if not settings.configured:
        log.warning("no smtp_relay configured: submitted mail is queued until one is")
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="jmap-smtp-send")
    sender = Sender(core, executor=executor)
    try:
        while not stopping.is_set():
            accounts = [a.account_id for a in core.backend.directory.list_accounts()]
            seen = core.backend.current_modseqs(accounts)
            try:
                wait = sender.run_once()
            except Exception:  # keep sending after a storage hiccup
                log.exception("outbound queue pass failed")
                wait = IDLE_WAIT
            if stopping.is_set():
                break
            core.backend.wait_for_change(seen, min(max(wait, 0.02), IDLE_WAIT))
    finally:
        # Sends in flight finish and record their outcome before the core closes.
        executor.shutdown(wait=True, cancel_futures=True)


def describe_queue(core: Core) -> list[dict[str, Any]]:
    """What an operator sees of each queued message (``jmapcore queue
    list``): account, id, sender, recipients still waiting, tries, when the
    next is due, and the last temporary failure; never the content."""
    rows = []
    for account in core.backend.directory.list_accounts():
        try:
            records = pending_messages(core, account.account_id)
        except UnknownAccount:
            continue
        for record in records:
            waiting = [a for a, s in record["rcpts"].items() if s["state"] == "queued"]
            rows.append({
                "account": account.name,
                "id": record["id"],
                "from": record["mailFrom"] or "<>",
                "waiting": ",".join(waiting) or "-",
                "attempts": record.get("attempts", 0),
                "next": utc_date(max(record.get("notBefore", 0.0), record.get("lease", 0.0))),
                "sending": "yes" if record.get("lease", 0.0) > time.time() else "no",
                "lastError": record.get("lastError") or "-",
            })
    return sorted(rows, key=lambda row: (row["account"], row["next"], row["id"]))
