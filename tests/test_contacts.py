"""JMAP for Contacts (RFC 9610) with JSContact cards (RFC 9553), in-process
on every backend (memory, LMDB, Maildir: there the cards live in the sidecar).

Spec ids are from /work/shared/spec/contacts.md.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from jmap_contacts import CONTACTS, validate_card
from jmap_contacts.jscontact import card_problems

from jmapcore import Core
from jmapcore.accounts import add_account, principal_for
from jmapcore.push import PushFeed
from jmapcore.testing.client import Client
from tests.conftest import second_account

USING = [CONTACTS]


@pytest.fixture
def carol(core: Core) -> Client:
    add_account(core, "carol", "carol-pass")
    second_account(core, "carol")  # made without the plugin's hook: a pre-existing account
    return Client(core, principal_for(core, "carol"), using=USING)


def other_account(client: Client) -> str:
    return [a for a in client.principal.account_ids if a != client.account_id][0]


def books(client: Client, account_id: str | None = None) -> list[dict[str, Any]]:
    return client.call("AddressBook/get", {"accountId": account_id or client.account_id})["list"]


def default_book(client: Client, account_id: str | None = None) -> str:
    return next(b["id"] for b in books(client, account_id) if b["isDefault"])


def card_set(client: Client, account_id: str | None = None, **args: Any) -> dict[str, Any]:
    return client.call("ContactCard/set", {"accountId": account_id or client.account_id, **args})


def create_cards(client: Client, cards: dict[str, dict[str, Any]], account_id: str | None = None) -> dict[str, str]:
    result = card_set(client, account_id, create=cards)
    assert not result["notCreated"], result["notCreated"]
    return {cid: created["id"] for cid, created in result["created"].items()}


def get_cards(client: Client, ids: list[str], account_id: str | None = None, **args: Any) -> list[dict[str, Any]]:
    return client.call("ContactCard/get", {"accountId": account_id or client.account_id, "ids": ids, **args})["list"]


def query(client: Client, filter: Any = None, sort: Any = None, **args: Any) -> list[str]:
    arguments: dict[str, Any] = {"accountId": client.account_id, **args}
    if filter is not None:
        arguments["filter"] = filter
    if sort is not None:
        arguments["sort"] = sort
    return client.call("ContactCard/query", arguments)["ids"]


def person(given: str, surname: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": {"components": [{"kind": "given", "value": given}, {"kind": "surname", "value": surname}]},
        **extra,
    }


# -- capability and session ---------------------------------------------------------


def test_capability_and_account_capability(core: Core, carol: Client) -> None:
    """[contacts-1.4.1-capability] session value {} and the account's limits."""
    session = core.session(carol.principal, "http://x")
    assert session["capabilities"][CONTACTS] == {}
    caps = session["accounts"][carol.account_id]["accountCapabilities"][CONTACTS]
    assert caps == {"maxAddressBooksPerCard": None, "mayCreateAddressBook": True}
    assert session["primaryAccounts"][CONTACTS] == carol.account_id


def test_methods_need_the_capability_in_using(carol: Client) -> None:
    response = carol.request([["AddressBook/get", {"accountId": carol.account_id}, "0"]], using=["urn:ietf:params:jmap:core"])
    assert response["methodResponses"][0][1]["type"] == "unknownMethod"


# -- AddressBook ------------------------------------------------------------------------


def test_default_address_book_on_account_creation(carol: Client) -> None:
    """[contacts-2-isDefault] [contacts-2-props] [contacts-2-rights] one default
    book, owned: every right, unshared, subscribed."""
    [book] = books(carol)
    assert book["isDefault"] is True and book["name"]
    assert book["isSubscribed"] is True and book["shareWith"] is None and book["description"] is None
    assert book["sortOrder"] == 0
    assert book["myRights"] == {"mayRead": True, "mayWrite": True, "mayShare": True, "mayDelete": True}


def test_default_address_book_made_lazily_for_older_accounts(carol: Client) -> None:
    """An account created without the plugin's hook gets its default book at
    the first contacts call, once."""
    other = other_account(carol)
    first = books(carol, other)
    assert [b["isDefault"] for b in first] == [True]
    assert books(carol, other) == first


def test_address_book_set_create_update_destroy(carol: Client) -> None:
    """[contacts-2.1-get] [contacts-2.2-changes] [contacts-2-props] [contacts-2.3-subscribe] standard
    /set; server-set isDefault and myRights come back in created."""
    state = carol.call("AddressBook/get", {"accountId": carol.account_id, "ids": []})["state"]
    result = carol.call(
        "AddressBook/set",
        {"accountId": carol.account_id, "create": {"w": {"name": "Work", "description": "colleagues", "sortOrder": 5}}},
    )
    created = result["created"]["w"]
    assert created["isDefault"] is False and created["myRights"]["mayDelete"] is True
    assert created["isSubscribed"] is True and created["shareWith"] is None
    work = created["id"]
    carol.call("AddressBook/set", {"accountId": carol.account_id, "update": {work: {"name": "Office", "isSubscribed": False}}})
    assert [b["isSubscribed"] for b in books(carol) if b["id"] == work] == [False]
    changes = carol.call("AddressBook/changes", {"accountId": carol.account_id, "sinceState": state})
    assert changes["created"] == [work] and changes["updated"] == [] and changes["destroyed"] == []
    result = carol.call("AddressBook/set", {"accountId": carol.account_id, "destroy": [work]})
    assert result["destroyed"] == [work]
    assert [b["name"] for b in books(carol)] == ["Contacts"]


