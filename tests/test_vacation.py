"""VacationResponse (RFC 8621 §8): the singleton's methods in-process on
every backend, the RFC 3834 rules of the auto-reply, and the reply really
sent: ``jmapcore lmtp`` delivers, the submission plugin's queue relays it
to an SMTP sink (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from jmap_vacation.autoreply import REPLIED, after_delivery, build_reply, in_window, skip_reason

from jmapcore.testing.client import Client
from tests.mailhelpers import USING, message

VACATION = "urn:ietf:params:jmap:vacationresponse"
V_USING = [*USING, VACATION]


def vget(client: Client, **extra: Any) -> dict[str, Any]:
    return client.call("VacationResponse/get", {"accountId": client.account_id, **extra}, using=V_USING)


def vset(client: Client, **extra: Any) -> dict[str, Any]:
    return client.call("VacationResponse/set", {"accountId": client.account_id, **extra}, using=V_USING)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_capability_and_default_singleton(mail: Client) -> None:
    """[mail-1.3.3-vacationCap] [mail-8-props] {} in session and account; the
    object exists from the start, disabled, with null properties."""
    session = mail.core.session(mail.principal, "http://localhost")
    assert session["capabilities"][VACATION] == {}
    assert session["accounts"][mail.account_id]["accountCapabilities"][VACATION] == {}
    # [mail-1.4-perAccount] not on a shared account
    assert VACATION not in session["accounts"]["xmary2"]["accountCapabilities"]
    got = vget(mail)
    assert got["list"] == [{"id": "singleton", "isEnabled": False, "fromDate": None, "toDate": None,
                            "subject": None, "textBody": None, "htmlBody": None}]
    assert got["notFound"] == []
    other = vget(mail, ids=["singleton", "other"], properties=["isEnabled"])
    assert other["list"] == [{"id": "singleton", "isEnabled": False}] and other["notFound"] == ["other"]


def test_set_update_create_destroy(mail: Client) -> None:
    """[mail-8.1-singleton] only updating singleton works; create and destroy
    answer the singleton SetError; bad values are invalidProperties."""
    state = vget(mail)["state"]
    result = vset(mail, update={"singleton": {"isEnabled": True, "subject": "Away",
                                              "fromDate": "2026-01-01T00:00:00Z", "textBody": "Back soon"}},
                  create={"x": {"isEnabled": True}}, destroy=["singleton"])
    assert result["oldState"] == state and result["newState"] != state
    assert result["updated"] == {"singleton": None}
    assert result["notCreated"]["x"]["type"] == "singleton"
    assert result["notDestroyed"]["singleton"]["type"] == "singleton"
    got = vget(mail)["list"][0]
    assert got["isEnabled"] is True and got["subject"] == "Away" and got["fromDate"] == "2026-01-01T00:00:00Z"
    bad = vset(mail, update={"singleton": {"fromDate": "2026-01-01T00:00:00+02:00"},
                             "other": {"isEnabled": False}})
    assert bad["notUpdated"]["singleton"]["type"] == "invalidProperties"
    assert bad["notUpdated"]["singleton"]["properties"] == ["fromDate"]
    assert bad["notUpdated"]["other"]["type"] == "notFound"
    bad = vset(mail, update={"singleton": {"isEnabled": "yes", "color": "red"}})
    assert bad["notUpdated"]["singleton"]["properties"] == ["color", "isEnabled"]


def test_if_in_state(mail: Client) -> None:
    state = vget(mail)["state"]
    vset(mail, update={"singleton": {"isEnabled": True}})
    error = mail.error("VacationResponse/set", {"accountId": mail.account_id, "ifInState": state,
                                                "update": {"singleton": {"isEnabled": False}}}, using=V_USING)
    assert error["type"] == "stateMismatch"


def test_window() -> None:
    """[mail-8-window] fromDate <= now < toDate while enabled."""
    now = datetime(2026, 6, 1, tzinfo=UTC)
    on = {"isEnabled": True, "fromDate": None, "toDate": None}
    assert in_window(on, now)
    assert not in_window({**on, "isEnabled": False}, now)
    assert not in_window({**on, "fromDate": iso(now + timedelta(seconds=1))}, now)
    assert in_window({**on, "fromDate": iso(now)}, now)
    assert not in_window({**on, "toDate": iso(now)}, now)
    assert in_window({**on, "toDate": iso(now + timedelta(days=1))}, now)


def headers(raw: bytes):
    from email.parser import BytesHeaderParser

    return BytesHeaderParser(policy=policy.default).parsebytes(raw)


def test_rfc3834_rules() -> None:
    """[mail-8-window] never to bounces, lists, robots or ourselves."""
    plain = headers(message("hi"))
    own = {"me@example.com"}
    assert skip_reason("friend@example.net", plain, own) is None
    assert skip_reason("", plain, own) is not None
    assert skip_reason("MAILER-DAEMON@example.net", plain, own) is not None
    assert skip_reason("owner-list@example.net", plain, own) is not None
    assert skip_reason("list-request@example.net", plain, own) is not None
    assert skip_reason("me@example.com", plain, own) is not None
    for extra in (b"Auto-Submitted: auto-replied\r\n", b"List-Id: <l.example.net>\r\n",
                  b"Precedence: bulk\r\n", b"Precedence: list\r\n", b"Precedence: junk\r\n"):
        assert skip_reason("friend@example.net", headers(extra + message("hi")), own) is not None, extra
    assert skip_reason("friend@example.net", headers(b"Auto-Submitted: no\r\n" + message("hi")), own) is None


def test_reply_headers() -> None:
    """RFC 3834 §3: Auto-Submitted auto-replied, In-Reply-To and References,
    the user's subject (else Auto: ...), HTML as an alternative."""
    original = headers(message("Lunch?", message_id="<orig@example.net>", references=["<a@x>"]))
    record = {"subject": None, "textBody": None, "htmlBody": "<p>Away <b>now</b></p>"}
    reply = message_from_bytes(build_reply(record, original, "me@example.com", "friend@example.net"),
                               policy=policy.default)
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<orig@example.net>"
    assert reply["References"] == "<a@x> <orig@example.net>"
    assert reply["Subject"] == "Auto: Lunch?"
    assert reply["To"] == "friend@example.net" and reply["From"] == "me@example.com"
    assert reply.get_content_type() == "multipart/alternative"
    assert "Away now" in reply.get_body(("plain",)).get_content()


