"""Message Disposition Notifications (RFC 9007): MDN/parse and MDN/send.

MDN/parse reads hand-written RFC 8098 reports (several shapes, malformed
ones too); MDN/send is checked through what it queued for the SMTP relay
and, once, through a real SMTP server (aiosmtpd) on 127.0.0.1.  In-process
on every backend.  Spec ids are the ``mdn-*`` lines of
/work/shared/spec/mail.md.
"""

from __future__ import annotations

import base64
import time
from email import message_from_bytes, policy
from typing import Any

import pytest

from jmapcore import Core
from jmapcore.accounts import add_account, principal_for
from jmapcore.testing.client import Client
from jmapcore.testing.memory import MemoryBackend
from jmapcore.wire import CORE
from tests.mailhelpers import import_messages, mailboxes, message, upload

MAIL = "urn:ietf:params:jmap:mail"
MDN = "urn:ietf:params:jmap:mdn"
SUBMISSION = "urn:ietf:params:jmap:submission"
USING = [CORE, MAIL, MDN, SUBMISSION]

ORIGINAL_ID = "199509192301.23456@example.org"


def report(
    fields: str,
    *,
    text: str = "The message was displayed.",
    report_type: str = "message/disposition-notification",
    third: str | None = "text/rfc822-headers",
    report_headers: str = "",
    encode_report: bool = False,
) -> bytes:
    """An RFC 8098 multipart/report, written out by hand."""
    body = fields.replace("\n", "\r\n")
    if encode_report:
        body = base64.encodebytes(body.encode()).decode().replace("\n", "\r\n")
        report_headers += "Content-Transfer-Encoding: base64\r\n"
    parts = [
        f"--RPT\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\n",
        f"--RPT\r\nContent-Type: {report_type}\r\n{report_headers}\r\n{body}\r\n",
    ]
    if third is not None:
        parts.append(
            f"--RPT\r\nContent-Type: {third}\r\n\r\n"
            f"From: Joe <joe@example.org>\r\nSubject: World domination\r\nMessage-ID: <{ORIGINAL_ID}>\r\n\r\n"
        )
    head = (
        "From: John <john@example.com>\r\nTo: Joe <joe@example.org>\r\n"
        "Subject: Read receipt for: World domination\r\n"
        "Date: Tue, 19 Sep 1995 23:05:00 +0000\r\nMessage-ID: <mdn1@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=disposition-notification; boundary=\"RPT\"\r\n\r\n"
    )
    return (head + "".join(parts) + "--RPT--\r\n").encode("utf-8")


RFC_EXAMPLE = f"""Reporting-UA: joes-pc.cs.example.com; Foomail 97.1
Original-Recipient: rfc822;john@example.com
Final-Recipient: rfc822;john@example.com
Original-Message-ID: <{ORIGINAL_ID}>
Disposition: manual-action/MDN-sent-manually; displayed
"""


@pytest.fixture
def joe(core: Core) -> Client:
    add_account(core, "joe", "pw", addresses=["joe@example.com"])
    return Client(core, principal_for(core, "joe"), using=USING)


@pytest.fixture
def eve(core: Core) -> Client:
    add_account(core, "eve", "pw", addresses=["eve@example.com"])
    return Client(core, principal_for(core, "eve"), using=USING)


def parse_mdn(client: Client, blob_ids: list[str]) -> dict[str, Any]:
    return client.call("MDN/parse", {"accountId": client.account_id, "blobIds": blob_ids})


# -- capability ------------------------------------------------------------------------


def test_capability_is_an_empty_object(joe: Client) -> None:
    """[mdn-1.3-capability] {} in the session and in the account."""
    session = joe.core.session(joe.principal, "http://x")
    assert session["capabilities"][MDN] == {}
    assert session["accounts"][joe.account_id]["accountCapabilities"][MDN] == {}
    assert session["primaryAccounts"][MDN] == joe.account_id


# -- MDN/parse ---------------------------------------------------------------------------


def test_parse_the_rfc_example_and_find_the_email(joe: Client) -> None:
    """[mdn-2.2-parse] [mdn-2-object] the RFC 9007 §3.3 report, forEmailId found
    from Original-Message-ID when exactly one Email has it."""
    (original,) = import_messages(joe, [message("World domination", message_id=f"<{ORIGINAL_ID}>")])
    blob_id = upload(joe, report(RFC_EXAMPLE))
    result = parse_mdn(joe, [blob_id])
    assert (result["accountId"], result["notParsable"], result["notFound"]) == (joe.account_id, None, None)
    assert result["parsed"][blob_id] == {
        "forEmailId": original["id"],
        "subject": "Read receipt for: World domination",
        "textBody": "The message was displayed.",
        "reportingUA": "joes-pc.cs.example.com; Foomail 97.1",
        "disposition": {"actionMode": "manual-action", "sendingMode": "mdn-sent-manually", "type": "displayed"},
        "mdnGateway": None,
        "originalRecipient": "rfc822;john@example.com",
        "finalRecipient": "rfc822;john@example.com",
        "includeOriginalMessage": True,
        "originalMessageId": f"<{ORIGINAL_ID}>",
        "error": None,
        "extensionFields": None,
    }