@pytest.mark.parametrize(
    ("values", "bad"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "ok", "sortOrder": -1}, "sortOrder"),
        ({"name": "ok", "isDefault": True}, "isDefault"),
        ({"name": "ok", "myRights": {}}, "myRights"),
        ({"name": "ok", "shareWith": {"P1": {"mayRead": True}}}, "shareWith"),
        ({"name": "ok", "colour": "red"}, "colour"),
    ],
)
def test_address_book_bad_values(carol: Client, values: dict[str, Any], bad: str) -> None:
    """[contacts-2-props] [contacts-2-shareWith] no Principals to share with."""
    result = carol.call("AddressBook/set", {"accountId": carol.account_id, "create": {"b": values}})
    error = result["notCreated"]["b"]
    assert error["type"] == "invalidProperties" and bad in error["properties"]


def test_on_success_set_is_default(carol: Client) -> None:
    """[contacts-2.3-onSuccessSetIsDefault] the new default and the old one
    show their isDefault in created/updated; unknown ids are ignored."""
    old = default_book(carol)
    result = carol.call(
        "AddressBook/set",
        {"accountId": carol.account_id, "create": {"n": {"name": "New"}}, "onSuccessSetIsDefault": "#n"},
    )
    new = result["created"]["n"]["id"]
    assert result["created"]["n"]["isDefault"] is True
    assert result["updated"] == {old: {"isDefault": False}}
    assert default_book(carol) == new
    assert [b["isDefault"] for b in books(carol)].count(True) == 1
    result = carol.call("AddressBook/set", {"accountId": carol.account_id, "onSuccessSetIsDefault": "Bnope"})
    assert result["updated"] is None and default_book(carol) == new
    # Not applied when anything failed.
    result = carol.call(
        "AddressBook/set",
        {"accountId": carol.account_id, "create": {"x": {"name": ""}}, "onSuccessSetIsDefault": old},
    )
    assert result["notCreated"] and default_book(carol) == new
    result = carol.call("AddressBook/set", {"accountId": carol.account_id, "update": {old: {}}, "onSuccessSetIsDefault": old})
    assert result["updated"] == {old: {"isDefault": True}, new: {"isDefault": False}}


def test_destroy_non_empty_address_book(carol: Client) -> None:
    """[contacts-2.3-onDestroyRemoveContents] addressBookHasContents unless
    asked; then cards leave the book and those in no other book go."""
    home = default_book(carol)
    extra = carol.call("AddressBook/set", {"accountId": carol.account_id, "create": {"x": {"name": "Extra"}}})
    extra_id = extra["created"]["x"]["id"]
    ids = create_cards(
        carol,
        {"only": person("Only", "Here", addressBookIds={extra_id: True}),
         "both": person("Both", "Books", addressBookIds={extra_id: True, home: True})},
    )
    result = carol.call("AddressBook/set", {"accountId": carol.account_id, "destroy": [extra_id]})
    assert result["notDestroyed"][extra_id]["type"] == "addressBookHasContents"
    assert result["destroyed"] is None
    card_state = carol.call("ContactCard/get", {"accountId": carol.account_id, "ids": []})["state"]
    result = carol.call(
        "AddressBook/set", {"accountId": carol.account_id, "destroy": [extra_id], "onDestroyRemoveContents": True}
    )
    assert result["destroyed"] == [extra_id]
    found = carol.call("ContactCard/get", {"accountId": carol.account_id, "ids": list(ids.values())})
    assert found["notFound"] == [ids["only"]]
    assert found["list"][0]["addressBookIds"] == {home: True}
    changes = carol.call("ContactCard/changes", {"accountId": carol.account_id, "sinceState": card_state})
    assert changes["destroyed"] == [ids["only"]] and changes["updated"] == [ids["both"]]
    # An empty book goes without the argument.
    empty = carol.call("AddressBook/set", {"accountId": carol.account_id, "create": {"e": {"name": "E"}}})
    empty_id = empty["created"]["e"]["id"]
    assert carol.call("AddressBook/set", {"accountId": carol.account_id, "destroy": [empty_id]})["destroyed"] == [empty_id]


# -- ContactCard/set and validation ------------------------------------------------------


