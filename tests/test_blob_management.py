"""JMAP Blob management (RFC 9404): Blob/upload, Blob/get, Blob/lookup.

In-process on every backend (the ``backend`` fixture), plus one round trip
over HTTP.  Spec ids are the ``blob-*`` lines of /work/shared/spec/core.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from jmapcore import Core
from jmapcore.accounts import add_account, principal_for
from jmapcore.testing.client import Client
from jmapcore.wire import CORE
from tests.mailhelpers import import_messages, mailboxes, message

BLOB = "urn:ietf:params:jmap:blob"
MAIL = "urn:ietf:params:jmap:mail"
FOX = "The quick brown fox jumped over the lazy dog."


@pytest.fixture
def user(core: Core) -> Client:
    add_account(core, "blobby", "pw")
    return Client(core, principal_for(core, "blobby"), using=[BLOB, MAIL])


@pytest.fixture
def other(core: Core) -> Client:
    add_account(core, "other", "pw")
    return Client(core, principal_for(core, "other"), using=[BLOB, MAIL])


def upload(client: Client, create: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return client.call("Blob/upload", {"accountId": client.account_id, "create": create}, **kwargs)


def text_blob(client: Client, text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    created = upload(client, {"b": {"data": [{"data:asBase64": base64.b64encode(data).decode()}]}})["created"]
    return created["b"]["id"]


def get(client: Client, ids: list[str], **arguments: Any) -> dict[str, Any]:
    return client.call("Blob/get", {"accountId": client.account_id, "ids": ids, **arguments})


# -- capability ------------------------------------------------------------------


def test_capability_in_session_and_account(user: Client) -> None:
    """[blob-3.1-capability] {} in the session; the account object has every member."""
    session = user.core.session(user.principal, "http://x")
    assert session["capabilities"][BLOB] == {}
    account = session["accounts"][user.account_id]["accountCapabilities"][BLOB]
    assert set(account) == {"maxSizeBlobSet", "maxDataSources", "supportedTypeNames", "supportedDigestAlgorithms"}
    assert account["maxDataSources"] >= 64
    assert account["maxSizeBlobSet"] == user.core.limits.maxSizeUpload
    assert set(account["supportedTypeNames"]) >= {"Mailbox", "Thread", "Email"}
    assert account["supportedDigestAlgorithms"] and all(a == a.lower() for a in account["supportedDigestAlgorithms"])
    assert {"sha", "sha-256"} <= set(account["supportedDigestAlgorithms"])
    assert session["primaryAccounts"][BLOB] == user.account_id


def test_methods_need_the_blob_capability_but_copy_does_not(user: Client) -> None:
    """[blob-4-copyUnchanged] Blob/upload, /get, /lookup are gated by the blob
    capability; Blob/copy stays a core method."""
    for name, arguments in (
        ("Blob/upload", {"create": {}}),
        ("Blob/get", {"ids": []}),
        ("Blob/lookup", {"typeNames": [], "ids": []}),
    ):
        error = user.error(name, {"accountId": user.account_id, **arguments}, using=[CORE, MAIL])
        assert error["type"] == "unknownMethod"
    blob_id = text_blob(user, "copy me")
    copied = user.call(
        "Blob/copy",
        {"fromAccountId": user.account_id, "accountId": user.account_id, "blobIds": [blob_id]},
        using=[CORE],
    )
    assert copied["copied"] == {blob_id: blob_id}


# -- Blob/upload -------------------------------------------------------------------


def test_upload_concatenates_sources_and_creation_ids_resolve(user: Client) -> None:
    """[blob-4.1-upload] [blob-4.1-uploadObject] [blob-4.1-dataSource] [blob-4.1-createdIds]
    The RFC's example: text, ranges of a blob created in an earlier call, base64."""
    response = user.request(
        [
            ["Blob/upload", {"accountId": user.account_id, "create": {"b4": {"data": [{"data:asText": FOX}]}}}, "S4"],
            [
                "Blob/upload",
                {
                    "accountId": user.account_id,
                    "create": {
                        "cat": {
                            "data": [
                                {"data:asText": "How"},
                                {"blobId": "#b4", "length": 7, "offset": 3},
                                {"data:asBase64": base64.b64encode(b"was t").decode()},
                                {"blobId": "#b4", "length": 1, "offset": 1},
                                {"data:asBase64": "YXQ/"},
                            ],
                            "type": "text/plain",
                        },
                        # a later creation of the same call may use an earlier one
                        "again": {"data": [{"blobId": "#b4", "offset": 41, "length": None}]},
                    },
                },
                "CAT",
            ],
            ["Blob/get", {"accountId": user.account_id, "ids": ["#cat", "#again"], "properties": ["data:asText", "size"]}, "G4"],
        ],
        created_ids={},
    )
    (_, first, _), (_, second, _), (_, got, _) = response["methodResponses"]
    b4 = first["created"]["b4"]
    assert (b4["size"], b4["type"], b4["id"]) == (len(FOX), None, b4["blobId"])
    assert first["notCreated"] is None and "state" not in first
    cat = second["created"]["cat"]
    assert (cat["size"], cat["type"]) == (19, "text/plain")
    assert [item["data:asText"] for item in got["list"]] == ["How quick was that?", "dog."]
    assert got["list"][0]["id"] == cat["id"] and got["notFound"] == []
    assert response["createdIds"]["b4"] == b4["id"] and response["createdIds"]["cat"] == cat["id"]


