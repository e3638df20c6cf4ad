"""Robustness of the mail MIME layer on third-party messages (../shared/corpus) and on
random and mutated input: every message parses, every JMAP view of it is computed and
JSON-encodable, nothing raises, hangs or grows without bound ([mail-4.8-eai] UTF-8
headers, [mail-4.1.4-preview] length).

mail-parser (the SpamScope package) serves as an independent oracle: its RFC 5322
date and address readers must agree with ours wherever they report no defect.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jmap_mail.mime import FORMS, form_allowed, parse
from jmap_mail.mime.addresses import addresses
from jmap_mail.mime.dates import parse_date
from jmap_mail.mime.message import BODY_PROPERTIES

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
FILES = sorted(CORPUS.rglob("*.eml")) if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not FILES, reason="../shared/corpus is not here")
ALL_BODY_PROPERTIES = [*BODY_PROPERTIES, "header:Content-Type", "header:Content-Type:asText:all",
                       "header:Content-ID:asMessageIds", "header:X-Nothing:asDate:all"]
SAMPLE_HEADERS = ("From", "To", "Cc", "Subject", "Date", "Message-ID", "References", "List-Unsubscribe",
                  "List-Id", "Received", "Content-Type", "X-Mailer")


def exercise(raw: bytes) -> dict:
    """Every view the mail plugin asks for; returns them (JSON-encodable) for checks."""
    parsed = parse(raw)
    views: dict = {
        "properties": parsed.list_properties(),
        "headers": [{"name": n, "value": v} for n, v in parsed.headers],
        "bodyStructure": parsed.part_json(parsed.body, ALL_BODY_PROPERTIES, lambda p: "B" + p),
        "lists": [[parsed.part_json(p, None, lambda p: "B" + p) for p in parts]
                  for parts in (parsed.text_body, parsed.html_body, parsed.attachments)],
        "values": parsed.body_values(False, False, True, 0),
        "truncated": parsed.body_values(True, True, False, 64),
        "threading": parsed.threading_keys(),
        "forms": [parsed.header_value(name, form, True) for name in SAMPLE_HEADERS
                  for form in FORMS if form_allowed(name, form)],
    }
    msgspec.json.encode(views)
    assert len(views["properties"]["preview"]) <= 256
    leaves = parsed.leaves()
    assert [p.part_id for p in leaves] == [str(n) for n in range(1, len(leaves) + 1)]
    for part in parsed.body.walk():
        assert (part.part_id is None) == (part.sub_parts is not None)
        if part.part_id is not None:
            content = parsed.part_content(part.part_id)
            assert content is not None and len(content) == part.size
    for value in views["truncated"].values():
        assert len(value["value"].encode("utf-8")) <= 64
    return views


@needs_corpus
@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES] if FILES else None)
def test_corpus_message(path: Path):
    exercise(path.read_bytes())


@needs_corpus
def test_corpus_is_fast():
    """Import speed: parse + list_properties well under a millisecond per message on average."""
    messages = [path.read_bytes() for path in FILES]
    started = time.perf_counter()
    for raw in messages:
        parse(raw).list_properties()
    elapsed = time.perf_counter() - started
    assert elapsed / len(messages) < 0.01  # generous for a loaded CI box; ~0.1-0.2 ms measured


@needs_corpus
def test_dates_agree_with_mailparser():
    """Wherever mail-parser's RFC 5322 date reader finds a date, ours finds the same instant."""
    from mailparser.dates import parse_mail_date

    compared = 0
    for path in FILES:
        raw = parse(path.read_bytes()).header_value("Date", "Raw")
        if raw is None:
            continue
        theirs = parse_mail_date(raw.replace("\r\n", "")).value
        if theirs is None:
            continue
        ours = parse_date(raw)
        assert ours is not None and ours.astimezone(datetime.UTC) == theirs, (path, raw)
        compared += 1
    assert compared > 150


@needs_corpus
def test_addresses_agree_with_mailparser():
    """Where mail-parser reads an address header without any defect, we find the same
    addresses (display names differ by design: we decode RFC 2047 inside quotes and
    drop comments, as RFC 8621 asks)."""
    from mailparser.utils import get_addresses

    compared = 0
    for path in FILES:
        parsed = parse(path.read_bytes())
        for name in ("From", "To", "Cc", "Reply-To", "Sender"):
            for raw in parsed.header_value(name, "Raw", True):
                defects: list = []
                theirs = [email for _, email in get_addresses(raw, defects=defects) if email]
                if defects or not theirs:
                    continue
                assert [a["email"] for a in addresses(raw)] == theirs, (path, raw)
                compared += 1
    assert compared > 400


