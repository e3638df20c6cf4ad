"""The sample-mail generator: deterministic, threaded, varied, well-formed."""

from __future__ import annotations

from collections import Counter
from email import message_from_bytes, policy

import pytest

samples = pytest.importorskip("jmap_mail.samples")

from jmapserver.importer import inspect_message  # noqa: E402


@pytest.fixture(scope="module")
def generated() -> list[tuple[bytes, dict]]:
    return list(samples.generate(600, seed=11))


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    first = list(samples.generate(40, seed=5))
    assert first == list(samples.generate(40, seed=5))
    assert [raw for raw, _ in first] != [raw for raw, _ in samples.generate(40, seed=6)]
    assert len(first) == 40


def test_threads_are_linked_by_message_ids(generated: list[tuple[bytes, dict]]) -> None:
    seen: dict[str, dict] = {}
    sizes = Counter(meta["threadRoot"] for _, meta in generated)
    assert max(sizes.values()) >= 5 and min(sizes.values()) == 1
    assert len(sizes) > 100, "many threads, not one long one"
    for raw, meta in generated:
        parsed = message_from_bytes(raw, policy=policy.default)
        assert parsed["Message-ID"] == meta["messageId"]
        if meta["inReplyTo"] is None:
            assert meta["threadRoot"] == meta["messageId"]
            assert parsed["In-Reply-To"] is None and not str(parsed["Subject"]).startswith("Re:")
        else:
            parent = seen[meta["inReplyTo"]]  # replies come after their parent
            assert parent["threadRoot"] == meta["threadRoot"]
            assert parsed["In-Reply-To"] == meta["inReplyTo"]
            references = str(parsed["References"]).split()
            assert references[0] == meta["threadRoot"] and references[-1] == meta["inReplyTo"]
            assert str(parsed["Subject"]).startswith("Re: ")
        seen[meta["messageId"]] = meta


def test_variety_sizes_dates_and_keywords(generated: list[tuple[bytes, dict]]) -> None:
    sizes = [len(raw) for raw, _ in generated]
    assert min(sizes) >= 500 and max(sizes) <= 210_000 and max(sizes) > 50_000
    types: Counter[str] = Counter()
    charsets: set[str] = set()
    attachments: Counter[str] = Counter()
    for raw, _ in generated:
        parsed = message_from_bytes(raw, policy=policy.default)
        types[parsed.get_content_type()] += 1
        for part in parsed.walk():
            charsets.add(str(part.get_content_charset()))
            if part.get_filename():
                attachments[part.get_content_type()] += 1
    assert {"text/plain", "multipart/alternative", "multipart/mixed"} <= set(types)
    assert {"application/pdf", "image/png", "text/plain"} <= set(attachments)
    assert {"utf-8", "iso-8859-1"} <= charsets
    assert any(b"=?utf-8?" in raw.split(b"\r\n\r\n")[0] for raw, _ in generated), "encoded-word headers"
    received = sorted(meta["receivedAt"] for _, meta in generated)
    assert received[0][:4] == "2024" and received[-1] <= "2025-01-01T00:00:00Z"
    assert [meta["receivedAt"] for _, meta in generated] == received, "oldest first"
    boxes = Counter(meta["mailbox"] for _, meta in generated)
    assert set(boxes) == {"inbox", "sent", "archive"} and boxes["inbox"] > boxes["sent"]
    flags = Counter(k for _, meta in generated for k in meta["keywords"])
    assert 0 < flags["$flagged"] < flags["$seen"] < len(generated)


def test_well_formed_and_searchable_words(generated: list[tuple[bytes, dict]]) -> None:
    """Samples are the "good" mail: the importer finds nothing malformed in them."""
    assert all(inspect_message(raw) == [] for raw, _ in generated)
    assert sum(samples.COMMON_WORD.encode() in raw for raw, _ in generated) > 300
    assert 0 < sum(samples.RARE_WORD.encode() in raw for raw, _ in generated) < 30
    assert all(raw.count(b"\n") == raw.count(b"\r\n") for raw, _ in generated), "CRLF line ends"
