"""The vacation auto-reply, sent when mail is delivered ([mail-8-window]).

``jmapcore lmtp`` calls :func:`after_delivery` once per account a message
was delivered to.  A reply goes when the account's VacationResponse is
enabled and ``fromDate <= now < toDate``, following RFC 3834:

- never to a null return path, MAILER-DAEMON or list/owner addresses
  (bounces), nor to ourselves;
- never to a message with ``Auto-Submitted`` other than ``no``, a
  ``List-Id``/``List-Post``/``List-Unsubscribe`` header, or
  ``Precedence: bulk|list|junk`` (lists, other robots);
- at most once per sender per :data:`REPLY_PERIOD` (7 days), remembered in
  the account's store (``VacationReplied`` records), so every process
  delivering for the account agrees;
- sent with a null MAIL FROM (§3.3), ``Auto-Submitted: auto-replied``,
  ``In-Reply-To``/``References`` to the original, and the subject the user
  set (else ``Auto: <original subject>``).

The reply is queued through the submission plugin's outbound queue
(:func:`jmap_submission.outbound.enqueue`, imported lazily: the submission
plugin owns retries and the relay).
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, getaddresses, make_msgid
from typing import TYPE_CHECKING

from jmapcore.storage import Put, Snapshot, StateConflict, WriteBatch

from . import SINGLETON, VACATION_RESPONSE, current, parse_utc_date

if TYPE_CHECKING:
    from jmapcore.api import Core

log = logging.getLogger("jmap_vacation")

#: RFC 3834 §2: at most one reply per sender in this many seconds (7 days).
REPLY_PERIOD = 7 * 24 * 3600.0
REPLIED = "VacationReplied"
DEFAULT_TEXT = "I am away and will read your message when I return.\n"
_BOUNCE_LOCALS = ("mailer-daemon", "postmaster", "listserv", "majordomo", "noreply", "no-reply", "do-not-reply")
_LIST_HEADERS = ("list-id", "list-post", "list-unsubscribe", "list-help")
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+>")  # printable ASCII but < and >, in angle brackets


def _fields(message: EmailMessage, name: str) -> list[str]:
    """The values of a header field as text; the raw, unfolded text when the
    standard library's parser fails on a malformed one (it raises on some
    Message-IDs and addresses).  Undecodable octets become U+FFFD and line
    breaks spaces, so a value is always safe to put in a new header."""
    try:
        values = [str(value) for value in message.get_all(name, [])]
    except Exception:  # noqa: BLE001 - the mail is from anyone
        values = [str(value) for key, value in message.raw_items() if key.lower() == name.lower()]
    return [" ".join(v.encode("utf-8", "surrogateescape").decode("utf-8", "replace").split()) for v in values]


def _message_ids(text: str) -> list[str]:
    """The well-formed ``<id>``s in a field (not encoded-words, which the
    standard library would decode, into junk, when the reply is written)."""
    return [found for found in _MESSAGE_ID.findall(text) if "=?" not in found]


def _field(message: EmailMessage, name: str) -> str:
    found = _fields(message, name)
    return found[0] if found else ""


def in_window(record: dict, now: datetime) -> bool:
    """[mail-8-window] enabled, and fromDate <= now < toDate (null: open)."""
    if not record.get("isEnabled"):
        return False
    start, end = record.get("fromDate"), record.get("toDate")
    if start is not None and now < parse_utc_date(start):
        return False
    return end is None or now < parse_utc_date(end)


def skip_reason(mail_from: str, headers: EmailMessage, own: set[str]) -> str | None:
    """Why RFC 3834 forbids replying to this message, or None."""
    sender = mail_from.strip().lower()
    if not sender or "@" not in sender:
        return "null return path (a bounce)"
    local = sender.rpartition("@")[0]
    if local in _BOUNCE_LOCALS or local.startswith("owner-") or local.endswith(("-request", "-owner", "-bounces")):
        return "a bounce or list address"
    if sender in own:
        return "our own address"
    auto = _field(headers, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        return "Auto-Submitted"
    if any(name in headers for name in _LIST_HEADERS):
        return "a mailing list"
    if _field(headers, "Precedence").lower() in ("bulk", "list", "junk"):
        return "Precedence bulk/list/junk"
    if any(name in headers for name in ("X-Auto-Response-Suppress", "X-Autoreply", "X-Autorespond")):
        return "another auto-responder"
    return None


def _text_of(html: str) -> str:
    from jmap_mail.mime import html_to_text

    return html_to_text(html)


def build_reply(record: dict, original: EmailMessage, from_address: str, to_address: str) -> bytes:
    """The auto-reply's octets (RFC 3834 §3)."""
    reply = EmailMessage(policy=policy.SMTP)
    reply["From"] = from_address
    reply["To"] = to_address
    subject = record.get("subject")
    if subject is None:
        original_subject = _field(original, "Subject")
        subject = f"Auto: {original_subject}" if original_subject else "Auto: away"
    reply["Subject"] = " ".join(subject.split())  # the user's text may hold line breaks
    reply["Date"] = format_datetime(datetime.now(UTC))
    reply["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or None)
    reply["Auto-Submitted"] = "auto-replied"
    message_ids = _message_ids(_field(original, "Message-ID"))
    if len(message_ids) == 1:  # a malformed one is left out rather than copied
        reply["In-Reply-To"] = message_ids[0]
        references = _message_ids(_field(original, "References"))
        reply["References"] = " ".join([*references, message_ids[0]][-20:])
    text, html = record.get("textBody"), record.get("htmlBody")
    if text is None:
        text = _text_of(html) if html is not None else DEFAULT_TEXT
    # Quoted-printable when not ASCII: 7-bit clean for any relay (8BITMIME or not).
    reply.set_content(text, cte=None if text.isascii() else "quoted-printable")
    if html is not None:
        reply.add_alternative(html, subtype="html", cte=None if html.isascii() else "quoted-printable")
    return reply.as_bytes()


def _replied_id(sender: str) -> str:
    return "R" + hashlib.sha256(sender.strip().lower().encode()).hexdigest()[:32]


def _recently_replied(snap: Snapshot, sender: str, now: float) -> bool:
    seen = snap.get(REPLIED, _replied_id(sender))
    return seen is not None and now - seen.get("at", 0) < REPLY_PERIOD


def _remember(core: Core, account_id: str, sender: str, now: float) -> bool:
    """Claim the reply to ``sender`` for this period; False if another
    delivery already did (one reply per sender, across processes)."""
    for _ in range(8):
        with core.backend.snapshot(account_id) as snap:
            if _recently_replied(snap, sender, now):
                return False
            stored = snap.get(REPLIED, _replied_id(sender))
            batch = WriteBatch(account_id, expect={REPLIED: snap.type_modseq(REPLIED)})
            batch.puts.append(Put(REPLIED, {"id": _replied_id(sender), "at": now}, created=stored is None))
        try:
            core.backend.commit(batch)
            return True
        except StateConflict:
            continue
    return False


def after_delivery(core: Core, account_id: str, mail_from: str, raw: bytes, recipient: str | None = None) -> str | None:
    """Queue the vacation reply to a message just delivered to the account,
    if one is due; returns the queue id (None: no reply)."""
    now = datetime.now(UTC)
    with core.backend.snapshot(account_id) as snap:
        if snap.get(VACATION_RESPONSE, SINGLETON) is None:
            return None
        record = current(snap)
        if not in_window(record, now):
            return None
        if _recently_replied(snap, mail_from, now.timestamp()):
            return None
    account = core.backend.directory.get_account(account_id)
    own = {a.lower() for a in (account.addresses if account is not None else ())}
    headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    reason = skip_reason(mail_from, headers, own | ({recipient.lower()} if recipient else set()))
    if reason is not None:
        log.info("no vacation reply to %s: %s", mail_from or "<>", reason)
        return None
    from_address = _from_address(account.addresses if account is not None else (), headers, recipient)
    if from_address is None:
        log.info("no vacation reply from account %s: it has no address", account_id)
        return None
    message = build_reply(record, headers, from_address, mail_from)  # before the claim: a failure keeps none
    if not _remember(core, account_id, mail_from, now.timestamp()):
        return None
    from jmap_submission.outbound import enqueue  # the submission plugin sends it

    queued = enqueue(core, account_id, "", [mail_from], message)
    log.info("vacation reply %s queued to %s", queued, mail_from)
    return queued


def _from_address(addresses: tuple[str, ...] | list[str], headers: EmailMessage, recipient: str | None) -> str | None:
    """The address the message reached: the envelope recipient, else one of
    the account's addresses in To/Cc, else its first one."""
    if recipient and not addresses:
        return recipient
    own = {a.lower(): a for a in addresses}
    if recipient and recipient.lower() in own:
        return own[recipient.lower()]  # as the account spells it (LMTP matches in any case)
    named = {email.lower() for _, email in getaddresses(_fields(headers, "To") + _fields(headers, "Cc"))}
    for address in addresses:
        if address.lower() in named:
            return address
    return addresses[0] if addresses else recipient

