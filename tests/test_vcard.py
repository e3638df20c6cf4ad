"""vCard ↔ JSContact (RFC 9555) in jmap_contacts.vcard: vCard 4.0, 3.0 and 2.1 in, vCard 4.0
out, round trips, and the damaged files a real export contains.  Pure functions: no server."""

from __future__ import annotations

import base64
import copy
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

try:
    from jmap_contacts import vcard
except ImportError:  # the package is not installed (yet): straight from the tree
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))
    from jmap_contacts import vcard


def one(text: str | bytes) -> vcard.ParsedCard:
    parsed = vcard.read_vcards(text.encode() if isinstance(text, str) else text)
    assert len(parsed.cards) == 1, parsed
    return parsed.cards[0]


def crlf(text: str) -> str:
    return "".join(line.strip() + "\r\n" for line in text.strip().splitlines())


def normal(card: dict[str, Any]) -> dict[str, Any]:
    """The Card with what JSContact leaves unordered put in one order: the components of a
    name or address whose isOrdered is false (vCard cannot carry their order without JSCOMPS)."""
    card = copy.deepcopy(card)
    holders = [card.get("name") or {}] + list((card.get("addresses") or {}).values())
    for holder in holders:
        if "components" in holder and not holder.get("isOrdered"):
            holder["components"].sort(key=lambda c: (c["kind"], c["value"]))
    return card


def round_trip(card: dict[str, Any]) -> dict[str, Any]:
    parsed = one(vcard.card_to_vcard(card))
    assert parsed.error is None
    return parsed.card


V4 = crlf("""
BEGIN:VCARD
VERSION:4.0
UID:urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6
KIND:individual
FN:Dr. John Philip Stevenson Jr.
N;SORT-AS="Stevenson,John Philip":Stevenson;John;Philip,Paul;Dr.;Jr.,M.D.;;Jr.
NICKNAME;TYPE=work:Johnny
EMAIL;TYPE=work;PREF=1:jqpublic@xyz.example.com
EMAIL:jane_doe@example.com
TEL;VALUE=uri;PREF=1;TYPE="voice,home":tel:+1-555-555-5555;ext=5555
TEL;TYPE=cell,text:+33 6 12 34 56 78
ADR;TYPE=work;CC=US;LABEL="54321 Oak St\\nReston":;;54321 Oak St;Reston;VA;20190;USA
ORG;SORT-AS="ABC":ABC\\, Inc.;North American Division;Marketing
TITLE:Research Scientist
ROLE:Project Leader
IMPP;PREF=1:xmpp:alice@example.com
SOCIALPROFILE;SERVICE-TYPE=Mastodon:https://example.com/@foo
URL:https://example.org/~jqp
NOTE:Office hours are from 0800 to 1715 EST\\, Mon-Fri.\\nAsk first.
BDAY:19531015
ANNIVERSARY:--0201
CATEGORIES:internet,IETF,Information Technology
LANG;TYPE=work;PREF=1:en
PRODID:ACME Contacts 1.2
REV:19951031T222710Z
END:VCARD
""")


