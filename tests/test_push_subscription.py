"""PushSubscription (RFC 8620 §7.2): the methods in-process, the delivery
job with a fake sender and clock, and the real server (2 workers) pushing
to a receiver on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import queue
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from jmap_basics import push_store
from jmap_basics.push_delivery import BACKOFF_FIRST, Deliverer, Outcome, http_sender
from jmap_basics.push_methods import MAX_LIFETIME, parse_utc_date
from jmap_basics.push_policy import PushPolicy, UrlRefused
from support import jmapcore, start, stop

from jmapcore.accounts import add_account, create_token, set_password
from jmapcore.api import Core
from jmapcore.registry import Registry
from jmapcore.storage import LogPosition
from jmapcore.testing.client import Client
from jmapcore.testing.memory import MemoryBackend

MAIL = "urn:ietf:params:jmap:mail"
LOCAL = {"push": {"allow_http": True, "allow": ["127.0.0.1"]}}
URL = "http://127.0.0.1:9/push"


def make_core(options: dict[str, Any] | None = None) -> Core:
    core = Core(MemoryBackend(), Registry.from_entry_points(), options=LOCAL if options is None else options)
    add_account(core, "alice", "alice-pw")
    return core


def password_client(core: Core, name: str = "alice", password: str = "alice-pw") -> Client:
    principal = core.authenticator.password(name, password)
    assert principal is not None and principal.credential.startswith("pw:")
    return Client(core, principal, using=[MAIL])


def create(client: Client, **props: Any) -> dict[str, Any]:
    props = {"deviceClientId": "phone", "url": URL, **props}
    return client.call("PushSubscription/set", {"create": {"c": props}})


def created_id(client: Client, **props: Any) -> str:
    answer = create(client, **props)
    assert answer["notCreated"] is None, answer
    return answer["created"]["c"]["id"]


def make_mailbox(client: Client, name: str) -> None:
    answer = client.call("Mailbox/set", {"accountId": client.account_id, "create": {"m": {"name": name}}})
    assert answer["created"], answer


# -- the methods ----------------------------------------------------------------


def test_get_never_returns_url_or_keys_and_has_no_account_or_state() -> None:
    """[core-7.2.1-get] [core-7.2-props]"""
    client = password_client(make_core())
    sub = created_id(client)
    answer = client.call("PushSubscription/get", {"ids": None})
    assert set(answer) == {"list", "notFound"}
    (item,) = answer["list"]
    assert item == {
        "id": sub,
        "deviceClientId": "phone",
        "verificationCode": None,
        "expires": item["expires"],
        "types": None,
    }
    for secret in ("url", "keys"):
        error = client.error("PushSubscription/get", {"ids": [sub], "properties": ["id", secret]})
        assert error["type"] == "forbidden"
    assert client.error("PushSubscription/get", {"properties": ["nope"]})["type"] == "invalidArguments"
    error = client.error("PushSubscription/get", {"accountId": client.account_id})
    assert error["type"] == "invalidArguments"
    assert client.call("PushSubscription/get", {"ids": [sub, "Snothere"]})["notFound"] == ["Snothere"]
    assert client.call("PushSubscription/get", {"ids": [sub], "properties": ["types"]})["list"] == [
        {"id": sub, "types": None}
    ]


def test_set_has_no_account_or_states_and_checks_what_is_created() -> None:
    """[core-7.2.2-set] [core-7.2-props] [core-7.2-typesFilter]"""
    client = password_client(make_core())
    answer = create(client)
    assert set(answer) == {"created", "updated", "destroyed", "notCreated", "notUpdated", "notDestroyed"}
    assert client.error("PushSubscription/set", {"ifInState": "x"})["type"] == "invalidArguments"
    bad = {
        "verificationCode": "given",  # MUST be null at create
        "keys": {"p256dh": "AAAA", "auth": "AAAA"},
        "types": ["NoSuchType"],
        "expires": "2001-01-01T00:00:00Z",
        "id": "Smine",
    }
    for name, value in bad.items():
        answer = create(client, **{name: value})
        assert answer["notCreated"]["c"]["type"] == "invalidProperties", name
        assert answer["notCreated"]["c"]["properties"] == [name]
    answer = client.call("PushSubscription/set", {"create": {"c": {"url": URL}}})
    assert answer["notCreated"]["c"]["properties"] == ["deviceClientId"]
    assert created_id(client, types=["Mailbox", "Email"])


def test_expires_is_defaulted_and_capped_at_seven_days() -> None:
    """[core-7.2-expires] default and cap (>= 48 h): 7 days; extending needs no re-verification."""
    client = password_client(make_core())
    now = time.time()
    answer = create(client, expires="2999-01-01T00:00:00Z")
    capped = parse_utc_date(answer["created"]["c"]["expires"])
    assert capped is not None and abs(capped - (now + MAX_LIFETIME)) < 5
    assert MAX_LIFETIME >= 48 * 3600
    sub = answer["created"]["c"]["id"]
    soon = datetime.fromtimestamp(int(now) + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = client.call("PushSubscription/set", {"update": {sub: {"expires": soon}}})
    assert answer["updated"] == {sub: None}
    answer = client.call("PushSubscription/set", {"update": {sub: {"expires": None}}})
    assert abs(parse_utc_date(answer["updated"][sub]["expires"]) - (now + MAX_LIFETIME)) < 5
    default = create(client)["created"]["c"]["expires"]
    assert abs(parse_utc_date(default) - (now + MAX_LIFETIME)) < 5


def test_url_keys_and_device_are_immutable() -> None:
    """[core-7.2.2-set] url/keys immutable (destroy and create instead)."""
    client = password_client(make_core())
    sub = created_id(client)
    for name, value in (("url", "http://127.0.0.1:9/other"), ("keys", None), ("deviceClientId", "tablet")):
        patch = {name: value}
        answer = client.call("PushSubscription/set", {"update": {sub: patch}})
        if name == "keys":  # unchanged (null): allowed
            assert answer["updated"] == {sub: None}
            continue
        assert answer["notUpdated"][sub]["type"] == "invalidProperties"
        assert answer["notUpdated"][sub]["properties"] == [name]
    answer = client.call("PushSubscription/set", {"update": {sub: {"url": URL, "types": ["Mailbox"]}}})
    assert answer["updated"] == {sub: None}


def test_verification_code_must_match() -> None:
    """[core-7.2-verifyFirst] wrong code -> invalidProperties; the right one verifies."""
    core = make_core()
    client = password_client(core)
    sub = created_id(client)
    answer = client.call("PushSubscription/set", {"update": {sub: {"verificationCode": "guess"}}})
    assert answer["notUpdated"][sub]["type"] == "invalidProperties"
    record = next(r for _, r in push_store.all_subscriptions(core) if r["id"] == sub)
    assert len(record["code"]) >= 32 and not record["verified"]
    answer = client.call("PushSubscription/set", {"update": {sub: {"verificationCode": record["code"]}}})
    assert answer["updated"] == {sub: None}
    got = client.call("PushSubscription/get", {"ids": [sub]})["list"][0]
    assert got["verificationCode"] == record["code"]


def test_a_subscription_is_seen_only_with_the_credential_that_made_it() -> None:
    """[core-7.2-credentials] [core-7.2-authBinding]"""
    core = make_core()
    by_password = password_client(core)
    sub = created_id(by_password)
    token = create_token(core, "alice")
    principal = core.authenticator.token(token)
    assert principal is not None
    by_token = Client(core, principal)
    assert by_token.call("PushSubscription/get", {"ids": None})["list"] == []
    assert by_token.call("PushSubscription/get", {"ids": [sub]})["notFound"] == [sub]
    answer = by_token.call("PushSubscription/set", {"update": {sub: {"types": None}}, "destroy": [sub]})
    assert answer["notUpdated"][sub]["type"] == "notFound"
    assert answer["notDestroyed"][sub]["type"] == "notFound"
    assert [r["id"] for r in by_password.call("PushSubscription/get", {})["list"]] == [sub]


def test_destroy_erases_url_and_keys() -> None:
    """[core-7.2-erase] the record goes in one commit; the log keeps only ids."""
    core = make_core()
    client = password_client(core)
    sub = created_id(client)
    answer = client.call("PushSubscription/set", {"destroy": [sub]})
    assert answer["destroyed"] == [sub]
    with core.backend.snapshot(client.account_id) as snap:
        assert snap.get(push_store.TYPE, sub) is None
        assert list(snap.ids(push_store.TYPE)) == []
        page = snap.changes(push_store.TYPE, LogPosition(0), None)
    assert URL not in repr(page)
    assert client.call("PushSubscription/get", {"ids": [sub]})["notFound"] == [sub]


def test_subscriptions_are_capped_and_their_creation_rate_limited() -> None:
    """[core-8.6-limits]"""
    core = make_core({"push": {**LOCAL["push"], "max_subscriptions": 2, "creates_per_window": 3}})
    client = password_client(core)
    first = created_id(client)
    created_id(client)
    assert create(client)["notCreated"]["c"]["type"] == "overQuota"
    client.call("PushSubscription/set", {"destroy": [first]})
    created_id(client)  # the third creation in the window
    client.call("PushSubscription/set", {"destroy": [first]})
    sub = client.call("PushSubscription/get", {})["list"][0]["id"]
    client.call("PushSubscription/set", {"destroy": [sub]})
    assert create(client)["notCreated"]["c"]["type"] == "rateLimit"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",  # http not allowed by default
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://192.168.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[fd00::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://100.64.0.1/x",
        "https://localhost/x",
        "https://0.0.0.0/x",
        "https://user:pw@push.example.com/x",
        "ftp://push.example.com/x",
    ],
)
def test_internal_urls_are_refused_unless_allowed(url: str) -> None:
    """[core-8.6-ssrf] the default policy."""
    client = password_client(make_core({}))
    answer = create(client, url=url)
    assert answer["notCreated"]["c"]["type"] == "invalidProperties"
    assert answer["notCreated"]["c"]["properties"] == ["url"]


def test_the_policy_resolves_names_and_honours_its_allow_list() -> None:
    """[core-8.6-ssrf] every address a name resolves to is checked."""
    strict = PushPolicy.from_options({})
    with pytest.raises(UrlRefused):
        strict.resolve("localhost", 443)
    assert str(strict.resolve("8.8.8.8", 443)) == "8.8.8.8"
    allowed = PushPolicy.from_options({"allow": ["10.0.0.0/8", "push.lan"]})
    assert str(allowed.resolve("10.2.3.4", 443)) == "10.2.3.4"
    with pytest.raises(UrlRefused):
        allowed.resolve("192.168.1.1", 443)
    assert allowed.check_url("https://push.lan/x")[1] == "push.lan"
    assert PushPolicy.from_options({"allow_private": True}).check_url("https://127.0.0.1:8443/x")[2] == 8443


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_name_resolving_to_an_internal_address_gets_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """[core-8.6-ssrf] names are checked when a push is sent (not retried)."""
    fake_dns(monkeypatch, {"push.example.com": "10.0.0.5"})
    send = http_sender(PushPolicy.from_options({}))
    outcome = send("https://push.example.com/x", {"@type": "StateChange", "changed": {}}, None, "normal")
    assert outcome.status is None and outcome.error.startswith("refused") and not outcome.retryable


def test_the_post_goes_to_the_address_that_was_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection is pinned to the vetted address; Host keeps the name [core-7.2-postFormat]."""
    receiver = Receiver()
    try:
        port = receiver.server.server_address[1]
        fake_dns(monkeypatch, {"push.example.test": "127.0.0.1"})
        send = http_sender(PushPolicy.from_options({"allow_http": True, "allow": ["127.0.0.1"]}))
        outcome = send(f"http://push.example.test:{port}/p?x=1", {"@type": "StateChange", "changed": {}}, None, "low")
        assert outcome.ok
        headers, body, _ = receiver.next("/p?x=1", timeout=5)
        assert headers["Host"] == f"push.example.test:{port}"
        assert headers["Urgency"] == "low" and headers["TTL"].isdigit()
        assert json.loads(body) == {"@type": "StateChange", "changed": {}}
    finally:
        receiver.close()


