"""A third-party client against the real server over HTTPS.

jmapc (PyPI) only speaks ``https://{host}/.well-known/jmap``, parses the
Session strictly and sends its requests with ``requests``.  Here it talks to ``jmapcore serve
--tls-cert --tls-key`` on 127.0.0.1 with a certificate made for the test;
a raw ``ssl`` client checks the TLS floor ([core-1.7-https], [core-8.1-tls]).
"""

from __future__ import annotations

import os
import queue
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import jmapc
import jmapc.errors
import pytest
import requests
from jmapc import Ref
from jmapc.api import APIRequest
from jmapc.methods import CoreEcho, CoreEchoResponse, CustomMethod
from jmapc.methods.base import MethodWithAccount
from jmapc.models import EmailBodyPart, ListOrRef

from jmapcore.wire import CORE
from tests.support import Running, jmapcore, make_certificate, start, stop

pytestmark = pytest.mark.server

USER, PASSWORD = "alice", "alice-pw"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]
) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("tls-server")
    data = root / "data"
    added = jmapcore("account", "add", USER, "--password", PASSWORD, "--data", str(data))
    assert added.returncode == 0, added.stderr
    running = start("serve", data, root / "server.log", extra=["--workers", "2"], tls=certificate)
    running.account_id = added.stdout.strip()
    try:
        yield running
    finally:
        stop(running.process)


class AccountClient(jmapc.Client):
    """jmapc with the account named.

    jmapc 0.4 takes its account id only from the ``core``, ``mail`` or
    ``submission`` entry of ``primaryAccounts``, and RFC 8620 §2 says the
    core URI SHOULD NOT be a key there: naming the account keeps these core
    tests independent of the mail plugin (test_jmapc_reads_mail uses plain
    jmapc).
    """

    def __init__(self, host: str, *args: Any, account: str, **kwargs: Any) -> None:
        super().__init__(host, *args, **kwargs)
        self._account = account

    @property
    def account_id(self) -> str:
        return self._account


@dataclass
class BlobCopy(MethodWithAccount):
    """RFC 8620 §6.3 in jmapc's own terms, so that ``Ref`` works on it."""

    method_namespace: ClassVar[str | None] = "Blob"
    method_type: ClassVar[str | None] = "copy"
    using: ClassVar[set[str]] = {CORE}
    from_account_id: str
    blob_ids: ListOrRef[str]


@pytest.fixture
def trust(monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]) -> None:
    """requests trusts the test certificate only, and never goes through a proxy."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def jmapc_client(server: Running, password: str = PASSWORD) -> AccountClient:
    return AccountClient.create_with_password(
        f"127.0.0.1:{server.port}", USER, password, account=server.account_id
    )


@pytest.fixture
def client(server: Running, trust: None) -> AccountClient:
    return jmapc_client(server)


def test_jmapc_reads_the_session(server: Running, client: AccountClient) -> None:
    """[core-2-sessionGet] [core-1.7-https] jmapc's strict Session model accepts ours."""
    session = client.jmap_session
    base = f"https://127.0.0.1:{server.port}"
    assert server.url == base
    assert session.username == USER
    assert session.api_url == f"{base}/jmap/api/"
    assert session.upload_url == f"{base}/jmap/upload/{{accountId}}/"
    assert session.download_url.startswith(f"{base}/jmap/download/")
    assert session.event_source_url.startswith(f"{base}/jmap/eventsource/")
    assert session.state
    core = session.capabilities.core
    assert core.max_calls_in_request >= 16 and core.max_objects_in_get >= 500
    assert "i;unicode-casemap" in core.collation_algorithms
    assert session.primary_accounts.core is None  # RFC 8620 §2: SHOULD NOT be present
    assert f"jmapcore serving {base}/" in server.log.read_text()  # the startup line


def test_jmapc_core_echo(client: AccountClient) -> None:
    """[core-4-echo] one method call, jmapc's single-call id and response type."""
    arguments = {"hello": ["world", 1, None, {"nested": True}]}
    response = client.request(CoreEcho(data=arguments))
    assert isinstance(response, CoreEchoResponse)
    assert response.data == arguments