def test_vcard4_properties_convert_as_rfc9555_maps_them() -> None:
    """[jscontact-2.1-metadata] [jscontact-2.2.1-name] [jscontact-2.2.2-nicknames]
    [jscontact-2.2.3-organizations] [jscontact-2.2.5-titles] [jscontact-2.3-contact]
    [jscontact-2.5-addresses] [jscontact-2.8-additional] [jscontact-1.4.5-utcDateTime]"""
    parsed = one(V4)
    card = parsed.card
    assert parsed.problems == [] and parsed.error is None
    assert card["@type"] == "Card" and card["version"] == "1.0"
    assert card["uid"] == "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    assert card["kind"] == "individual"
    assert card["name"]["full"] == "Dr. John Philip Stevenson Jr."
    # RFC 9555 figure 13: the generation also in the suffixes is not a credential
    assert card["name"]["components"] == [
        {"kind": "surname", "value": "Stevenson"},
        {"kind": "given", "value": "John"},
        {"kind": "given2", "value": "Philip"},
        {"kind": "given2", "value": "Paul"},
        {"kind": "title", "value": "Dr."},
        {"kind": "credential", "value": "M.D."},
        {"kind": "generation", "value": "Jr."},
    ]
    assert card["name"]["sortAs"] == {"surname": "Stevenson", "given": "John Philip"}
    assert list(card["nicknames"].values()) == [{"name": "Johnny", "contexts": {"work": True}}]
    assert list(card["emails"].values()) == [
        {"address": "jqpublic@xyz.example.com", "contexts": {"work": True}, "pref": 1},
        {"address": "jane_doe@example.com"},
    ]
    phones = list(card["phones"].values())
    assert phones[0] == {"number": "tel:+1-555-555-5555;ext=5555", "contexts": {"private": True},
                         "pref": 1, "features": {"voice": True}}
    assert phones[1] == {"number": "+33 6 12 34 56 78", "features": {"mobile": True, "text": True}}
    (address,) = card["addresses"].values()
    assert address == {
        "components": [
            {"kind": "name", "value": "54321 Oak St"}, {"kind": "locality", "value": "Reston"},
            {"kind": "region", "value": "VA"}, {"kind": "postcode", "value": "20190"},
            {"kind": "country", "value": "USA"},
        ],
        "full": "54321 Oak St\nReston", "countryCode": "US", "contexts": {"work": True},
    }
    assert list(card["organizations"].values()) == [{
        "name": "ABC, Inc.", "units": [{"name": "North American Division"}, {"name": "Marketing"}],
        "sortAs": "ABC",
    }]
    assert sorted((t["kind"], t["name"]) for t in card["titles"].values()) == [
        ("role", "Project Leader"), ("title", "Research Scientist")]
    services = list(card["onlineServices"].values())
    assert {"uri": "xmpp:alice@example.com", "vCardName": "impp", "pref": 1} in services
    assert {"uri": "https://example.com/@foo", "service": "Mastodon"} in services
    assert list(card["links"].values()) == [{"uri": "https://example.org/~jqp"}]
    assert list(card["notes"].values()) == [{"note": "Office hours are from 0800 to 1715 EST, Mon-Fri.\nAsk first."}]
    dates = {a["kind"]: a["date"] for a in card["anniversaries"].values()}
    assert dates == {"birth": {"year": 1953, "month": 10, "day": 15}, "wedding": {"month": 2, "day": 1}}
    assert card["keywords"] == {"internet": True, "IETF": True, "Information Technology": True}
    assert list(card["preferredLanguages"].values()) == [{"language": "en", "contexts": {"work": True}, "pref": 1}]
    assert card["prodId"] == "ACME Contacts 1.2"
    assert card["updated"] == "1995-10-31T22:27:10Z"
    assert "vCardProps" not in card


def test_map_keys_are_valid_ids_and_prop_id_is_kept() -> None:
    """[jscontact-1.4.1-id] PROP-ID (RFC 9554) becomes the key; otherwise keys are made."""
    card = one(crlf("""
        BEGIN:VCARD
        VERSION:4.0
        FN:A
        TEL;PROP-ID=PHONE-A:+1 555
        TEL:+1 556
        TEL;PROP-ID=bad/id:+1 557
        END:VCARD""")).card
    assert list(card["phones"]) == ["PHONE-A", "p1", "p2"]


def test_vcard3_from_an_address_book_export() -> None:
    """vCard 3.0 as Apple Contacts and Google write it: TYPE=PREF, INTERNET, CELL, grouped
    X-ABLabel, X-AIM, inline base64 PHOTO, ISO dates, a group card the Apple way."""
    parsed = vcard.read_vcards(crlf("""
        BEGIN:VCARD
        VERSION:3.0
        PRODID:-//Apple Inc.//iPhone OS 17.0//EN
        N:Müller;Jürgen;;;
        FN:Jürgen Müller
        EMAIL;type=INTERNET;type=HOME;type=pref:juergen@example.de
        item1.TEL;type=CELL;type=VOICE:+49 170 1234567
        item1.X-ABLabel:Handy
        item2.ADR;type=WORK:;;Hauptstr. 1;Berlin;;10115;Germany
        item2.X-ABADR:de
        X-AIM;type=HOME:juergen99
        PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQ
        BDAY:1980-02-03
        REV:2023-05-06T07:08:09Z
        END:VCARD
        BEGIN:VCARD
        VERSION:3.0
        N:Family;;;;
        FN:Family
        X-ADDRESSBOOKSERVER-KIND:group
        X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:0001
        X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:0002
        UID:group-1
        END:VCARD""").encode())
    person, group = (c.card for c in parsed.cards)
    assert person["name"]["full"] == "Jürgen Müller"
    assert list(person["emails"].values()) == [
        {"address": "juergen@example.de", "contexts": {"private": True}, "pref": 1}]
    assert list(person["phones"].values()) == [
        {"number": "+49 170 1234567", "features": {"mobile": True, "voice": True}, "label": "Handy"}]
    assert list(person["onlineServices"].values()) == [
        {"service": "AIM", "user": "juergen99", "vCardName": "x-aim", "contexts": {"private": True}}]
    assert list(person["media"].values()) == [
        {"kind": "photo", "uri": "data:image/jpeg;base64,/9j/4AAQ", "mediaType": "image/jpeg"}]
    assert list(person["anniversaries"].values()) == [{"kind": "birth", "date": {"year": 1980, "month": 2, "day": 3}}]
    assert person["updated"] == "2023-05-06T07:08:09Z"
    assert person["vCardProps"] == [["x-abadr", {"group": "item2"}, "unknown", "de"]]
    assert person["uid"].startswith("urn:uuid:")  # made, as RFC 9555 §2.1.1 asks
    assert group["kind"] == "group"
    assert group["members"] == {"urn:uuid:0001": True, "urn:uuid:0002": True}


