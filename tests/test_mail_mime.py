"""The MIME layer of the mail plugin (jmap_mail.mime): header forms, body structure,
textBody/htmlBody/attachments, bodyValues, preview and building messages for
Email/set create, checked on messages written here."""

from __future__ import annotations

import base64
import datetime
import re

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jmap_mail.mime import (
    BuildError,
    base_subject,
    build_message,
    form_allowed,
    html_to_text,
    parse,
    parse_header_property,
)
from jmap_mail.mime.message import BODY_PROPERTIES

NOW = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)


def crlf(text: str) -> bytes:
    """Test messages are written with \\n; real ones travel with CRLF."""
    return text.replace("\n", "\r\n").encode("utf-8")


def blob_id(part_id: str) -> str:
    return f"B{part_id}"


def ids(parts) -> list[str]:
    return [part.part_id for part in parts]


# -- body structure and the partition algorithm ---------------------------------------

RFC_VECTOR = crlf("""\
From: a@example.com
Subject: structure
Content-Type: multipart/mixed; boundary="m1"

--m1
Content-Type: text/plain

A
--m1
Content-Type: multipart/mixed; boundary="m2"

--m2
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: multipart/mixed; boundary="m3"

--m3
Content-Type: text/plain

B
--m3
Content-Type: image/jpeg
Content-Disposition: inline

C
--m3
Content-Type: text/plain

D
--m3--
--alt
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: text/html

<p>E</p>
--rel
Content-Type: image/jpeg

F
--rel--
--alt--
--m2
Content-Type: image/jpeg
Content-Disposition: attachment

G
--m2
Content-Type: application/vnd.ms-excel

H
--m2
Content-Type: message/rfc822

Subject: J

J
--m2--
--m1
Content-Type: text/plain

K
--m1--
""")


def _letters(parsed, parts) -> list[str]:
    return [parsed.part_content(part.part_id).strip()[-1:].decode() for part in parts]


def test_partition_rfc_vector():
    """The worked example of [mail-4.1.4-partitionAlgorithm]: textBody A,B,C,D,K;
    htmlBody A,E,K; attachments C,F,G,H,J."""
    parsed = parse(RFC_VECTOR)
    assert _letters(parsed, parsed.text_body) == ["A", "B", "C", "D", "K"]
    assert [p.type for p in parsed.html_body] == ["text/plain", "text/html", "text/plain"]
    assert _letters(parsed, parsed.html_body) == ["A", ">", "K"]  # E is "<p>E</p>"
    assert parsed.part_content(parsed.html_body[1].part_id) == b"<p>E</p>"
    assert _letters(parsed, parsed.attachments) == ["C", "F", "G", "H", "J"]
    # partIds: depth first over the leaves only, multiparts get none [mail-4.1.4-bodyPart]
    assert ids(parsed.leaves()) == [str(n) for n in range(1, 11)]
    assert all(part.part_id is None for part in parsed.body.walk() if part.sub_parts is not None)
    assert parsed.list_properties()["hasAttachment"] is True


def test_body_structure_json_and_no_descent_into_rfc822():
    """[mail-4.1.4-bodyStructure] the full tree with subParts; message/rfc822 is a leaf
    whose blob is the enclosed message; blobId null exactly for multiparts."""
    parsed = parse(RFC_VECTOR)
    tree = parsed.part_json(parsed.body, ["partId", "blobId", "type", "subParts"], blob_id)
    assert tree["partId"] is None and tree["blobId"] is None and tree["type"] == "multipart/mixed"
    alternative = tree["subParts"][1]["subParts"][0]
    assert alternative["type"] == "multipart/alternative"
    assert [p["type"] for p in alternative["subParts"]] == ["multipart/mixed", "multipart/related"]
    rfc822 = tree["subParts"][1]["subParts"][3]
    assert rfc822 == {"partId": "9", "blobId": "B9", "type": "message/rfc822", "subParts": None}
    assert parsed.part_content("9") == b"Subject: J\r\n\r\nJ"
    msgspec.json.encode(tree)


HTML_WITH_IMAGE = crlf("""\
From: "Ann Example" <ann@example.com>
To: bob@example.org
Subject: Pictures
Date: Tue, 2 Jan 2024 03:04:05 +0100
Message-ID: <pic-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="outer"

This is a multi-part message in MIME format.
--outer
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Look at this caf=C3=A9!
--outer
Content-Type: multipart/related; boundary="inner"; type="text/html"

--inner
Content-Type: text/html; charset=utf-8

<html><head><style>p {color: red}</style></head>
<body><p>Look at this <b>caf\u00e9</b>!</p><img src="cid:dot@example.com"></body></html>
--inner
Content-Type: image/png; name="dot.png"
Content-Disposition: inline; filename="dot.png"
Content-ID: <dot@example.com>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--inner--
--outer--
""")


def test_alternative_with_inline_image():
    """[mail-4.1.4-textBody] [mail-4.1.4-htmlBody] [mail-4.1.4-attachments]: the plain
    alternative for textBody, HTML for htmlBody, the cid image as an attachment that
    does not count for hasAttachment [mail-4.1.4-hasAttachment]."""
    parsed = parse(HTML_WITH_IMAGE)
    assert ids(parsed.text_body) == ["1"]
    assert ids(parsed.html_body) == ["2"]
    assert ids(parsed.attachments) == ["3"]
    image = parsed.part("3")
    assert (image.type, image.name, image.cid, image.disposition) == ("image/png", "dot.png", "dot@example.com", "inline")
    assert image.charset is None and image.size == 8
    assert parsed.part_content("3") == b"\x89PNG\r\n\x1a\n"
    props = parsed.list_properties()
    assert props["hasAttachment"] is False
    assert props["preview"] == "Look at this café!"