FULL_CARD: dict[str, Any] = {
    "@type": "Card",
    "version": "1.0",
    "kind": "individual",
    "language": "en",
    "name": {
        "components": [
            {"kind": "title", "value": "Dr."},
            {"kind": "given", "value": "Ada"},
            {"kind": "surname", "value": "Lovelace"},
            {"kind": "surname2", "value": "Byron"},
        ],
        "isOrdered": True,
        "defaultSeparator": " ",
        "full": "Dr. Ada Lovelace Byron",
        "sortAs": {"surname": "Lovelace"},
    },
    "nicknames": {"n1": {"name": "Enchantress of Numbers", "pref": 1}},
    "organizations": {"o1": {"name": "Analytical Engines Ltd", "units": [{"name": "Research"}], "contexts": {"work": True}}},
    "titles": {"t1": {"name": "Mathematician", "kind": "role", "organizationId": "o1"}},
    "speakToAs": {"grammaticalGender": "feminine", "pronouns": {"p1": {"pronouns": "she/her"}}},
    "emails": {"e1": {"address": "ada@example.com", "contexts": {"work": True}, "pref": 1, "label": "main"}},
    "phones": {"p1": {"number": "+44 20 7946 0958", "features": {"voice": True, "mobile": True}}},
    "onlineServices": {"s1": {"service": "Mastodon", "user": "@ada@example.social", "uri": "https://example.social/@ada"}},
    "preferredLanguages": {"l1": {"language": "en-GB", "pref": 1}},
    "addresses": {
        "a1": {
            "components": [
                {"kind": "number", "value": "12"},
                {"kind": "name", "value": "St James's Square"},
                {"kind": "locality", "value": "London"},
                {"kind": "postcode", "value": "SW1Y 4JH"},
            ],
            "countryCode": "GB",
            "coordinates": "geo:51.5074,-0.1349",
            "timeZone": "Europe/London",
            "contexts": {"private": True},
        }
    },
    "links": {"k1": {"uri": "https://example.com/ada", "kind": "contact"}},
    "media": {"m1": {"kind": "photo", "uri": "https://example.com/ada.jpg", "mediaType": "image/jpeg"}},
    "anniversaries": {
        "b": {"kind": "birth", "date": {"year": 1815, "month": 12, "day": 10}},
        "d": {"kind": "death", "date": {"@type": "Timestamp", "utc": "1852-11-27T00:00:00Z"}},
    },
    "notes": {"n1": {"note": "Wrote the first published algorithm", "created": "2024-01-01T10:00:00Z", "author": {"name": "Charles"}}},
    "personalInfo": {"i1": {"kind": "expertise", "value": "mathematics", "level": "high"}},
    "keywords": {"vip": True},
    "relatedTo": {"urn:uuid:babbage": {"relation": {"colleague": True}}},
    "calendars": {"c1": {"kind": "calendar", "uri": "https://example.com/cal"}},
    "schedulingAddresses": {"s1": {"uri": "mailto:ada@example.com"}},
    "cryptoKeys": {"k1": {"uri": "https://example.com/key.asc"}},
    "directories": {"d1": {"kind": "entry", "uri": "https://example.com/dir/ada", "listAs": 1}},
    "localizations": {"fr": {"titles/t1/name": "Mathématicienne"}},
    "prodId": "test 1.0",
}


def test_full_card_round_trips(carol: Client) -> None:
    """[contacts-3-props] [jscontact-2.1-metadata] [jscontact-2.2.1-name]
    [jscontact-2.2.2-nicknames] [jscontact-2.2.3-organizations] [jscontact-2.2.4-speakToAs]
    [jscontact-2.2.5-titles] [jscontact-2.3-contact] [jscontact-2.4-calendaring]
    [jscontact-2.5-addresses] [jscontact-2.6-resources] [jscontact-2.7-localizations]
    [jscontact-2.8-additional] every RFC 9553 property is stored and returned as given."""
    assert validate_card({**FULL_CARD, "uid": "urn:uuid:ada"}) == []
    ids = create_cards(carol, {"ada": {**FULL_CARD, "uid": "urn:uuid:ada"}})
    [card] = get_cards(carol, [ids["ada"]])
    for name, value in FULL_CARD.items():
        assert card[name] == value, name
    assert card["addressBookIds"] == {default_book(carol): True}