def test_vcard21_quoted_printable_in_latin1() -> None:
    data = (b"BEGIN:VCARD\r\nVERSION:2.1\r\n"
            b"N;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:M=FCller;J=\r\n=FCrgen\r\n"
            b"TEL;HOME;VOICE:+49 30 123\r\nEND:VCARD\r\n")
    card = one(data).card
    assert card["name"]["components"] == [{"kind": "surname", "value": "Müller"}, {"kind": "given", "value": "Jürgen"}]
    assert list(card["phones"].values()) == [
        {"number": "+49 30 123", "contexts": {"private": True}, "features": {"voice": True}}]


def test_groups_kind_and_members() -> None:
    """[jscontact-2.1-metadata] KIND:group and MEMBER (RFC 9555 §2.10.2), and back."""
    card = one(crlf("""
        BEGIN:VCARD
        VERSION:4.0
        KIND:group
        FN:The Doe family
        UID:urn:uuid:ab4310aa-fa43-11e9-8f0b-362b9e155667
        MEMBER:urn:uuid:03a0e51f-d1aa-4385-8a53-e29025acd8af
        MEMBER:urn:uuid:b8767877-b4a1-4c70-9acc-505d3819e519
        END:VCARD""")).card
    assert card["kind"] == "group"
    assert card["members"] == {"urn:uuid:03a0e51f-d1aa-4385-8a53-e29025acd8af": True,
                               "urn:uuid:b8767877-b4a1-4c70-9acc-505d3819e519": True}
    assert round_trip(card) == card


def test_unknown_vcard_properties_are_kept_in_vcardprops_and_written_back() -> None:
    parsed = one(crlf("""
        BEGIN:VCARD
        VERSION:4.0
        FN:A
        GENDER:M
        item1.X-FOO;X-BAR=Hello:World!
        CLIENTPIDMAP:1;urn:uuid:3df403f4-5924-4bb7-b077-3c711d9eb34b
        EMAIL;X-TRUST=high:a@example.com
        END:VCARD"""))
    card = parsed.card
    assert card["vCardProps"] == [
        ["gender", {}, "unknown", "M"],
        ["x-foo", {"x-bar": "Hello", "group": "item1"}, "unknown", "World!"],
        ["clientpidmap", {}, "unknown", "1;urn:uuid:3df403f4-5924-4bb7-b077-3c711d9eb34b"],
    ]
    assert list(card["emails"].values()) == [{"address": "a@example.com", "vCardParams": {"x-trust": "high"}}]
    assert "vCard properties without a JSContact counterpart kept in vCardProps: 3" in parsed.problems
    text = vcard.card_to_vcard(card)
    assert "item1.X-FOO;X-BAR=Hello:World!\r\n" in text
    assert "GENDER:M\r\n" in text
    assert "EMAIL;PROP-ID=e1;X-TRUST=high:a@example.com\r\n" in text
    assert round_trip(card) == card