def test_default_body_properties_and_header_properties_on_parts():
    """[mail-4.2-bodyProperties]: the default list, ``headers``, ``header:*`` on parts."""
    parsed = parse(HTML_WITH_IMAGE)
    image = parsed.part("3")
    assert parsed.part_json(image, None, blob_id) == {
        "partId": "3", "blobId": "B3", "size": 8, "name": "dot.png", "type": "image/png",
        "charset": None, "disposition": "inline", "cid": "dot@example.com", "language": None,
        "location": None,
    }
    found = parsed.part_json(image, ["headers", "header:Content-ID:asMessageIds",
                                     "header:content-type", "header:X-None:all"], blob_id)
    assert found["headers"][0] == {"name": "Content-Type", "value": ' image/png; name="dot.png"'}
    assert found["header:Content-ID:asMessageIds"] == ["dot@example.com"]
    assert found["header:content-type"] == ' image/png; name="dot.png"'
    assert found["header:X-None:all"] == []
    with pytest.raises(ValueError):
        parsed.part_json(image, ["bogus"], blob_id)
    with pytest.raises(ValueError):
        parsed.part_json(image, ["header:Content-ID:asDate:all:x"], blob_id)
    everything = parsed.part_json(parsed.body, list(BODY_PROPERTIES), blob_id)
    msgspec.json.encode(everything)


ATTACHMENTS = crlf("""\
From: sender@example.com
To: rcpt@example.com
Subject: files
Content-Type: multipart/mixed; boundary=XyZ

--XyZ
Content-Type: text/plain

See attached.
--XyZ
Content-Type: application/pdf; name="=?UTF-8?B?UmVjaG51bmcgTcOkcnoucGRm?="
Content-Disposition: attachment;
 filename*0*=UTF-8''Rechnung%20M%C3%A4rz%20;
 filename*1="2024.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--XyZ
Content-Type: application/octet-stream; name="=?ISO-8859-1?Q?r=E9sum=E9.doc?="
Content-Transfer-Encoding: base64

AAEC
--XyZ
Content-Type: text/plain; name="notes.txt"
Content-Language: en, de-CH
Content-Location: http://example.com/
 notes.txt

notes
--XyZ--
""")


def test_attachments_with_rfc2231_and_rfc2047_names():
    """[mail-4.1.4-bodyPart] ``name``: RFC 2231 filename (continuations, charset) before
    the RFC 2047 Content-Type name; a named text part after the first is an attachment."""
    parsed = parse(ATTACHMENTS)
    assert ids(parsed.text_body) == ["1"]
    names = [(p.part_id, p.type, p.name) for p in parsed.attachments]
    assert names == [
        ("2", "application/pdf", "Rechnung März 2024.pdf"),
        ("3", "application/octet-stream", "résumé.doc"),
        ("4", "text/plain", "notes.txt"),
    ]
    notes = parsed.part("4")
    assert notes.language == ["en", "de-CH"]
    assert notes.location == "http://example.com/notes.txt"
    assert parsed.part_content("2") == b"%PDF-1.4\n"
    assert parsed.part("2").size == 9
    assert parsed.list_properties()["hasAttachment"] is True


def test_charset_and_type_defaults():
    """[mail-4.1.4-bodyPart]: implicit text/plain + us-ascii without Content-Type, the
    charset param (null for a non-text type without one), message/rfc822 default in a
    digest, syntactically invalid types read as text/plain."""
    parsed = parse(crlf("""\
Content-Type: multipart/mixed; boundary=b

--b

no headers at all
--b
Content-Type: application/json; charset=utf-8

{}
--b
Content-Type: application/octet-stream

x
--b
Content-Type: TEXT/HTML

<p>x</p>
--b
Content-Type: this is not a type

x
--b
Content-Type: multipart/digest; boundary=d

--d

Subject: digested

hi
--d--
--b--
"""))
    described = [(p.part_id, p.type, p.charset) for p in parsed.leaves()]
    assert described == [
        ("1", "text/plain", "us-ascii"),
        ("2", "application/json", "utf-8"),
        ("3", "application/octet-stream", None),
        ("4", "text/html", "us-ascii"),
        ("5", "text/plain", "us-ascii"),
        ("6", "message/rfc822", None),
    ]


# -- header forms ------------------------------------------------------------------------

