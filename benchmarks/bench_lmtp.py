"""LMTP delivery rate into one account, LMDB against Maildir (issue 6).

For each backend a fresh data directory gets one account (with an address),
a real ``jmapcore lmtp`` process is started on 127.0.0.1, and N generated
messages (``jmap_mail.samples``, seed 1: threads, attachments, non-ASCII)
are delivered to it with the standard library's LMTP client: first over one
connection (one MAIL/RCPT/DATA after the other, what one MTA delivery agent
does), then over ``--connections`` connections at once (an MTA runs several
delivery agents).  Each delivery is a commit (the Email with its thread,
counts, search document, EmailDelivery state; on Maildir the file too).

Prints one table: workload | lmdb | maildir | ratio maildir/lmdb, in
messages per second (higher is better).
Run: python benchmarks/bench_lmtp.py [--messages 2000] [--connections 4]
"""

from __future__ import annotations

import argparse
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for sub in ("", "backends", "plugins"):
    sys.path.insert(0, str(ROOT / sub))

from jmap_mail.samples import generate  # noqa: E402

BACKENDS = ("lmdb", "maildir")
ADDRESS = "bench@example.com"


def env() -> dict[str, str]:
    paths = [str(ROOT), str(ROOT / "backends"), str(ROOT / "plugins")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")])}


def cli(*argv: str) -> str:
    done = subprocess.run([sys.executable, "-m", "jmapserver.cli", *argv], capture_output=True, text=True,
                          env=env(), timeout=120)
    if done.returncode:
        raise SystemExit(f"jmapcore {' '.join(argv)}: {done.stderr}")
    return done.stdout


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_lmtp(data: Path, backend: str) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jmapserver.cli", "lmtp", "--data", str(data), "--backend", backend,
         "--listen", f"127.0.0.1:{port}", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(),
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with smtplib.LMTP("127.0.0.1", port, timeout=5) as probe:
                probe.ehlo("bench")
            return port, process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("jmapcore lmtp did not start") from None
            time.sleep(0.2)


def deliver(port: int, messages: list[bytes]) -> None:
    with smtplib.LMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo("bench.mta")
        for raw in messages:
            client.mail("sender@example.net")
            code, reply = client.rcpt(ADDRESS)
            assert code == 250, reply
            code, reply = client.data(raw)
            assert code == 250, reply


def timed(port: int, messages: list[bytes], connections: int) -> float:
    """Messages per second over ``connections`` parallel connections."""
    shares = [messages[i::connections] for i in range(connections)]
    threads = [threading.Thread(target=deliver, args=(port, share)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(messages) / (time.perf_counter() - started)


def run(backend: str, messages: list[bytes], connections: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-lmtp-{backend}-") as tmp:
        data = Path(tmp) / "data"
        cli("account", "add", "bench", "--password", "pw", "--address", ADDRESS, "--data", str(data),
            "--backend", backend)
        port, process = start_lmtp(data, backend)
        try:
            half = len(messages) // 2
            figures = {
                "1 connection": timed(port, messages[:half], 1),
                f"{connections} connections": timed(port, messages[half:], connections),
            }
        finally:
            process.terminate()
            process.wait(timeout=30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    options = parser.parse_args()
    messages = [raw for raw, _ in generate(options.messages, seed=1)]
    size = sum(map(len, messages)) / len(messages)
    print(f"{len(messages)} messages (mean {size / 1024:.1f} KiB), half over 1 connection, "
          f"half over {options.connections}; {os.cpu_count()} CPUs", flush=True)
    results = {backend: run(backend, messages, options.connections) for backend in BACKENDS}
    print(f"\n{'workload (messages/s)':<26}{'lmdb':>10}{'maildir':>10}{'ratio maildir/lmdb':>20}")
    for workload in results["lmdb"]:
        lmdb, maildir = results["lmdb"][workload], results["maildir"][workload]
        print(f"{workload:<26}{lmdb:>10.1f}{maildir:>10.1f}{maildir / lmdb:>20.2f}")


if __name__ == "__main__":
    main()