def test_upload_edge_ranges_and_empty_blobs(user: Client) -> None:
    """[blob-4.1-uploadObject] no sources make an empty blob; [blob-4.1-dataSource]
    offset and length may be 0, null offset is 0, null length is the rest."""
    fox = text_blob(user, FOX)
    created = upload(
        user,
        {
            "empty": {"data": []},
            "zero": {"data": [{"blobId": fox, "offset": 0, "length": 0}]},
            "atEnd": {"data": [{"blobId": fox, "offset": len(FOX)}]},
            "whole": {"data": [{"blobId": fox, "offset": None, "length": None}]},
            "head": {"data": [{"blobId": fox, "length": 3}]},
        },
    )["created"]
    assert {key: value["size"] for key, value in created.items()} == {
        "empty": 0, "zero": 0, "atEnd": 0, "whole": len(FOX), "head": 3,
    }  # fmt: skip
    assert created["whole"]["id"] == fox, "content-addressed: the same octets, the same blob"
    assert get(user, [created["head"]["id"]])["list"][0]["data:asText"] == "The"
    assert user.core.download(user.principal, user.account_id, created["empty"]["id"]) == (b"", 0)


def test_upload_errors_fail_only_their_creation(user: Client, other: Client) -> None:
    """[blob-4.1-dataSource] invalid base64, not-Unicode text, two kinds in one
    source, bad ranges and unknown or invisible blobs: notCreated, never a guess;
    the other creations of the call still happen."""
    fox = text_blob(user, FOX)
    theirs = text_blob(other, "private")
    result = upload(
        user,
        {
            "ok": {"data": [{"data:asText": "fine"}]},
            "badBase64": {"data": [{"data:asBase64": "!!not base64!!"}]},
            "unpadded": {"data": [{"data:asBase64": "YXQ"}]},
            "both": {"data": [{"data:asText": "a", "data:asBase64": "YQ=="}]},
            "neither": {"data": [{"offset": 1}]},
            "textWithRange": {"data": [{"data:asText": "a", "offset": 0}]},
            "pastEnd": {"data": [{"blobId": fox, "offset": 41, "length": 10}]},
            "startPastEnd": {"data": [{"blobId": fox, "offset": 46}]},
            "negative": {"data": [{"blobId": fox, "offset": -1}]},
            "unknownBlob": {"data": [{"blobId": "Bnothere"}]},
            "unknownRef": {"data": [{"blobId": "#nope"}]},
            "othersBlob": {"data": [{"blobId": theirs}]},
            "notAList": {"data": {"data:asText": "x"}},
            "noData": {"type": "text/plain"},
            "extra": {"data": [], "name": "x"},
            "badType": {"data": [], "type": 5},
        },
    )
    assert set(result["created"]) == {"ok"}
    errors = result["notCreated"]
    assert set(errors) == {
        "badBase64", "unpadded", "both", "neither", "textWithRange", "pastEnd", "startPastEnd", "negative",
        "unknownBlob", "unknownRef", "othersBlob", "notAList", "noData", "extra", "badType",
    }  # fmt: skip
    for key in ("unknownBlob", "unknownRef", "othersBlob"):
        assert errors[key]["type"] == "blobNotFound", key
    assert errors["othersBlob"]["notFound"] == [theirs]
    for key in set(errors) - {"unknownBlob", "unknownRef", "othersBlob"}:
        assert errors[key]["type"] == "invalidProperties", key
        assert errors[key]["properties"], key
    assert errors["pastEnd"]["properties"] == ["data/0/length", "data/0/offset"]