HEADERS = b"".join([
    b"Return-Path: <bounce@example.com>\r\n",
    b"Received: from a by b; Tue, 2 Jan 2024 03:04:05 +0000\r\n",
    b"From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\r\n",
    b"To: Team:  \"Doe, Jane\" <jane@example.com>, (Bob Smith) bob@example.com,\r\n",
    b" eve@example.com (Eve \\(the\\) Listener);, carol@example.com, Undisclosed:;\r\n",
    b"Cc: =?utf-8?B?0JzQvtGB0LrQstCw?= <moscow@example.ru>, \"Quoted \\\"Name\\\"\" <q@example.com>\r\n",
    b"Subject: =?iso-8859-1?q?this=20is=20some=20text?=  =?UTF-8?B?IOKCrA==?=\r\n",
    b"  folded\x00 =?koi8-r?B?7c/Ty9fB?= x=?utf-8?q?not?= =?unknown?q?kept?=\r\n",
    b"X-Raw:   spaced\xff value \r\n",
    b"Date: Tue, 2 Jan 2024 03:04:05 +0545 (NPT)\r\n",
    b"Resent-Date: 31 Feb 2024 10:00 +0000\r\n",
    b"Message-ID:   <first@example.com>\r\n",
    b"In-Reply-To: <a@example.com> (comment) <b@example.com>\r\n",
    b"References: <a@example.com>\r\n <b @example.com>\r\n",
    b"Resent-Message-ID: not an id\r\n",
    b"List-Unsubscribe: <mailto:leave@example.com?subject=bye>,\r\n <https://example.com/unsub> (web)\r\n",
    b"List-Post: NO (posting not allowed)\r\n",
    b"List-Id: Some List <list.example.com>\r\n",
    b"X-Multi: one\r\n",
    b"X-Multi: two\r\n",
    b"Comments: =?utf-8?q?caf=C3=A9?=\r\n",
    b"\r\n",
    b"body\r\n",
])


def test_raw_form_and_header_list():
    """[mail-4.1.2.1-raw] everything after the colon (leading space, folds) with NULs
    dropped and invalid UTF-8 as U+FFFD; [mail-4.1.3-headers] all fields in order."""
    parsed = parse(HEADERS)
    assert [name for name, _ in parsed.headers][:4] == ["Return-Path", "Received", "From", "To"]
    assert len(parsed.headers) == 19
    assert parsed.header_value("X-Raw", "Raw") == "   spaced\ufffd value "
    subject_raw = parsed.header_value("subject", "Raw")
    assert subject_raw.startswith(" =?iso-8859-1?q?") and "\r\n  folded " in subject_raw
    assert "\x00" not in subject_raw
    assert parsed.header_value("X-Multi", "Raw") == " two"
    assert parsed.header_value("X-Multi", "Raw", True) == [" one", " two"]
    assert parsed.header_value("X-Absent", "Raw") is None
    assert parsed.header_value("X-Absent", "Text", True) == []


def test_text_form_encoded_words():
    """[mail-4.1.2.2-text]: unfolded, encoded-words in several charsets decoded (the
    space between adjacent ones dropped), misplaced or unknown-charset ones kept, NFC."""
    parsed = parse(HEADERS)
    assert parsed.header_value("Subject", "Text") == "this is some text €  folded Москва x=?utf-8?q?not?= =?unknown?q?kept?="
    assert parsed.header_value("Comments", "Text") == "café"
    assert parsed.header_value("List-Id", "Text") == "Some List <list.example.com>"
    assert parsed.header_value("X-Raw", "Text") == "spaced\ufffd value "
    more = parse(crlf(
        "Subject: =?iso-2022-jp?B?GyRCJDMkcyRLJEEkTxsoQg==?= / =?shift_jis?B?g2WDWINn?="
        " / =?gb2312?B?1tDOxA==?= / =?utf-8?q?e=CC=81?=\n\nx"))
    assert more.header_value("Subject", "Text") == "こんにちは / テスト / 中文 / é"
    split = parse(crlf("Subject: =?utf-8?B?4oI=?= =?utf-8?B?rA==?=\n\nx"))  # "€" cut in two
    assert split.list_properties()["subject"] == "€"


def test_addresses_forms():
    """[mail-4.1.2.3-addresses] [mail-4.1.2.4-grouped]: groups, comments as names,
    quoted-pairs, encoded names; groups flattened or kept."""
    parsed = parse(HEADERS)
    assert parsed.header_value("From", "Addresses") == [{"name": "André Pirard", "email": "PIRARD@vm1.ulg.ac.be"}]
    to = [
        {"name": "Doe, Jane", "email": "jane@example.com"},
        {"name": "Bob Smith", "email": "bob@example.com"},
        {"name": "Eve (the) Listener", "email": "eve@example.com"},
        {"name": None, "email": "carol@example.com"},
    ]
    assert parsed.header_value("To", "Addresses") == to
    assert parsed.header_value("To", "GroupedAddresses") == [
        {"name": "Team", "addresses": to[:3]},
        {"name": None, "addresses": to[3:]},
        {"name": "Undisclosed", "addresses": []},
    ]
    assert parsed.header_value("Cc", "Addresses") == [
        {"name": "Москва", "email": "moscow@example.ru"},
        {"name": 'Quoted "Name"', "email": "q@example.com"},
    ]
    assert parsed.header_value("X-Multi", "Addresses", True) == [
        [{"name": None, "email": "one"}], [{"name": None, "email": "two"}],
    ]