def test_server_maintained_values(carol: Client) -> None:
    """[jscontact-2.1-metadata] [jscontact-1.9-version] [jscontact-1.4.5-utcDateTime]
    @type and version default; uid is a urn:uuid; created and updated are
    set by the server (updated moves, created is immutable)."""
    result = card_set(carol, create={"c": person("Grace", "Hopper")})
    created = result["created"]["c"]
    assert created["@type"] == "Card" and created["version"] == "1.0"
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", created["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created["created"])
    assert created["updated"] == created["created"]
    card_id = created["id"]
    time.sleep(1.05)
    result = card_set(carol, update={card_id: {"name/full": "Grace Hopper"}})
    [card] = get_cards(carol, [card_id])
    assert result["updated"][card_id] == {"updated": card["updated"]}
    assert card["updated"] > card["created"]
    error = card_set(carol, update={card_id: {"created": "2000-01-01T00:00:00Z"}})["notUpdated"][card_id]
    assert error["type"] == "invalidProperties" and error["properties"] == ["created"]
    error = card_set(carol, update={card_id: {"id": "Cother"}})["notUpdated"][card_id]
    assert error["properties"] == ["id"]
    # An importer may give its own created/updated on create.
    ids = create_cards(carol, {"old": person("Old", "Card", created="2001-02-03T04:05:06Z", updated="2002-01-01T00:00:00Z")})
    [old] = get_cards(carol, [ids["old"]], properties=["created", "updated"])
    assert old["created"] == "2001-02-03T04:05:06Z" and old["updated"] == "2002-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("card", "paths"),
    [
        ({"@type": "card"}, ["@type"]),
        ({"version": "1"}, ["version"]),
        ({"kind": "Individual"}, ["kind"]),
        ({"kind": "robot"}, ["kind"]),
        ({"uid": ""}, ["uid"]),
        ({"name": {}}, ["name"]),
        ({"name": {"components": [{"kind": "given"}]}}, ["name/components/0/value"]),
        ({"name": {"components": [{"kind": "Given", "value": "A"}]}}, ["name/components/0/kind"]),
        ({"name": {"components": [{"kind": "separator", "value": " "}]}}, ["name/components"]),
        ({"name": {"full": "A", "defaultSeparator": " "}}, ["name/defaultSeparator"]),
        ({"name": {"components": [{"kind": "given", "value": "A", "phonetic": "a"}]}}, ["name/components/0/phonetic"]),
        ({"emails": {"e1": {"address": "not an address"}}}, ["emails/e1/address"]),
        ({"emails": {"e1": {"label": "x"}}}, ["emails/e1/address"]),
        ({"emails": {"bad key!": {"address": "a@b.c"}}}, ["emails/bad key!"]),
        ({"emails": {"e1": {"address": "a@b.c", "pref": 0}}}, ["emails/e1/pref"]),
        ({"emails": {"e1": {"address": "a@b.c", "contexts": {"work": False}}}}, ["emails/e1/contexts/work"]),
        ({"emails": {"e1": {"address": "a@b.c", "@type": "Phone"}}}, ["emails/e1/@type"]),
        ({"phones": {"p1": {"number": "1", "features": {"cell": True}}}}, ["phones/p1/features/cell"]),
        ({"onlineServices": {"s1": {"service": "x"}}}, ["onlineServices/s1"]),
        ({"addresses": {"a1": {"contexts": {"work": True}}}}, ["addresses/a1"]),
        ({"addresses": {"a1": {"countryCode": "GBR"}}}, ["addresses/a1/countryCode"]),
        ({"organizations": {"o1": {"contexts": {"work": True}}}}, ["organizations/o1"]),
        ({"titles": {"t1": {"name": "x", "kind": "boss"}}}, ["titles/t1/kind"]),
        ({"anniversaries": {"a": {"kind": "birth", "date": {"day": 3}}}}, ["anniversaries/a/date/day"]),
        ({"anniversaries": {"a": {"kind": "birth", "date": {"month": 13, "year": 1}}}}, ["anniversaries/a/date/month"]),
        ({"anniversaries": {"a": {"kind": "birth", "date": {"@type": "Timestamp", "utc": "2020-01-01T00:00:00.50Z"}}}}, ["anniversaries/a/date/utc"]),
        ({"notes": {"n": {"note": "x", "created": "2020-01-01T00:00:00+01:00"}}}, ["notes/n/created"]),
        ({"media": {"m": {"kind": "photo"}}}, ["media/m/uri"]),
        ({"members": {"urn:uuid:x": True}}, ["members"]),
        ({"Emails": {}}, ["Emails"]),
        ({"extra": 1}, ["extra"]),
        ({"created": "yesterday"}, ["created"]),
        ({"links": {"k1": {"kind": "contact"}}}, ["links/k1/uri"]),
        ({"links": {"k1": {"uri": "not a uri"}}}, ["links/k1/uri"]),
        ({"links": {"k1": {"@type": "Resource", "uri": "https://x.example"}}}, ["links/k1/@type"]),
        ({"directories": {"d1": {"kind": "entry", "uri": "https://x.example", "listAs": 0}}}, ["directories/d1/listAs"]),
        ({"emails": {"e1": {"address": "a@b.c", "pref": 2**53}}}, ["emails/e1/pref"]),
        ({"personalInfo": {"i": {"kind": "hobby", "value": "chess", "listAs": 1.5}}}, ["personalInfo/i/listAs"]),
        ({"localizations": {"fr": "bonjour"}}, ["localizations/fr"]),
        ({"addressBookIds": {}}, ["addressBookIds"]),
        ({"addressBookIds": {"Bnope": True}}, ["addressBookIds"]),
    ],
)
def test_invalid_cards_name_the_path(carol: Client, card: dict[str, Any], paths: list[str]) -> None:
    """[jscontact-1.7-validation] [jscontact-1.3.4-type] [jscontact-1.4.1-id]
    [jscontact-1.4.2-int] [jscontact-1.4.4-resource] [jscontact-1.5-common]
    [contacts-3-props] a bad card is invalidProperties
    naming the property path, and nothing is stored."""
    result = card_set(carol, create={"c": {**person("A", "B"), **card}})
    error = result["notCreated"]["c"]
    assert error["type"] == "invalidProperties"
    assert error["properties"] == paths, error
    assert error["description"]
    assert query(carol) == []


def test_validate_card_module_api() -> None:
    """The validator the vCard import calls: paths, and messages."""
    assert validate_card({"@type": "Card", "version": "1.0", "uid": "u"}) == []
    assert validate_card({"version": "1.0", "uid": "u"}) == ["@type"]
    assert validate_card({"@type": "Card"}) == ["version", "uid"]
    assert validate_card([]) == [""]
    [problem] = card_problems({"@type": "Card", "version": "1.0", "uid": "u", "emails": {"e": {"address": 3}}})
    assert problem.path == "emails/e/address" and "email" in problem.message


def test_unknown_and_vendor_properties_are_preserved(carol: Client) -> None:
    """[jscontact-1.7-validation] [jscontact-1.8-vendor] unknown properties with
    valid names are kept as given, at the top and in nested objects; /get
    with properties null returns them."""
    card = person(
        "V", "Endor",
        **{"example.com:rating": {"stars": 5}, "futureProperty": [1, 2]},
        emails={"e1": {"address": "v@example.com", "example.com:verified": True}},
    )
    ids = create_cards(carol, {"v": card})
    [got] = get_cards(carol, [ids["v"]])
    assert got["example.com:rating"] == {"stars": 5} and got["futureProperty"] == [1, 2]
    assert got["emails"]["e1"]["example.com:verified"] is True
    [only] = get_cards(carol, [ids["v"]], properties=["example.com:rating"])
    assert only == {"id": ids["v"], "example.com:rating": {"stars": 5}}
    card_set(carol, update={ids["v"]: {"example.com:rating/stars": 4, "futureProperty": None}})
    [got] = get_cards(carol, [ids["v"]])
    assert got["example.com:rating"] == {"stars": 4} and "futureProperty" not in got