def test_upload_invalid_unicode_text_is_refused(user: Client) -> None:
    """[blob-4.1-dataSource] a lone surrogate is not UTF-8: notCreated (or, since
    the request is then not I-JSON, a notJSON problem; never a stored guess)."""
    call = json.dumps(["Blob/upload", {"accountId": user.account_id, "create": {"x": {"data": [{"data:asText": "@"}]}}}, "c"])
    body = json.dumps({"using": [CORE, BLOB], "methodCalls": ["@CALL@"]}).replace('"@CALL@"', call)
    body = body.replace('"@"', '"a\\ud800b"').encode()
    status, response = user.raw(body)
    if status == 200:
        (_, result, _), = response["methodResponses"]
        assert result["created"] is None and result["notCreated"]["x"]["type"] == "invalidProperties"
    else:
        assert status == 400 and response["type"].endswith("notJSON")


def test_upload_limits(user: Client) -> None:
    """[blob-3.1-capability] maxDataSources is enforced per creation; more
    creations than maxObjectsInSet is requestTooLarge."""
    limit = user.core.session(user.principal, "")["accounts"][user.account_id]["accountCapabilities"][BLOB]
    many = limit["maxDataSources"]
    result = upload(
        user,
        {
            "max": {"data": [{"data:asText": "a"}] * many},
            "over": {"data": [{"data:asText": "a"}] * (many + 1)},
        },
    )
    assert result["created"]["max"]["size"] == many
    assert result["notCreated"]["over"]["type"] == "tooLarge"
    create = {f"c{i}": {"data": []} for i in range(user.core.limits.maxObjectsInSet + 1)}
    error = user.error("Blob/upload", {"accountId": user.account_id, "create": create})
    assert error["type"] == "requestTooLarge"


def test_uploaded_blob_is_the_uploaders_alone_until_referenced(user: Client, other: Client) -> None:
    """[blob-4.1-lifetime] a Blob/upload blob follows RFC 8620 §6: unreferenced,
    visible to its uploader only, and expiring like an HTTP upload."""
    blob_id = text_blob(user, "mine")
    with user.core.backend.snapshot(user.account_id) as snap:
        info = snap.blob_info(blob_id)
    assert info is not None and info.refs == 0 and info.uploader == "blobby"
    assert other.core.download(other.principal, user.account_id, blob_id) is None
    user.core.maintain(now=info.uploaded_at + 4000)
    assert get(user, [blob_id])["notFound"] == [blob_id]


