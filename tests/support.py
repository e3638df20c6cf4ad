"""Running the real ``jmapcore`` CLI and server from tests (127.0.0.1 only)."""

from __future__ import annotations

import http.client
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 20.0


def cli_env() -> dict[str, str]:
    """Run from the source tree whether or not the package is installed;
    examples/ is on the path so ``--plugin notes_plugin:plugin`` works."""
    paths = [str(REPO), str(REPO / "backends"), str(REPO / "plugins"), str(REPO / "examples")]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def jmapcore(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jmapserver.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key for 127.0.0.1 and localhost
    (skips the test when the ``openssl`` command is missing)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    made = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return cert, key


@dataclass
class Running:
    url: str
    port: int
    data: Path
    process: subprocess.Popen[bytes]
    log: Path
    account_id: str = ""


def start(
    command: str,
    data: Path,
    log: Path,
    *,
    extra: Sequence[str] = (),
    auth: tuple[str, str] = ("alice", "alice-pw"),
    port: int | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Running:
    """Start ``jmapcore COMMAND`` and wait (bounded) until it answers.

    ``tls`` is (certificate, key): serve HTTPS, trusting that certificate.
    """
    port = port or free_port()
    tls_flags = ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=tls[0]) if tls else True
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "jmapserver.cli", command, "--data", str(data),
             "--listen", f"127.0.0.1:{port}", *tls_flags, *extra],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=cli_env(),
            start_new_session=True,
        )
    scheme = "https" if tls else "http"
    running = Running(f"{scheme}://127.0.0.1:{port}", port, data, process, log)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if process.poll() is not None:
            raise AssertionError(f"jmapcore {command} exited with {process.returncode}:\n{log.read_text()}")
        try:
            answer = httpx.get(f"{running.url}/.well-known/jmap", auth=auth, timeout=2, verify=verify)
            if answer.status_code == 200:
                return running
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop(process)
            raise AssertionError(f"jmapcore {command} did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")
        time.sleep(0.2)


@contextmanager
def serving_alice(
    root: Path, *, extra: Sequence[str] = (), account_extra: Sequence[str] = ()
) -> Iterator[Running]:
    """An account alice (password alice-pw) and ``jmapcore serve --workers 2``
    on it, stopped on exit; ``account_id`` is set."""
    data = root / "data"
    added = jmapcore("account", "add", "alice", "--password", "alice-pw", "--data", str(data), *account_extra)
    assert added.returncode == 0, added.stderr
    running = start("serve", data, root / "server.log", extra=["--workers", "2", *extra])
    running.account_id = added.stdout.strip()
    try:
        yield running
    finally:
        stop(running.process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (gunicorn's graceful stop), then SIGKILL if it will not go."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the whole group: master and workers
        process.wait(timeout=10)


def worker_pids(master: int) -> list[int]:
    """The gunicorn workers: children of the master process."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                children.append(int(entry.name))
    return children


#: Generous: a loaded CI machine must not fail on it; push latency is
#: measured in benchmarks/bench_push.py, not asserted in tests.
EVENT_WAIT = 10.0


class EventStream:
    """One EventSource connection, read by a thread into a queue of events
    (each with ``received``: the monotonic time it arrived)."""

    def __init__(self, server: Running, authorization: str, query: str = "types=*&closeafter=no&ping=0",
                 headers: dict[str, str] | None = None) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        self.connection.request(
            "GET", f"/jmap/eventsource/?{query}",
            headers={"Authorization": authorization, "Accept": "text/event-stream"} if headers is None else headers,
        )
        self.response = self.connection.getresponse()
        self.events: queue.Queue[dict[str, str] | None] = queue.Queue()
        self.client_port = self.connection.sock.getsockname()[1]
        if self.response.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event: dict[str, str] = {}
        try:
            while True:
                line = self.response.readline()
                if not line:
                    break
                text = line.decode().rstrip("\r\n")
                if text == "":
                    if event:
                        event["received"] = repr(time.monotonic())
                        self.events.put(event)
                    event = {}
                elif not text.startswith(":"):
                    name, _, value = text.partition(":")
                    event[name] = value.removeprefix(" ")
        except (OSError, http.client.HTTPException, ValueError, AttributeError):  # closed under us
            pass
        self.events.put(None)  # the stream ended

    def next(self, kind: str = "state", wait: float = EVENT_WAIT) -> dict[str, str] | None:
        """The next event of ``kind`` (others are skipped); None if the
        stream ended; fails after ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {kind} event within {wait} s"
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event is None or event.get("event") == kind:
                return event

    def quiet(self, seconds: float) -> bool:
        """True when no state event arrives for ``seconds``."""
        try:
            event = self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        return event is not None and event.get("event") != "state"

    def close(self) -> None:
        # Shut the socket first: it wakes the reader thread blocked in recv
        # (a plain close would wait for its timeout).
        try:
            self.connection.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.connection.close()


def serving_worker(server: Running, client_port: int) -> int:
    """The pid of the worker holding the server side of a connection."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        if local_port == server.port and remote_port == client_port:
            inode = fields[9]
    assert inode is not None, "connection not found in /proc/net/tcp"
    for pid in worker_pids(server.process.pid):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError("no worker holds that connection")