# -- delivery, with a fake sender and clock ------------------------------------------


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], Any, str]] = []
        self.answers: list[Outcome] = []

    def __call__(self, url: str, body: dict[str, Any], keys: Any, urgency: str) -> Outcome:
        self.sent.append((url, body, keys, urgency))
        return self.answers.pop(0) if self.answers else Outcome(201)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def deliverer(core: Core) -> tuple[Deliverer, FakeSender, Clock]:
    sender, clock = FakeSender(), Clock()
    return Deliverer(core, send=sender, clock=clock), sender, clock


def verify(core: Core, client: Client, sender: FakeSender) -> None:
    body = sender.sent[-1][1]
    assert body["@type"] == "PushVerification"
    client.call("PushSubscription/set", {"update": {body["pushSubscriptionId"]: {"verificationCode": body["verificationCode"]}}})


def test_only_the_verification_is_sent_until_the_code_is_set() -> None:
    """[core-7.2-verifyFirst] then changes since creation, once [core-7.1-stateChange]."""
    core = make_core()
    client = password_client(core)
    sub = created_id(client)
    job, sender, _ = deliverer(core)
    job.run_once()
    assert [body for _, body, _, _ in sender.sent] == [
        {"@type": "PushVerification", "pushSubscriptionId": sub, "verificationCode": sender.sent[0][1]["verificationCode"]}
    ]
    make_mailbox(client, "Unverified")
    job.run_once()
    job.run_once()
    assert len(sender.sent) == 1  # nothing else before the code is set
    verify(core, client, sender)
    job.run_once()
    assert len(sender.sent) == 2
    change = sender.sent[1][1]
    assert change["@type"] == "StateChange" and "Mailbox" in change["changed"][client.account_id]
    job.run_once()
    assert len(sender.sent) == 2  # sent once