@pytest.mark.parametrize(("value", "expected"), [
    ("test1@local>", [{"name": None, "email": "test1@local"}]),
    ("Ann <ann@example.com", [{"name": "Ann", "email": "ann@example.com"}]),
    ("John Doe john@example.com", [{"name": "John Doe", "email": "john@example.com"}]),
    ("a@example.com b@example.com", [{"name": None, "email": "a@example.com"}, {"name": None, "email": "b@example.com"}]),
    ("Pete(A \\) chap) <pete(his account)@silly.test(his host)>", [{"name": "Pete", "email": "pete@silly.test"}]),
    ('"unterminated <u@example.com>', [{"name": '"unterminated', "email": "u@example.com"}]),
    ("<@route.example:user@example.com>", [{"name": None, "email": "user@example.com"}]),
    ("Jöhn Dœ <jöhn@exämple.com>", [{"name": "Jöhn Dœ", "email": "jöhn@exämple.com"}]),
    (",,, ", []),
])
def test_addresses_best_effort(value, expected):
    """[mail-4.1.2.3-addresses] best effort for broken input, UTF-8 (RFC 6532) included."""
    parsed = parse(crlf(f"To: {value}\n\nx"))
    assert parsed.header_value("To", "Addresses") == expected


def test_message_ids_date_and_urls_forms():
    """[mail-4.1.2.5-messageIds] [mail-4.1.2.6-date] [mail-4.1.2.7-urls]."""
    parsed = parse(HEADERS)
    assert parsed.header_value("Message-ID", "MessageIds") == ["first@example.com"]
    assert parsed.header_value("In-Reply-To", "MessageIds") == ["a@example.com", "b@example.com"]
    assert parsed.header_value("References", "MessageIds") == ["a@example.com", "b@example.com"]
    assert parsed.header_value("Resent-Message-ID", "MessageIds") is None
    assert parsed.header_value("Date", "Date") == "2024-01-02T03:04:05+05:45"
    assert parsed.header_value("Resent-Date", "Date") is None  # 31 February
    assert parsed.header_value("List-Unsubscribe", "URLs") == [
        "mailto:leave@example.com?subject=bye", "https://example.com/unsub"]
    assert parsed.header_value("List-Post", "URLs") is None


@pytest.mark.parametrize(("value", "expected"), [
    ("Tue, 2 Jan 2024 03:04:05 +0100", "2024-01-02T03:04:05+01:00"),
    ("2 Jan 2024 03:04 -0330", "2024-01-02T03:04:00-03:30"),
    ("Tue, 02 Jan 24 03:04:05 GMT", "2024-01-02T03:04:05Z"),
    ("Tue, 2 Jan 1999 03:04:05 EST", "1999-01-02T03:04:05-05:00"),
    ("Thu, 13 Feb 1969 23:32 -0330 (Newfoundland Time)", "1969-02-13T23:32:00-03:30"),
    ("Fri, 21 Nov 1997 09(comment):   55  :  06 -0600", "1997-11-21T09:55:06-06:00"),
    ("Mon, 1 Jan 2024 10:00:00 -0000", "2024-01-01T10:00:00Z"),
    ("Mon, 1 Jan 2024 23:59:60 +0000", "2024-01-01T23:59:59Z"),
    ("Mon Jan  1 10:00:00 2024", "2024-01-01T10:00:00Z"),
    ("2024-01-02T03:04:05+02:00", "2024-01-02T03:04:05+02:00"),
    ("Tue, 2 Jan 2024 25:04:05 +0100", None),
    ("Tue, 2 Foo 2024 03:04:05 +0100", None),
    ("yesterday", None),
    ("", None),
])
def test_date_form(value, expected):
    """[mail-4.1.2.6-date] obsolete syntax accepted, the sender's offset kept, nonsense null."""
    assert parse(crlf(f"Date: {value}\n\nx")).header_value("Date", "Date") == expected


def test_header_property_syntax_and_forbidden_forms():
    """[mail-4.1.3-headerProp] ``header:{name}[:as{Form}][:all]`` and
    [mail-4.1.3-forbiddenForm] the forms each header allows."""
    assert parse_header_property("header:From:asAddresses:all") == ("From", "Addresses", True)
    assert parse_header_property("header:x-spam") == ("x-spam", "Raw", False)
    assert parse_header_property("header:List-Post:asURLs") == ("List-Post", "URLs", False)
    assert parse_header_property("header:Subject:all") == ("Subject", "Raw", True)
    for bad in ["header:", "header:From:all:asRaw", "header:From:asFoo", "header:Fr om",
                "header:From:asText:all:all", "From", "header:From:asaddresses"]:
        with pytest.raises(ValueError):
            parse_header_property(bad)
    assert form_allowed("From", "Addresses") and form_allowed("resent-bcc", "GroupedAddresses")
    assert not form_allowed("From", "Date") and not form_allowed("From", "Text")
    assert not form_allowed("Subject", "Addresses") and form_allowed("subject", "Text")
    assert form_allowed("List-Id", "Text") and not form_allowed("List-Post", "Text")
    assert not form_allowed("Received", "Text") and form_allowed("Received", "Raw")
    assert form_allowed("X-Anything", "Date") and form_allowed("X-Anything", "URLs")
    assert form_allowed("Content-Type", "Text")
    with pytest.raises(ValueError):
        parse(HEADERS).header_value("From", "Date")


def test_list_properties_exact_values():
    """[mail-4.1.3-convenience]: the convenience properties are the last occurrence of
    their header in the given form; absent headers give null."""
    props = parse(HTML_WITH_IMAGE).list_properties()
    assert props == {
        "messageId": ["pic-1@example.com"],
        "inReplyTo": None,
        "references": None,
        "sender": None,
        "from": [{"name": "Ann Example", "email": "ann@example.com"}],
        "to": [{"name": None, "email": "bob@example.org"}],
        "cc": None,
        "bcc": None,
        "replyTo": None,
        "subject": "Pictures",
        "sentAt": "2024-01-02T03:04:05+01:00",
        "hasAttachment": False,
        "preview": "Look at this café!",
    }


