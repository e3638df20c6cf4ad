"""A third-party client sends mail through the real server.

jmapc (PyPI), with its own Identity, Email and EmailSubmission models,
against ``jmapcore serve --workers 2 --smtp-relay`` over HTTPS, relaying to
an aiosmtpd sink on 127.0.0.1 started here: Identity/get, a draft made with
Email/set, EmailSubmission/set with onSuccessUpdateEmail moving it
Drafts→Sent and dropping $draft in the same request; the sink's envelope and
bytes; EmailSubmission/get parsed by jmapc's strict model; and
VacationResponse/get and /set (jmapc has no model for it: CustomMethod).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jmapc
import pytest
from aiosmtpd.controller import Controller
from jmapc.methods import (
    CustomMethod,
    EmailGet,
    EmailSet,
    EmailSetResponse,
    EmailSubmissionGet,
    EmailSubmissionGetResponse,
    EmailSubmissionSet,
    EmailSubmissionSetResponse,
    IdentityGet,
    IdentityGetResponse,
    MailboxGet,
)
from jmapc.models import (
    EmailAddress,
    EmailBodyPart,
    EmailBodyValue,
    EmailSubmission,
    Identity,
    UndoStatus,
)

from jmapcore.wire import CORE
from tests.support import Running, free_port, jmapcore, make_certificate, start, stop

pytestmark = pytest.mark.server

USER, PASSWORD = "alice", "alice-pw"
ALICE = "alice@example.com"
SUBMISSION = "urn:ietf:params:jmap:submission"
VACATION = "urn:ietf:params:jmap:vacationresponse"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


class Sink:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued"

    def wait_for_subject(self, subject: str, seconds: float = 20.0) -> Received:
        needle = f"Subject: {subject}\r\n".encode()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                found = [m for m in self.messages if needle in m.data]
            if found:
                assert len(found) == 1, found  # once, by one of the two workers
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"the SMTP sink got no message with subject {subject!r}")


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sink: tuple[Sink, int]) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("send-server")
    certificate = make_certificate(root)
    data = root / "data"
    added = jmapcore("account", "add", USER, "--password", PASSWORD, "--address", ALICE, "--data", str(data))
    assert added.returncode == 0, added.stderr
    running = start("serve", data, root / "server.log", tls=certificate,
                    extra=["--workers", "2", "--smtp-relay", f"127.0.0.1:{sink[1]}"])
    running.account_id = added.stdout.strip()
    running.certificate = certificate[0]  # type: ignore[attr-defined]
    try:
        yield running
    finally:
        stop(running.process)


@pytest.fixture
def client(server: Running, monkeypatch: pytest.MonkeyPatch) -> jmapc.Client:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.certificate))  # type: ignore[attr-defined]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return jmapc.Client.create_with_password(f"127.0.0.1:{server.port}", USER, PASSWORD)


def test_jmapc_sends_a_draft_and_files_it_in_sent(
    server: Running, client: jmapc.Client, sink: tuple[Sink, int]
) -> None:
    """[mail-6-methods] [mail-7.5-send] [mail-7.5-onSuccess] [mail-7-envelopeDerive]
    jmapc's models all the way: its Identity and EmailSubmission parse ours, and
    the relay receives what the draft said."""
    handler, _ = sink
    assert client.account_id == server.account_id  # found through primaryAccounts
    identities = client.request(IdentityGet(), raise_errors=True)
    assert isinstance(identities, IdentityGetResponse)
    [identity] = identities.data
    assert isinstance(identity, Identity)
    assert (identity.email, identity.may_delete) == (ALICE, False)
    assert identity.id

    boxes = {m.role: m.id for m in client.request(MailboxGet(ids=None), raise_errors=True).data}
    draft = jmapc.models.Email(
        mailbox_ids={boxes["drafts"]: True},
        keywords={"$draft": True, "$seen": True},
        mail_from=[EmailAddress(name="Alice", email=ALICE)],
        to=[EmailAddress(name="Bob", email="bob@example.org")],
        cc=[EmailAddress(email="carol@example.net")],
        bcc=[EmailAddress(email="hidden@example.org")],
        subject="Sent by jmapc",
        text_body=[EmailBodyPart(part_id="body", type="text/plain")],
        body_values={"body": EmailBodyValue(value="Hello from a third-party client.\n")},
    )
    created, submitted, moved = client.request([
        EmailSet(create={"draft": draft}),
        EmailSubmissionSet(
            create={"send": EmailSubmission(identity_id=identity.id, email_id="#draft")},
            on_success_update_email={"#send": {
                f"mailboxIds/{boxes['drafts']}": None,
                f"mailboxIds/{boxes['sent']}": True,
                "keywords/$draft": None,
            }},
        ),
    ], raise_errors=True)
    assert isinstance(created.response, EmailSetResponse)
    email_id = created.response.created["draft"].id
    assert isinstance(submitted.response, EmailSubmissionSetResponse)
    assert submitted.response.not_created is None
    submission_id = submitted.response.created["send"].id
    # The implicit Email/set answers under the same call id (RFC 8621 §7.5).
    assert moved.id == submitted.id and isinstance(moved.response, EmailSetResponse)
    assert email_id in moved.response.updated

    got = handler.wait_for_subject("Sent by jmapc")
    assert got.mail_from == ALICE
    assert sorted(got.rcpt_tos) == ["bob@example.org", "carol@example.net", "hidden@example.org"]
    assert b"Bcc:" not in got.data and b"hidden@example.org" not in got.data
    assert b"Hello from a third-party client." in got.data
    assert b"To: Bob <bob@example.org>" in got.data
    assert b"From: Alice <alice@example.com>" in got.data

    [email] = client.request(EmailGet(ids=[email_id], properties=["mailboxIds", "keywords"]), raise_errors=True).data
    assert email.mailbox_ids == {boxes["sent"]: True}
    assert email.keywords == {"$seen": True}

    deadline = time.monotonic() + 20
    while True:  # the queue writes the relay's reply after sending
        answer = client.request(EmailSubmissionGet(ids=[submission_id]), raise_errors=True)
        assert isinstance(answer, EmailSubmissionGetResponse)
        [submission] = answer.data
        statuses = submission.delivery_status or {}
        if all(s.delivered.value != "queued" for s in statuses.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert submission.email_id == email_id and submission.identity_id == identity.id
    assert submission.undo_status == UndoStatus.FINAL
    assert submission.send_at is not None
    assert submission.envelope is not None and submission.envelope.mail_from is not None
    assert submission.envelope.mail_from.email == ALICE
    assert sorted(a.email for a in submission.envelope.rcpt_to or []) == sorted(got.rcpt_tos)
    assert {r: (s.delivered.value, s.smtp_reply) for r, s in statuses.items()} == {
        r: ("unknown", "250 2.0.0 Ok: queued") for r in got.rcpt_tos
    }


def _call(client: jmapc.Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    method = CustomMethod(data={"accountId": client.account_id, **arguments})
    method.jmap_method = name
    method.using = {CORE, VACATION}
    answer = client.request(method, raise_errors=True)
    assert answer.data is not None
    return answer.data


def test_jmapc_vacation_response(client: jmapc.Client) -> None:
    """[mail-8.1-singleton] [mail-8-props] the singleton through jmapc (it has no
    model for it, so CustomMethod)."""
    before = _call(client, "VacationResponse/get", {"ids": None})
    [vacation] = before["list"]
    assert vacation["id"] == "singleton" and vacation["isEnabled"] is False
    changed = _call(client, "VacationResponse/set", {"update": {"singleton": {
        "isEnabled": True, "subject": "Away", "textBody": "Back on Monday.",
        "fromDate": "2026-01-01T00:00:00Z", "toDate": None,
    }}})
    assert "singleton" in changed["updated"] and changed["oldState"] == before["state"]
    [after] = _call(client, "VacationResponse/get", {"ids": ["singleton"]})["list"]
    assert (after["isEnabled"], after["subject"], after["textBody"], after["fromDate"]) == (
        True, "Away", "Back on Monday.", "2026-01-01T00:00:00Z")
    refused = _call(client, "VacationResponse/set", {"create": {"x": {"isEnabled": True}}})
    assert refused["notCreated"]["x"]["type"] == "singleton"


def test_jmapc_identity_set(server: Running, client: jmapc.Client) -> None:
    """[core-5.3-createServerSet] [mail-6-props] jmapc 0.4's Identity model
    declares ``mayDelete`` (server-set) required, so IdentitySet with it
    always sends the property and we answer ``invalidProperties`` naming it,
    as RFC 8620 §5.3 says; a create without it works, and jmapc's model still
    reads the result (``replyTo`` is typed ``str`` there but RFC 8621 §6 says
    EmailAddress[]: jmapc reads our list as its Python repr)."""
    from jmapc.methods import IdentitySet, IdentitySetResponse

    strict = Identity(name="Work", email=ALICE, reply_to=None, bcc=None, text_signature="",
                      html_signature="", may_delete=True)
    answer = client.request(IdentitySet(create={"w": strict}))
    assert isinstance(answer, IdentitySetResponse)
    assert answer.not_created is not None
    assert (answer.not_created["w"].type, answer.not_created["w"].properties) == ("invalidProperties", ["mayDelete"])

    # jmapc cannot take the answer to a create either: its IdentitySetResponse
    # parses ``created`` as full Identities, where RFC 8620 §5.3 sends only what
    # the client did not (id, mayDelete); so this create goes over plain HTTPS.
    answer = httpx.post(f"{server.url}/jmap/api/", auth=(USER, PASSWORD), timeout=10,
                        verify=ssl.create_default_context(cafile=server.certificate),  # type: ignore[attr-defined]
                        json={"using": [CORE, SUBMISSION], "methodCalls": [["Identity/set", {
                            "accountId": client.account_id, "create": {"w": {
                                "name": "Work", "email": ALICE,
                                "replyTo": [{"name": "Desk", "email": "desk@example.com"}],
                                "bcc": [{"email": "archive@example.com"}], "textSignature": "-- \nAlice"}}}, "0"]]})
    assert answer.status_code == 200, answer.text
    created = answer.json()["methodResponses"][0][1]["created"]["w"]
    assert set(created) == {"id", "mayDelete", "htmlSignature"}
    assert created["mayDelete"] is True
    listed = {i.id: i for i in client.request(IdentityGet(), raise_errors=True).data}
    work = listed[created["id"]]
    assert (work.name, work.text_signature, work.may_delete) == ("Work", "-- \nAlice", True)
    assert "desk@example.com" in str(work.reply_to)  # jmapc turns our list into its str()
    assert work.bcc is not None and work.bcc[0].email == "archive@example.com"


def test_jmapc_lists_submissions_and_identity_changes(client: jmapc.Client) -> None:
    """[mail-7.1-methods] [mail-7.3-filter] [mail-6-methods] jmapc's query,
    queryChanges and changes models read ours (a filter on undoStatus, the
    RFC's ``sentAt`` sort name)."""
    from jmapc.methods import (
        EmailSubmissionChanges,
        EmailSubmissionQuery,
        EmailSubmissionQueryChanges,
        IdentityChanges,
    )
    from jmapc.models import Comparator, EmailSubmissionQueryFilterCondition

    condition = EmailSubmissionQueryFilterCondition(undo_status=UndoStatus.FINAL)
    query = client.request(EmailSubmissionQuery(filter=condition, sort=[Comparator(property="sentAt")],
                                                 calculate_total=True), raise_errors=True)
    assert query.total == len(query.ids)
    changed = client.request(EmailSubmissionQueryChanges(filter=condition, sort=[Comparator(property="sentAt")],
                                                         since_query_state=query.query_state), raise_errors=True)
    assert (changed.removed, changed.added) == ([], [])
    state = client.request(EmailSubmissionGet(ids=[]), raise_errors=True).state
    assert client.request(EmailSubmissionChanges(since_state=state), raise_errors=True).created == []
    state = client.request(IdentityGet(ids=[]), raise_errors=True).state
    assert client.request(IdentityChanges(since_state=state), raise_errors=True).has_more_changes is False