def test_jmapc_batch_with_a_result_reference(
    server: Running, client: AccountClient, tmp_path: Path
) -> None:
    """[core-3.7-hashArg] jmapc turns ``Ref`` into ``#blobIds``; we resolve it."""
    source = tmp_path / "note.txt"
    source.write_bytes(b"referenced\n")
    blob = client.upload_blob(source)
    calls = [
        CoreEcho(data={"ids": [blob.id]}),
        BlobCopy(from_account_id=server.account_id, blob_ids=Ref("/ids")),
    ]
    sent = APIRequest.from_calls(server.account_id, calls).method_calls[1][1]
    assert sent["#blobIds"] == {"name": "Core/echo", "path": "/ids", "resultOf": "0.Core/echo"}

    echoed, copied = client.request(calls, raise_errors=True)
    assert (echoed.id, copied.id) == ("0.Core/echo", "1.Blob/copy")
    assert isinstance(echoed.response, CoreEchoResponse)
    assert copied.response.data["copied"] == {blob.id: blob.id}  # content-addressed

    broken = [CoreEcho(data={}), BlobCopy(from_account_id=server.account_id, blob_ids=Ref("/ids"))]
    _, failed = client.request(broken)
    assert isinstance(failed.response, jmapc.errors.InvalidResultReference)
    unknown = CustomMethod(data={})
    unknown.jmap_method = "Nothing/here"
    assert isinstance(client.request(unknown), jmapc.errors.UnknownMethod)


def test_jmapc_upload_then_download(client: AccountClient, tmp_path: Path) -> None:
    """[core-6.1-upload] [core-6.2-download] through jmapc's own helpers."""
    for name, content, kind in (
        ("hello.txt", "grüße aus jmapc\n".encode(), "text/plain"),
        ("random.bin", os.urandom(200_000), "application/octet-stream"),
    ):
        source = tmp_path / name
        source.write_bytes(content)
        blob = client.upload_blob(source)
        assert (blob.type, blob.size) == (kind, len(content))
        target = tmp_path / f"back-{name}"
        part = EmailBodyPart(blob_id=blob.id, name=f"copy of {name}", type=kind)
        client.download_attachment(part, target)
        assert target.read_bytes() == content


def test_jmapc_wrong_password(server: Running, trust: None) -> None:
    """[core-1.7-https] the session needs valid credentials: 401, which jmapc raises."""
    intruder = jmapc_client(server, password="not-the-password")
    with pytest.raises(requests.HTTPError) as raised:
        _ = intruder.jmap_session
    assert raised.value.response is not None
    assert raised.value.response.status_code == 401
    assert "Basic" in raised.value.response.headers["WWW-Authenticate"]


def _handshake(server: Running, cert: Path, context: ssl.SSLContext) -> str | None:
    context.load_verify_locations(cert)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.version()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_below_1_2_is_refused(server: Running, certificate: tuple[Path, Path]) -> None:
    """[core-8.1-tls] TLS 1.1 is refused; 1.2 is accepted and 1.3 is preferred."""
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Let this OpenSSL offer TLS 1.0/1.1 at all, so that the refusal is the server's.
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as raised:
        _handshake(server, certificate[0], old)
    if raised.value.reason in ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE"):
        pytest.skip(f"this OpenSSL cannot offer TLS 1.1 ({raised.value.reason})")

    tls12 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert _handshake(server, certificate[0], tls12) == "TLSv1.2"
    assert _handshake(server, certificate[0], ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)) == "TLSv1.3"


def test_plain_http_to_the_tls_port_fails(server: Running) -> None:
    """[core-1.7-https] no cleartext answer on the HTTPS port."""
    with pytest.raises(httpx.TransportError):
        httpx.get(
            f"http://127.0.0.1:{server.port}/.well-known/jmap", auth=(USER, PASSWORD), timeout=10
        )


def _import(client: jmapc.Client, server: Running, tmp_path: Path, raw: bytes, mailbox_id: str) -> str:
    source = tmp_path / "message.eml"
    source.write_bytes(raw)
    blob = client.upload_blob(source)
    importer = CustomMethod(data={
        "accountId": server.account_id,
        "emails": {"m": {"blobId": blob.id, "mailboxIds": {mailbox_id: True}}},
    })
    importer.jmap_method = "Email/import"
    importer.using = {CORE, "urn:ietf:params:jmap:mail"}
    return client.request(importer, raise_errors=True).data["created"]["m"]["id"]