def test_patches_into_nested_maps(carol: Client) -> None:
    """[contacts-3.1-methods] [jscontact-1.4.1-id] patches reach into Id maps;
    null removes an entry; a bad patched value fails naming the path."""
    ids = create_cards(carol, {"c": person("Pat", "Ch", emails={"e1": {"address": "p@example.com"}, "e2": {"address": "q@example.com"}})})
    card_id = ids["c"]
    result = card_set(carol, update={card_id: {"emails/e1/address": "pat@example.org", "emails/e2": None, "emails/e3": {"address": "r@example.com"}, "name/components/1/value": "X"}})
    assert result["notUpdated"][card_id]["type"] == "invalidPatch"  # arrays are replaced whole
    result = card_set(carol, update={card_id: {"emails/e1/address": "pat@example.org", "emails/e2": None, "emails/e3": {"address": "r@example.com"}}})
    assert card_id in result["updated"]
    [card] = get_cards(carol, [card_id], properties=["emails"])
    assert card["emails"] == {"e1": {"address": "pat@example.org"}, "e3": {"address": "r@example.com"}}
    error = card_set(carol, update={card_id: {"emails/e1/address": "broken"}})["notUpdated"][card_id]
    assert error["type"] == "invalidProperties" and error["properties"] == ["emails/e1/address"]
    error = card_set(carol, update={card_id: {"phones/p1/number": "1"}})["notUpdated"][card_id]
    assert error["type"] == "invalidPatch"
    assert query(carol, {"email": "pat@example.org"}) == [card_id]
    assert query(carol, {"email": "p@example.com"}) == []


def test_uid_unique_per_account(carol: Client) -> None:
    """[contacts-3-uidUnique] a second card with a uid in use is invalidProperties
    (create, update, or two in one call); freed uids may be reused."""
    ids = create_cards(carol, {"a": person("A", "A", uid="urn:uuid:one")})
    result = card_set(carol, create={"b": person("B", "B", uid="urn:uuid:one")})
    assert result["notCreated"]["b"]["properties"] == ["uid"]
    result = card_set(carol, create={"c": person("C", "C", uid="u2"), "d": person("D", "D", uid="u2")})
    assert list(result["created"]) == ["c"] and result["notCreated"]["d"]["properties"] == ["uid"]
    result = card_set(carol, update={result["created"]["c"]["id"]: {"uid": "urn:uuid:one"}})
    assert next(iter(result["notUpdated"].values()))["properties"] == ["uid"]
    # Another account may hold the same uid; a destroyed card frees it.
    create_cards(carol, {"x": person("A", "A", uid="urn:uuid:one")}, account_id=other_account(carol))
    result = card_set(carol, destroy=[ids["a"]], create={"again": person("A2", "A", uid="urn:uuid:one")})
    assert result["destroyed"] == [ids["a"]] and "again" in result["created"]


def test_groups_and_has_member(carol: Client) -> None:
    """[contacts-3-groups] [jscontact-2.1-metadata] a group lists member uids
    (unknown ones are kept); hasMember finds groups by member."""
    ids = create_cards(
        carol,
        {
            "m": person("Mem", "Ber", uid="urn:uuid:member"),
            "g": {"kind": "group", "name": {"full": "Team"}, "members": {"urn:uuid:member": True, "urn:uuid:gone": True}},
        },
    )
    [group] = get_cards(carol, [ids["g"]])
    assert group["members"] == {"urn:uuid:member": True, "urn:uuid:gone": True}
    assert query(carol, {"hasMember": "urn:uuid:member"}) == [ids["g"]]
    assert query(carol, {"hasMember": "urn:uuid:gone"}) == [ids["g"]]
    assert query(carol, {"hasMember": "urn:uuid:nobody"}) == []
    assert query(carol, {"kind": "group"}) == [ids["g"]]
    assert query(carol, {"kind": "individual"}) == [ids["m"]]


def test_creation_reference_to_a_new_address_book(carol: Client) -> None:
    """[contacts-3-props] addressBookIds may name a book created earlier in the request."""
    response = carol.request(
        [
            ["AddressBook/set", {"accountId": carol.account_id, "create": {"fam": {"name": "Family"}}}, "0"],
            ["ContactCard/set", {"accountId": carol.account_id, "create": {"c": person("Kin", "Folk", addressBookIds={"#fam": True})}}, "1"],
        ]
    )
    book = response["methodResponses"][0][1]["created"]["fam"]["id"]
    card = response["methodResponses"][1][1]["created"]["c"]["id"]
    assert query(carol, {"inAddressBook": book}) == [card]


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_media_blobs(core: Core, carol: Client) -> None:
    """[contacts-3-mediaBlobId] [contacts-3.5-photo] a Media object may name
    an uploaded blob instead of a uri; a photo must be an image; the card
    keeps the blob referenced while it names it; /copy takes it along."""
    account = carol.account_id
    photo = core.backend.put_blob(account, PNG, "carol").blob_id
    text = core.backend.put_blob(account, b"not an image at all", "carol").blob_id
    result = card_set(carol, create={
        "ok": person("Pic", "Ture", media={"m": {"kind": "photo", "blobId": photo, "mediaType": "image/png"}}),
        "text": person("Not", "Pic", media={"m": {"kind": "photo", "blobId": text}}),
        "none": person("No", "Blob", media={"m": {"kind": "photo", "blobId": "Gnothere"}}),
        "sound": person("Snd", "Ok", media={"m": {"kind": "sound", "blobId": text}}),
    })
    assert result["notCreated"]["text"]["properties"] == ["media/m/blobId"]
    assert result["notCreated"]["none"]["properties"] == ["media/m/blobId"]
    card_id = result["created"]["ok"]["id"]
    with core.backend.snapshot(account) as snap:
        assert snap.blob_info(photo).refs == 1 and snap.blob_info(text).refs == 1
    other = other_account(carol)
    copied = carol.call("ContactCard/copy", {"fromAccountId": account, "accountId": other, "create": {"c": {"id": card_id}}})
    assert "c" in copied["created"]
    with core.backend.snapshot(other) as snap:
        assert snap.blob_info(photo).refs == 1
    card_set(carol, update={card_id: {"media": None}}, destroy=[result["created"]["sound"]["id"]])
    with core.backend.snapshot(account) as snap:
        assert snap.blob_info(photo).refs == 0 and snap.blob_info(text).refs == 0