def test_threading_keys():
    parsed = parse(crlf("""\
Message-ID: <c@example.com>
In-Reply-To: <b@example.com>
References: <a@example.com> <b@example.com>
Subject: Re: [list] Fwd: Lunch?

x"""))
    assert parsed.threading_keys() == (["c@example.com", "b@example.com", "a@example.com"], "lunch?")


@pytest.mark.parametrize(("subject", "expected"), [
    ("Re: Lunch", "lunch"),
    ("RE: re: Fwd: FW: lunch", "lunch"),
    ("[List] Re: [Other] lunch (fwd)", "lunch"),
    ("Re[2]: Lunch", "lunch"),
    ("[Fwd: Re: Lunch]", "lunch"),
    ("AW: SV:  Lunch   plans ", "lunch plans"),
    ("[only a tag]", "[only a tag]"),
    ("Report: numbers", "report: numbers"),
    ("", ""),
    (None, ""),
])
def test_base_subject(subject, expected):
    """RFC 5256 base subject for threading and the subject sort [mail-4.4.2-sort]."""
    assert base_subject(subject) == expected


# -- bodyValues and preview ------------------------------------------------------------

VALUES = crlf("""\
Content-Type: multipart/mixed; boundary=v

--v
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe,=20
line two=
 joined
--v
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

""" + base64.b64encode("Привет\r\nмир".encode()).decode() + """
--v
Content-Type: text/plain; charset=x-no-such-charset

plain ascii
--v
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: x-made-up

as is
--v
Content-Type: text/html; charset=windows-1251
Content-Transfer-Encoding: base64

""" + base64.b64encode("<p>Привет</p>".encode("cp1251")).decode() + """
--v
Content-Type: application/octet-stream

binary
--v--
""")


def test_body_values_decoding():
    """[mail-4.1.4-bodyValues]: transfer and charset decoding, CRLF -> LF, unknown
    charset or CTE flagged, malformed octets as U+FFFD."""
    parsed = parse(VALUES)
    assert parsed.body_value("1") == {"value": "Grüße, \nline two joined", "isEncodingProblem": False, "isTruncated": False}
    assert parsed.body_value("2")["value"] == "Привет\nмир"
    assert parsed.body_value("3") == {"value": "plain ascii", "isEncodingProblem": True, "isTruncated": False}
    assert parsed.body_value("4") == {"value": "as is", "isEncodingProblem": True, "isTruncated": False}
    assert parsed.body_value("5")["value"] == "<p>Привет</p>"
    broken = parse(b"Content-Type: text/plain; charset=utf-8\r\n\r\nbad \xff\xfe octets")
    assert broken.body_value("1") == {"value": "bad \ufffd\ufffd octets", "isEncodingProblem": True, "isTruncated": False}
    with pytest.raises(KeyError):
        parsed.body_value("99")


def test_body_values_selection():
    """[mail-4.2-fetchValues]: text/* parts of textBody, of htmlBody, or of the whole tree."""
    parsed = parse(HTML_WITH_IMAGE)
    assert list(parsed.body_values(True, False, False)) == ["1"]
    assert list(parsed.body_values(False, True, False)) == ["2"]
    assert list(parsed.body_values(True, True, False)) == ["1", "2"]
    assert list(parsed.body_values(False, False, True)) == ["1", "2"]  # the image is not text
    assert list(parse(VALUES).body_values(False, False, True)) == ["1", "2", "3", "4", "5"]
    assert parsed.body_values(False, False, False) == {}


def test_max_body_value_bytes():
    """[mail-4.2-maxBodyValueBytes]: at most N octets of UTF-8, never mid-character,
    never inside an HTML tag, isTruncated set."""
    parsed = parse(crlf("""\
Content-Type: multipart/alternative; boundary=t

--t
Content-Type: text/plain; charset=utf-8

ab€cd
--t
Content-Type: text/html; charset=utf-8

<p>Hello <a href="https://example.com/">there</a></p>
--t--
"""))
    assert parsed.body_value("1", 4) == {"value": "ab", "isEncodingProblem": False, "isTruncated": True}
    assert parsed.body_value("1", 5)["value"] == "ab€"
    assert parsed.body_value("1", 7) == {"value": "ab€cd", "isEncodingProblem": False, "isTruncated": False}
    assert parsed.body_value("2", 20) == {"value": "<p>Hello ", "isEncodingProblem": False, "isTruncated": True}
    values = parsed.body_values(True, True, False, 3)
    assert values["1"]["value"] == "ab" and values["2"]["value"] == "<p>"


def test_preview_from_html_and_length_limit():
    """[mail-4.1.4-preview]: plain text of the first text part (HTML converted), whitespace
    collapsed, at most 256 characters."""
    long_html = "<html><head><title>T</title><style>x{}</style></head><body>" + (
        "<p>Word &amp; word</p>\n" * 200) + "</body></html>"
    parsed = parse(crlf("Content-Type: text/html\n\n") + long_html.encode())
    preview = parsed.list_properties()["preview"]
    assert len(preview) == 256 and preview.startswith("Word & word Word & word")
    assert parse(crlf("Subject: x\n\n   \n  spaced\n\n\tout  ")).list_properties()["preview"] == "spaced out"
    assert parse(crlf("Content-Type: image/png\n\nxx")).list_properties()["preview"] == ""
    assert html_to_text("<p>a<br>b</p><!-- c --><script>d</script><div>e&nbsp;&lt;f&gt;</div>") == "a\nb\n\ne <f>"