def test_two_workers_send_each_change_once() -> None:
    """Claims are conditional writes: of two deliverers on one store, one sends."""
    core = make_core()
    client = password_client(core)
    created_id(client)
    first, sender, clock = deliverer(core)
    second = Deliverer(core, send=sender, clock=clock)
    first.run_once()
    second.run_once()
    verify(core, client, sender)
    for name in ("One", "Two"):
        make_mailbox(client, name)
        second.run_once()
        first.run_once()
        second.run_once()
    kinds = [body["@type"] for _, body, _, _ in sender.sent]
    assert kinds == ["PushVerification", "StateChange", "StateChange"]


def test_types_filter_what_is_pushed() -> None:
    """[core-7.2-typesFilter]"""
    core = make_core()
    client = password_client(core)
    created_id(client, types=["Email"])
    job, sender, _ = deliverer(core)
    job.run_once()
    verify(core, client, sender)
    make_mailbox(client, "NotPushed")
    job.run_once()
    assert len(sender.sent) == 1
    client.call("PushSubscription/set", {"update": {client.call("PushSubscription/get", {})["list"][0]["id"]: {"types": None}}})
    make_mailbox(client, "Pushed")
    job.run_once()
    assert sender.sent[-1][1]["@type"] == "StateChange"
    assert "Mailbox" in sender.sent[-1][1]["changed"][client.account_id]


