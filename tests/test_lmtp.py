"""Inbound mail over LMTP: a real ``jmapcore lmtp`` process on 127.0.0.1, fed
by the standard library's LMTP client, on LMDB and on Maildir, with
``jmapcore serve`` on the same data directory to read the result over JMAP
and to push it over EventSource."""

from __future__ import annotations

import smtplib
import subprocess
import sys
import time
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tests.mailhelpers import message
from tests.support import EventStream, Running, cli_env, free_port, jmapcore, start, stop

pytestmark = pytest.mark.server

USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
BASIC = "Basic " + b64encode(b"alice:alice-pw").decode()
MAX_SIZE = 200_000


@dataclass
class Lmtp:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    server: Running
    backend: str
    data: Path
    accounts: dict[str, str]

    def client(self) -> smtplib.LMTP:
        client = smtplib.LMTP("127.0.0.1", self.port, timeout=30)
        code, _ = client.ehlo("mta.example.net")  # LHLO
        assert code == 250
        return client


def start_lmtp(data: Path, log: Path, extra: list[str]) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "jmapserver.cli", "lmtp", "--data", str(data),
             "--listen", f"127.0.0.1:{port}", "--max-size", str(MAX_SIZE), "--hostname", "mx.test", *extra],
            stdout=sink, stderr=subprocess.STDOUT, env=cli_env(), start_new_session=True,
        )
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise AssertionError(f"jmapcore lmtp exited with {process.returncode}:\n{log.read_text()}")
        try:
            with smtplib.LMTP("127.0.0.1", port, timeout=5) as probe:
                probe.ehlo("probe")
            return port, process
        except OSError:
            if time.monotonic() > deadline:
                stop(process)
                raise AssertionError(f"jmapcore lmtp did not answer:\n{log.read_text()}") from None
            time.sleep(0.2)


@pytest.fixture(scope="module", params=["lmdb", "maildir"])
def lmtp(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lmtp]:
    root = tmp_path_factory.mktemp(f"lmtp-{request.param}")
    data = root / "data"
    backend = ["--backend", request.param]
    accounts = {}
    for name, address in (("alice", "alice@example.com"), ("bob", "bob@example.org"), ("carol", "carol@example.com")):
        added = jmapcore("account", "add", name, "--password", f"{name}-pw", "--address", address,
                         "--data", str(data), *backend)
        assert added.returncode == 0, added.stderr
        accounts[name] = added.stdout.strip()
    quota = jmapcore("account", "quota", "carol", "--octets", "5000", "--data", str(data), *backend)
    assert quota.returncode == 0, quota.stderr
    server = start("serve", data, root / "server.log", extra=["--workers", "1", *backend])
    try:
        port, process = start_lmtp(data, root / "lmtp.log", backend)
        try:
            yield Lmtp(port, process, root / "lmtp.log", server, request.param, data, accounts)
        finally:
            stop(process)
    finally:
        stop(server.process)


def api(lmtp: Lmtp, user: str, *calls: list[Any], using: list[str] = USING) -> list[Any]:
    with httpx.Client(base_url=lmtp.server.url, auth=(user, f"{user}-pw"), timeout=10) as client:
        answer = client.post("/jmap/api/", json={"using": using, "methodCalls": list(calls)})
        assert answer.status_code == 200, answer.text
        return answer.json()["methodResponses"]


def find(lmtp: Lmtp, user: str, subject: str) -> list[dict[str, Any]]:
    """The user's Inbox Emails with that subject (over JMAP)."""
    account = lmtp.accounts[user]
    _, _, (_, mailboxes, _) = None, None, api(lmtp, user, ["Mailbox/get", {"accountId": account}, "m"])[0]
    inbox = next(m["id"] for m in mailboxes["list"] if m["role"] == "inbox")
    responses = api(
        lmtp, user,
        ["Email/query", {"accountId": account, "filter": {"inMailbox": inbox, "subject": subject}}, "q"],
        ["Email/get", {"accountId": account, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                       "properties": ["subject", "from", "mailboxIds", "keywords", "size", "header:Return-Path"]}, "g"],
    )
    assert responses[1][0] == "Email/get", responses
    return responses[1][1]["list"]


def send(client: smtplib.LMTP, sender: str, recipients: list[str], raw: bytes) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    """MAIL, RCPT each, DATA: (RCPT replies, one DATA reply per accepted recipient)."""
    code, reply = client.mail(sender)
    assert code == 250, reply
    rcpt = [client.rcpt(address) for address in recipients]
    accepted = sum(1 for code, _ in rcpt if code == 250)
    if not accepted:
        client.rset()
        return rcpt, []
    first = client.data(raw)
    data = [first] + [client.getreply() for _ in range(accepted - 1)]
    return rcpt, data