# -- robustness on hand-made damage ----------------------------------------------------


def test_bare_lf_missing_boundaries_and_no_headers():
    parsed = parse(b"Subject: lf only\nContent-Type: multipart/mixed; boundary=q\n\n--q\n\nfirst\n--q\n\nsecond")
    assert parsed.list_properties()["subject"] == "lf only"
    assert [parsed.part_content(p) for p in ("1", "2")] == [b"first", b"second"]  # no close delimiter
    orphan = parse(crlf("Content-Type: multipart/mixed; boundary=never\n\ntext without parts"))
    assert orphan.body.type == "multipart/mixed" and ids(orphan.text_body) == ["1"]
    assert orphan.body_value("1")["value"] == "text without parts"
    assert parse(crlf("Content-Type: multipart/mixed\n\nno boundary param")).body_value("1")["value"] == "no boundary param"
    bare = parse(b"just some text, no header block at all")
    assert bare.headers == [] and bare.body_value("1")["value"] == "just some text, no header block at all"
    assert parse(b"").list_properties()["preview"] == ""


def test_boundary_prefix_clash_and_nested_reuse():
    """A delimiter must match the whole boundary: ``--ab`` is not a delimiter of ``a``."""
    parsed = parse(crlf("""\
Content-Type: multipart/mixed; boundary=a

--a
Content-Type: multipart/mixed; boundary=ab

--ab

inner
--ab--
--a

outer
--a--
"""))
    assert [parsed.part_content(p.part_id) for p in parsed.leaves()] == [b"inner", b"outer"]


def test_deep_nesting_is_capped():
    depth = 300
    head = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(depth))
    parsed = parse(head + b"\r\ninnermost")
    levels = 0
    part = parsed.body
    while part.sub_parts:
        part = part.sub_parts[0]
        levels += 1
    assert levels == 50 and part.part_id == "1"
    msgspec.json.encode(parsed.part_json(parsed.body, list(BODY_PROPERTIES), blob_id))


def test_mbox_from_line_nul_and_eai_headers():
    """[mail-4.8-eai] UTF-8 (RFC 6532) headers work; an mbox ``From `` line is skipped."""
    parsed = parse("From someone@example.com Tue Jan  2 03:04:05 2024\nFrom: Jöhn <jöhn@exämple.com>\n"
                   "Subject: Grüße \x00aus Köln\n\nBody \x00with NUL".encode())
    props = parsed.list_properties()
    assert props["from"] == [{"name": "Jöhn", "email": "jöhn@exämple.com"}]
    assert props["subject"] == "Grüße aus Köln"
    assert props["preview"] == "Body \x00with NUL"


# -- building messages (Email/set create) -----------------------------------------------


def blobs(**contents: bytes):
    return lambda blob: contents.get(blob)


def assert_well_formed(raw: bytes) -> None:
    """CRLF only, no line over 998 octets."""
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_build_text_only_with_generated_headers():
    """[mail-4.6-generatedHeaders] Message-ID and Date are added, MIME-Version too."""
    raw = build_message({
        "mailboxIds": {"m1": True}, "keywords": {"$draft": True},
        "from": [{"name": "Ann", "email": "ann@example.com"}],
        "subject": "Hello",
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "bodyValues": {"t": {"value": "Hi Bob,\nsee you.\n"}},
    }, blobs(), NOW, domain="mail.example")
    assert_well_formed(raw)
    assert re.search(rb"^Message-ID: <[0-9a-f]{32}@mail\.example>\r$", raw, re.M)
    assert b"\r\nDate: Mon, 06 May 2024 07:08:09 +0000\r\n" in b"\r\n" + raw
    assert b"\r\nMIME-Version: 1.0\r\n" in raw
    parsed = parse(raw)
    props = parsed.list_properties()
    assert props["subject"] == "Hello" and props["sentAt"] == "2024-05-06T07:08:09Z"
    assert props["from"] == [{"name": "Ann", "email": "ann@example.com"}]
    assert parsed.body.type == "text/plain" and parsed.body.charset == "utf-8"
    assert parsed.body_value("1")["value"] == "Hi Bob,\nsee you.\n"