def test_upload_errors_at_method_level(user: Client, other: Client) -> None:
    """[blob-4.1-upload] someone else's account: accountNotFound; a mistyped
    argument: invalidArguments."""
    assert user.error("Blob/upload", {"accountId": other.account_id, "create": {}})["type"] == "accountNotFound"
    assert user.error("Blob/upload", {"accountId": user.account_id, "create": []})["type"] == "invalidArguments"
    assert user.error("Blob/upload", {"accountId": user.account_id})["type"] == "invalidArguments"


# -- Blob/get --------------------------------------------------------------------------


def test_get_defaults_ranges_and_digests(user: Client) -> None:
    """[blob-4.2-getArgs] [blob-4.2-getProps] [blob-4.2-results] defaults are data and
    size; a range selects the octets, size stays the whole blob's, digests are
    of the selected octets, base64 of the hash."""
    fox = text_blob(user, FOX)
    default = get(user, [fox])["list"][0]
    assert default == {"id": fox, "data:asText": FOX, "size": len(FOX)}
    every = ["data:asText", "data:asBase64", "digest:sha", "digest:sha-256", "size"]
    ranged = get(user, [fox, "Bnothere"], offset=4, length=9, properties=every)
    assert ranged["notFound"] == ["Bnothere"]
    item = ranged["list"][0]
    selected = FOX[4:13].encode()
    assert item == {
        "id": fox,
        "data:asText": "quick bro",
        "data:asBase64": base64.b64encode(selected).decode(),
        "digest:sha": base64.b64encode(hashlib.sha1(selected).digest()).decode(),
        "digest:sha-256": base64.b64encode(hashlib.sha256(selected).digest()).decode(),
        "size": len(FOX),
    }
    only_size = get(user, [fox], properties=["size"], offset=10)["list"][0]
    assert only_size == {"id": fox, "size": len(FOX)}


def test_get_encoding_problem(user: Client) -> None:
    """[blob-4.2-encodingProblem] octets that are not UTF-8 (binary, or a cut
    multi-octet sequence): data:asText null, and `data` falls back to base64."""
    binary = text_blob(user, b"\xff\xfe\x00binary")
    item = get(user, [binary], properties=["data", "size"])["list"][0]
    assert item == {"id": binary, "data:asBase64": base64.b64encode(b"\xff\xfe\x00binary").decode(),
                    "isEncodingProblem": True, "size": 9}
    item = get(user, [binary], properties=["data:asText"])["list"][0]
    assert item == {"id": binary, "data:asText": None, "isEncodingProblem": True}
    euro = text_blob(user, "1€")  # € is three octets
    cut = get(user, [euro], properties=["data"], offset=0, length=2)["list"][0]
    assert cut["isEncodingProblem"] is True and base64.b64decode(cut["data:asBase64"]) == b"1\xe2"
    whole = get(user, [euro], properties=["data", "data:asBase64"])["list"][0]
    assert whole["data:asText"] == "1€" and "isEncodingProblem" not in whole
    assert base64.b64decode(whole["data:asBase64"]) == "1€".encode()


def test_get_truncation(user: Client) -> None:
    """[blob-4.2-truncated] a range past the end gives the octets up to the end
    (or nothing) and isTruncated; with no length only an offset past the end
    truncates; digests cover what is returned."""
    fox = text_blob(user, FOX)
    props = ["data", "digest:sha-256", "size"]
    tail = get(user, [fox], offset=41, length=100, properties=props)["list"][0]
    assert tail["data:asText"] == "dog." and tail["isTruncated"] is True and tail["size"] == len(FOX)
    assert tail["digest:sha-256"] == base64.b64encode(hashlib.sha256(b"dog.").digest()).decode()
    beyond = get(user, [fox], offset=100, properties=props)["list"][0]
    assert beyond["data:asText"] == "" and beyond["isTruncated"] is True
    assert beyond["digest:sha-256"] == base64.b64encode(hashlib.sha256(b"").digest()).decode()
    to_end = get(user, [fox], offset=len(FOX), properties=props)["list"][0]
    assert to_end["data:asText"] == "" and "isTruncated" not in to_end
    exact = get(user, [fox], offset=41, length=4, properties=props)["list"][0]
    assert exact["data:asText"] == "dog." and "isTruncated" not in exact