RICH: dict[str, Any] = {
    "@type": "Card",
    "version": "1.0",
    "uid": "urn:uuid:5e2c9d3a-1111-4b7f-9a2e-123456789abc",
    "kind": "individual",
    "language": "en",
    "prodId": "jmapcore test",
    "created": "2024-01-02T03:04:05Z",
    "updated": "2024-06-07T08:09:10Z",
    "name": {
        "components": [
            {"kind": "title", "value": "Prof."}, {"kind": "given", "value": "Ana"},
            {"kind": "given2", "value": "María"}, {"kind": "surname", "value": "García"},
            {"kind": "surname2", "value": "López"}, {"kind": "credential", "value": "PhD"},
            {"kind": "generation", "value": "III"},
        ],
        "full": "Prof. Ana María García López, PhD",
        "sortAs": {"surname": "Garcia"},
    },
    "nicknames": {"nick": {"name": "Anita", "contexts": {"private": True}}},
    "emails": {
        "e1": {"address": "ana@example.com", "contexts": {"work": True}, "pref": 1, "label": "office"},
        "e2": {"address": "ana.home@example.net"},
    },
    "phones": {
        "p1": {"number": "tel:+34-91-123-4567", "features": {"voice": True, "fax": True}, "contexts": {"work": True}},
        "p2": {"number": "+34 600 000 000", "features": {"mobile": True}, "pref": 2},
    },
    "addresses": {
        "home": {
            "components": [
                {"kind": "number", "value": "12"}, {"kind": "name", "value": "Calle Mayor"},
                {"kind": "floor", "value": "3"}, {"kind": "locality", "value": "Madrid"},
                {"kind": "postcode", "value": "28013"}, {"kind": "country", "value": "Spain"},
            ],
            "countryCode": "ES", "coordinates": "geo:40.4168,-3.7038", "timeZone": "Europe/Madrid",
            "contexts": {"private": True},
        },
        "work": {
            "components": [{"kind": "postOfficeBox", "value": "PO 7"}, {"kind": "locality", "value": "Sevilla"}],
            "full": "PO 7\nSevilla", "contexts": {"work": True, "billing": True},
        },
    },
    "organizations": {"org": {"name": "Universidad; Central", "units": [{"name": "Física"}]}},
    "titles": {
        "t1": {"name": "Professor", "kind": "title", "organizationId": "org"},
        "t2": {"name": "Dean, acting", "kind": "role"},
    },
    "onlineServices": {
        "x": {"uri": "xmpp:ana@example.com", "vCardName": "impp", "pref": 1},
        "m": {"service": "Mastodon", "uri": "https://social.example/@ana"},
        "u": {"service": "Signal", "user": "ana.42"},
    },
    "notes": {"n1": {"note": "Line one;\nline two, with \\ a backslash", "created": "2024-02-03T04:05:06Z",
                     "author": {"name": "Bob"}}},
    "anniversaries": {
        "b": {"kind": "birth", "date": {"year": 1970, "month": 12, "day": 24}, "place": {"full": "Toledo"}},
        "w": {"kind": "wedding", "date": {"@type": "Timestamp", "utc": "1999-06-05T14:00:00Z"}},
        "d": {"kind": "death", "date": {"year": 2090}},
    },
    "keywords": {"colleague": True, "a,b": True},
    "links": {"l": {"uri": "https://ana.example"}, "c": {"kind": "contact", "uri": "mailto:office@example.com"}},
    "media": {"photo": {"kind": "photo", "uri": "https://ana.example/me.jpg", "mediaType": "image/jpeg"}},
    "cryptoKeys": {"k": {"uri": "https://ana.example/key.asc"}},
    "calendars": {"cal": {"kind": "calendar", "uri": "https://cal.example/ana"},
                  "fb": {"kind": "freeBusy", "uri": "https://cal.example/ana/fb"}},
    "schedulingAddresses": {"s": {"uri": "mailto:ana@example.com"}},
    "directories": {"dir": {"kind": "directory", "uri": "ldap://ldap.example/o=U", "listAs": 1},
                    "src": {"kind": "entry", "uri": "https://dir.example/ana.vcf"}},
    "preferredLanguages": {"es": {"language": "es", "pref": 1}, "en": {"language": "en", "pref": 2}},
    "personalInfo": {"h": {"kind": "hobby", "value": "chess", "level": "high", "listAs": 1},
                     "e": {"kind": "expertise", "value": "optics", "level": "medium"}},
    "speakToAs": {"grammaticalGender": "feminine", "pronouns": {"p": {"pronouns": "she/her", "pref": 1}}},
    "relatedTo": {"urn:uuid:0001": {"relation": {"spouse": True}}},
    "members": {},
}


def test_round_trip_keeps_what_both_formats_hold() -> None:
    """[jscontact-1.4.1-id] [jscontact-2.2.4-speakToAs] [jscontact-2.4-calendaring]
    [jscontact-2.6-resources] A Card → vCard 4.0 → Card is the same Card (ids included)."""
    card = copy.deepcopy(RICH)
    del card["members"]
    back = round_trip(card)
    assert normal(back) == normal(card)


def test_round_trip_of_what_vcard_cannot_hold_goes_through_jsprop() -> None:
    """[jscontact-1.8-vendor] A vendor property and localizations come back untouched; the
    JMAP-only id and addressBookIds are not written."""
    card = {
        "@type": "Card", "version": "1.0", "uid": "u1", "name": {"full": "X"},
        "example.com:rating": {"stars": 5, "by": ["a", "b"]},
        "localizations": {"fr": {"name/full": "X (fr)"}},
        "id": "c1", "addressBookIds": {"b1": True},
    }
    text = vcard.card_to_vcard(card)
    assert 'JSPROP;JSPTR="example.com:rating":{"stars":5\\,"by":["a"\\,"b"]}' in text.replace("\r\n ", "")
    assert "addressBookIds" not in text and "c1" not in text
    back = round_trip(card)
    assert back == {k: v for k, v in card.items() if k not in ("id", "addressBookIds")}


