"""Deterministic, realistic sample mail: for the demo account, tests and benchmarks.

``generate(count, seed=…)`` yields ``(raw RFC 5322 bytes, metadata)`` in
chronological order.  The same arguments always give the same bytes, so a
benchmark at 100k messages and a test at 50 see the same kind of mailbox:
about 40 correspondents, threads of 1–8 messages linked by Message-ID /
In-Reply-To / References with "Re:" subjects, plain and
multipart/alternative bodies, attachments (PDF, PNG, text), some
non-ASCII (encoded-word subjects and names, UTF-8 bodies, an ISO-8859-1
part), sizes from about 1 KB to 200 KB and dates over one year.

Built with the standard library's ``email`` package only (compat32 classes:
they are several times faster than ``EmailMessage`` for the same output).
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.charset import QP, Charset
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from typing import Any

__all__ = ["COMMON_WORD", "OWNER", "RARE_WORD", "generate"]

#: The account owner: every message is to or from this address.
OWNER = ("Sam Demo", "demo@example.com")
#: A word in most messages, and one in every 400th message (and the replies
#: that quote it), for text-search benchmarks.
COMMON_WORD = "project"
RARE_WORD = "zeppelin"
#: Where the year of mail ends unless the caller says otherwise (fixed, so
#: the output does not depend on the clock).
DEFAULT_END = datetime(2025, 1, 1, tzinfo=UTC)

_CRLF = policy.compat32.clone(linesep="\r\n")

_PEOPLE = [
    ("Alice Martin", "alice@example.com"), ("Bob Smith", "bob@example.org"),
    ("Carol White", "carol@example.net"), ("Dave Brown", "dave@corp.example"),
    ("Erin Clark", "erin@example.com"), ("Frank Lewis", "frank@example.org"),
    ("Grace Hall", "grace@corp.example"), ("Heidi Young", "heidi@example.net"),
    ("Ivan Petrov", "ivan@example.ru"), ("Judy King", "judy@example.com"),
    ("Karl Wright", "karl@corp.example"), ("Laura Scott", "laura@example.org"),
    ("Mallory Green", "mallory@example.net"), ("Niaj Adams", "niaj@example.com"),
    ("Olivia Baker", "olivia@corp.example"), ("Peggy Nelson", "peggy@example.org"),
    ("Quentin Hill", "quentin@example.net"), ("Rupert Carter", "rupert@example.com"),
    ("Sybil Mitchell", "sybil@corp.example"), ("Trent Perez", "trent@example.org"),
    ("Uma Roberts", "uma@example.net"), ("Victor Turner", "victor@example.com"),
    ("Wendy Phillips", "wendy@corp.example"), ("Xavier Campbell", "xavier@example.org"),
    ("Yvonne Parker", "yvonne@example.net"), ("Zach Evans", "zach@example.com"),
    ("José Núñez", "jose@example.es"), ("Zoë Müller", "zoe@example.de"),
    ("Søren Lund", "soren@example.dk"), ("François Lefèvre", "francois@example.fr"),
    ("Łukasz Wójcik", "lukasz@example.pl"), ("Ana Ćosić", "ana@example.hr"),
    ("山田 太郎", "taro@example.jp"), ("Αλέξανδρος Παππάς", "alex@example.gr"),
    ("", "noreply@notifications.example"), ("Build Bot", "ci@builds.corp.example"),
    ("Team Calendar", "calendar@corp.example"), ("Newsletter", "news@letters.example"),
    ("Priya Sharma", "priya@example.in"), ("Tom O'Neil", "tom@example.ie"),
]

_TOPICS = [
    "Quarterly report", "Lunch on Friday", "Project kickoff", "Budget review",
    "Design review notes", "Server migration plan", "Holiday schedule",
    "Invoice 2024-117", "Conference travel", "Team offsite", "Release checklist",
    "Customer feedback", "Hiring update", "Security audit findings", "Weekly sync",
    "Roadmap draft", "Office move", "Contract renewal", "Onboarding documents",
    "Performance numbers", "Bug triage", "Marketing copy", "Board meeting minutes",
    "Training session", "Photos from the trip", "Database backup failures",
]
_NON_ASCII_TOPICS = [
    "Café meeting ☕", "Größe der Datei", "Résumé for the role", "Cena en el jardín",
    "Встреча в понедельник", "会議の議事録", "Ἑλληνικά notes", "Smørrebrød order",
]
_WORDS = (
    "the a we should review plan team meeting update please next week schedule "
    "numbers budget report draft thanks attached notes customer release server "
    "design version change issue fix agree think maybe tomorrow morning afternoon "
    "call office client deadline figure section summary document comment question "
    "answer point detail list item send share check confirm available time soon "
    "new old good great quick small large final first last important priority"
).split()
_LATIN1_TEXT = (
    "Grüße aus München! Die Übersicht für nächste Woche ist fertig; "
    "les données sont prêtes et le café est très bon. Señor García está de acuerdo."
)
_UTF8_EXTRA = "Ça marche — see you at the café. Привет! 你好. Emoji: 🎉"
_TIMEZONES = [timezone(timedelta(hours=h)) for h in (-8, -5, 0, 1, 2, 5.5, 9)]


@dataclass(eq=False)
class _Thread:
    subject: str
    people: list[tuple[str, str]]
    length: int
    ids: list[str] = field(default_factory=list)
    last_text: str = ""


def generate(
    count: int, seed: int = 1, *, end: datetime = DEFAULT_END, span_days: int = 365
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Yield ``count`` messages as ``(raw bytes, metadata)``, oldest first.

    Metadata: ``mailbox`` (a role: inbox, sent or archive), ``keywords``,
    ``receivedAt`` (UTC ``…Z`` string), ``messageId``, ``threadRoot`` (the
    Message-ID of the thread's first message) and ``inReplyTo``.
    """
    rng = random.Random(seed)
    start = end - timedelta(days=span_days)
    step = timedelta(days=span_days) / max(count, 1)
    moment = start
    open_threads: list[_Thread] = []
    for index in range(count):
        moment += step * rng.uniform(0.2, 1.8)
        moment = min(moment, end - timedelta(seconds=count - index))
        thread = _pick_thread(rng, open_threads)
        yield _message(rng, seed, index, thread, moment, end)
        if len(thread.ids) >= thread.length and thread in open_threads:
            open_threads.remove(thread)