def test_get_errors_and_visibility(user: Client, other: Client) -> None:
    """[blob-4.2-getProps] unknown properties and algorithms are invalidArguments;
    another user's unreferenced upload is notFound ([blob-5-acl])."""
    fox = text_blob(user, FOX)
    for bad in (["data:asHex"], ["digest:md5"], ["name"]):
        assert user.error("Blob/get", {"accountId": user.account_id, "ids": [fox], "properties": bad})["type"] == "invalidArguments"
    error = user.error("Blob/get", {"accountId": user.account_id, "ids": [fox], "offset": -1})
    assert error["type"] == "invalidArguments"
    assert user.error("Blob/get", {"accountId": user.account_id})["type"] == "requestTooLarge"
    theirs = text_blob(other, "secret")
    assert get(user, [theirs])["notFound"] == [theirs]
    assert other.error("Blob/get", {"accountId": user.account_id, "ids": [fox]})["type"] == "accountNotFound"


# -- Blob/lookup -----------------------------------------------------------------------


def _lookup(client: Client, ids: list[str], type_names: list[str] | None = None, **kwargs: Any) -> Any:
    arguments = {"accountId": client.account_id, "typeNames": type_names or ["Mailbox", "Thread", "Email"], "ids": ids}
    return client.call("Blob/lookup", arguments, **kwargs)


def test_lookup_finds_emails_threads_and_mailboxes(user: Client) -> None:
    """[blob-4.3-lookup] [blob-6-dataTypes] an Email references its message and
    its parts' blobs; its Thread and Mailboxes reference them through it."""
    raw = message("With file", attachment=("a.txt", b"attached text", "text/plain"))
    first, second = import_messages(user, [raw, message("Other", "other body")])
    boxes = mailboxes(user)
    archive = boxes["archive"]["id"]
    copy = user.call(
        "Email/import",
        {"accountId": user.account_id, "emails": {"c": {"blobId": first["blobId"], "mailboxIds": {archive: True}}}},
    )["created"]["c"]
    parts = user.call(
        "Email/get", {"accountId": user.account_id, "ids": [first["id"]], "properties": ["attachments", "threadId"]}
    )["list"][0]
    part_blob = parts["attachments"][0]["blobId"]
    part = get(user, [part_blob], properties=["data:asText", "size"], offset=9)["list"][0]
    assert part == {"id": part_blob, "data:asText": "text", "size": len(b"attached text")}, "a MIME part's blob"
    stray = text_blob(user, "referenced by nothing")
    result = _lookup(user, [first["blobId"], part_blob, second["blobId"], stray, first["blobId"] + "_99"])
    assert result["accountId"] == user.account_id and result["notFound"] == []
    by_id = {item["id"]: item["matchedIds"] for item in result["list"]}
    message_matches = by_id[first["blobId"]]
    assert sorted(message_matches["Email"]) == sorted([first["id"], copy["id"]])
    assert set(message_matches["Mailbox"]) == {boxes["inbox"]["id"], archive}
    assert set(message_matches["Thread"]) == {parts["threadId"], copy["threadId"]}
    assert sorted(by_id[part_blob]["Email"]) == sorted([first["id"], copy["id"]])
    assert by_id[second["blobId"]] == {"Mailbox": [boxes["inbox"]["id"]], "Thread": [second["threadId"]], "Email": [second["id"]]}
    empty = {"Mailbox": [], "Thread": [], "Email": []}
    assert by_id[stray] == empty and by_id[first["blobId"] + "_99"] == empty
    only_email = _lookup(user, [second["blobId"]], ["Email"])["list"]
    assert only_email == [{"id": second["blobId"], "matchedIds": {"Email": [second["id"]]}}]
    user.call("Email/set", {"accountId": user.account_id, "destroy": [second["id"]]})
    assert _lookup(user, [second["blobId"]])["list"][0]["matchedIds"] == empty