def test_vcard_written_is_version_4_with_fn_first_and_folded_lines() -> None:
    card = {"@type": "Card", "version": "1.0", "uid": "u2",
            "name": {"components": [{"kind": "given", "value": "Jo"}, {"kind": "surname", "value": "Bloggs"}]},
            "notes": {"n": {"note": "x" * 200}}}
    text = vcard.card_to_vcard(card)
    lines = text.split("\r\n")
    assert lines[:3] == ["BEGIN:VCARD", "VERSION:4.0", "UID:u2"]
    assert "FN;DERIVED=TRUE:Jo Bloggs" in lines  # RFC 9555 §3.1: FN made from the components
    assert all(len(line.encode()) <= 75 for line in lines)
    back = round_trip(card)
    assert "full" not in back["name"]  # a DERIVED FN is not read back as a full name
    assert normal(back) == normal(card)


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(",;\\:\n\"'"), min_size=1, max_size=40))
def test_any_text_survives_the_round_trip(value: str) -> None:
    """Escaping of , ; \\ and newlines, quoting of parameters, non-ASCII, folding."""
    value = value.strip() or "x"
    assume("\\n" not in value.lower())  # read as a line break in LABEL, as RFC 6350 writes them
    card = {
        "@type": "Card", "version": "1.0", "uid": "u3",
        "name": {"full": value, "components": [{"kind": "given", "value": value}]},
        "nicknames": {"n": {"name": value}},
        "organizations": {"o": {"name": value, "units": [{"name": value}]}},
        "notes": {"n": {"note": value}},
        "keywords": {value: True},
        "addresses": {"a": {"components": [{"kind": "locality", "value": value}], "full": value}},
        "emails": {"e": {"address": "a@example.com", "label": value}},
    }
    assert round_trip(card) == card


# -- damaged input: best effort, counted ------------------------------------------------------


def test_broken_folding_is_repaired_and_counted() -> None:
    parsed = one(crlf("""
        BEGIN:VCARD
        VERSION:3.0
        FN:Broken Fold
        NOTE:first line of a note
        second line without the folding space
        EMAIL:bf@example.com
        END:VCARD"""))
    assert list(parsed.card["notes"].values()) == [
        {"note": "first line of a note\nsecond line without the folding space"}]
    assert list(parsed.card["emails"].values()) == [{"address": "bf@example.com"}]
    assert "lines without the folding space joined to the line before: 1" in parsed.problems


def test_latin1_bytes_in_a_utf8_file_are_read_and_counted() -> None:
    data = ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoë Ütf\r\nEND:VCARD\r\n").encode() + (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Renée Lätin\r\nNOTE:naïve\r\nEND:VCARD\r\n").encode("latin-1")
    parsed = vcard.read_vcards(data)
    first, second = parsed.cards
    assert first.card["name"]["full"] == "Zoë Ütf"
    assert not any("UTF-8" in p for p in first.problems)
    assert second.card["name"]["full"] == "Renée Lätin"
    assert list(second.card["notes"].values()) == [{"note": "naïve"}]
    assert "lines not UTF-8, read as Windows-1252: 2" in second.problems


def test_missing_end_garbage_and_unparseable_lines() -> None:
    data = crlf("""
        this is not a vCard
        BEGIN:VCARD
        VERSION:4.0
        FN:No End
        BEGIN:VCARD
        VERSION:4.0
        FN:Second
        TEL;TYPE="unterminated:+1 555
        EMAIL:second@example.com
        END:VCARD
        garbage between cards
        BEGIN:VCARD
        VERSION:4.0
        FN:Last without end""")
    parsed = vcard.read_vcards(data.encode())
    assert [c.card["name"]["full"] for c in parsed.cards] == ["No End", "Second", "Last without end"]
    assert any("no END:VCARD" in p for p in parsed.cards[0].problems)
    assert any("no END:VCARD" in p for p in parsed.cards[2].problems)
    assert list(parsed.cards[1].card["emails"].values()) == [{"address": "second@example.com"}]
    assert parsed.problems == ["lines outside BEGIN:VCARD … END:VCARD skipped: 2 (the first is line 1)"]
    assert any(p.startswith("a line that does not parse was left out: line 8") for p in parsed.cards[1].problems)


def test_a_line_that_does_not_parse_is_left_out_and_reported() -> None:
    parsed = one("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ok\r\nEMAIL;TYPE=\"unterminated:a@b\r\nEND:VCARD\r\n")
    assert parsed.card["name"]["full"] == "Ok"
    assert any("does not parse" in p for p in parsed.problems)


def test_a_card_without_uid_gets_the_same_uid_each_time() -> None:
    text = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Same\r\nEMAIL:s@example.com\r\nEND:VCARD\r\n"
    first, second = one(text), one(text)
    assert first.card["uid"] == second.card["uid"]
    assert first.card["uid"] != one(text.replace("s@", "t@")).card["uid"]
    assert "no UID: one was made from the card's content" in first.problems