def test_failures_are_retried_with_backoff_and_429_slows_down() -> None:
    """Bounded exponential backoff; a 429 makes pushes less frequent [core-7.2-postFormat]."""
    core = make_core()
    client = password_client(core)
    sub = created_id(client)
    job, sender, clock = deliverer(core)
    sender.answers = [Outcome(503), Outcome(None, "ConnectionRefusedError"), Outcome(201)]
    assert job.run_once() == pytest.approx(BACKOFF_FIRST)
    job.run_once()
    assert len(sender.sent) == 1  # not yet due
    clock.now += BACKOFF_FIRST
    assert job.run_once() == pytest.approx(2 * BACKOFF_FIRST)
    clock.now += 2 * BACKOFF_FIRST
    job.run_once()
    assert len(sender.sent) == 3
    assert sender.sent[0][1] == sender.sent[2][1]
    record = next(r for _, r in push_store.all_subscriptions(core) if r["id"] == sub)
    assert record["pending"] is None and record["failures"] == 0 and record["sent"] == 1
    verify(core, client, sender)
    sender.answers = [Outcome(429, retry_after=30)]
    make_mailbox(client, "Busy")
    job.run_once()
    assert len(sender.sent) == 4
    make_mailbox(client, "Busier")
    clock.now += 10
    job.run_once()
    assert len(sender.sent) == 4  # Retry-After honoured
    clock.now += 25
    job.run_once()
    assert len(sender.sent) == 5
    changed = sender.sent[-1][1]["changed"][client.account_id]
    assert "Mailbox" in changed  # the retried push absorbed the later change
    record = next(r for _, r in push_store.all_subscriptions(core) if r["id"] == sub)
    assert record["slow"] > 0  # still pushing less often than before the 429


def test_a_4xx_answer_is_not_retried() -> None:
    core = make_core()
    client = password_client(core)
    created_id(client)
    job, sender, clock = deliverer(core)
    sender.answers = [Outcome(404)]
    job.run_once()
    clock.now += 3600
    job.run_once()
    assert len(sender.sent) == 1
    (row,) = push_store.describe_all(core)
    assert row["failures"] == 1 and row["last"].startswith("verify") and row["verified"] == "no"


