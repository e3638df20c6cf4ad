"""The HTTP front (jmapserver.app) in-process: falcon's ASGI TestClient on a
Core over a real LMDB backend in a temporary directory.

Spec ids are from /work/shared/spec/core.md.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from jmapcore.accounts import add_account, create_token
from jmapcore.api import Core, Limits
from jmapcore.storage import AccountInfo
from jmapcore.wire import CORE
from jmapserver.app import create_app
from jmapserver.config import Settings
from jmapserver.downloads import content_disposition, parse_range, resolve_range, sanitize_type
from jmapserver.middleware import accepts_gzip
from jmapserver.wiring import build_core, check_data_dir

PROBLEM = "urn:ietf:params:jmap:error:"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ALICE = basic("alice", "alice-pw")
BOB = basic("bob", "bob-pw")


def lmdb_core(path: Path, limits: Limits | None = None) -> Core:
    settings = Settings(data=path)
    if limits is not None:
        settings.limits = {
            "maxSizeUpload": limits.maxSizeUpload,
            "maxSizeRequest": limits.maxSizeRequest,
        }
    check_data_dir(settings, create=True)
    return build_core(settings)


class Server:
    """The app under test plus the facts the tests need about its accounts."""

    def __init__(self, core: Core, **app_options: Any) -> None:
        self.core = core
        self.client = falcon.testing.TestClient(create_app(core, **app_options))
        self.accounts: dict[str, AccountInfo] = {}

    def add(self, name: str, password: str) -> str:
        self.accounts[name] = add_account(self.core, name, password)
        return self.accounts[name].account_id


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    core = lmdb_core(tmp_path_factory.mktemp("http") / "data")
    srv = Server(core)
    srv.add("alice", "alice-pw")
    srv.add("bob", "bob-pw")
    yield srv
    core.close()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with tiny size limits, for the limit problems."""
    core = lmdb_core(
        tmp_path_factory.mktemp("small") / "data", Limits(maxSizeUpload=1000, maxSizeRequest=2000)
    )
    srv = Server(core)
    srv.add("alice", "alice-pw")
    yield srv
    core.close()


def alice_id(server: Server) -> str:
    return server.accounts["alice"].account_id


def api_body(*calls: list[Any]) -> bytes:
    return json.dumps({"using": [CORE], "methodCalls": list(calls)}).encode()


def upload(
    server: Server, data: bytes, headers: dict[str, str] = ALICE, account: str | None = None
) -> Any:
    return server.client.simulate_post(
        f"/jmap/upload/{account or alice_id(server)}/",
        body=data,
        headers={**headers, "Content-Type": "text/plain; charset=utf-8"},
    )


# -- the session resource ----------------------------------------------------


@pytest.mark.parametrize("path", ["/.well-known/jmap", "/jmap/session"])
def test_session_is_complete_and_uncached(server: Server, path: str) -> None:
    """[core-2-sessionGet] [core-2.2-wellKnown] [core-2-noCache] [core-2-apiUrl]
    [core-2-uploadUrl] [core-2-downloadUrl] [core-2-eventSourceUrl] [core-2-coreCapLimits]"""
    result = server.client.simulate_get(path, headers=ALICE)
    assert result.status_code == 200
    assert result.headers["Content-Type"].startswith("application/json")
    assert result.headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    session = result.json
    base = "http://falconframework.org"
    assert session["apiUrl"] == f"{base}/jmap/api/"
    assert session["uploadUrl"] == f"{base}/jmap/upload/{{accountId}}/"
    assert (
        session["downloadUrl"]
        == f"{base}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?type={{type}}"
    )
    for variable in ("{types}", "{closeafter}", "{ping}"):
        assert variable in session["eventSourceUrl"]
    assert session["eventSourceUrl"].startswith(f"{base}/jmap/eventsource/?")
    assert session["username"] == "alice"
    assert list(session["accounts"]) == [alice_id(server)]
    account = session["accounts"][alice_id(server)]
    assert account["name"] == "alice" and account["isPersonal"] and not account["isReadOnly"]
    assert CORE in session["capabilities"]
    limits = session["capabilities"][CORE]
    for name in (
        "maxSizeUpload",
        "maxConcurrentUpload",
        "maxSizeRequest",
        "maxConcurrentRequests",
        "maxCallsInRequest",
        "maxObjectsInGet",
        "maxObjectsInSet",
        "collationAlgorithms",
    ):
        assert name in limits
    assert isinstance(session["state"], str) and session["state"]