def test_utf16_and_bom_and_empty_files() -> None:
    text = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ünï\r\nEND:VCARD\r\n"
    assert one(text.encode("utf-16")).card["name"]["full"] == "Ünï"
    assert one(b"\xef\xbb\xbf" + text.encode()).card["name"]["full"] == "Ünï"
    empty = vcard.read_vcards(b"")
    assert empty.cards == [] and empty.problems == ["no vCard in the file"]


@pytest.mark.parametrize(("value", "date"), [
    ("19531015", {"year": 1953, "month": 10, "day": 15}),
    ("1953-10-15", {"year": 1953, "month": 10, "day": 15}),
    ("--1015", {"month": 10, "day": 15}),
    ("1953", {"year": 1953}),
    ("1953-10", {"year": 1953, "month": 10}),
    ("---15", {"day": 15}),
    ("19531015T231000Z", {"@type": "Timestamp", "utc": "1953-10-15T23:10:00Z"}),
    ("1953-10-15T23:10:00+02:00", {"@type": "Timestamp", "utc": "1953-10-15T21:10:00Z"}),
    ("1953-10-15T00:00:00", {"year": 1953, "month": 10, "day": 15}),
    ("19531015T2310", None),
    ("circa 1950", None),
    ("1953-13-01", None),
])
def test_dates(value: str, date: dict[str, Any] | None) -> None:
    assert vcard.parse_date(value) == date


def test_a_date_jscontact_cannot_hold_is_kept_in_vcardprops() -> None:
    parsed = one("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:X\r\nBDAY;VALUE=text:circa 1800\r\nEND:VCARD\r\n")
    assert "anniversaries" not in parsed.card
    assert parsed.card["vCardProps"] == [["bday", {"value": "text"}, "text", "circa 1800"]]
    assert "BDAY;VALUE=text:circa 1800" in vcard.card_to_vcard(parsed.card)


# -- through the CLI: jmapcore import NAME file.vcf, jmapcore export -----------------------------

CONTACTS = "urn:ietf:params:jmap:contacts"

EXPORT_FROM_A_PHONE = (
    crlf("""
        BEGIN:VCARD
        VERSION:3.0
        FN:Ann Example
        N:Example;Ann;;;
        EMAIL;TYPE=INTERNET,WORK:ann@example.com
        item1.TEL;TYPE=CELL:+1 555 0100
        item1.X-ABLabel:private mobile
        ADR;TYPE=HOME:;;1 Main St;Springfield;;12345;USA
        ORG:Example Corp;Sales
        TITLE:Manager
        BDAY:1985-04-12
        X-PHONETIC-FIRST-NAME:An
        UID:ann-1
        END:VCARD
        this line is between two cards
        BEGIN:VCARD
        VERSION:4.0
        KIND:group
        FN:Friends
        UID:group-1
        MEMBER:ann-1
        END:VCARD
        """).encode()
    + "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Beñat Müller\r\nNOTE:first line\r\nsecond line\r\nUID:bm-1\r\n".encode("latin-1")
)


def _client(data: Path):
    from jmapcore.accounts import principal_for
    from jmapcore.testing.client import Client
    from jmapserver.config import Settings
    from jmapserver.wiring import build_core

    core = build_core(Settings(data=data))
    return core, Client(core, principal_for(core, "alice"), using=[CONTACTS])


def _cards(data: Path) -> list[dict[str, Any]]:
    core, client = _client(data)
    try:
        return client.call("ContactCard/get", {"accountId": client.account_id, "ids": None})["list"]
    finally:
        core.close()


@pytest.fixture
def account(tmp_path: Path) -> Path:
    from tests.support import jmapcore

    data = tmp_path / "data"
    made = jmapcore("account", "add", "alice", "--password", "pw", "--data", str(data))
    assert made.returncode == 0, made.stderr
    return data


