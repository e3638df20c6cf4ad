"""RFC 8620 §5.4 /copy, §6 blobs (upload, download, Blob/copy) in-process."""

from __future__ import annotations

import msgspec


def _shared(client):
    return client.principal.account_ids[1]


def test_copy_between_accounts_and_destroy_original(alice):
    """[core-5.4-args] [core-5.4-response] [core-5.4-destroyOriginal]"""
    source = alice.call("Note/set", {"accountId": alice.account_id, "create": {"a": {"title": "orig", "body": "b"}}})
    note_id = source["created"]["a"]["id"]
    response = alice.request(
        [
            [
                "Note/copy",
                {
                    "fromAccountId": alice.account_id,
                    "accountId": _shared(alice),
                    "create": {"c1": {"id": note_id, "title": "copied"}, "c2": {"id": "Nmissing"}},
                    "onSuccessDestroyOriginal": True,
                },
                "cp",
            ],
            ["Note/get", {"accountId": _shared(alice), "ids": ["#c1"]}, "g"],
        ]
    )
    (copy_name, copy, copy_id), (set_name, implicit, set_id), (_, got, _) = response["methodResponses"]
    assert (copy_name, set_name, copy_id, set_id) == ("Note/copy", "Note/set", "cp", "cp")
    assert copy["notCreated"]["c2"]["type"] == "notFound"
    new = got["list"][0]
    assert (new["title"], new["body"]) == ("copied", "b") and new["id"] == copy["created"]["c1"]["id"]
    assert implicit["destroyed"] == [note_id]
    assert alice.call("Note/get", {"accountId": alice.account_id, "ids": [note_id]})["notFound"] == [note_id]


def test_copy_errors(alice, bob):
    """[core-5.4-errors] [core-5.4-ifStates]"""
    base = {"create": {}}
    error = alice.error("Note/copy", {**base, "fromAccountId": bob.account_id, "accountId": alice.account_id})
    assert error["type"] == "fromAccountNotFound"
    error = alice.error("Note/copy", {**base, "fromAccountId": alice.account_id, "accountId": alice.account_id})
    assert error["type"] == "invalidArguments"
    error = alice.error(
        "Note/copy", {**base, "fromAccountId": alice.account_id, "accountId": _shared(alice), "ifFromInState": "s1-99"}
    )
    assert error["type"] == "stateMismatch"
    error = alice.error("Note/copy", {**base, "fromAccountId": alice.account_id, "accountId": bob.account_id})
    assert error["type"] == "accountNotFound"


def _upload(client, data: bytes, account=None):
    result = client.core.upload(client.principal, account or client.account_id, data, "text/plain")
    return result.status, msgspec.json.decode(result.body)


def test_upload_download_and_isolation(alice, bob):
    """[core-6.1-upload] [core-6.2-download] [core-6.1-uploaderOnly]"""
    status, blob = _upload(alice, b"hello blob")
    assert status == 201
    assert (blob["accountId"], blob["type"], blob["size"]) == (alice.account_id, "text/plain", 10)
    data, size = alice.core.download(alice.principal, alice.account_id, blob["blobId"])
    assert (data, size) == (b"hello blob", 10)
    assert alice.core.download(alice.principal, alice.account_id, blob["blobId"], 6, 2) == (b"bl", 10)
    assert bob.core.download(bob.principal, alice.account_id, blob["blobId"]) is None
    assert bob.core.download(bob.principal, bob.account_id, blob["blobId"]) is None
    status, problem = _upload(bob, b"x", account=alice.account_id)
    assert status == 404
    same = _upload(alice, b"hello blob")[1]
    assert same["blobId"] == blob["blobId"]


def test_upload_limit(alice):
    """[core-6.1-upload] over maxSizeUpload: 413 with the limit named."""
    status, problem = _upload(alice, b"x" * (alice.core.limits.maxSizeUpload + 1))
    assert status == 413 and problem["limit"] == "maxSizeUpload"


def test_blob_copy(alice, bob):
    """[core-6.3-blobCopy]"""
    blob_id = _upload(alice, b"copy me")[1]["blobId"]
    result = alice.call(
        "Blob/copy", {"fromAccountId": alice.account_id, "accountId": _shared(alice), "blobIds": [blob_id, "Bnope"]}
    )
    assert result["notCopied"]["Bnope"]["type"] == "notFound"
    copied = result["copied"][blob_id]
    assert alice.core.download(alice.principal, _shared(alice), copied)[0] == b"copy me"
    error = alice.error("Blob/copy", {"fromAccountId": bob.account_id, "accountId": alice.account_id, "blobIds": []})
    assert error["type"] == "fromAccountNotFound"
    result = bob.call("Blob/copy", {"fromAccountId": bob.account_id, "accountId": bob.account_id, "blobIds": [blob_id]})
    assert result["notCopied"][blob_id]["type"] == "notFound", "another user's blob is invisible"