def test_once_per_sender_per_period(mail: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """One reply per sender per 7 days, remembered in the store; nothing
    while disabled; the reply is queued through the submission plugin."""
    queued: list[tuple[str, str, list[str], bytes]] = []
    import jmap_submission.outbound as outbound

    monkeypatch.setattr(outbound, "enqueue", lambda core, a, f, r, m: queued.append((a, f, r, m)) or f"Q{len(queued)}")
    core, account = mail.core, mail.account_id
    raw = message("hello", sender="Friend <friend@example.net>", to="Mary <mary@example.com>")
    assert after_delivery(core, account, "friend@example.net", raw, "mary@example.com") is None  # never set
    vset(mail, update={"singleton": {"isEnabled": True, "textBody": "Away"}})
    assert after_delivery(core, account, "friend@example.net", raw, "mary@example.com") == "Q1"
    assert after_delivery(core, account, "friend@example.net", raw, "mary@example.com") is None
    assert after_delivery(core, account, "other@example.net", raw, "mary@example.com") == "Q2"
    assert after_delivery(core, account, "", raw, "mary@example.com") is None
    _, mail_from, recipients, body = queued[0]
    assert mail_from == "" and recipients == ["friend@example.net"]
    assert b"Auto-Submitted: auto-replied" in body and b"Away" in body
    with core.backend.snapshot(account) as snap:
        assert snap.count(REPLIED) == 2
    vset(mail, update={"singleton": {"isEnabled": False}})
    assert after_delivery(core, account, "third@example.net", raw, "mary@example.com") is None


# -- the reply really sent --------------------------------------------------------------


class Sink:
    """An SMTP server on 127.0.0.1 keeping what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received: list[Any] = []
        self.arrived = threading.Event()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.received.append(envelope)
                sink.arrived.set()
                return "250 OK"

        from tests.support import free_port

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.mark.server
def test_auto_reply_sent_through_the_relay(tmp_path: Path) -> None:
    """[mail-8-window] an LMTP delivery to an account on vacation makes the
    server send one auto-reply through --smtp-relay (a real SMTP sink)."""
    import httpx

    from tests.support import jmapcore, start, stop
    from tests.test_lmtp import send, start_lmtp

    data = tmp_path / "data"
    added = jmapcore("account", "add", "alice", "--password", "alice-pw", "--address", "alice@example.com",
                     "--data", str(data))
    assert added.returncode == 0, added.stderr
    account = added.stdout.strip()
    sink = Sink()
    server = start("serve", data, tmp_path / "server.log",
                   extra=["--workers", "1", "--smtp-relay", f"127.0.0.1:{sink.port}"])
    lmtp: subprocess.Popen[bytes] | None = None
    try:
        with httpx.Client(base_url=server.url, auth=("alice", "alice-pw"), timeout=10) as client:
            answer = client.post("/jmap/api/", json={"using": V_USING, "methodCalls": [
                ["VacationResponse/set", {"accountId": account, "update": {"singleton": {
                    "isEnabled": True, "subject": "Out of office", "textBody": "Back on Monday."}}}, "0"]]})
            assert answer.json()["methodResponses"][0][1]["updated"] == {"singleton": None}
        port, lmtp = start_lmtp(data, tmp_path / "lmtp.log", [])
        import smtplib

        with smtplib.LMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo("mta.test")
            original = message("Are you there?", sender="Friend <friend@example.net>",
                               to="alice@example.com", message_id="<q1@example.net>")
            for _ in range(2):  # the second one gets no reply: once per sender
                _, data_replies = send(client, "friend@example.net", ["alice@example.com"], original)
                assert [code for code, _ in data_replies] == [250]
            _, data_replies = send(client, "news@example.net", ["alice@example.com"],
                                   b"List-Id: <news.example.net>\r\n" + message("Newsletter"))
            assert [code for code, _ in data_replies] == [250]
        assert sink.arrived.wait(30), (tmp_path / "server.log").read_text()[-3000:]
        time.sleep(2)  # anything else would have arrived by now
        assert len(sink.received) == 1
        envelope = sink.received[0]
        assert envelope.mail_from in ("", "<>") and envelope.rcpt_tos == ["friend@example.net"]
        reply = message_from_bytes(envelope.original_content, policy=policy.default)
        assert reply["Subject"] == "Out of office"
        assert reply["Auto-Submitted"] == "auto-replied"
        assert reply["In-Reply-To"] == "<q1@example.net>"
        assert reply["From"] == "alice@example.com"
        assert "Back on Monday." in reply.get_body(("plain",)).get_content()
    finally:
        if lmtp is not None:
            stop(lmtp)
        stop(server.process)
        sink.stop()


def test_reply_to_malformed_headers_never_fails() -> None:
    """Received mail is anyone's: a Message-ID or address the standard
    library's parser chokes on (it raises IndexError on ``<<>>x``), 8-bit
    junk, encoded-words: the reply is still made, 7-bit clean, with no
    malformed id copied; the user's subject loses its line breaks."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from jmap_vacation.autoreply import _from_address

    pieces = st.sampled_from([b"<a@b>", b"\xff\xfe", b"=?utf-8?q?=C3?=", b"<<>>", b" ", b"\t", b"\r\n ",
                              b"caf\xc3\xa9", b"(comment", b'"', b"@", b"<", b">", b"x" * 90, b";", b","])
    field = st.lists(pieces, max_size=6).map(b"".join)
    names = [b"Message-ID", b"References", b"Subject", b"To", b"Cc", b"Auto-Submitted", b"Precedence"]

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.sampled_from(names), field), max_size=8))
    def check(fields: list[tuple[bytes, bytes]]) -> None:
        raw = b"".join(name + b": " + value + b"\r\n" for name, value in fields) + b"\r\nbody\r\n"
        original = headers(raw)
        skip_reason("friend@example.net", original, set())
        sender = _from_address(("me@example.com",), original, None)
        reply = build_reply({"subject": None, "textBody": "Bin weg – zurück am Montag.", "htmlBody": None},
                            original, sender or "me@example.com", "friend@example.net")
        assert reply.isascii()
        parsed = message_from_bytes(reply, policy=policy.default)
        assert "zurück" in parsed.get_content()
        assert parsed["In-Reply-To"] is None or "<<" not in str(parsed["In-Reply-To"])

    check()
    original = headers(b"Subject: Lunch?\r\nMessage-ID: <<>>x\r\n\r\nbody\r\n")
    away = build_reply({"subject": "Away\r\nBcc: evil@example.org", "textBody": "t", "htmlBody": None},
                       original, "me@example.com", "friend@example.net")
    parsed = message_from_bytes(away, policy=policy.default)
    assert parsed["Subject"] == "Away Bcc: evil@example.org" and parsed["Bcc"] is None
    assert parsed["In-Reply-To"] is None


def test_reply_comes_from_the_address_as_the_account_spells_it() -> None:
    """LMTP accepts ``Mary@EXAMPLE.com`` for ``mary@example.com``; the reply
    is from the account's own spelling."""
    from jmap_vacation.autoreply import _from_address

    original = headers(message("hello", to="Mary <Mary@EXAMPLE.com>"))
    assert _from_address(("mary@example.com", "m@example.org"), original, "Mary@EXAMPLE.com") == "mary@example.com"
    assert _from_address((), original, "Mary@EXAMPLE.com") == "Mary@EXAMPLE.com"
    assert _from_address(("m@example.org", "mary@example.com"), original, "mary+x@example.com") == "mary@example.com"