def test_expired_subscriptions_get_nothing() -> None:
    """[core-7.2-expires] after expires nothing is pushed; the subscription is erased."""
    core = make_core()
    client = password_client(core)
    created_id(client)
    job, sender, clock = deliverer(core)
    job.run_once()
    verify(core, client, sender)
    clock.now += MAX_LIFETIME + 1
    make_mailbox(client, "TooLate")
    job.run_once()
    assert len(sender.sent) == 1
    assert list(push_store.all_subscriptions(core)) == []


def test_a_changed_password_ends_its_subscriptions() -> None:
    """[core-7.2-credentials] destroyed when the credential is no longer valid."""
    core = make_core()
    client = password_client(core)
    created_id(client)
    token_principal = core.authenticator.token(create_token(core, "alice"))
    assert token_principal is not None
    created_id(Client(core, token_principal))
    job, sender, _ = deliverer(core)
    job.run_once()
    assert len(sender.sent) == 2
    set_password(core, "alice", "new-pw")
    job.run_once()
    (left,) = push_store.all_subscriptions(core)
    assert left[1]["credential"] == token_principal.credential
    core.backend.directory.delete_tokens("alice")  # a revoked token ends its subscriptions too
    job.run_once()
    assert list(push_store.all_subscriptions(core)) == []


# -- the real server, 2 workers, a receiver on 127.0.0.1 ------------------------------


class Receiver:
    """An HTTP endpoint in a thread: records every POST, answers with the
    queued statuses (then 201)."""

    def __init__(self) -> None:
        self.posts: queue.Queue[tuple[str, dict[str, str], bytes, float]] = queue.Queue()
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts.put((self.path, dict(self.headers.items()), body, time.monotonic()))
                status = receiver.statuses.pop(0) if receiver.statuses else 201
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def next(self, path: str, timeout: float = 10.0) -> tuple[dict[str, str], bytes, float]:
        """The next POST to ``path`` (others are dropped), within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no push to {path} within {timeout} s")
            try:
                got_path, headers, body, at = self.posts.get(timeout=remaining)
            except queue.Empty:
                continue
            if got_path == path:
                return headers, body, at

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("push")
    data = base / "data"
    added = jmapcore("account", "add", "alice", "--password", "alice-pw", "--data", str(data))
    assert added.returncode == 0, added.stderr
    config = base / "server.toml"
    config.write_text('push_allow_http = true\npush_allow = ["127.0.0.1"]\n')
    running = start("serve", data, base / "server.log", extra=["--workers", "2", "--config", str(config)])
    receiver = Receiver()
    try:
        yield running, receiver
    finally:
        receiver.close()
        stop(running.process)


class Api:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, auth=("alice", "alice-pw"), timeout=10)
        session = self.http.get("/.well-known/jmap").json()
        self.account_id = session["primaryAccounts"][MAIL]

    def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        body = {"using": ["urn:ietf:params:jmap:core", MAIL], "methodCalls": [[name, args, "0"]]}
        answer = self.http.post("/jmap/api/", json=body)
        assert answer.status_code == 200, answer.text
        response_name, result, _ = answer.json()["methodResponses"][0]
        assert response_name != "error", result
        return result

    def subscribe(self, url: str, **props: Any) -> str:
        answer = self.call("PushSubscription/set", {"create": {"s": {"deviceClientId": "t", "url": url, **props}}})
        assert answer["notCreated"] is None, answer
        return answer["created"]["s"]["id"]

    def mailbox(self, name: str) -> float:
        answer = self.call("Mailbox/set", {"accountId": self.account_id, "create": {"m": {"name": name}}})
        assert answer["created"], answer
        return time.monotonic()


@pytest.mark.server
def test_server_verifies_then_pushes_each_change_once(server: Any) -> None:
    """[core-7.2-verifyFirst] [core-7.2-postFormat] a change through the API
    reaches the receiver once, promptly, whichever worker sees it."""
    running, receiver = server
    api = Api(running.url)
    sub = api.subscribe(f"{receiver.url}/plain")
    headers, body, _ = receiver.next("/plain")
    verification = json.loads(body)
    assert verification["@type"] == "PushVerification" and verification["pushSubscriptionId"] == sub
    assert headers["Content-Type"] == "application/json"
    assert int(headers["TTL"]) > 0 and headers["Urgency"] in ("very-low", "low", "normal", "high")
    api.call("PushSubscription/set", {"update": {sub: {"verificationCode": verification["verificationCode"]}}})
    committed = api.mailbox("Pushed")
    headers, body, arrived = receiver.next("/plain", timeout=5)
    change = json.loads(body)
    assert change["@type"] == "StateChange" and "Mailbox" in change["changed"][api.account_id]
    assert headers["Content-Type"] == "application/json"
    print(f"commit to push: {arrived - committed:.3f} s")
    assert arrived - committed < 3.0  # one second when the machine is not loaded
    time.sleep(1.5)
    assert receiver.posts.empty()  # exactly once, not once per worker
    listing = jmapcore("push", "list", "--data", str(running.data))
    assert listing.returncode == 0, listing.stderr
    (row,) = [line for line in listing.stdout.splitlines() if sub in line]
    assert "alice" in row and "127.0.0.1" in row and "\tyes\t" in row and "/plain" not in row


@pytest.mark.server
def test_server_encrypts_with_the_subscription_keys(server: Any) -> None:
    """[core-8.7-pushEncryption] RFC 8291 aes128gcm, decrypted with http_ece."""
    import http_ece
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    running, receiver = server
    api = Api(running.url)
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = os.urandom(16)

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    sub = api.subscribe(f"{receiver.url}/sealed", keys={"p256dh": b64(public), "auth": b64(auth)})
    headers, body, _ = receiver.next("/sealed")
    assert headers["Content-Encoding"] == "aes128gcm" and b"PushVerification" not in body
    verification = json.loads(http_ece.decrypt(body, private_key=private, auth_secret=auth, version="aes128gcm"))
    assert verification["pushSubscriptionId"] == sub
    api.call("PushSubscription/set", {"update": {sub: {"verificationCode": verification["verificationCode"]}}})
    api.mailbox("Sealed")
    _, body, _ = receiver.next("/sealed", timeout=5)
    change = json.loads(http_ece.decrypt(body, private_key=private, auth_secret=auth, version="aes128gcm"))
    assert change["@type"] == "StateChange" and "Mailbox" in change["changed"][api.account_id]


@pytest.mark.server
def test_server_retries_a_failing_receiver(server: Any) -> None:
    """A 5xx answer is retried (bounded backoff)."""
    running, receiver = server
    api = Api(running.url)
    receiver.statuses = [503]
    sub = api.subscribe(f"{receiver.url}/flaky")
    _, first, at_first = receiver.next("/flaky")
    _, second, at_second = receiver.next("/flaky", timeout=10)
    assert json.loads(first) == json.loads(second)
    assert json.loads(second)["pushSubscriptionId"] == sub
    assert at_second - at_first >= BACKOFF_FIRST * 0.9


@pytest.mark.server
def test_server_refuses_internal_urls_not_allowed(server: Any) -> None:
    """[core-8.6-ssrf] 127.0.0.1 is allowed by this server's config; nothing else internal."""
    running, _ = server
    api = Api(running.url)
    for url in ("http://10.0.0.1/x", "http://192.168.1.1/x", "http://localhost:9/x", "http://[::1]:9/x"):
        answer = api.call("PushSubscription/set", {"create": {"s": {"deviceClientId": "t", "url": url}}})
        assert answer["notCreated"]["s"]["properties"] == ["url"], url