def test_parse_lowercases_and_reads_every_field(joe: Client) -> None:
    """[mdn-2-object] disposition values are lowercased; Error fields, the
    gateway and extension fields are read; folded fields unfolded; a base64
    report part and a "global" (UTF-8) report are read too."""
    fields = (
        "Reporting-UA: mail.example.net;\n   Frobmail 2.0\n"
        "MDN-Gateway: dns; gw.example.net\n"
        "Final-Recipient: RFC822; john@example.com\n"
        "Original-Message-ID: <nowhere@example.org>\n"
        "Disposition: Automatic-Action/MDN-Sent-Automatically; Processed/Error\n"
        "Error: the disk was full\n"
        "Error: and so was the other one\n"
        "X-Frob-Level: eleven\n"
    )
    plain = upload(joe, report(fields, third=None))
    encoded = upload(joe, report(fields, encode_report=True))
    utf8 = upload(
        joe,
        report(
            "Reporting-UA: Fünfmail\nFinal-Recipient: utf-8; jöhn@example.com\nDisposition: manual-action/MDN-sent-manually; deleted\n",
            report_type="message/global-disposition-notification",
        ),
    )
    parsed = parse_mdn(joe, [plain, encoded, utf8])["parsed"]
    mdn = parsed[plain]
    assert mdn["disposition"] == {"actionMode": "automatic-action", "sendingMode": "mdn-sent-automatically", "type": "processed"}
    assert mdn["reportingUA"] == "mail.example.net; Frobmail 2.0"
    assert mdn["mdnGateway"] == "dns; gw.example.net"
    assert mdn["error"] == ["the disk was full", "and so was the other one"]
    assert mdn["extensionFields"] == {"X-Frob-Level": "eleven"}
    assert mdn["forEmailId"] is None, "no Email has that Message-ID"
    assert mdn["includeOriginalMessage"] is False and mdn["originalRecipient"] is None
    assert parsed[encoded] == {**mdn, "includeOriginalMessage": True}
    assert parsed[utf8]["finalRecipient"] == "utf-8; jöhn@example.com"
    assert parsed[utf8]["reportingUA"] == "Fünfmail"
    assert parsed[utf8]["disposition"]["type"] == "deleted"


def test_parse_ambiguous_original_gives_no_email(joe: Client) -> None:
    """[mdn-2.2-parse] forEmailId is null when several Emails share the Message-ID."""
    import_messages(joe, [message("One", message_id=f"<{ORIGINAL_ID}>"), message("Two", message_id=f"<{ORIGINAL_ID}>")])
    blob_id = upload(joe, report(RFC_EXAMPLE))
    assert parse_mdn(joe, [blob_id])["parsed"][blob_id]["forEmailId"] is None


def test_parse_malformed_and_missing(joe: Client, eve: Client) -> None:
    """[mdn-2.2-parse] a message with no report, a report without Disposition or
    Final-Recipient, unknown disposition values, garbage: notParsable; unknown
    blobs and another user's upload: notFound."""
    shapes = {
        "plain": message("Just mail"),
        "noDisposition": report("Final-Recipient: rfc822; a@example.com\n"),
        "noFinalRecipient": report("Disposition: manual-action/MDN-sent-manually; displayed\n"),
        "badType": report("Final-Recipient: rfc822; a@example.com\nDisposition: manual-action/MDN-sent-manually; read\n"),
        "noMode": report("Final-Recipient: rfc822; a@example.com\nDisposition: displayed\n"),
        "notFields": report("this is not a field\nDisposition: manual-action/MDN-sent-manually; displayed\n"),
        "garbage": b"\x00\xff\x17 not a message at all",
        "empty": b"",
    }
    ids = {name: upload(joe, raw) for name, raw in shapes.items()}
    theirs = upload(eve, report(RFC_EXAMPLE), account_id=eve.account_id)
    result = parse_mdn(joe, [*ids.values(), "Bmissing", theirs])
    assert result["parsed"] is None
    assert sorted(result["notParsable"]) == sorted(ids.values())
    assert result["notFound"] == ["Bmissing", theirs]