def test_per_recipient_statuses_and_delivery(lmtp: Lmtp) -> None:
    """RCPT answered per recipient (550 5.1.1 for unknown ones), then one
    DATA reply per accepted recipient; the mail is in both Inboxes."""
    subject = f"lmtp per recipient {lmtp.backend}"
    with lmtp.client() as client:
        rcpt, data = send(client, "sender@example.net",
                          ["alice@example.com", "nobody@example.com", "bob@example.org"],
                          message(subject, sender="Sender <sender@example.net>"))
    assert [code for code, _ in rcpt] == [250, 550, 250]
    assert b"5.1.1" in rcpt[1][1]
    assert [code for code, _ in data] == [250, 250]
    for user in ("alice", "bob"):
        (email,) = find(lmtp, user, subject)
        assert email["from"] == [{"name": "Sender", "email": "sender@example.net"}]
        assert email["keywords"] == {}
        assert email["header:Return-Path"] .strip() == "<sender@example.net>"


def test_domain_case_and_account_name(lmtp: Lmtp) -> None:
    """The domain compares case-insensitively; NAME@any-domain reaches account
    NAME (documented in the README); a +detail subaddress reaches the
    account; an unknown local part does not."""
    subject = f"lmtp by name {lmtp.backend}"
    with lmtp.client() as client:
        rcpt, data = send(client, "x@example.net",
                          ["alice@EXAMPLE.COM", "bob@other.test", "zed@other.test", "carol+news@example.com"],
                          message(subject))
    assert [code for code, _ in rcpt] == [250, 250, 550, 250]
    assert [code for code, _ in data] == [250, 250, 250]
    assert len(find(lmtp, "carol", subject)) == 1
    assert len(find(lmtp, "bob", subject)) == 1


def test_malformed_messages_are_delivered(lmtp: Lmtp) -> None:
    """No header block, 8-bit junk, a 5,000-character line, a lone CR: all
    delivered (best-effort parse); the server keeps serving."""
    bad = [
        b"just some text with no headers at all\r\n",
        b"Subject: lmtp junk \xff\xfe\r\nFrom: <<<\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nbroken",
        b"Subject: lmtp long line\r\n\r\n" + b"a" * 5000 + b"\r\n",
        b"Subject: lmtp lone cr\r\n\r\nbody\rmore\r\n",
    ]
    with lmtp.client() as client:
        for raw in bad:
            rcpt, data = send(client, "", ["alice@example.com"], raw)
            assert [code for code, _ in data] == [250], data
    assert len(find(lmtp, "alice", "lmtp long line")) == 1
    assert lmtp.process.poll() is None


def test_too_large_is_refused_per_recipient(lmtp: Lmtp) -> None:
    """Over --max-size: 552 for each accepted recipient, nothing delivered."""
    subject = f"lmtp too large {lmtp.backend}"
    with lmtp.client() as client:
        rcpt, data = send(client, "x@example.net", ["alice@example.com", "bob@example.org"],
                          message(subject, body="x" * (MAX_SIZE + 1000)))
        assert [code for code, _ in data] == [552, 552]
        client.noop()  # the session goes on
    assert find(lmtp, "alice", subject) == []


def test_over_quota_answers_452_and_552(lmtp: Lmtp) -> None:
    """[quota-4.1-props] carol's hard limit is 5000 octets: a message larger
    than the whole quota gets 552 5.2.2, one that does not fit now 452
    4.2.2 (temporary), while other recipients of the same message get it."""
    with lmtp.client() as client:
        _, data = send(client, "x@example.net", ["carol@example.com", "alice@example.com"],
                       message("lmtp quota big", body="y" * 6000))
        assert [code for code, _ in data] == [552, 250]
        assert b"5.2.2" in data[0][1]
        _, data = send(client, "x@example.net", ["carol@example.com"], message("lmtp quota fits", body="z" * 2000))
        assert [code for code, _ in data] == [250]
        _, data = send(client, "x@example.net", ["carol@example.com"], message("lmtp quota full", body="z" * 2500))
        assert [code for code, _ in data] == [452]
        assert b"4.2.2" in data[0][1]
    assert len(find(lmtp, "carol", "lmtp quota fits")) == 1
    assert find(lmtp, "carol", "lmtp quota full") == []
    (_, quota, _), = api(lmtp, "carol", ["Quota/get", {"accountId": lmtp.accounts["carol"], "ids": None}, "q"],
                       using=[*USING, "urn:ietf:params:jmap:quota"])
    assert quota["list"][0]["used"] == sum(e["size"] for e in find(lmtp, "carol", "lmtp"))


def test_delivery_is_pushed_over_eventsource(lmtp: Lmtp) -> None:
    """[mail-1.5-push] a delivery by the LMTP process raises EmailDelivery,
    pushed by the API server to a listener with no request made."""
    stream = EventStream(lmtp.server, BASIC, query="types=EmailDelivery&closeafter=no&ping=0")
    try:
        assert stream.response.status == 200
        with lmtp.client() as client:
            _, data = send(client, "x@example.net", ["alice@example.com"], message(f"lmtp push {lmtp.backend}"))
        assert [code for code, _ in data] == [250]
        event = stream.next()
        assert event is not None
        assert "EmailDelivery" in msgspec.json.decode(event["data"])["changed"][lmtp.accounts["alice"]]
    finally:
        stream.close()


