"""Push latency and idle-connection cost: ``jmapcore serve --workers 2``.

One run, on 127.0.0.1:

* **latency**: alice commits a change through the API (a Mailbox update) and
  two EventSource listeners of hers, one held by each worker, time the
  ``state`` event; measured from just before the API request is sent to the
  event's arrival, so it includes the request itself.  The commits are
  spaced by 0.4 s (above the per-listener event spacing, so that every
  commit is its own event).  Measured with 100 idle EventSource connections
  (another user, whose account does not change) open, then with 1,000.
* **idle connections**: each worker's resident memory before and after the
  idle connections open, and what one costs.

Run: python benchmarks/bench_push.py [--commits 200] [--idle 100,1000]
"""

from __future__ import annotations

import argparse
import base64
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import ROOT, machine, table

sys.path.insert(0, str(ROOT))
from tests.support import (  # noqa: E402
    EventStream,
    Running,
    jmapcore,
    serving_worker,
    start,
    stop,
    worker_pids,
)

USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
SPACING = 0.4


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def open_idle(server: Running, authorization: str, count: int) -> list[socket.socket]:
    """``count`` EventSource connections nobody reads (their account stays
    still, so the server sends them nothing but a first line)."""
    sockets = []
    request = (
        "GET /jmap/eventsource/?types=*&closeafter=no&ping=0 HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\nAuthorization: {authorization}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(request)
        sockets.append(sock)
    for sock in sockets:  # every one answered: the server holds it
        assert sock.recv(4096).startswith(b"HTTP/1.1 200"), "an idle connection was refused"
    return sockets


def listeners_on_both_workers(server: Running, authorization: str) -> list[EventStream]:
    streams: dict[int, EventStream] = {}
    spare: list[EventStream] = []
    for _ in range(40):
        stream = EventStream(server, authorization, "types=Mailbox&closeafter=no&ping=0")
        pid = serving_worker(server, stream.client_port)
        if pid in streams:
            spare.append(stream)
        else:
            streams[pid] = stream
        if len(streams) == 2:
            break
    for stream in spare:
        stream.close()
    if len(streams) != 2:
        raise RuntimeError("could not get a listener on each worker")
    return list(streams.values())


def measure_latency(server: Running, listeners: list[EventStream], mailbox: str, commits: int) -> list[float]:
    """Milliseconds from sending each commit to each listener's event."""
    samples: list[float] = []
    with httpx.Client(base_url=server.url, auth=("alice", "alice-pw"), timeout=10) as client:
        for index in range(commits):
            body = {
                "using": USING,
                "methodCalls": [
                    ["Mailbox/set", {"accountId": server.account_id, "update": {mailbox: {"sortOrder": index}}}, "0"]
                ],
            }
            sent = time.monotonic()
            answer = client.post("/jmap/api/", json=body)
            answer.raise_for_status()
            for listener in listeners:
                event = listener.next(wait=10)
                samples.append((float(event["received"]) - sent) * 1000)
            time.sleep(max(0.0, SPACING - (time.monotonic() - sent)))
    return samples


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--idle", default="100,1000", help="idle connection counts, comma-separated")
    options = parser.parse_args()
    idle_steps = [int(n) for n in options.idle.split(",")]

    with tempfile.TemporaryDirectory(prefix="bench-push-") as scratch:
        work = Path(scratch)
        data = work / "data"
        alice = jmapcore("account", "add", "alice", "--password", "alice-pw", "--data", str(data))
        bob = jmapcore("account", "add", "bob", "--password", "bob-pw", "--data", str(data))
        assert alice.returncode == 0 and bob.returncode == 0, alice.stderr + bob.stderr
        # A bearer token for the idle connections: a password would run
        # scrypt (16 MiB each) for every connection opened before the
        # credentials cache is warm, and that is not what an idle one costs.
        made = jmapcore("token", "create", "bob", "--data", str(data))
        assert made.returncode == 0, made.stderr
        bob_token = "Bearer " + made.stdout.strip().split()[-1]
        server = start("serve", data, work / "server.log", extra=["--workers", "2"])
        server.account_id = alice.stdout.strip()
        rows: list[list[object]] = []
        idle: list[socket.socket] = []
        try:
            with httpx.Client(base_url=server.url, auth=("alice", "alice-pw"), timeout=10) as client:
                created = client.post("/jmap/api/", json={"using": USING, "methodCalls": [
                    ["Mailbox/set", {"accountId": server.account_id, "create": {"b": {"name": "Bench"}}}, "0"]]})
                mailbox = created.json()["methodResponses"][0][1]["created"]["b"]["id"]
            workers = sorted(worker_pids(server.process.pid))
            listeners = listeners_on_both_workers(server, basic("alice", "alice-pw"))
            measure_latency(server, listeners, mailbox, 5)  # warm up
            baseline = {pid: rss_kib(pid) for pid in workers}
            rows.append(["worker RSS, no idle connections", "", "", " / ".join(f"{baseline[p] / 1024:.1f}" for p in workers), ""])
            for count in idle_steps:
                idle += open_idle(server, bob_token, count - len(idle))
                time.sleep(1.0)
                samples = measure_latency(server, listeners, mailbox, options.commits)
                memory = {pid: rss_kib(pid) for pid in workers}
                grown = sum(memory.values()) - sum(baseline.values())
                rows.append([
                    f"{count:,} idle EventSource connections",
                    f"{statistics.median(samples):.1f}",
                    f"{percentile(samples, 0.99):.1f}",
                    " / ".join(f"{memory[p] / 1024:.1f}" for p in workers),
                    f"{grown / count:.1f}",
                ])
            for listener in listeners:
                listener.close()
        finally:
            for sock in idle:
                sock.close()
            stop(server.process)

    print(f"Push over EventSource, jmapcore serve --workers 2 on LMDB, 127.0.0.1, {machine()}")
    print(f"{options.commits} commits per row, 2 listeners (one per worker), latency from sending the commit to the event\n")
    print(table(
        ["", "latency p50 (ms)", "latency p99 (ms)", "RSS per worker (MiB)", "RSS per idle connection (KiB)"],
        rows,
    ))


if __name__ == "__main__":
    main()