def test_parse_errors(joe: Client, eve: Client) -> None:
    """[mdn-2.2-parse] an account that is not the caller's: invalidArguments;
    too many ids: requestTooLarge."""
    assert joe.error("MDN/parse", {"accountId": eve.account_id, "blobIds": []})["type"] == "invalidArguments"
    many = [f"B{i}" for i in range(joe.core.limits.maxObjectsInGet + 1)]
    assert joe.error("MDN/parse", {"accountId": joe.account_id, "blobIds": many})["type"] == "requestTooLarge"


# -- MDN/send ---------------------------------------------------------------------------


def received(client: Client, subject: str = "World domination", dnt: str | None = "Alice <alice@example.org>",
             extra: str = "") -> dict[str, Any]:
    """A message from alice asking for an MDN, delivered to the client's Inbox."""
    raw = message(subject, sender="Alice <alice@example.org>", to="Joe <joe@example.com>",
                  message_id=f"<{subject.replace(' ', '.')}@example.org>")
    head = (f"Disposition-Notification-To: {dnt}\r\n" if dnt else "") + extra
    (created,) = import_messages(client, [head.encode() + raw])
    return created


def identity_id(client: Client, email: str = "joe@example.com") -> str:
    listed = client.call("Identity/get", {"accountId": client.account_id})["list"]
    return next(i["id"] for i in listed if i["email"] == email)


DISPLAYED = {"actionMode": "manual-action", "sendingMode": "mdn-sent-manually", "type": "displayed"}


def send(client: Client, mdns: dict[str, dict[str, Any]], updates: dict[str, Any] | None = None,
         **extra: Any) -> list[list[Any]]:
    if updates is None:
        updates = {f"#{key}": {"keywords/$mdnsent": True} for key in mdns}
    arguments = {"accountId": client.account_id, "identityId": identity_id(client), "send": mdns,
                 "onSuccessUpdateEmail": updates, **extra}
    return client.request([["MDN/send", arguments, "0"]])["methodResponses"]


def queued(client: Client) -> list[tuple[dict[str, Any], bytes]]:
    from jmap_submission.outbound import pending_messages

    out = []
    for record in sorted(pending_messages(client.core, client.account_id), key=lambda r: r["createdAt"]):
        with client.core.backend.snapshot(client.account_id) as snap:
            out.append((record, snap.read_blob(record["blobId"]) or b""))
    return out


def test_send_queues_an_rfc8098_report_and_sets_mdnsent(joe: Client) -> None:
    """[mdn-2.1-send] [mdn-1.2-keyword] [mdn-2-object] the multipart/report goes to
    Disposition-Notification-To with a null reverse-path; sent has the server's
    properties; the implicit Email/set gives the Email $mdnsent."""
    email = received(joe)
    mdn = {
        "forEmailId": email["id"],
        "subject": "Read receipt for: World domination",
        "textBody": "This receipt shows that the email has been displayed.",
        "reportingUA": "joes-pc.cs.example.com; Foomail 97.1",
        "disposition": DISPLAYED,
        "extensionFields": {"X-Example": "example.com"},
    }
    (name, result, call_id), (set_name, implicit, set_id) = send(joe, {"k1546": mdn})
    assert (name, call_id, set_name, set_id) == ("MDN/send", "0", "Email/set", "0")
    assert result["notSent"] is None
    assert result["sent"]["k1546"] == {
        "finalRecipient": "rfc822; joe@example.com",
        "originalRecipient": None,
        "originalMessageId": "<World.domination@example.org>",
        "mdnGateway": None,
        "error": None,
        "includeOriginalMessage": False,
    }
    assert implicit["updated"] == {email["id"]: None}
    keywords = joe.call("Email/get", {"accountId": joe.account_id, "ids": [email["id"]], "properties": ["keywords"]})
    assert keywords["list"][0]["keywords"] == {"$mdnsent": True}

    ((record, raw),) = queued(joe)
    assert record["mailFrom"] == "" and list(record["rcpts"]) == ["alice@example.org"]
    sent = message_from_bytes(raw, policy=policy.default)
    assert sent.get_content_type() == "multipart/report"
    assert sent.get_param("report-type") == "disposition-notification"
    assert sent["Subject"] == "Read receipt for: World domination"
    assert sent["In-Reply-To"] == "<World.domination@example.org>"
    assert "joe@example.com" in sent["From"] and sent["To"] == "alice@example.org"
    assert sent["Auto-Submitted"] is None, "a manual MDN is not an auto-reply"
    assert sent["Date"].endswith("+0000")  # UTC; RFC 5322 §3.3 reads -0000 as an unknown zone
    text, notification = sent.get_payload()
    assert text.get_content().strip() == mdn["textBody"]
    assert notification.get_content_type() == "message/disposition-notification"
    fields = notification.as_bytes().split(b"\n\n", 1)[1].decode()
    for line in ("Reporting-UA: joes-pc.cs.example.com; Foomail 97.1", "Final-Recipient: rfc822; joe@example.com",
                 "Original-Message-ID: <World.domination@example.org>",
                 "Disposition: manual-action/MDN-sent-manually; displayed", "X-Example: example.com"):
        assert line in fields

    # What was sent parses back into the same MDN.
    blob_id = upload(joe, raw)
    back = parse_mdn(joe, [blob_id])["parsed"][blob_id]
    assert back["disposition"] == DISPLAYED and back["forEmailId"] == email["id"]
    assert (back["reportingUA"], back["finalRecipient"]) == (mdn["reportingUA"], "rfc822; joe@example.com")
    assert back["extensionFields"] == {"X-Example": "example.com"} and back["textBody"].strip() == mdn["textBody"]