def _pick_thread(rng: random.Random, open_threads: list[_Thread]) -> _Thread:
    """Continue a recent thread or start one (about 40% of messages are replies)."""
    if open_threads and rng.random() < 0.5:
        return rng.choice(open_threads[-8:])
    length = rng.choices(range(1, 9), weights=(40, 14, 12, 10, 8, 6, 5, 5))[0]
    topic = rng.choice(_NON_ASCII_TOPICS) if rng.random() < 0.06 else rng.choice(_TOPICS)
    people = rng.sample(_PEOPLE, rng.choice((1, 1, 1, 2, 3)))
    thread = _Thread(topic, people, length)
    if length > 1:
        open_threads.append(thread)
    return thread


def _message(
    rng: random.Random, seed: int, index: int, thread: _Thread, moment: datetime, end: datetime
) -> tuple[bytes, dict[str, Any]]:
    position = len(thread.ids)
    from_owner = position > 0 and rng.random() < 0.3
    sender = OWNER if from_owner else thread.people[position % len(thread.people)]
    recipients = [p for p in thread.people if p != sender] if from_owner else [OWNER]
    text = _body_text(rng, thread, sender, rare=index % 400 == 7)
    msg = _mime_body(rng, seed, index, text)
    msg["From"] = _address(sender)
    msg["To"] = ", ".join(_address(p) for p in recipients or [OWNER])
    if len(thread.people) > 1 and not from_owner and rng.random() < 0.3:
        msg["Cc"] = _address(thread.people[(position + 1) % len(thread.people)])
    subject = thread.subject if position == 0 else f"Re: {thread.subject}"
    msg["Subject"] = Header(subject, "utf-8") if not subject.isascii() else subject
    msg["Date"] = format_datetime(moment.astimezone(rng.choice(_TIMEZONES)))
    message_id = f"<{seed}.{index}.{rng.getrandbits(40):010x}@{sender[1].partition('@')[2]}>"
    msg["Message-ID"] = message_id
    if thread.ids:
        msg["In-Reply-To"] = thread.ids[-1]
        msg["References"] = " ".join(thread.ids[:1] + thread.ids[-9:][1:])
    if sender[1].startswith(("noreply", "news")):
        msg["List-Unsubscribe"] = f"<mailto:unsubscribe@{sender[1].partition('@')[2]}>"
    msg["X-Mailer"] = "jmapcore samples"
    received = min(moment + timedelta(seconds=rng.randint(1, 90)), end)
    msg["Received"] = f"from mx.example.net by mail.example.com; {format_datetime(received.astimezone(UTC))}"
    raw = msg.as_bytes(policy=_CRLF)
    age_days = (end - received).days
    keywords: dict[str, bool] = {}
    if from_owner or age_days > 3 or rng.random() < 0.5:
        keywords["$seen"] = True
    if rng.random() < 0.05:
        keywords["$flagged"] = True
    mailbox = "sent" if from_owner else ("archive" if age_days > 200 and rng.random() < 0.3 else "inbox")
    metadata = {
        "mailbox": mailbox,
        "keywords": keywords,
        "receivedAt": received.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "messageId": message_id,
        "threadRoot": thread.ids[0] if thread.ids else message_id,
        "inReplyTo": thread.ids[-1] if thread.ids else None,
    }
    thread.ids.append(message_id)
    thread.last_text = text
    return raw, metadata