def test_session_ignores_forwarded_headers_unless_trusted(server: Server) -> None:
    """[core-2.2-wellKnown] (§8.3) the session's URLs must not be steerable by a
    client unless the operator trusts a proxy."""
    forwarded = {**ALICE, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    plain = server.client.simulate_get("/.well-known/jmap", headers=forwarded).json
    assert plain["apiUrl"] == "http://falconframework.org/jmap/api/"

    trusting = falcon.testing.TestClient(create_app(server.core, trust_forwarded=True))
    proxied = trusting.simulate_get(
        "/.well-known/jmap", headers={**forwarded, "X-Forwarded-Host": "mail.example"}
    )
    assert proxied.json["apiUrl"] == "https://mail.example/jmap/api/"

    fixed = falcon.testing.TestClient(create_app(server.core, base_url="https://jmap.example.org/"))
    assert fixed.simulate_get("/jmap/session", headers=forwarded).json["apiUrl"] == (
        "https://jmap.example.org/jmap/api/"
    )


# -- authentication ------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/.well-known/jmap"),
    ("GET", "/jmap/session"),
    ("POST", "/jmap/api/"),
    ("POST", "/jmap/upload/anything/"),
    ("GET", "/jmap/download/anything/blob/name.txt?type=text/plain"),
    ("GET", "/jmap/eventsource/?types=*&closeafter=no&ping=0"),
]
BAD_CREDENTIALS = [
    {},
    basic("alice", "wrong"),
    basic("nobody", "alice-pw"),
    {"Authorization": "Basic !!!not-base64"},
    {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
    {"Authorization": "Bearer jmc_not-a-real-token"},
    {"Authorization": "Bearer"},
    {"Authorization": "Digest username=alice"},
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("headers", BAD_CREDENTIALS, ids=range(len(BAD_CREDENTIALS)))
def test_every_endpoint_requires_credentials(
    server: Server, method: str, path: str, headers: dict[str, str]
) -> None:
    """[core-8.2-authScheme] [core-1.7-https] 401 + both challenges, as problem JSON."""
    result = server.client.simulate_request(
        method, path, headers=headers, body=b"{}" if method == "POST" else None
    )
    assert result.status_code == 401
    challenge = result.headers["WWW-Authenticate"]
    assert 'Basic realm="jmapcore", charset="UTF-8"' in challenge
    assert 'Bearer realm="jmapcore"' in challenge
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.json["status"] == 401
    assert result.headers["Access-Control-Allow-Origin"] == "*"


def test_bearer_token_and_utf8_password(server: Server) -> None:
    """[core-8.2-authScheme] Bearer tokens from `token create`; Basic is UTF-8."""
    token = create_token(server.core, "bob")
    result = server.client.simulate_get(
        "/.well-known/jmap", headers={"Authorization": f"bearer {token}"}
    )
    assert result.status_code == 200
    assert result.json["username"] == "bob"

    server.add("zoe", "pässwörd")
    result = server.client.simulate_get("/.well-known/jmap", headers=basic("zoe", "pässwörd"))
    assert result.status_code == 200 and result.json["username"] == "zoe"
    # The second request is answered from the authenticator's cache.
    assert server.core.authenticator.peek_password("zoe", "pässwörd") is not None
    assert (
        server.client.simulate_get("/jmap/session", headers=basic("zoe", "pässwörd")).status_code
        == 200
    )


# -- CORS ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/.well-known/jmap", "/jmap/api/", "/jmap/upload/a1/", "/jmap/download/a/b/c"]
)
def test_cors_preflight_needs_no_credentials(server: Server, path: str) -> None:
    """Browser clients: the preflight is answered without Authorization."""
    result = server.client.simulate_options(
        path,
        headers={
            "Origin": "https://webmail.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert result.status_code in (200, 204)
    assert result.headers["Access-Control-Allow-Origin"] in ("*", "https://webmail.example")
    methods = {m.strip() for m in result.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "OPTIONS"} <= methods
    allowed = {h.strip().lower() for h in result.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "accept", "last-event-id"} <= allowed
    assert int(result.headers["Access-Control-Max-Age"]) > 0


def test_cors_origin_on_ordinary_responses(server: Server) -> None:
    result = server.client.simulate_get(
        "/.well-known/jmap", headers={**ALICE, "Origin": "https://x.example"}
    )
    assert result.status_code == 200
    assert result.headers["Access-Control-Allow-Origin"] == "*"
    assert server.client.simulate_get("/nope").headers["Access-Control-Allow-Origin"] == "*"


# -- the API endpoint --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/jmap/api/", "/jmap/api"])
def test_api_echo(server: Server, path: str) -> None:
    """[core-3.1-post] [core-4-echo] the front passes the body to the core and back."""
    if "Core/echo" not in server.core.registry.methods:
        pytest.skip(
            "Core/echo (plugins/jmap_basics) is not registered: the package is not installed"
        )
    body = api_body(["Core/echo", {"hello": True, "n": [1, 2]}, "c1"])
    result = server.client.simulate_post(
        path, body=body, headers={**ALICE, "Content-Type": "application/json"}
    )
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "application/json"
    assert result.json["methodResponses"] == [["Core/echo", {"hello": True, "n": [1, 2]}, "c1"]]


def test_api_passes_unknown_methods_to_the_core(server: Server) -> None:
    """[core-3.1-post] an API round trip that needs no plugin: unknownMethod comes back in a 200."""
    body = api_body(["Nope/nothing", {}, "c1"])
    result = server.client.simulate_post(
        "/jmap/api/", body=body, headers={**ALICE, "Content-Type": "application/json"}
    )
    assert result.status_code == 200
    [[name, arguments, call_id]] = result.json["methodResponses"]
    assert (name, arguments["type"], call_id) == ("error", "unknownMethod", "c1")


def test_api_wrong_content_type_is_not_json(server: Server) -> None:
    """[core-3.6.1-notJSON] [core-3.6.1-problemJson]"""
    result = server.client.simulate_post(
        "/jmap/api/", body=api_body(), headers={**ALICE, "Content-Type": "text/plain"}
    )
    assert result.status_code == 400
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.json["type"] == PROBLEM + "notJSON"


def test_api_oversized_request_is_a_limit_problem(small: Server) -> None:
    """[core-3.6.1-limit] [core-8.5-limits] refused from Content-Length, before reading."""
    body = b'{"using": [], "methodCalls": [], "pad": "' + b"x" * 3000 + b'"}'
    result = small.client.simulate_post(
        "/jmap/api/", body=body, headers={**ALICE, "Content-Type": "application/json"}
    )
    assert result.status_code == 400
    assert result.json["type"] == PROBLEM + "limit"
    assert result.json["limit"] == "maxSizeRequest"


def test_api_chunked_body_is_read_only_up_to_the_cap(small: Server) -> None:
    """[core-8.5-limits] without Content-Length the front stops reading at cap + 1 octets."""
    app = create_app(small.core)
    scope = falcon.testing.create_scope(
        "/jmap/api/", method="POST", headers={**ALICE, "Content-Type": "application/json"}
    )
    chunks_read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal chunks_read
        chunks_read += 1
        return {"type": "http.request", "body": b"x" * 500, "more_body": chunks_read < 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 400
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert json.loads(body)["limit"] == "maxSizeRequest"
    assert chunks_read <= 2000 // 500 + 2  # never the whole 500 kB


# -- gzip --------------------------------------------------------------------------


def test_gzip_for_large_json_when_accepted(server: Server) -> None:
    """Large JSON bodies are gzipped for clients that accept it; Vary tells caches."""
    calls = [["Nope/nothing", {}, f"call-{i:03}-" + "x" * 40] for i in range(30)]
    headers = {**ALICE, "Content-Type": "application/json"}
    plain = server.client.simulate_post("/jmap/api/", body=api_body(*calls), headers=headers)
    assert len(plain.content) > 1024
    assert "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers["Vary"]

    zipped = server.client.simulate_post(
        "/jmap/api/",
        body=api_body(*calls),
        headers={**headers, "Accept-Encoding": "br, gzip;q=0.8"},
    )
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert len(zipped.content) < len(plain.content)
    assert json.loads(gzip.decompress(zipped.content)) == plain.json

    refused = server.client.simulate_post(
        "/jmap/api/", body=api_body(*calls), headers={**headers, "Accept-Encoding": "gzip;q=0"}
    )
    assert "Content-Encoding" not in refused.headers


def test_small_bodies_are_not_gzipped(server: Server) -> None:
    result = server.client.simulate_get("/nope", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in result.headers


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("deflate, gzip;q=1.0", True),
        ("GZIP", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("br", False),
        (None, False),
        ("x-gzip", True),
    ],
)
def test_accepts_gzip(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


# -- upload and download ------------------------------------------------------------


def test_upload_download_round_trip(server: Server) -> None:
    """[core-6.1-upload] [core-6.2-download] Content-Type from `type`, the name in
    Content-Disposition (RFC 6266/8187), the recommended Cache-Control."""
    data = b"0123456789 hello, blob"
    result = upload(server, data)
    assert result.status_code == 201
    uploaded = result.json
    assert uploaded["accountId"] == alice_id(server)
    assert uploaded["size"] == len(data)
    assert uploaded["type"] == "text/plain; charset=utf-8"
    blob_id = uploaded["blobId"]

    path = f"/jmap/download/{alice_id(server)}/{blob_id}/r%C3%A9sum%C3%A9%201.txt"
    result = server.client.simulate_get(path, params={"type": "text/plain"}, headers=ALICE)
    assert result.status_code == 200
    assert result.content == data
    assert result.headers["Content-Type"] == "text/plain"
    assert result.headers["Cache-Control"] == "private, immutable, max-age=31536000"
    assert result.headers["Content-Disposition"] == (
        "attachment; filename=\"r_sum_ 1.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%201.txt"
    )
    assert result.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Encoding" not in result.headers

    # A name holding an encoded "/" stays one name.
    result = server.client.simulate_get(
        f"/jmap/download/{alice_id(server)}/{blob_id}/a%2Fb.txt",
        headers={**ALICE, "Accept-Encoding": "gzip"},
    )
    assert result.status_code == 200 and result.content == data
    assert "filename*=UTF-8''a%2Fb.txt" in result.headers["Content-Disposition"]
    assert result.headers["Content-Type"] == "application/octet-stream"  # no type given


def test_download_ranges(server: Server) -> None:
    """[core-6.2-download] one HTTP Range: 206 + Content-Range; 416 when unsatisfiable."""
    data = bytes(range(100))
    blob_id = upload(server, data).json["blobId"]
    path = f"/jmap/download/{alice_id(server)}/{blob_id}/bytes.bin"

    def get(range_header: str) -> Any:
        return server.client.simulate_get(
            path,
            params={"type": "application/octet-stream"},
            headers={**ALICE, "Range": range_header, "Accept-Encoding": "gzip"},
        )

    result = get("bytes=10-19")
    assert result.status_code == 206
    assert result.content == data[10:20]
    assert result.headers["Content-Range"] == "bytes 10-19/100"
    assert "Content-Encoding" not in result.headers
    assert get("bytes=90-").content == data[90:]
    assert get("bytes=95-500").headers["Content-Range"] == "bytes 95-99/100"
    suffix = get("bytes=-5")
    assert (suffix.status_code, suffix.content) == (206, data[-5:])
    assert suffix.headers["Content-Range"] == "bytes 95-99/100"

    unsatisfiable = get("bytes=100-")
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["Content-Range"] == "bytes */100"
    # Several ranges or nonsense: the server may ignore Range and send it all.
    for ignored in ("bytes=0-1,5-6", "items=0-3", "bytes=9-2"):
        whole = get(ignored)
        assert (whole.status_code, whole.content) == (200, data)


def test_download_unsafe_type_is_neutralised(server: Server) -> None:
    blob_id = upload(server, b"<script>alert(1)</script>").json["blobId"]
    path = f"/jmap/download/{alice_id(server)}/{blob_id}/x.html"
    result = server.client.simulate_get(
        path, query_string="type=text/html%0D%0AX-Evil:%201", headers=ALICE
    )
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "application/octet-stream"
    assert "X-Evil" not in result.headers


def test_blobs_are_private(server: Server) -> None:
    """[core-6.1-uploaderOnly] [core-6.2-download] another user's blob is a 404,
    and so is an upload into another user's account."""
    blob_id = upload(server, b"alice's secret").json["blobId"]
    bob_account = server.accounts["bob"].account_id
    for account in (alice_id(server), bob_account):
        result = server.client.simulate_get(
            f"/jmap/download/{account}/{blob_id}/s.txt", headers=BOB
        )
        assert result.status_code == 404
        assert result.headers["Content-Type"] == "application/problem+json"
        assert result.json["status"] == 404

    result = upload(server, b"into alice", headers=BOB)
    assert result.status_code == 404
    assert result.json["type"] == PROBLEM + "notFound"
    missing = server.client.simulate_get(
        f"/jmap/download/{alice_id(server)}/Bnope/x", headers=ALICE
    )
    assert missing.status_code == 404


def test_oversized_upload_is_413_limit(small: Server) -> None:
    """[core-6.1-upload] decision: 413 + limit maxSizeUpload."""
    result = upload(small, b"x" * 1001)
    assert result.status_code == 413
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.json["type"] == PROBLEM + "limit"
    assert result.json["limit"] == "maxSizeUpload"
    assert upload(small, b"x" * 1000).status_code == 201


# -- errors -----------------------------------------------------------------------------


def test_unknown_path_and_wrong_verb_are_problem_json(server: Server) -> None:
    """[core-3.6.1-statusNote] 404 unknown endpoint, 405 wrong verb, both problem JSON."""
    missing = server.client.simulate_get("/no/such/thing", headers=ALICE)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    assert missing.json["status"] == 404
    assert server.client.simulate_get("/jmap/downloadx", headers=ALICE).status_code == 404

    wrong = server.client.simulate_get("/jmap/api/", headers=ALICE)
    assert wrong.status_code == 405
    assert "POST" in wrong.headers["Allow"]
    assert wrong.json["status"] == 405
    assert server.client.simulate_delete("/jmap/download/a/b/c", headers=ALICE).status_code == 405


def test_event_source_needs_credentials_and_sane_parameters(server: Server) -> None:
    """[core-7.3-sse] no credentials: 401; an unusable parameter: a 400
    problem rather than a stream (the stream itself: test_push_eventsource)."""
    anonymous = server.client.simulate_get("/jmap/eventsource/", params={"types": "*"})
    assert anonymous.status_code == 401
    bad = server.client.simulate_get("/jmap/eventsource/", params={"ping": "x"}, headers=ALICE)
    assert bad.status_code == 400
    assert bad.headers["Content-Type"] == "application/problem+json"


def test_unexpected_errors_are_a_bare_500(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never a traceback on the wire: a logged serverFail problem."""

    def explode(*args: Any) -> Any:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(server.core, "api", explode)
    result = server.client.simulate_post(
        "/jmap/api/", body=api_body(), headers={**ALICE, "Content-Type": "application/json"}
    )
    assert result.status_code == 500
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.json["type"] == PROBLEM + "serverFail"
    assert "secret" not in result.text and "Traceback" not in result.text
    assert result.headers["Access-Control-Allow-Origin"] == "*"


# -- header helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/plain", "text/plain"),
        ("image/png", "image/png"),
        ('text/plain; charset="utf-8"', 'text/plain; charset="utf-8"'),
        ("", "application/octet-stream"),
        (None, "application/octet-stream"),
        ("text", "application/octet-stream"),
        ("text/plain\r\nSet-Cookie: x=1", "application/octet-stream"),
        ("a/b/c", "application/octet-stream"),
    ],
)
def test_sanitize_type(value: str | None, expected: str) -> None:
    assert sanitize_type(value) == expected


def test_content_disposition_quoting() -> None:
    assert content_disposition('a "quoted"\\name.txt') == (
        "attachment; filename=\"a _quoted__name.txt\"; filename*=UTF-8''a%20%22quoted%22%5Cname.txt"
    )
    assert (
        content_disposition("\r\n")
        == "attachment; filename=\"download\"; filename*=UTF-8''download"
    )


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, (0, 1)),
        ("bytes=5-", 10, (5, 5)),
        ("bytes=-3", 10, (7, 3)),
        ("bytes=-30", 10, (0, 10)),
        ("bytes=10-", 10, None),
        ("bytes=-0", 10, None),
        ("bytes=0-", 0, None),
    ],
)
def test_range_resolution(header: str, size: int, expected: tuple[int, int] | None) -> None:
    wanted = parse_range(header)
    assert wanted is not None
    assert resolve_range(wanted, size) == expected