def test_send_defaults_original_and_automatic(joe: Client) -> None:
    """[mdn-2-object] server defaults for subject and text; includeOriginalMessage
    puts the message in a third part; an automatic MDN is Auto-Submitted; the
    Original-Recipient header of the message becomes originalRecipient."""
    email = received(joe, "Quarterly report", extra="Original-Recipient: rfc822;joe@example.com\r\n")
    automatic = {"actionMode": "automatic-action", "sendingMode": "mdn-sent-automatically", "type": "processed"}
    (_, result, _), _ = send(joe, {"m": {"forEmailId": email["id"], "disposition": automatic, "includeOriginalMessage": True}})
    sent = result["sent"]["m"]
    assert sent["originalRecipient"] == "rfc822;joe@example.com"
    assert "Quarterly report" in sent["subject"] and "processed" in sent["textBody"]
    assert sent["reportingUA"] is None and sent["extensionFields"] is None
    ((_, raw),) = queued(joe)
    message_sent = message_from_bytes(raw, policy=policy.default)
    assert message_sent["Auto-Submitted"] == "auto-replied"
    parts = message_sent.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "message/disposition-notification", "message/rfc822"]
    assert "Original-Recipient: rfc822;joe@example.com" in parts[1].as_string()
    assert parts[2].get_payload()[0]["Subject"] == "Quarterly report"


def test_send_errors_per_mdn(joe: Client) -> None:
    """[mdn-2.1-errors] [mdn-5-security] notFound (no Email, or no
    Disposition-Notification-To), mdnAlreadySent, forbiddenFrom for a
    finalRecipient the Identity does not cover, invalidProperties; the good
    one in the same call is sent."""
    asking = received(joe, "Asking")
    silent = received(joe, "Silent", dnt=None)
    done = received(joe, "Done")
    joe.call("Email/set", {"accountId": joe.account_id, "update": {done["id"]: {"keywords/$mdnsent": True}}})
    mdns = {
        "ok": {"forEmailId": asking["id"], "disposition": DISPLAYED, "finalRecipient": "rfc822; joe@example.com"},
        "missing": {"forEmailId": "Enothere", "disposition": DISPLAYED},
        "noDnt": {"forEmailId": silent["id"], "disposition": DISPLAYED},
        "already": {"forEmailId": done["id"], "disposition": DISPLAYED},
        "spoof": {"forEmailId": asking["id"], "disposition": DISPLAYED, "finalRecipient": "rfc822; boss@example.com"},
        "badType": {"forEmailId": asking["id"], "disposition": {**DISPLAYED, "type": "read"}},
        "unknown": {"forEmailId": asking["id"], "disposition": DISPLAYED, "extension": {"X": "y"}},
        "serverSet": {"forEmailId": asking["id"], "disposition": DISPLAYED, "originalMessageId": "<x@y>"},
        "noDisposition": {"forEmailId": asking["id"]},
        "badExtension": {"forEmailId": asking["id"], "disposition": DISPLAYED, "extensionFields": {"Bad Name": "v"}},
    }
    (_, result, _), (_, implicit, _) = send(joe, mdns)
    assert list(result["sent"]) == ["ok"] and "finalRecipient" not in result["sent"]["ok"]
    errors = {key: error["type"] for key, error in result["notSent"].items()}
    assert errors == {
        "missing": "notFound", "noDnt": "notFound", "already": "mdnAlreadySent", "spoof": "forbiddenFrom",
        "badType": "invalidProperties", "unknown": "invalidProperties", "serverSet": "invalidProperties",
        "noDisposition": "invalidProperties", "badExtension": "invalidProperties",
    }  # fmt: skip
    assert result["notSent"]["spoof"]["properties"] == ["finalRecipient"]
    assert implicit["updated"] == {asking["id"]: None}
    assert len(queued(joe)) == 1
    # A second MDN for the same Email: already sent.
    (_, again, _) = send(joe, {"k": {"forEmailId": asking["id"], "disposition": DISPLAYED}})[0]
    assert again["sent"] is None and again["notSent"]["k"]["type"] == "mdnAlreadySent"