def _address(person: tuple[str, str]) -> str:
    name, email = person
    if not name:
        return email
    return formataddr((name, email), charset="utf-8")


def _paragraph(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = rng.choices(_WORDS, k=rng.randint(6, 16))
        if rng.random() < 0.5:
            words.insert(rng.randrange(len(words)), COMMON_WORD)
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def _wrap(text: str, width: int = 72) -> str:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n".join(lines)


def _body_text(rng: random.Random, thread: _Thread, sender: tuple[str, str], *, rare: bool) -> str:
    """Greeting, a few paragraphs (sometimes long), a quote of the previous message."""
    size = rng.choices((2, 4, 8, 40), weights=(55, 30, 12, 3))[0]
    paragraphs = [_wrap(_paragraph(rng, rng.randint(2, 5))) for _ in range(max(1, size // 2))]
    if rare:
        paragraphs.append(f"By the way, the {RARE_WORD} tour is booked.")
    if rng.random() < 0.08:
        paragraphs.append(_UTF8_EXTRA)
    greeting = f"Hi {thread.people[0][0].split(' ')[0] or 'all'},"
    body = "\n\n".join([greeting, *paragraphs, f"-- \n{sender[0] or sender[1]}"])
    if thread.last_text:
        quoted = "\n".join(f"> {line}" for line in thread.last_text.splitlines()[:30])
        body += f"\n\nOn an earlier day, someone wrote:\n{quoted}"
    return body + "\n"


def _mime_body(rng: random.Random, seed: int, index: int, text: str) -> Any:
    """The body part: plain, alternative, or mixed with attachments."""
    boundary = f"=_sample_{seed}_{index}"
    kind = rng.random()
    if kind < 0.03:
        body = MIMEText(_LATIN1_TEXT + "\n\n" + text.encode("latin-1", "replace").decode("latin-1"), "plain", _LATIN1_QP)
    elif kind < 0.55:
        body = MIMEText(text, "plain", "us-ascii" if text.isascii() else _UTF8_QP)
    else:
        body = MIMEMultipart("alternative", boundary=boundary + "_alt")
        body.attach(MIMEText(text, "plain", _UTF8_QP))
        body.attach(MIMEText(_html(text), "html", _UTF8_QP))
    if rng.random() >= 0.12:
        return body
    mixed = MIMEMultipart("mixed", boundary=boundary)
    mixed.attach(body)
    # base64 grows the bytes by a third: 140 KB of files stay under 200 KB.
    count = rng.choice((1, 1, 1, 2, 3))
    for _ in range(count):
        mixed.attach(_attachment(rng, 140_000 // count))
    return mixed


def _quoted_printable(name: str) -> Charset:
    charset = Charset(name)
    charset.body_encoding = QP
    return charset


# What mail clients use for text: quoted-printable keeps the body readable.
_UTF8_QP = _quoted_printable("utf-8")
_LATIN1_QP = _quoted_printable("iso-8859-1")


def _html(text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    paragraphs = "".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in escaped.split("\n\n"))
    return f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{paragraphs}</body></html>'


def _attachment(rng: random.Random, budget: int) -> MIMEBase:
    """A small PDF, PNG or text file; ``budget`` bytes at most, log-uniform from 1 KB."""
    size = int(1000 * (budget / 1000) ** rng.random())
    kind = rng.choice(("pdf", "png", "txt", "csv"))
    number = rng.randint(1, 999)
    if kind == "pdf":
        part: MIMEBase = MIMEApplication(_pdf(rng, size), "pdf")
        name = f"report-{number}.pdf"
    elif kind == "png":
        part = MIMENonMultipart("image", "png")
        part.set_payload(_png(rng, size))
        from email.encoders import encode_base64

        encode_base64(part)
        name = f"photo-{number}.png"
    elif kind == "txt":
        part = MIMEText(_wrap(_paragraph(rng, max(1, size // 90))) + "\n", "plain", "us-ascii")
        name = f"notes-{number}.txt"
    else:
        rows = "\n".join(f"{i},{(i * 7919 + number) % 10000},{_WORDS[i % len(_WORDS)]}" for i in range(max(1, size // 14)))
        part = MIMEText("id,amount,label\n" + rows + "\n", "csv", "us-ascii")
        name = f"data-{number}.csv"
    part.add_header("Content-Disposition", "attachment", filename=name)
    return part


def _pdf(rng: random.Random, size: int) -> bytes:
    """A minimal PDF with a binary stream of about ``size`` bytes."""
    stream = rng.randbytes(size)
    return (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        + f"3 0 obj\n<< /Length {len(stream)} >>\nstream\n".encode()
        + stream
        + b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def _png(rng: random.Random, size: int) -> bytes:
    """A valid greyscale PNG whose noise pixels make it about ``size`` bytes."""
    width = 64
    height = max(1, size // (width + 1))
    raw = b"".join(b"\x00" + rng.randbytes(width) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")