def test_build_round_trip_full():
    """text + HTML + inline image + attachments: alternative/related/mixed, RFC 2047 for
    non-ASCII header text, RFC 2231 for non-ASCII filenames; parse gives it all back."""
    long_line = "x" * 2000
    email = {
        "from": [{"name": "Zoë Ångström", "email": "zoe@example.com"}],
        "to": [{"name": "Smith, John (Sales)", "email": "john@example.com"}, {"name": None, "email": "b@example.org"}],
        "cc": [{"name": "日本語の名前", "email": "nihon@example.jp"}],
        "subject": "Über   the 🌍 — a very long subject line that goes on and on and on to force folding here",
        "sentAt": "2024-01-02T03:04:05+05:30",
        "messageId": ["given@example.com"],
        "inReplyTo": ["parent@example.com"],
        "references": ["root@example.com", "parent@example.com"],
        "header:X-Mailer": " jmapcore test",
        "header:List-Unsubscribe:asURLs": ["mailto:u@example.com"],
        "header:Keywords:asText": "naïve",
        "textBody": [{"partId": "t"}],
        "htmlBody": [{"partId": "h"}],
        "attachments": [
            {"blobId": "img", "type": "image/png", "cid": "logo@example.com", "disposition": "inline", "name": "logo.png"},
            {"blobId": "pdf", "type": "application/pdf", "disposition": "attachment",
             "name": "Rechnung für März – 2024 – mit einem recht langen Namen.pdf"},
            {"blobId": "txt", "type": "text/plain", "disposition": "attachment", "name": "a.txt", "charset": "utf-8"},
        ],
        "bodyValues": {
            "t": {"value": "Grüße aus Köln\n" + long_line + "\nend", "isTruncated": False},
            "h": {"value": "<p>Grüße <img src=\"cid:logo@example.com\"></p>"},
        },
    }
    contents = {"img": b"\x89PNG\r\n\x1a\n\x00\x01", "pdf": b"%PDF-1.4\n" + bytes(range(256)), "txt": "naïve\n".encode()}
    raw = build_message(email, contents.get, NOW)
    assert_well_formed(raw)
    assert b"filename*0*=utf-8''Rechnung%20f%C3%BCr" in raw
    parsed = parse(raw)
    root = parsed.body
    assert root.type == "multipart/mixed"
    assert [p.type for p in root.sub_parts] == ["multipart/alternative", "application/pdf", "text/plain"]
    assert [p.type for p in root.sub_parts[0].sub_parts] == ["text/plain", "multipart/related"]
    props = parsed.list_properties()
    assert props["from"] == email["from"]
    assert props["to"] == email["to"] and props["cc"] == email["cc"]
    assert props["subject"] == email["subject"]
    assert props["sentAt"] == "2024-01-02T03:04:05+05:30"
    assert (props["messageId"], props["inReplyTo"], props["references"]) == (
        ["given@example.com"], ["parent@example.com"], ["root@example.com", "parent@example.com"])
    assert parsed.header_value("X-Mailer", "Raw") == " jmapcore test"
    assert parsed.header_value("List-Unsubscribe", "URLs") == ["mailto:u@example.com"]
    assert parsed.header_value("Keywords", "Text") == "naïve"
    assert props["hasAttachment"] is True
    assert [parsed.body_value(p.part_id)["value"] for p in parsed.text_body] == [email["bodyValues"]["t"]["value"]]
    assert [parsed.body_value(p.part_id)["value"] for p in parsed.html_body] == [email["bodyValues"]["h"]["value"]]
    got = [(p.type, p.name, p.disposition, p.cid, parsed.part_content(p.part_id)) for p in parsed.attachments]
    assert got == [
        ("image/png", "logo.png", "inline", "logo@example.com", contents["img"]),
        ("application/pdf", email["attachments"][1]["name"], "attachment", None, contents["pdf"]),
        ("text/plain", "a.txt", "attachment", None, contents["txt"]),
    ]


def test_build_from_body_structure_and_grouped_headers():
    email = {
        "header:To:asGroupedAddresses": [
            {"name": "Friends", "addresses": [{"name": "A", "email": "a@example.com"}]},
            {"name": None, "addresses": [{"name": None, "email": "c@example.com"}]},
            {"name": "Nobody", "addresses": []},
        ],
        "header:Comments:asText:all": ["first", "second"],
        "bodyStructure": {
            "type": "multipart/mixed",
            "header:X-Part": " root header",
            "subParts": [
                {"partId": "1", "type": "text/plain", "language": ["en"], "location": "http://example.com/a"},
                {"blobId": "b", "type": "message/rfc822", "disposition": "attachment"},
            ],
        },
        "bodyValues": {"1": {"value": "hello"}},
    }
    message = b"Subject: inner\n\nforwarded body\n"
    raw = build_message(email, blobs(b=message), NOW)
    assert_well_formed(raw)
    parsed = parse(raw)
    assert parsed.header_value("To", "GroupedAddresses") == email["header:To:asGroupedAddresses"]
    assert parsed.header_value("Comments", "Text", True) == ["first", "second"]
    assert parsed.header_value("X-Part", "Raw") == " root header"
    assert [(p.type, p.language, p.location) for p in parsed.leaves()] == [
        ("text/plain", ["en"], "http://example.com/a"), ("message/rfc822", None, None)]
    assert parsed.part_content("2") == message.replace(b"\n", b"\r\n")