def test_lookup_unknown_data_types(user: Client) -> None:
    """[blob-4.3-unknownDataType] unknown types, types that reference no blobs,
    and types whose capability is not in `using` are unknownDataType."""
    for names, using in (
        (["Nope"], None),
        (["SearchSnippet"], None),
        (["EmailDelivery"], None),
        (["Note"], [CORE, BLOB, "https://example.com/jmap/notes"]),
        (["Email"], [CORE, BLOB]),
    ):
        arguments = {"accountId": user.account_id, "typeNames": names, "ids": ["Bx"]}
        assert user.error("Blob/lookup", arguments, using=using)["type"] == "unknownDataType", names


def test_lookup_reveals_nothing_of_other_accounts(user: Client, other: Client) -> None:
    """[blob-4.3-noLeak] [blob-5-acl] the same answer for a blob that exists
    elsewhere as for one that exists nowhere; another account is not searchable."""
    (theirs,) = import_messages(other, [message("Theirs")])
    result = _lookup(user, [theirs["blobId"], "Bnothere"])
    empty = {"Mailbox": [], "Thread": [], "Email": []}
    assert result["list"] == [{"id": theirs["blobId"], "matchedIds": empty}, {"id": "Bnothere", "matchedIds": empty}]
    arguments = {"accountId": other.account_id, "typeNames": ["Email"], "ids": [theirs["blobId"]]}
    assert user.error("Blob/lookup", arguments)["type"] == "accountNotFound"


# -- over HTTP ---------------------------------------------------------------------------


def test_upload_get_and_download_over_http(tmp_path: Path) -> None:
    """[blob-3.1-capability] [blob-4.1-upload] [blob-4.2-results] through the HTTP
    front: the session names the capability, Blob/upload's blob downloads."""
    from jmapserver.app import create_app
    from jmapserver.config import Settings
    from jmapserver.wiring import build_core, check_data_dir

    settings = Settings(data=tmp_path / "data")
    check_data_dir(settings, create=True)
    core = build_core(settings)
    try:
        account_id = add_account(core, "web", "web-pw").account_id
        client = falcon.testing.TestClient(create_app(core))
        auth = {"Authorization": "Basic " + base64.b64encode(b"web:web-pw").decode()}
        session = client.simulate_get("/.well-known/jmap", headers=auth).json
        assert BLOB in session["capabilities"]
        assert session["accounts"][account_id]["accountCapabilities"][BLOB]["maxDataSources"] >= 64
        body = {
            "using": [CORE, BLOB],
            "methodCalls": [
                ["Blob/upload", {"accountId": account_id, "create": {"n": {"data": [{"data:asText": "über"}], "type": "text/plain"}}}, "u"],
                ["Blob/get", {"accountId": account_id, "ids": ["#n"], "properties": ["data", "digest:sha-256", "size"]}, "g"],
            ],
        }
        result = client.simulate_post(
            "/jmap/api/", body=json.dumps(body), headers={**auth, "Content-Type": "application/json"}
        )
        assert result.status_code == 200
        (_, uploaded, _), (_, got, _) = result.json["methodResponses"]
        created = uploaded["created"]["n"]
        assert (created["type"], created["size"]) == ("text/plain", 5)
        assert got["list"][0]["data:asText"] == "über"
        assert got["list"][0]["digest:sha-256"] == base64.b64encode(hashlib.sha256("über".encode()).digest()).decode()
        download = client.simulate_get(f"/jmap/download/{account_id}/{created['id']}/n.txt?type=text/plain", headers=auth)
        assert download.status_code == 200 and download.content == "über".encode()
    finally:
        core.close()