def test_cli_import_of_a_vcf_then_export_and_import_again(account: Path, tmp_path: Path) -> None:
    """The real CLI: a damaged vCard 3/4 file into the default address book (counted), the
    cards seen through ContactCard/get, exported as vCard 4.0, and the export imported again
    is skipped card by card (same uids): nothing stored is replaced or lost."""
    from tests.support import jmapcore

    source = tmp_path / "phone.vcf"
    source.write_bytes(EXPORT_FROM_A_PHONE)
    done = jmapcore("import", "alice", str(source), "--data", str(account), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"imported 3 of 3 cards from {source} into alice (address book Contacts)")
    assert "  repaired:   2 (imported best effort)" in lines
    assert "    1 × lines not UTF-8, read as Windows-1252" in lines
    assert "    1 × no END:VCARD" in lines
    assert "    1 × lines without the folding space joined to the line before" in lines
    assert "    1 × vCard properties without a JSContact counterpart kept in vCardProps" in lines
    assert "  skipped:    0" in lines
    assert "  file: lines outside BEGIN:VCARD … END:VCARD skipped: 1 (the first is line 15)" in lines

    core, client = _client(account)
    try:
        books = client.call("AddressBook/get", {"accountId": client.account_id})["list"]
        (default,) = [b["id"] for b in books if b["isDefault"]]
    finally:
        core.close()
    cards = {card["uid"]: card for card in _cards(account)}
    assert set(cards) == {"ann-1", "group-1", "bm-1"}
    ann = cards["ann-1"]
    assert ann["addressBookIds"] == {default: True}
    assert ann["name"]["full"] == "Ann Example"
    assert list(ann["emails"].values()) == [{"address": "ann@example.com", "contexts": {"work": True}}]
    assert list(ann["phones"].values()) == [{"number": "+1 555 0100", "features": {"mobile": True}, "label": "private mobile"}]
    assert list(ann["anniversaries"].values()) == [{"kind": "birth", "date": {"year": 1985, "month": 4, "day": 12}}]
    assert ann["vCardProps"] == [["x-phonetic-first-name", {}, "unknown", "An"]]
    assert cards["group-1"]["kind"] == "group" and cards["group-1"]["members"] == {"ann-1": True}
    assert cards["bm-1"]["name"]["full"] == "Beñat Müller"
    assert list(cards["bm-1"]["notes"].values()) == [{"note": "first line\nsecond line"}]

    exported = tmp_path / "out.vcf"
    done = jmapcore("export", "alice", "--contacts", str(exported), "--data", str(account))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"exported 3 cards of alice to {exported}"
    text = exported.read_bytes().decode("utf-8")
    assert text.count("BEGIN:VCARD\r\nVERSION:4.0\r\n") == 3
    again = {c.card["uid"]: c.card for c in vcard.read_vcards(exported.read_bytes()).cards}
    for uid, card in cards.items():  # what the server holds comes back from its vCard
        assert normal(again[uid]) == normal({k: v for k, v in card.items() if k not in ("id", "addressBookIds")})

    done = jmapcore("import", "alice", str(exported), "--data", str(account), "--quiet")
    assert done.returncode == 1
    assert "imported 0 of 3 cards" in done.stdout
    assert "    card at line 1 (" in done.stdout
    assert "is already in the account (not replaced)" in done.stdout
    assert {card["uid"]: card for card in _cards(account)} == cards


def test_cli_import_errors(account: Path, tmp_path: Path) -> None:
    from tests.support import jmapcore

    source = tmp_path / "one.vcf"
    source.write_text("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:One\r\nEND:VCARD\r\n")
    done = jmapcore("import", "nobody", str(source), "--data", str(account))
    assert done.returncode == 1 and "nobody" in done.stderr
    done = jmapcore("import", "alice", str(tmp_path / "missing.vcf"), "--data", str(account))
    assert done.returncode == 1 and "cannot read" in done.stderr
    done = jmapcore("import", "alice", str(source), "--data", str(account), "--address-book", "Work")
    assert done.returncode == 1 and "no address book named 'Work'" in done.stderr
    plain = tmp_path / "cards.txt"  # not .vcf: found by its first line, or by --format
    plain.write_text("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Two\r\nEND:VCARD\r\n")
    done = jmapcore("import", "alice", str(plain), "--data", str(account), "--quiet")
    assert done.returncode == 0 and "imported 1 of 1 cards" in done.stdout
    empty = tmp_path / "empty.vcf"
    empty.write_text("")
    done = jmapcore("import", "alice", str(empty), "--data", str(account), "--quiet")
    assert done.returncode == 1 and "file: no vCard in the file" in done.stdout