@pytest.mark.parametrize(("email", "bad"), [
    ({"headers": [], "textBody": [{"partId": "1"}], "bodyValues": {"1": {"value": ""}}}, "headers"),
    ({"from": [{"email": "a@b"}], "header:From:asAddresses": [{"email": "c@d"}]}, "header:From:asAddresses"),
    ({"header:Content-Type": " text/plain"}, "header:Content-Type"),
    ({"header:From:asDate": "2024-01-01T00:00:00Z"}, "header:From:asDate"),
    ({"header:From:asFoo": "x"}, "header:From:asFoo"),
    ({"subject": 5}, "subject"),
    ({"sentAt": "yesterday"}, "sentAt"),
    ({"from": [{"name": "x", "email": "a b@c"}]}, "from"),
    ({"messageId": ["<bracketed>"]}, "messageId"),
    ({"preview": "x"}, "preview"),
    ({"bodyStructure": {"partId": "1"}, "textBody": [{"partId": "1"}], "bodyValues": {"1": {"value": ""}}}, "textBody"),
    ({"textBody": [{"partId": "1", "type": "text/html"}], "bodyValues": {"1": {"value": ""}}}, "textBody/0/type"),
    ({"htmlBody": [{"partId": "1"}, {"partId": "2"}], "bodyValues": {"1": {"value": ""}, "2": {"value": ""}}}, "htmlBody"),
    ({"textBody": [{"partId": "missing"}]}, "textBody/0/partId"),
    ({"textBody": [{"partId": "1", "charset": "utf-8"}], "bodyValues": {"1": {"value": ""}}}, "textBody/0/charset"),
    ({"textBody": [{"partId": "1", "size": 3}], "bodyValues": {"1": {"value": ""}}}, "textBody/0/size"),
    ({"textBody": [{"partId": "1", "blobId": "b"}], "bodyValues": {"1": {"value": ""}}}, "textBody/0/partId"),
    ({"attachments": [{"type": "image/png"}]}, "attachments/0/blobId"),
    ({"attachments": [{"blobId": "b", "headers": []}]}, "attachments/0/headers"),
    ({"attachments": [{"blobId": "b", "header:Content-Transfer-Encoding": " base64"}]},
     "attachments/0/header:Content-Transfer-Encoding"),
    ({"attachments": [{"blobId": "b", "type": "image/png", "header:Content-Type": " image/gif"}]}, "attachments/0/type"),
    ({"textBody": [{"partId": "1"}], "bodyValues": {"1": {"value": "x", "isTruncated": True}}}, "bodyValues/1/isTruncated"),
    ({"bodyStructure": {"type": "multipart/mixed", "subParts": []}}, "bodyStructure/subParts"),
    ({"subject": "s", "bodyStructure": {"partId": "1", "header:Subject": " t"}, "bodyValues": {"1": {"value": ""}}},
     "bodyStructure/header:Subject"),
])
def test_build_create_rules(email, bad):
    """[mail-4.6-createRules]: each violation is invalidProperties naming the property."""
    with pytest.raises(BuildError) as raised:
        build_message(email, blobs(b=b"x"), NOW)
    assert raised.value.kind == "invalidProperties"
    assert bad in raised.value.properties


def test_build_blob_not_found_and_too_large():
    """[mail-4.6-errors] blobNotFound lists every missing blob; size limits -> tooLarge."""
    email = {"attachments": [{"blobId": "gone1"}, {"blobId": "here"}, {"blobId": "gone2"}]}
    with pytest.raises(BuildError) as raised:
        build_message(email, blobs(here=b"x"), NOW)
    assert raised.value.kind == "blobNotFound" and raised.value.not_found == ["gone1", "gone2"]
    with pytest.raises(BuildError) as raised:
        build_message({"attachments": [{"blobId": "here"}]}, blobs(here=b"x" * 100), NOW, max_attachments_size=50)
    assert raised.value.kind == "tooLarge"
    with pytest.raises(BuildError) as raised:
        build_message({"subject": "x"}, blobs(), NOW, max_size=100)
    assert raised.value.kind == "tooLarge"


def test_build_empty_email_is_a_valid_message():
    raw = build_message({}, blobs(), NOW)
    parsed = parse(raw)
    assert parsed.body.type == "text/plain" and parsed.body_value("1")["value"] == ""
    assert parsed.list_properties()["messageId"]


printable = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=120)


@settings(max_examples=150, deadline=None)
@given(subject=printable, name=printable, text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_build_parse_round_trip_property(subject, name, text):
    """Whatever the text, parse(build(x)) gives back subject, names and body text."""
    import unicodedata

    email = {
        "subject": subject,
        "from": [{"name": name, "email": "someone@example.com"}],
        "textBody": [{"partId": "1"}],
        "bodyValues": {"1": {"value": text}},
    }
    raw = build_message(email, blobs(), NOW)
    assert_well_formed(raw)
    props = parse(raw).list_properties()
    assert props["subject"] == unicodedata.normalize("NFC", subject).strip(" \t")
    expected_name = unicodedata.normalize("NFC", name).strip() or None
    assert props["from"] == [{"name": expected_name, "email": "someone@example.com"}]
    normalised = re.sub(r"\r\n|\r|\n", "\n", text)
    assert parse(raw).body_value("1") == {"value": normalised, "isEncodingProblem": False, "isTruncated": False}


def test_build_keeps_header_lines_under_998_octets():
    """A long Raw value is folded at whitespace (unfolding gives it back); an unbreakable
    one, or an address longer than a line, is invalidProperties."""
    value = " " + " ".join(["wörd"] * 600)
    raw = build_message({"header:X-Long": value}, blobs(), NOW)
    assert_well_formed(raw)
    assert parse(raw).header_value("X-Long", "Raw").replace("\r\n", "") == value
    for email, bad in [({"header:X-Long": " " + "a" * 2000}, "header:X-Long"),
                       ({"to": [{"email": "a" * 1000 + "@example.com"}]}, "to")]:
        with pytest.raises(BuildError) as raised:
            build_message(email, blobs(), NOW)
        assert raised.value.properties == [bad]