def test_send_must_set_mdnsent(joe: Client) -> None:
    """[mdn-2.1-mustSetKeyword] without an onSuccessUpdateEmail setting
    $mdnsent on each MDN's Email the call is refused and nothing is queued."""
    email = received(joe)
    mdns = {"k": {"forEmailId": email["id"], "disposition": DISPLAYED}}
    for updates in ({}, {"#k": {"keywords/$seen": True}}, {"#k": {"keywords/$mdnsent": False}}, {"#other": {"keywords/$mdnsent": True}}):
        ((name, error, _),) = send(joe, mdns, updates)
        assert (name, error["type"]) == ("error", "invalidArguments"), updates
    ((name, error, _),) = send(joe, mdns, None, onSuccessUpdateEmail=None)
    assert (name, error["type"]) == ("error", "invalidArguments")
    assert queued(joe) == []
    # The whole keywords object, or the Email's own id, also do.
    (_, ok, _), (_, implicit, _) = send(joe, mdns, {email["id"]: {"keywords": {"$seen": True, "$mdnsent": True}}})
    assert ok["sent"] and implicit["updated"] == {email["id"]: None}


def test_send_method_errors(joe: Client, eve: Client) -> None:
    """[mdn-2.1-errors] unknown accountId or identityId: invalidArguments;
    [mdn-2.1-send] `using` must hold mail as well as mdn."""
    email = received(joe)
    base = {"send": {"k": {"forEmailId": email["id"], "disposition": DISPLAYED}},
            "onSuccessUpdateEmail": {"#k": {"keywords/$mdnsent": True}}}
    error = joe.error("MDN/send", {"accountId": joe.account_id, "identityId": "Inope", **base})
    assert error["type"] == "invalidArguments"
    error = joe.error("MDN/send", {"accountId": eve.account_id, "identityId": identity_id(eve, "eve@example.com"), **base})
    assert error["type"] == "invalidArguments"
    error = joe.error("MDN/send", {"accountId": joe.account_id, "identityId": identity_id(eve, "eve@example.com"), **base})
    assert error["type"] == "invalidArguments", "another account's identity"
    arguments = {"accountId": joe.account_id, "identityId": identity_id(joe), **base}
    assert joe.error("MDN/send", arguments, using=[CORE, MDN])["type"] == "unknownMethod"
    assert joe.error("MDN/send", arguments, using=[CORE, MAIL])["type"] == "unknownMethod"
    assert queued(joe) == []


# -- through a real SMTP server ----------------------------------------------------------


def test_send_reaches_a_real_smtp_server() -> None:
    """[mdn-2.1-send] the queued MDN leaves through the relay: aiosmtpd on
    127.0.0.1 receives the null reverse-path, the recipient and the report."""
    aiosmtpd = pytest.importorskip("aiosmtpd.controller")
    from jmap_submission.outbound import Sender

    from tests.support import free_port

    class Sink:
        def __init__(self) -> None:
            self.envelopes: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            self.envelopes.append(envelope)
            return "250 OK"

    sink = Sink()
    port = free_port()
    controller = aiosmtpd.Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    core = Core(MemoryBackend(), options={"submission": {"relay": f"127.0.0.1:{port}"}})
    try:
        add_account(core, "joe", "pw", addresses=["joe@example.com"])
        joe = Client(core, principal_for(core, "joe"), using=USING)
        mailboxes(joe)
        email = received(joe)
        (_, result, _), _ = send(joe, {"k": {"forEmailId": email["id"], "disposition": DISPLAYED}})
        assert result["sent"]
        deadline = time.monotonic() + 20
        sender = Sender(core)
        while not sink.envelopes and time.monotonic() < deadline:
            sender.run_once()
            time.sleep(0.05)
        (envelope,) = sink.envelopes
        assert envelope.mail_from in ("", "<>") and envelope.rcpt_tos == ["alice@example.org"]
        delivered = message_from_bytes(envelope.content, policy=policy.default)
        assert delivered.get_param("report-type") == "disposition-notification"
        assert b"Disposition: manual-action/MDN-sent-manually; displayed" in envelope.content
    finally:
        controller.stop()
        core.close()