# -- /query ---------------------------------------------------------------------------


@pytest.fixture
def people(carol: Client) -> dict[str, str]:
    home = default_book(carol)
    work = carol.call("AddressBook/set", {"accountId": carol.account_id, "create": {"w": {"name": "Work"}}})["created"]["w"]["id"]
    ids = create_cards(
        carol,
        {
            "ada": {**FULL_CARD, "uid": "urn:uuid:ada", "addressBookIds": {home: True, work: True},
                    "created": "2020-01-01T00:00:00Z", "updated": "2021-06-01T00:00:00.5Z"},
            "bob": person("Bob", "Zimmer", created="2022-01-01T00:00:00Z", updated="2022-01-01T00:00:00Z",
                          nicknames={"n": {"name": "Bobby"}},
                          emails={"e": {"address": "bob@corp.example", "label": "office"}},
                          phones={"p": {"number": "+1 555 0100", "label": "desk"}},
                          organizations={"o": {"name": "Corp Inc"}},
                          notes={"n": {"note": "met at the conference"}},
                          addressBookIds={work: True}),
            "eve": {"name": {"components": [{"kind": "given", "value": "Éve"}, {"kind": "surname", "value": "Adams"},
                                            {"kind": "surname2", "value": "Zeta"}]},
                    "created": "2023-03-03T03:03:03Z", "updated": "2023-03-03T03:03:03Z",
                    "onlineServices": {"x": {"service": "XMPP", "uri": "xmpp:eve@chat.example", "label": "jabber"}},
                    "addresses": {"a": {"full": "1 Rue de Rivoli, Paris", "countryCode": "FR"}}},
            "org": {"kind": "org", "name": {"full": "Lovelace Society"}, "created": "2024-01-01T00:00:00Z",
                    "updated": "2024-01-01T00:00:00Z"},
        },
    )
    return {**ids, "home": home, "work": work}


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"inAddressBook": "work"}, ["ada", "bob"]),
        ({"inAddressBook": "home"}, ["ada", "eve", "org"]),
        ({"uid": "urn:uuid:ada"}, ["ada"]),
        ({"uid": "urn:uuid"}, []),
        ({"kind": "org"}, ["org"]),
        ({"kind": "individual"}, ["ada", "bob", "eve"]),
        ({"createdBefore": "2022-01-01T00:00:00Z"}, ["ada"]),
        ({"createdAfter": "2022-01-01T00:00:00Z"}, ["bob", "eve", "org"]),
        ({"updatedBefore": "2021-06-01T00:00:01Z"}, ["ada"]),
        ({"updatedAfter": "2021-06-01T00:00:00.6Z"}, ["bob", "eve", "org"]),
        ({"updatedAfter": "2021-06-01T00:00:00Z", "updatedBefore": "2023-01-01T00:00:00Z"}, ["ada", "bob"]),
        ({"text": "lovelace"}, ["ada", "org"]),
        ({"text": "algorithm"}, ["ada"]),
        ({"text": "corp bobby"}, ["bob"]),
        ({"text": "\"first published\""}, ["ada"]),
        ({"text": "\"published first\""}, []),
        ({"name": "lovelace"}, ["ada", "org"]),
        ({"name": "bobby"}, []),
        ({"name": "\"bob zimmer\""}, ["bob"]),
        ({"name": "\"zimmer bob\""}, []),
        ({"name/given": "ada"}, ["ada"]),
        ({"name/given": "lovelace"}, []),
        ({"name/given": "eve"}, ["eve"]),
        ({"name/surname": "zim"}, ["bob"]),
        ({"name/surname2": "zeta"}, ["eve"]),
        ({"name/surname2": "adams"}, []),
        ({"nickname": "bobby"}, ["bob"]),
        ({"nickname": "enchantress"}, ["ada"]),
        ({"organization": "corp"}, ["bob"]),
        ({"organization": "analytical"}, ["ada"]),
        ({"email": "bob@corp.example"}, ["bob"]),
        ({"email": "office"}, ["bob"]),
        ({"email": "desk"}, []),
        ({"phone": "555"}, ["bob"]),
        ({"phone": "desk"}, ["bob"]),
        ({"phone": "7946"}, ["ada"]),
        ({"onlineService": "xmpp"}, ["eve"]),
        ({"onlineService": "jabber"}, ["eve"]),
        ({"onlineService": "example.social"}, ["ada"]),
        ({"address": "london"}, ["ada"]),
        ({"address": "rivoli"}, ["eve"]),
        ({"address": "corp"}, []),
        ({"note": "conference"}, ["bob"]),
        ({"note": "bobby"}, []),
        ({"text": "   "}, []),
        ({}, ["ada", "bob", "eve", "org"]),
        ({"operator": "OR", "conditions": [{"kind": "org"}, {"nickname": "bobby"}]}, ["bob", "org"]),
        ({"operator": "NOT", "conditions": [{"inAddressBook": "work"}]}, ["eve", "org"]),
        ({"operator": "AND", "conditions": [{"inAddressBook": "work"}, {"text": "lovelace"}]}, ["ada"]),
    ],
)
def test_filters(carol: Client, people: dict[str, str], filter: dict[str, Any], expected: list[str]) -> None:
    """[contacts-3.3.1-filter] [contacts-3.3.1-matching] every FilterCondition:
    case- and accent-insensitive, all words, quoted phrases."""

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (people[v] if k == "inAddressBook" else resolve(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(c) for c in node]
        return node

    found = query(carol, resolve(filter))
    names = {v: k for k, v in people.items()}
    assert sorted(names[i] for i in found) == expected


def test_bad_filter_and_sort(carol: Client, people: dict[str, str]) -> None:
    response = carol.error("ContactCard/query", {"accountId": carol.account_id, "filter": {"colour": "red"}})
    assert response["type"] == "unsupportedFilter"
    response = carol.error("ContactCard/query", {"accountId": carol.account_id, "filter": {"createdBefore": "soon"}})
    assert response["type"] == "invalidArguments"
    response = carol.error("ContactCard/query", {"accountId": carol.account_id, "sort": [{"property": "emails"}]})
    assert response["type"] == "unsupportedSort"


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ([{"property": "created"}], ["ada", "bob", "eve", "org"]),
        ([{"property": "created", "isAscending": False}], ["org", "eve", "bob", "ada"]),
        ([{"property": "updated"}], ["ada", "bob", "eve", "org"]),
        ([{"property": "name/given"}], ["org", "ada", "bob", "eve"]),
        ([{"property": "name/surname"}], ["org", "eve", "ada", "bob"]),
        ([{"property": "name/surname", "isAscending": False}], ["bob", "ada", "eve", "org"]),
        ([{"property": "name/surname2"}, {"property": "created"}], ["bob", "org", "ada", "eve"]),
        ([{"property": "name/given", "collation": "i;ascii-casemap"}], ["org", "ada", "bob", "eve"]),
    ],
)
def test_sorts(carol: Client, people: dict[str, str], sort: list[dict[str, Any]], expected: list[str]) -> None:
    """[contacts-3.3.2-sort] created, updated and the first name component of a kind."""
    names = {v: k for k, v in people.items()}
    assert [names[i] for i in query(carol, sort=sort)] == expected
    book = [names[i] for i in query(carol, {"inAddressBook": people["home"]}, sort)]
    assert book == [n for n in expected if n != "bob"]


