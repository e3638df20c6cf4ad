"""Running the real ``jmapcore`` CLI and server from tests (127.0.0.1 only)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
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