def test_cli_import_and_export_on_the_maildir_backend(tmp_path: Path) -> None:
    """On Maildir the cards live in the sidecar store; import and export are the same."""
    from jmapcore.accounts import principal_for
    from jmapcore.testing.client import Client
    from jmapserver.config import Settings
    from jmapserver.wiring import build_core
    from tests.support import jmapcore

    data, root = tmp_path / "data", tmp_path / "mail"
    common = ["--data", str(data), "--backend", "maildir", "--maildir-root", str(root / "%u")]
    assert jmapcore("account", "add", "alice", "--password", "pw", *common).returncode == 0
    source = tmp_path / "c.vcf"
    source.write_bytes(EXPORT_FROM_A_PHONE)
    done = jmapcore("import", "alice", str(source), *common, "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "imported 3 of 3 cards" in done.stdout
    core = build_core(Settings(data=data, backend="maildir", maildir_root=root / "%u"))
    try:
        client = Client(core, principal_for(core, "alice"), using=[CONTACTS])
        cards = client.call("ContactCard/get", {"accountId": client.account_id, "ids": None})["list"]
    finally:
        core.close()
    assert sorted(card["uid"] for card in cards) == ["ann-1", "bm-1", "group-1"]
    out = tmp_path / "out.vcf"
    done = jmapcore("export", "alice", "--contacts", str(out), *common)
    assert done.returncode == 0, done.stderr
    assert sorted(c.card["uid"] for c in vcard.read_vcards(out.read_bytes()).cards) == ["ann-1", "bm-1", "group-1"]


def test_a_card_refused_for_its_vcard_only_properties_is_imported_without_them() -> None:
    from jmapserver.vcardio import _strip_vcard_only

    card = {"uid": "u", "vCardProps": [["x-a", {}, "unknown", "b"]],
            "emails": {"e1": {"address": "a@example.com", "vCardParams": {"x-trust": "high"}}},
            "name": {"full": "N"}}
    assert _strip_vcard_only(card) == {"uid": "u", "emails": {"e1": {"address": "a@example.com"}}, "name": {"full": "N"}}
    assert _strip_vcard_only({"uid": "u", "name": {"full": "N"}}) is None


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def test_export_writes_media_given_by_blob_id_as_data_uris(account: Path) -> None:
    """[contacts-3-mediaBlobId] a photo held as a blob goes out inline, as vCard carries it."""
    import io

    from jmapserver.vcardio import export_vcards

    core, client = _client(account)
    try:
        png = base64.b64decode(PNG)
        uploaded = core.upload(client.principal, client.account_id, png, "image/png")
        blob_id = __import__("json").loads(uploaded.body)["blobId"]
        media = {"kind": "photo", "blobId": blob_id, "mediaType": "image/png"}
        made = client.call("ContactCard/set", {"accountId": client.account_id, "create": {
            "c": {"uid": "photo-1", "name": {"full": "P"}, "media": {"m1": media}}}})
        assert "c" in (made["created"] or {}), made
        stored = client.call("ContactCard/get", {"accountId": client.account_id, "ids": None})["list"][0]
        out = io.StringIO()
        assert export_vcards(core, "alice", out) == 1
    finally:
        core.close()
    (back,) = vcard.read_vcards(out.getvalue()).cards
    (photo,) = back.card["media"].values()
    assert stored["media"]["m1"]["blobId"] == blob_id and "uri" not in stored["media"]["m1"]
    assert photo["uri"] == "data:image/png;base64," + PNG
    assert photo["mediaType"] == "image/png"


def test_cli_import_leaves_out_values_the_server_refuses_and_lists_them(account: Path, tmp_path: Path) -> None:
    """Best effort: a card with an EMAIL that is no address goes in without it (listed);
    x-name KIND, a URL without scheme and MEMBER without KIND:group are handled when read."""
    from tests.support import jmapcore

    source = tmp_path / "odd.vcf"
    source.write_text(crlf("""
        BEGIN:VCARD
        VERSION:3.0
        FN:Odd One
        UID:odd-1
        EMAIL:not an address
        EMAIL:odd@example.com
        KIND:x-robot
        URL:www.example.com/odd
        MEMBER:urn:uuid:1234
        END:VCARD"""))
    done = jmapcore("import", "alice", str(source), "--data", str(account), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "imported 1 of 1 cards" in done.stdout
    assert "  imported without values the server refused: 1" in done.stdout
    assert "    card at line 1 (Odd One): without emails/e1: invalidProperties (emails/e1/address)" in done.stdout
    (card,) = _cards(account)
    assert list(card["emails"].values()) == [{"address": "odd@example.com"}]
    assert list(card["links"].values()) == [{"uri": "https://www.example.com/odd"}]
    assert "kind" not in card and "members" not in card
    assert ["kind", {}, "unknown", "x-robot"] in card["vCardProps"]
    assert ["member", {}, "uri", "urn:uuid:1234"] in card["vCardProps"]


def test_mangled_files_never_raise() -> None:
    """Random byte edits of real vCards (seeded): reading and writing back never raise; every
    vCard is a card or an error with its reason."""
    import random

    seeds = [V4.encode(), EXPORT_FROM_A_PHONE, vcard.card_to_vcard(RICH).encode()]
    inserts = [b";", b":", b",", b"\\", b"\r\n", b"=", b'"', b"\r\n ", b"BEGIN:VCARD\r\n", b"END:VCARD\r\n", b"\xff", b"^"]
    rng = random.Random(9555)
    for _ in range(400):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            position, roll = rng.randrange(len(data)), rng.random()
            if roll < 0.3:
                data[position] = rng.randrange(256)
            elif roll < 0.6:
                del data[position:position + rng.randint(1, 20)]
            else:
                data[position:position] = rng.choice(inserts)
        for parsed in vcard.read_vcards(bytes(data)).cards:
            assert (parsed.card is None) != (parsed.error is None)
            if parsed.card is not None:
                vcard.read_vcards(vcard.card_to_vcard(parsed.card))