def test_sort_index_walk_for_many_candidates(
    carol: Client, people: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many text hits are taken in order from the sort index: same answers."""
    from jmap_contacts import card

    cases = [({"text": "a"}, [{"property": "name/surname"}]), ({"name": "e"}, [{"property": "created", "isAscending": False}]),
             ({"inAddressBook": people["home"]}, [{"property": "updated"}]), ({"text": "e"}, None)]
    expected = [query(carol, f, s) for f, s in cases]
    monkeypatch.setattr(card, "MANY_CANDIDATES", 0)
    assert [query(carol, f, s) for f, s in cases] == expected
    assert expected[0] and expected[1]


def test_search_index_rebuild(core: Core, carol: Client, people: dict[str, str]) -> None:
    """``jmapcore reindex`` re-makes every card's search document (search_documents)."""
    counts = core.rebuild_search(carol.account_id)
    assert counts["ContactCard"] == 4
    assert query(carol, {"nickname": "bobby"}) == [people["bob"]]


def test_query_paging_and_total(carol: Client, people: dict[str, str]) -> None:
    result = carol.call(
        "ContactCard/query",
        {"accountId": carol.account_id, "sort": [{"property": "created"}], "position": 1, "limit": 2, "calculateTotal": True},
    )
    assert result["ids"] == [people["bob"], people["eve"]] and result["total"] == 4 and result["position"] == 1


# -- /changes, /queryChanges, push ---------------------------------------------------------


def test_changes_and_query_changes(carol: Client, people: dict[str, str]) -> None:
    """[contacts-3.1-methods] /changes and /queryChanges see creates, updates
    and destroys."""
    state = carol.call("ContactCard/get", {"accountId": carol.account_id, "ids": []})["state"]
    args = {"accountId": carol.account_id, "filter": {"text": "lovelace"}, "sort": [{"property": "created"}]}
    before = carol.call("ContactCard/query", args)
    new = create_cards(carol, {"n": person("Newer", "Lovelace", created="2025-01-01T00:00:00Z")})["n"]
    card_set(carol, update={people["bob"]: {"nicknames/n/name": "Lovelace fan"}}, destroy=[people["org"]])
    changes = carol.call("ContactCard/changes", {"accountId": carol.account_id, "sinceState": state})
    assert changes["created"] == [new] and changes["updated"] == [people["bob"]] and changes["destroyed"] == [people["org"]]
    assert changes["newState"] == carol.call("ContactCard/get", {"accountId": carol.account_id, "ids": []})["state"]
    delta = carol.call("ContactCard/queryChanges", {**args, "sinceQueryState": before["queryState"], "calculateTotal": True})
    assert sorted(delta["removed"]) == sorted([people["org"], people["bob"]])
    assert delta["added"] == [{"id": people["bob"], "index": 1}, {"id": new, "index": 2}]
    assert delta["total"] == 3
    assert carol.call("ContactCard/query", args)["ids"] == [people["ada"], people["bob"], new]


def test_push_state_change_for_both_types(core: Core, carol: Client) -> None:
    """[contacts-7-registrations] AddressBook and ContactCard changes are pushed."""
    books(carol)
    feed = PushFeed(core, carol.principal)
    books(carol, other_account(carol))  # the lazy default book moves AddressBook
    feed.poll()
    create_cards(carol, {"c": person("Push", "Me")})
    change = feed.poll()
    state = carol.call("ContactCard/get", {"accountId": carol.account_id, "ids": []})["state"]
    assert change["changed"][carol.account_id] == {"ContactCard": state}
    carol.call("AddressBook/set", {"accountId": carol.account_id, "create": {"b": {"name": "B"}}})
    change = feed.poll()
    state = carol.call("AddressBook/get", {"accountId": carol.account_id, "ids": []})["state"]
    assert change["changed"][carol.account_id] == {"AddressBook": state}


# -- /copy -----------------------------------------------------------------------------


def test_copy_between_accounts(carol: Client) -> None:
    """[contacts-3.1-methods] ContactCard/copy: the card (uid included) goes to
    the other account's default book unless addressBookIds is given; with
    onSuccessDestroyOriginal the original goes."""
    other = other_account(carol)
    ids = create_cards(carol, {"a": person("Copy", "Me", uid="urn:uuid:copy", emails={"e": {"address": "c@example.com"}}),
                               "b": person("Move", "Me")})
    response = carol.request(
        [["ContactCard/copy", {"fromAccountId": carol.account_id, "accountId": other,
                               "create": {"x": {"id": ids["a"]}, "y": {"id": ids["b"], "nicknames": {"n": {"name": "moved"}}},
                                          "z": {"id": "Cmissing"}},
                               "onSuccessDestroyOriginal": True}, "0"]]
    )
    [(name, copied, _), (set_name, destroyed, _)] = response["methodResponses"]
    assert name == "ContactCard/copy" and set_name == "ContactCard/set"
    assert copied["notCreated"]["z"]["type"] == "notFound"
    new_x = copied["created"]["x"]["id"]
    assert copied["created"]["x"]["addressBookIds"] == {default_book(carol, other): True}
    assert sorted(destroyed["destroyed"]) == sorted(ids.values())
    [card] = get_cards(carol, [new_x], account_id=other)
    assert card["uid"] == "urn:uuid:copy" and card["emails"] == {"e": {"address": "c@example.com"}}
    # Searchable in the target account.
    found = carol.call("ContactCard/query", {"accountId": other, "filter": {"email": "c@example.com"}})["ids"]
    assert found == [new_x]
    found = carol.call("ContactCard/query", {"accountId": other, "filter": {"nickname": "moved"}})["ids"]
    assert found == [copied["created"]["y"]["id"]]
    # A second copy of the same uid is refused there.
    again = create_cards(carol, {"a": person("Copy", "Again", uid="urn:uuid:copy")})
    result = carol.call("ContactCard/copy", {"fromAccountId": carol.account_id, "accountId": other, "create": {"x": {"id": again["a"]}}})
    assert result["notCreated"]["x"]["properties"] == ["uid"]
    error = carol.error("ContactCard/copy", {"fromAccountId": "nope", "accountId": other, "create": {}})
    assert error["type"] == "fromAccountNotFound"


def test_accounts_are_separate(core: Core, carol: Client) -> None:
    """[contacts-6-security] another user sees none of the cards, nor the account."""
    add_account(core, "dave", "dave-pass")
    dave = Client(core, principal_for(core, "dave"), using=USING)
    create_cards(carol, {"c": person("Only", "Carol")})
    assert query(dave) == []
    assert dave.error("ContactCard/query", {"accountId": carol.account_id})["type"] == "accountNotFound"


# -- over HTTP --------------------------------------------------------------------------


@pytest.fixture
def http(tmp_path: Path) -> Iterator[falcon.testing.TestClient]:
    from jmapserver.app import create_app
    from jmapserver.config import Settings
    from jmapserver.wiring import build_core, check_data_dir

    settings = Settings(data=tmp_path / "data")
    check_data_dir(settings, create=True)
    core = build_core(settings)
    add_account(core, "erin", "erin-pw")
    yield falcon.testing.TestClient(create_app(core))
    core.backend.close()


def test_over_http(http: falcon.testing.TestClient) -> None:
    """[contacts-1.4.1-capability] [contacts-3.1-methods] the session advertises
    contacts, and a batch creates and finds a card by a result reference."""
    import base64

    auth = {"Authorization": "Basic " + base64.b64encode(b"erin:erin-pw").decode()}
    session = http.simulate_get("/.well-known/jmap", headers=auth).json
    assert CONTACTS in session["capabilities"]
    account = session["primaryAccounts"][CONTACTS]
    body = {
        "using": ["urn:ietf:params:jmap:core", CONTACTS],
        "methodCalls": [
            ["ContactCard/set", {"accountId": account, "create": {"c": person("Http", "Card", emails={"e": {"address": "h@example.com"}})}}, "0"],
            ["ContactCard/query", {"accountId": account, "filter": {"text": "http"}}, "1"],
            ["ContactCard/get", {"accountId": account, "#ids": {"resultOf": "1", "name": "ContactCard/query", "path": "/ids"},
                                 "properties": ["name", "emails", "addressBookIds"]}, "2"],
        ],
    }
    response = http.simulate_post("/jmap/api/", headers=auth, json=body)
    assert response.status_code == 200
    [created, queried, got] = response.json["methodResponses"]
    card_id = created[1]["created"]["c"]["id"]
    assert queried[1]["ids"] == [card_id]
    assert got[1]["list"][0]["emails"] == {"e": {"address": "h@example.com"}}
