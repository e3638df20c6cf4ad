"""RFC 8620 §2: the Session resource."""

from __future__ import annotations

from jmapcore.wire import CORE
from tests.conftest import NOTES

LIMITS = ["maxSizeUpload", "maxConcurrentUpload", "maxSizeRequest", "maxConcurrentRequests",
          "maxCallsInRequest", "maxObjectsInGet", "maxObjectsInSet", "collationAlgorithms"]


def test_session_is_complete(alice):
    """[core-2-capabilities] [core-2-coreCapLimits] [core-2-accounts] [core-2-primaryAccounts]
    [core-2-username] [core-2-apiUrl] [core-2-downloadUrl] [core-2-uploadUrl] [core-2-eventSourceUrl] [core-2-state]"""
    session = alice.core.session(alice.principal, "https://mail.example/")
    assert set(session) >= {"capabilities", "accounts", "primaryAccounts", "username", "apiUrl",
                            "downloadUrl", "uploadUrl", "eventSourceUrl", "state"}
    assert set(session["capabilities"][CORE]) == set(LIMITS)
    assert {"i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap"} <= set(session["capabilities"][CORE]["collationAlgorithms"])
    assert session["capabilities"][NOTES] == {"maxNoteLength": 100_000}
    assert set(session["accounts"]) == set(alice.principal.account_ids)
    account = session["accounts"][alice.account_id]
    assert {k: account[k] for k in ("name", "isPersonal", "isReadOnly")} == {
        "name": "alice", "isPersonal": True, "isReadOnly": False}
    # [mail-1.4-perAccount] every capability but submission: alice owns no
    # address to send from (test_submission covers an account that does).
    assert set(account["accountCapabilities"]) == set(session["capabilities"]) - {
        "urn:ietf:params:jmap:submission"
    }
    assert account["accountCapabilities"][CORE] == {} and account["accountCapabilities"][NOTES] == {}
    assert session["primaryAccounts"][NOTES] == alice.account_id
    assert CORE not in session["primaryAccounts"], "[core-2-primaryAccounts] core SHOULD NOT be a key"
    assert session["username"] == "alice"
    assert session["apiUrl"] == "https://mail.example/jmap/api/"
    for variable in ("{accountId}", "{blobId}", "{type}", "{name}"):
        assert variable in session["downloadUrl"]
    assert "{accountId}" in session["uploadUrl"]
    for variable in ("{types}", "{closeafter}", "{ping}"):
        assert variable in session["eventSourceUrl"]
    assert session["state"] == alice.core.session_state(alice.principal)


def test_session_state_differs_between_users(alice, bob):
    assert alice.core.session_state(alice.principal) != bob.core.session_state(bob.principal)