def test_jmapc_reads_mail(server: Running, trust: None, tmp_path: Path) -> None:
    """[mail-2.1-get] [mail-4.4-collapseThreads] [mail-4.2-defaultProps] jmapc's
    own mail models parse our Mailbox, Email and Thread objects, and plain
    jmapc finds the account through primaryAccounts."""
    from jmapc.methods import EmailGet, EmailQuery, EmailSet, MailboxGet, ThreadGet
    from jmapc.models import Comparator, EmailQueryFilterCondition

    from tests.mailhelpers import message

    client = jmapc.Client.create_with_password(f"127.0.0.1:{server.port}", USER, PASSWORD)
    assert client.account_id == server.account_id
    inbox = next(m for m in client.request(MailboxGet(ids=None)).data if m.role == "inbox")
    first = _import(client, server, tmp_path, message("From jmapc", "hello"), inbox.id)
    calls = [
        EmailQuery(
            filter=EmailQueryFilterCondition(in_mailbox=inbox.id),
            sort=[Comparator(property="receivedAt", is_ascending=False)],
            limit=50,
            collapse_threads=True,
        ),
        EmailGet(ids=Ref("/ids"), properties=["threadId", "mailboxIds", "keywords", "from", "subject", "receivedAt", "preview"]),
        ThreadGet(ids=Ref("/list/*/threadId")),
    ]
    query, got, threads = client.request(calls, raise_errors=True)
    assert query.response.ids == [first]
    [email] = got.response.data
    assert (email.subject, email.mail_from[0].email, email.preview.strip()) == ("From jmapc", "alice@example.com", "hello")
    assert threads.response.data[0].email_ids == [first]
    updated = client.request(EmailSet(update={first: {"keywords/$seen": True}}), raise_errors=True)
    assert first in updated.updated
    inbox = next(m for m in client.request(MailboxGet(ids=[inbox.id])).data)
    assert (inbox.total_emails, inbox.unread_emails) == (1, 0)


def test_jmapc_hears_a_change_over_event_source(server: Running, trust: None) -> None:
    """[core-7.3-sse] [core-7.1-stateChange] jmapc's own EventSource reader
    (sseclient) gets the StateChange of a change made through the API, with
    the state Mailbox/get then returns."""
    listener = AccountClient.create_with_password(
        f"127.0.0.1:{server.port}", USER, PASSWORD, account=server.account_id,
        event_source_config=jmapc.EventSourceConfig(types="Mailbox", closeafter="state", ping=0),
    )
    heard: queue.Queue[Any] = queue.Queue()

    def listen() -> None:
        try:
            heard.put(next(iter(listener.events)))
        except Exception as ex:  # the stream broke: report it rather than hang
            heard.put(ex)

    threading.Thread(target=listen, daemon=True).start()
    event = None
    states: list[str] = []
    for attempt in range(20):  # the listener connects in its own time: bounded retries
        states.append(_create_mailbox(server, f"Heard {attempt}"))
        try:
            event = heard.get(timeout=1.0)
            break
        except queue.Empty:
            continue
    assert event is not None and not isinstance(event, Exception), event
    assert event.id  # [core-7.3-eventId]
    assert event.data.changed[server.account_id].mailbox in states


def _create_mailbox(server: Running, name: str) -> str:
    """Create a mailbox through the API; the Mailbox state it reached."""
    verify = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
    with httpx.Client(base_url=server.url, auth=(USER, PASSWORD), verify=verify, timeout=10) as http:
        answer = http.post("/jmap/api/", json={
            "using": [CORE, "urn:ietf:params:jmap:mail"],
            "methodCalls": [["Mailbox/set", {"accountId": server.account_id, "create": {"m": {"name": name}}}, "0"]],
        })
        assert answer.status_code == 200, answer.text
        return answer.json()["methodResponses"][0][1]["newState"]
