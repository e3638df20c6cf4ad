"""The real thing: ``jmapcore serve`` as a subprocess (gunicorn, two uvicorn
workers) on 127.0.0.1, spoken to over a socket with httpx."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jmapcore.wire import CORE
from tests.support import Running, cli_env, free_port, jmapcore, serving_alice, stop

pytestmark = pytest.mark.server

STARTUP_SECONDS = 20.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with serving_alice(tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture
def client(server: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, auth=("alice", "alice-pw"), timeout=10) as http:
        yield http


def test_session_over_the_wire(server: Running, client: httpx.Client) -> None:
    """[core-2-sessionGet] [core-2-noCache] the URLs point back at the listening address."""
    response = client.get("/.well-known/jmap")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache, no-store, must-revalidate"
    session = response.json()
    assert session["apiUrl"] == f"{server.url}/jmap/api/"
    assert session["uploadUrl"] == f"{server.url}/jmap/upload/{{accountId}}/"
    assert list(session["accounts"]) == [server.account_id]
    assert f"http://127.0.0.1:{server.port}" in server.log.read_text()  # the startup line
    unauthenticated = httpx.get(f"{server.url}/.well-known/jmap", timeout=10)
    assert unauthenticated.status_code == 401
    assert "Basic" in unauthenticated.headers["www-authenticate"]


def test_api_call_over_the_wire(client: httpx.Client) -> None:
    """[core-3.1-post] keep-alive requests, served by whichever worker accepts them."""
    body = {"using": [CORE], "methodCalls": [["Core/echo", {"n": 1}, "c1"]]}
    for _ in range(20):
        response = client.post("/jmap/api/", json=body)
        assert response.status_code == 200
        [[name, arguments, call_id]] = response.json()["methodResponses"]
        assert call_id == "c1"
        assert (name, arguments) == ("Core/echo", {"n": 1}) or arguments["type"] == "unknownMethod"


def test_upload_download_over_the_wire(server: Running, client: httpx.Client) -> None:
    """[core-6.1-upload] [core-6.2-download] including a Range and a UTF-8 name."""
    data = os.urandom(4096)
    uploaded = client.post(
        f"/jmap/upload/{server.account_id}/", content=data, headers={"Content-Type": "image/png"}
    )
    assert uploaded.status_code == 201, uploaded.text
    blob = uploaded.json()
    assert (blob["size"], blob["type"]) == (4096, "image/png")
    path = f"/jmap/download/{server.account_id}/{blob['blobId']}/%C3%BCber.png"
    whole = client.get(path, params={"type": "image/png"})
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["content-type"] == "image/png"
    assert "filename*=UTF-8''%C3%BCber.png" in whole.headers["content-disposition"]
    part = client.get(path, params={"type": "image/png"}, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert part.headers["content-range"] == "bytes 100-199/4096"


def test_gzip_over_the_wire(client: httpx.Client) -> None:
    calls = [["Nope/x", {}, f"c{i}-" + "y" * 60] for i in range(30)]
    response = client.post(
        "/jmap/api/",
        json={"using": [CORE], "methodCalls": calls},
        headers={"Accept-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert len(response.json()["methodResponses"]) == 30  # httpx decompressed it


def test_second_server_on_the_same_port_exits_with_a_message(server: Running) -> None:
    done = jmapcore(
        "serve", "--data", str(server.data), "--listen", f"127.0.0.1:{server.port}", timeout=30
    )
    assert done.returncode != 0
    assert f"port {server.port} on 127.0.0.1 is already in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert server.process.poll() is None  # the first one is unharmed


def test_demo_serves_the_demo_account(tmp_path: Path) -> None:
    """`jmapcore demo` creates demo/demo, says where it is, and serves."""
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jmapserver.cli",
                "demo",
                "--data",
                str(tmp_path / "demo-data"),
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=cli_env(),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        status = None
        while status != 200 and time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(
                    f"http://127.0.0.1:{port}/jmap/session", auth=("demo", "demo"), timeout=2
                ).status_code
            except httpx.TransportError:
                time.sleep(0.2)
        assert status == 200, log.read_text()
        output = log.read_text()
        assert f"http://127.0.0.1:{port}/.well-known/jmap" in output
        assert "username: demo  password: demo" in output
    finally:
        stop(process)