def test_maildir_file_is_written(lmtp: Lmtp) -> None:
    """On Maildir the delivered message is a file in the Inbox folder."""
    if lmtp.backend != "maildir":
        pytest.skip("Maildir only")
    subject = "lmtp maildir file"
    with lmtp.client() as client:
        _, data = send(client, "x@example.net", ["bob@example.org"], message(subject))
    assert [code for code, _ in data] == [250]
    root = lmtp.data / "maildir" / "bob"
    files = [p for sub in ("new", "cur") for p in (root / sub).iterdir()]
    assert any(subject.encode() in p.read_bytes() for p in files)


def test_local_part_case_and_null_sender(lmtp: Lmtp) -> None:
    """An address's local part in another case reaches the account (RFC 5321
    §2.4: receiving hosts should not be case-sensitive), by address and by
    name; a bounce (MAIL FROM:<>) gets ``Return-Path: <>``, not ``<<>>``."""
    subject = f"lmtp case {lmtp.backend}"
    with lmtp.client() as client:
        rcpt, data = send(client, "", ["Alice@Example.com", "BOB+x@example.org", "Carol@other.test"],
                          message(subject))
    assert [code for code, _ in rcpt] == [250, 250, 250]
    assert [code for code, _ in data] == [250, 250, 250]
    for user in ("alice", "bob", "carol"):
        (email,) = find(lmtp, user, subject)
        assert email["header:Return-Path"].strip() == "<>"


def test_settings_from_the_config_file(lmtp: Lmtp, tmp_path: Path) -> None:
    """``jmapcore lmtp --config FILE`` takes lmtp_listen, lmtp_hostname,
    lmtp_max_size and lmtp_name_match from the file; a flag wins over it;
    a bad value is refused with a message naming the key."""
    from jmapserver.config import ConfigError, load_settings

    port = free_port()
    config = tmp_path / "jmapcore.toml"
    config.write_text(f'data = "{lmtp.data}"\nbackend = "{lmtp.backend}"\nlmtp_listen = "127.0.0.1:{port}"\n'
                      'lmtp_hostname = "mx.config.test"\nlmtp_max_size = 2000\nlmtp_name_match = false\n')
    log = tmp_path / "lmtp.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "jmapserver.cli", "lmtp", "--config", str(config), "--hostname", "mx.flag.test"],
            stdout=sink, stderr=subprocess.STDOUT, env=cli_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log.read_text()
            try:
                client = smtplib.LMTP("127.0.0.1", port, timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        with client:
            code, greeting = client.ehlo("mta.example.net")
            assert code == 250 and greeting.startswith(b"mx.flag.test")  # the flag wins
            rcpt, data = send(client, "x@example.net", ["alice@example.com", "bob@other.test"],
                              message("lmtp config", body="x" * 3000))
            assert [code for code, _ in rcpt] == [250, 550]  # no NAME@any-domain
            assert [code for code, _ in data] == [552]  # over lmtp_max_size
    finally:
        stop(process)
    assert f"listening on 127.0.0.1:{port}" in log.read_text()
    for bad, key in (('lmtp_listen = "nowhere"', "lmtp_listen"), ("lmtp_max_size = 0", "lmtp_max_size"),
                     ('lmtp_name_match = "no"', "lmtp_name_match")):
        config.write_text(bad + "\n")
        with pytest.raises(ConfigError, match=key):
            load_settings(config, {})


def test_find_recipient_rules() -> None:
    """In-process: exact address, any case, subaddress, by name (and not
    with by_name off); a ``*@domain`` address is not a catch-all."""
    from jmapcore.accounts import add_account
    from jmapcore.api import Core
    from jmapcore.registry import Registry
    from jmapcore.testing.memory import MemoryBackend
    from jmapserver.lmtp import find_recipient

    core = Core(MemoryBackend(), Registry.from_entry_points())
    add_account(core, "alice", "pw", ("Alice.Smith@example.com",))
    add_account(core, "wild", "pw", ("*@example.org",))

    def found(address: str, by_name: bool = True) -> str | None:
        account = find_recipient(core, address, by_name=by_name)
        return account.name if account is not None else None

    assert found("Alice.Smith@example.com") == "alice"
    assert found("alice.smith@EXAMPLE.COM") == "alice"
    assert found("ALICE.SMITH+news@example.com") == "alice"
    assert found("ALICE@anywhere.test") == "alice"
    assert found("ALICE@anywhere.test", by_name=False) is None
    assert found("bob@example.org") is None and found("nobody") is None