@needs_corpus
@pytest.mark.parametrize(("name", "subject", "sender", "attachments"), [
    ("mikel-mail/rfc6532/utf8_headers.eml", "Säying Hello", [{"name": "Jöhn Doe", "email": "jdöe@mächine.example"}], []),
    ("cyrus-cassandane/headers-utf8.eml", "Москва - столица России.",
     [{"name": "Фёдор Михайлович Достоевский", "email": "fyodor@local"}], []),
    ("mikel-mail/multi_charset/japanese_attachment.eml", "testing",
     [{"name": "Mikel Lindsaar", "email": "raasdnil@gmail.com"}], [("text/plain", "てすと.txt")]),
    ("james-mime4j/testmsgs/russian-headers.eml", "A simple subject", None, [("text/plain", "Список.doc")]),
    ("stalwart-mail-parser/thirdparty/019.eml", "30 plaintext + (HTML + embedded image) + attachment",
     [{"name": None, "email": "test@example.com"}],
     [("image/png", "kigaaldcbanejcbi.png"), ("image/png", "attach2.png")]),
])
def test_corpus_known_values(name, subject, sender, attachments):
    """A few hand-checked expectations on real messages (EAI headers, RFC 2231 names)."""
    parsed = parse((CORPUS / name).read_bytes())
    props = parsed.list_properties()
    assert props["subject"] == subject
    assert props["from"] == sender
    assert [(p.type, p.name) for p in parsed.attachments] == attachments


@needs_corpus
def test_corpus_charset_heuristics():
    """[mail-4.1.4-bodyValues] MAY use heuristics: ISO-2022-JP without a label, UTF-8
    under a GB2312 label."""
    jis = parse((CORPUS / "cyrus-cassandane/iso-2022-jp.eml").read_bytes())
    assert jis.list_properties()["preview"].startswith("シニアソフトウェアエンジニア")
    mislabelled = parse((CORPUS / "spamscope/mail_test_12.eml").read_bytes())
    assert mislabelled.list_properties()["preview"].startswith("你好！我公司可代开各类增值税发票")


# -- adversarial input: bounded time --------------------------------------------------------

ADVERSARIAL = {
    "many parts": b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n\r\nx\r\n" * 100_000,
    "near-miss delimiters": b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + b"--bx\r\n" * 150_000,
    "huge header line": b"Subject: " + b"a " * 500_000 + b"\r\n\r\nbody",
    "many fields": b"X-A: b\r\n" * 100_000 + b"\r\nbody",
    "unclosed angles": b"To: " + b"<" * 200_000 + b"\r\n\r\n",
    "unclosed quotes": b'To: "\\' * 50_000 + b"\r\n\r\n",
    "unclosed comments": b"From: " + b"(" * 200_000 + b"\r\n\r\n",
    "html tag soup": b"Content-Type: text/html\r\n\r\n" + b"<a " * 100_000 + b"<!--" * 50_000,
    "html scripts": b"Content-Type: text/html\r\n\r\n" + b"<script>" * 100_000,
    "param flood": b"Content-Type: text/plain;" + b" a=b" * 50_000 + b"\r\n\r\nx",
    "deep nesting": b"".join(b"Content-Type: multipart/mixed; boundary=%d\r\n\r\n--%d\r\n" % (i, i) for i in range(5000)),
    "base64 junk": b"Content-Transfer-Encoding: base64\r\n\r\n" + b"!@#$" * 200_000,
    "reply prefixes": b"Subject: " + b"Re: [x] " * 20_000 + b"\r\n\r\n",
    "encoded words": b"Subject: " + b"=?utf-8?q?a?= " * 20_000 + b"\r\n\r\n",
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_input_is_bounded(name):
    started = time.perf_counter()
    views = exercise(ADVERSARIAL[name])
    assert time.perf_counter() - started < 10, name
    assert len(views["bodyStructure"]) > 0


# -- random and mutated input -----------------------------------------------------------

SEEDS = [path.read_bytes() for path in FILES[::7]] + [
    b"From: a@b\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain;"
    b" charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nw6k=\r\n--x\r\nContent-Type: text/html\r\n"
    b"\r\n<p>hi</p>\r\n--x--\r\n",
    b"Subject: =?utf-8?q?x?=\nTo: G: a@b, \"c\" <d@e>;\nContent-Type: text/plain; charset=koi8-r\n\n\xf0\xd2\xc9",
]


def mutate(raw: bytes, operations: list[tuple[int, int, int, bytes]]) -> bytes:
    """Apply (kind, position, length, bytes) edits: delete, insert, overwrite, duplicate, truncate."""
    data = bytearray(raw)
    for kind, position, length, chunk in operations:
        if not data:
            data.extend(chunk)
            continue
        position %= len(data)
        if kind == 0:
            del data[position : position + length]
        elif kind == 1:
            data[position:position] = chunk
        elif kind == 2:
            data[position : position + len(chunk)] = chunk
        elif kind == 3:
            data[position:position] = data[position : position + length]
        else:
            del data[position:]
    return bytes(data)


SPICY = st.sampled_from([b"\r\n", b"\n", b"--", b"\x00", b"\xff\xfe", b"=?utf-8?b?", b"?=", b"<", b">", b'"',
                         b"(", b";", b"Content-Type: multipart/mixed; boundary=", b"\r\n\r\n", b"=\r\n"])
operation = st.tuples(st.integers(0, 4), st.integers(0, 1 << 20), st.integers(0, 200),
                      st.binary(max_size=20) | SPICY)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes(raw):
    exercise(raw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(operation, min_size=1, max_size=8))
def test_mutated_messages(seed, operations):
    exercise(mutate(seed, operations))
