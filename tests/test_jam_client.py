"""A second third-party client against the real server: jmap-jam (npm, TypeScript).

``tests/jam/run.mjs`` drives jam's own API (``JamClient``, ``api.<Type>.<method>``,
``request``, ``requestMany`` with ``$ref``, ``uploadBlob``, ``downloadBlob``) against
``jmapcore serve --workers 2`` over HTTPS on 127.0.0.1, trusting the test certificate through
``NODE_EXTRA_CA_CERTS``, and prints a JSON summary.  The tests check that summary and, with a
separate httpx client (HTTP Basic, a fresh connection), what the server then holds.

jam authenticates with a bearer token only (``jmapcore token create``).  ``npm ci`` runs once
per lock file (a stamp in node_modules records which); without node/npm or a registry the
module is skipped.

Spec ids are named without brackets, so that tools/conformance.py does not count this
file (docs/conformance.md is generated elsewhere); bracket them and regenerate to count them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Running, jmapcore, make_certificate, start, stop

pytestmark = pytest.mark.server

JAM = Path(__file__).resolve().parent / "jam"
STAMP = JAM / "node_modules" / ".jmapcore-lock-sha256"
MAIL = "urn:ietf:params:jmap:mail"
CORE = "urn:ietf:params:jmap:core"
USER, PASSWORD = "alice", "alice-pw"
LABEL = "jam-run"


def _install() -> Path:
    """node_modules for tests/jam, installed with ``npm ci`` unless the stamp says the
    installed tree came from this very lock file.  Returns the node executable."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run jmap-jam (tests/jam)")
    lock = hashlib.sha256((JAM / "package-lock.json").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text().strip() == lock:
        return Path(node)
    try:
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JAM, capture_output=True, text=True, timeout=300,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("npm ci in tests/jam took over 300 s (no registry?)")
    if installed.returncode != 0:
        said = (installed.stderr + installed.stdout).splitlines()
        errors = [line for line in said if line.startswith("npm error")] or said[-2:]
        pytest.skip(f"npm ci in tests/jam failed (offline?): {' | '.join(errors[:2])}")
    STAMP.write_text(lock + "\n")  # npm ci empties node_modules first: a stale stamp goes too
    return Path(node)


@pytest.fixture(scope="module")
def node() -> Path:
    return _install()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("jam-tls"))


@pytest.fixture(scope="module")
def server(
    node: Path, tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]
) -> Iterator[tuple[Running, str]]:
    """The HTTPS server with alice, and a bearer token for her (jam's only credential)."""
    root = tmp_path_factory.mktemp("jam-server")
    data = root / "data"
    added = jmapcore("account", "add", USER, "--password", PASSWORD, "--data", str(data))
    assert added.returncode == 0, added.stderr
    token = jmapcore("token", "create", USER, "--data", str(data))
    assert token.returncode == 0, token.stderr
    running = start("serve", data, root / "server.log", extra=["--workers", "2"], tls=certificate)
    running.account_id = added.stdout.strip()
    try:
        yield running, token.stdout.strip()
    finally:
        stop(running.process)


