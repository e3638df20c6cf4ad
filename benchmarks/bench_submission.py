"""Submission throughput: ``jmapcore serve --workers 2 --smtp-relay`` to a
local SMTP server (aiosmtpd on 127.0.0.1).

Each message is one API request, the way a mail client sends: Email/set
creates the draft in Drafts, EmailSubmission/set submits it with
onSuccessUpdateEmail moving it to Sent and dropping ``$draft`` (so three
method responses).  Measured, for 1 and for 4 concurrent clients:

* **accepted/s**: messages whose request returned, per second of the run;
* **p50/p99**: that request's latency;
* **relayed**: seconds from the first request until the SMTP server has
  received every message (the outbound queue's claim, SMTP and outcome
  writes, across both workers), and the messages/s that makes.

Run: python benchmarks/bench_submission.py [--messages 300] [--clients 1,4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, machine, table
from aiosmtpd.controller import Controller

sys.path.insert(0, str(ROOT))
from tests.support import free_port, jmapcore, start, stop  # noqa: E402

USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail", "urn:ietf:params:jmap:submission"]
ADDRESS = "alice@example.com"


class Sink:
    """Counts what the SMTP server accepts."""

    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
            self.last = time.perf_counter()
        return "250 2.0.0 Ok: queued"


def setup(url: str, auth: tuple[str, str]) -> tuple[str, dict[str, str], str]:
    session = httpx.get(f"{url}/.well-known/jmap", auth=auth).json()
    account = session["primaryAccounts"]["urn:ietf:params:jmap:submission"]
    answer = httpx.post(f"{url}/jmap/api/", auth=auth, json={"using": USING, "methodCalls": [
        ["Mailbox/get", {"accountId": account}, "m"], ["Identity/get", {"accountId": account}, "i"]]}).json()
    boxes = {m["role"]: m["id"] for m in answer["methodResponses"][0][1]["list"]}
    return account, boxes, answer["methodResponses"][1][1]["list"][0]["id"]


def send_request(account: str, boxes: dict[str, str], identity: str, number: int) -> dict[str, Any]:
    draft = {
        "mailboxIds": {boxes["drafts"]: True}, "keywords": {"$draft": True},
        "from": [{"email": ADDRESS}], "to": [{"email": f"rcpt{number % 10}@example.org"}],
        "bcc": [{"email": "archive@example.org"}], "subject": f"Message {number}",
        "textBody": [{"partId": "1", "type": "text/plain"}],
        "bodyValues": {"1": {"value": "A short message of a few lines.\n" * 20}},
    }
    move = {f"mailboxIds/{boxes['drafts']}": None, f"mailboxIds/{boxes['sent']}": True, "keywords/$draft": None}
    return {"using": USING, "methodCalls": [
        ["Email/set", {"accountId": account, "create": {"d": draft}}, "0"],
        ["EmailSubmission/set", {"accountId": account, "create": {"s": {"identityId": identity, "emailId": "#d"}},
                                 "onSuccessUpdateEmail": {"#s": move}}, "1"],
    ]}


def run(url: str, auth: tuple[str, str], sink: Sink, messages: int, clients: int) -> list[object]:
    account, boxes, identity = setup(url, auth)
    before = sink.count
    latencies: list[float] = []
    errors: list[str] = []
    numbers = iter(range(messages))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(auth=auth, timeout=30) as http:
            while True:
                with lock:
                    number = next(numbers, None)
                if number is None:
                    return
                body = send_request(account, boxes, identity, number)
                began = time.perf_counter()
                answer = http.post(f"{url}/jmap/api/", json=body).json()["methodResponses"]
                took = time.perf_counter() - began
                with lock:
                    latencies.append(took)
                    if len(answer) != 3 or answer[1][1].get("notCreated") or answer[2][0] != "Email/set":
                        errors.append(str(answer)[:300])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} submissions failed, e.g. {errors[0]}")
    deadline = time.monotonic() + 120
    while sink.count - before < messages and time.monotonic() < deadline:
        time.sleep(0.01)
    if sink.count - before < messages:
        raise RuntimeError(f"only {sink.count - before} of {messages} reached the SMTP server")
    relayed = sink.last - started
    ordered = sorted(latencies)
    return [
        clients,
        messages,
        f"{messages / accepted:.1f}",
        f"{statistics.median(ordered) * 1000:.1f}",
        f"{ordered[int(len(ordered) * 0.99) - 1] * 1000:.1f}",
        f"{relayed:.2f}",
        f"{messages / relayed:.1f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--clients", default="1,4")
    options = parser.parse_args()
    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    rows = []
    with tempfile.TemporaryDirectory() as root:
        data = Path(root) / "data"
        added = jmapcore("account", "add", "alice", "--password", "alice-pw", "--data", str(data),
                         "--address", ADDRESS)
        if added.returncode:
            raise SystemExit(added.stderr)
        server = start("serve", data, Path(root) / "server.log",
                       extra=["--workers", "2", "--smtp-relay", f"127.0.0.1:{smtp_port}", "--log-level", "warning"])
        try:
            for clients in (int(c) for c in options.clients.split(",")):
                rows.append(run(server.url, ("alice", "alice-pw"), sink, options.messages, clients))
        finally:
            stop(server.process)
            controller.stop()
    print(f"EmailSubmission/set with the Drafts→Sent move, to aiosmtpd on 127.0.0.1 ({machine()}, 2 workers, LMDB)")
    print(table(["clients", "messages", "accepted/s", "p50 ms", "p99 ms", "all relayed after s", "relayed/s"], rows))


if __name__ == "__main__":
    main()