def test_push_list_without_subscriptions(tmp_path: Path) -> None:
    added = jmapcore("account", "add", "bob", "--password", "pw", "--data", str(tmp_path))
    assert added.returncode == 0, added.stderr
    listing = jmapcore("push", "list", "--data", str(tmp_path))
    assert listing.returncode == 0 and listing.stdout.startswith("principal\t")


def test_push_settings_come_from_the_config_file_and_flags(tmp_path: Path) -> None:
    """[core-8.6-ssrf] the operator's allow-list reaches the plugin as Core.options["push"]."""
    from jmapserver.config import ConfigError, load_settings

    config = tmp_path / "c.toml"
    config.write_text('push_allow_http = true\npush_allow = ["127.0.0.1", "push.lan"]\n')
    settings = load_settings(config, {"push_allow": ["10.0.0.0/8"], "push_allow_private": None})
    push = settings.plugin_options()["push"]
    assert push == {"allow_private": False, "allow": ["127.0.0.1", "push.lan", "10.0.0.0/8"], "allow_http": True}
    policy = PushPolicy.from_options(push)
    assert policy.check_url("http://push.lan/x")[1] == "push.lan"
    config.write_text('push_allow_private = "yes"\n')
    with pytest.raises(ConfigError, match="push_allow_private"):
        load_settings(config, {})