@pytest.fixture(scope="module")
def summary(node: Path, server: tuple[Running, str], certificate: tuple[Path, Path]) -> dict[str, Any]:
    """Run tests/jam/run.mjs once; its JSON summary."""
    running, token = server
    env = {
        **os.environ,
        "JAM_SESSION_URL": f"{running.url}/.well-known/jmap",
        "JAM_BEARER_TOKEN": token,
        "JAM_LABEL": LABEL,
        "NODE_EXTRA_CA_CERTS": str(certificate[0]),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NODE_OPTIONS"):
        env.pop(proxy, None)
    ran = subprocess.run(
        [str(node), "run.mjs"], cwd=JAM, env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, f"jam failed:\n{ran.stderr}\n{running.log.read_text()[-3000:]}"
    return json.loads(ran.stdout)


@pytest.fixture(scope="module")
def http(server: tuple[Running, str], certificate: tuple[Path, Path]) -> Iterator[httpx.Client]:
    """A separate client (HTTP Basic, its own connections) to look at the server's state."""
    verify = ssl.create_default_context(cafile=certificate[0])
    with httpx.Client(
        base_url=server[0].url, auth=(USER, PASSWORD), verify=verify, timeout=10, trust_env=False
    ) as client:
        yield client


def call(http: httpx.Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    answer = http.post("/jmap/api/", json={
        "using": [CORE, MAIL], "methodCalls": [[name, arguments, "0"]],
    })
    assert answer.status_code == 200, answer.text
    [[response_name, result, _]] = answer.json()["methodResponses"]
    assert response_name == name, result
    return result


def test_jam_reads_the_session(server: tuple[Running, str], summary: dict[str, Any]) -> None:
    """jam's Session, its primary mail account, and the state echoed by every response.

    Spec: [core-2-sessionGet], [core-2-primaryAccounts], [core-2-downloadUrl], [core-2-state].
    """
    running = server[0]
    session = summary["session"]
    assert session["username"] == USER
    assert session["apiUrl"] == f"{running.url}/jmap/api/"
    assert session["uploadUrl"] == f"{running.url}/jmap/upload/{{accountId}}/"
    for variable in ("{accountId}", "{blobId}", "{type}", "{name}"):
        assert variable in session["downloadUrl"]
    assert {CORE, MAIL} <= set(session["capabilities"])
    assert session["accountId"] == running.account_id  # jam.getPrimaryAccount()
    assert CORE not in session["primaryAccounts"]
    assert summary["echo"]["sessionState"] == session["state"]
    assert summary["queryGet"]["sessionState"] == session["state"]


def test_jam_core_echo(summary: dict[str, Any]) -> None:
    """jam.api.Core.echo gets its arguments back unchanged (non-ASCII too).

    Spec: [core-4-echo].
    """
    assert summary["echo"]["arguments"] == {
        "hello": ["world", 1, None, {"nested": True}], "text": "grüße",
    }


def test_jam_mailbox_get_and_set(summary: dict[str, Any], http: httpx.Client,
                                 server: tuple[Running, str]) -> None:
    """jam's Mailbox/get sees the default mailboxes; its Mailbox/set create (with
    ifInState and createdIds) makes a mailbox another client then sees.

    Spec: [mail-2.1-get], [core-5.3-response], [core-3.3-createdIdsIn], [core-5.3-ifInState].
    """
    roles = {m["role"] for m in summary["mailboxGet"]["list"]}
    assert {"inbox", "sent", "drafts", "trash"} <= roles
    made = summary["mailboxSet"]
    mailbox_id = made["mailboxId"]
    assert mailbox_id and made["notCreated"] is None
    assert made["oldState"] == summary["mailboxGet"]["state"] != made["newState"]
    assert made["createdIds"] == {"box": mailbox_id}
    created = made["created"]["box"]
    assert "name" not in created  # sent by the client: not echoed
    assert (created["role"], created["totalEmails"]) == (None, 0)
    assert created["myRights"]["mayAddItems"] is True

    [seen] = call(http, "Mailbox/get", {"accountId": server[0].account_id, "ids": [mailbox_id]})["list"]
    assert (seen["name"], seen["parentId"], seen["role"]) == (f"Made by jam {LABEL}", None, None)
    assert (seen["totalEmails"], seen["unreadEmails"]) == (1, 0)  # jam's import, $seen


def test_jam_query_then_get_by_reference(summary: dict[str, Any], http: httpx.Client,
                                         server: tuple[Running, str]) -> None:
    """jam's $ref("/ids") and $ref("/list/*/threadId") tie Email/query, Email/get and
    Thread/get together.

    Spec: [core-3.7-hashArg], [core-3.7-star], [mail-4.4.1-filter].
    """
    email_id = summary["import"]["emailId"]
    mailbox_id = summary["mailboxSet"]["mailboxId"]
    listed = summary["queryGet"]
    assert listed["query"]["ids"] == [email_id]
    assert listed["query"]["total"] == 1 and listed["query"]["position"] == 0
    assert listed["createdIdsInResponse"] is False  # core-3.3-createdIdsIn: none sent
    [email] = listed["emails"]["list"]
    assert email["id"] == email_id
    assert email["subject"] == f"Sent through jam ({LABEL})"
    assert email["from"] == [{"name": "Jam Sender", "email": "jam@example.com"}]
    assert email["preview"].strip() == "Hello from jmap-jam, grüße."
    assert (email["mailboxIds"], email["keywords"]) == ({mailbox_id: True}, {"$seen": True})
    assert email["blobId"] == summary["upload"]["blobId"]
    assert listed["threads"]["list"] == [{"id": email["threadId"], "emailIds": [email_id]}]

    # The same Email, asked for by someone else.
    [again] = call(http, "Email/get", {
        "accountId": server[0].account_id, "ids": [email_id], "properties": ["subject", "threadId"],
    })["list"]
    assert (again["subject"], again["threadId"]) == (email["subject"], email["threadId"])


def test_jam_batch(summary: dict[str, Any], http: httpx.Client, server: tuple[Running, str]) -> None:
    """One requestMany: echo, a parent and a child mailbox (parentId "#parent"), a
    Mailbox/get fed by the echo, Mailbox/changes.

    Spec: [core-3.3-sequential], [core-5.3-creationRef], [core-5.3-selfTypeOrder],
    [core-3.3-createdIdsIn], [core-5.2-response].
    """
    batch = summary["batch"]["responses"]
    mailbox_id = summary["mailboxSet"]["mailboxId"]
    assert set(batch) == {"echo", "create", "fetched", "changes"}
    created = batch["create"]["created"]
    parent, child = created["parent"]["id"], created["child"]["id"]
    assert batch["create"]["notCreated"] is None
    assert summary["batch"]["createdIds"] == {"parent": parent, "child": child}
    assert batch["fetched"]["list"] == [
        {"id": mailbox_id, "name": f"Made by jam {LABEL}", "totalEmails": 1, "unreadEmails": 0}
    ]
    changes = batch["changes"]
    assert changes["oldState"] == summary["mailboxGet"]["state"]
    assert changes["newState"] == batch["create"]["newState"] == batch["fetched"]["state"]
    assert set(changes["created"]) == {mailbox_id, parent, child}
    assert changes["updated"] == [] and changes["destroyed"] == []

    account = server[0].account_id
    got = call(http, "Mailbox/get", {"accountId": account, "ids": [parent, child],
                                     "properties": ["name", "parentId"]})["list"]
    assert {(m["name"], m["parentId"]) for m in got} == {
        (f"Jam parent {LABEL}", None), (f"Jam child {LABEL}", parent),
    }


def test_jam_blob_round_trip(summary: dict[str, Any], server: tuple[Running, str]) -> None:
    """jam's uploadBlob and downloadBlob (which fills {type} unescaped, and {name}
    with a space) get the same bytes back.

    Spec: [core-6.1-upload], [core-6.2-download].
    """
    uploaded = summary["upload"]
    assert uploaded["accountId"] == server[0].account_id
    assert (uploaded["type"], uploaded["size"]) == ("message/rfc822", summary["import"]["created"]["mail"]["size"])
    download = summary["download"]
    assert download["status"] == 200 and download["sameBytes"] is True
    assert download["contentType"] == "message/rfc822"
    assert 'filename="jam message.eml"' in download["contentDisposition"]


def test_jam_sees_the_errors(summary: dict[str, Any]) -> None:
    """What jam throws for a method error, a failed reference in a batch, an unknown
    capability (problem details), a missing blob; what it gets for its Session with a
    wrong token.

    Spec: [core-3.6.2-shape], [core-3.7-failure], [core-3.6.1-unknownCapability],
    [core-3.6.1-problemJson], [core-6.2-download], [core-8.2-authScheme].
    """
    errors = summary["errors"]
    assert errors["unknownMethod"]["type"] == "unknownMethod"
    assert [e["type"] for e in errors["badReference"]] == ["invalidResultReference"]
    problem = errors["unknownCapability"]
    assert (problem["type"], problem["status"]) == ("urn:ietf:params:jmap:error:unknownCapability", 400)
    assert "urn:example:jam:nothing" in problem["detail"]
    assert errors["notFoundBlob"]["cause"]["status"] == 404
    assert summary["wrongToken"]["status"] == 401
    # jam repeats a capability it already put in `using`; the server takes it.
    assert [m["name"] for m in summary["duplicateUsing"]["list"]] == [f"Made by jam {LABEL}"]
