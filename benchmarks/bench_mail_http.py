"""Mail over HTTP: ``jmapcore serve --workers 2`` on LMDB at 5,000 messages.

Builds the mailbox with the CLI (``jmapcore import`` of an mbox of generated
messages, ``jmap_mail.samples``), measures bulk import over HTTP (upload +
Email/import in batches of 50 from 4 client threads) and through the CLI
on 10,000 more messages, then loads the server with wrk (1 and 4
connections) on five workloads:

* open the inbox: Email/query inMailbox, receivedAt descending, limit 50 +
  Email/get of the list properties by back-reference, one request;
* import: Email/import of one message (blobs uploaded beforehand, rotated);
* get-body-values: Email/get of one message with fetchTextBodyValues;
* set-keywords: Email/set turning $seen on, then off, across 400 messages;
* Thread/get of one thread;

and prints requests/s, p50 and p99 next to Cyrus IMAP 3.6's figures on the
same 2-core machine (4 clients).  Needs wrk (``apt-get install wrk``).
Run: python benchmarks/bench_mail_http.py [--messages 5000] [--import-messages 10000] [--seconds 8]
"""

from __future__ import annotations

import argparse
import base64
import json
import mailbox
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, machine, run_wrk, table

sys.path.insert(0, str(ROOT))
from tests.support import jmapcore, start, stop  # noqa: E402

USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
AUTH = ("bench", "bench-pw")
LIST_PROPERTIES = [
    "threadId", "mailboxIds", "keywords", "from", "to", "subject", "receivedAt", "size", "preview",
    "hasAttachment",
]
#: Cyrus IMAP 3.6 on this machine with 4 clients (the issue's reference), per second.
CYRUS = {"open the inbox": "220", "import": "80", "get-body-values": "1,300", "set-keywords": "260", "Thread/get": "—"}


def write_mbox(path: Path, count: int, seed: int) -> None:
    from jmap_mail.samples import generate

    box = mailbox.mbox(path)
    box.lock()
    try:
        for raw, _ in generate(count, seed=seed):
            box.add(raw.replace(b"\r\n", b"\n"))
    finally:
        box.flush()
        box.unlock()
        box.close()


def cli_import(name: str, mbox: Path, data: Path) -> tuple[float, float]:
    """(rate the summary reports, rate by the wall clock incl. start-up)."""
    started = time.perf_counter()
    done = jmapcore("import", name, str(mbox), "--data", str(data), "--quiet", timeout=3600)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"jmapcore import failed:\n{done.stdout}\n{done.stderr}")
    imported = int(re.search(r"imported ([\d,]+) of", done.stdout).group(1).replace(",", ""))
    reported = float(re.search(r"\(([\d,.]+) messages/s\)", done.stdout).group(1).replace(",", ""))
    return reported, imported / wall


class Http:
    """A JMAP client for one account of the benchmark user."""

    def __init__(self, url: str, auth: tuple[str, str]) -> None:
        self.http = httpx.Client(base_url=url, auth=auth, timeout=120)
        session = self.http.get("/.well-known/jmap").json()
        self.account = session["primaryAccounts"]["urn:ietf:params:jmap:mail"]

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        body = {"using": USING, "methodCalls": [[name, {"accountId": self.account, **arguments}, "0"]]}
        answer = self.http.post("/jmap/api/", json=body).raise_for_status().json()
        response, args, _ = answer["methodResponses"][0]
        if response == "error":
            raise RuntimeError(f"{name}: {args}")
        return args

    def upload(self, raw: bytes) -> str:
        answer = self.http.post(f"/jmap/upload/{self.account}/", content=raw, headers={"Content-Type": "message/rfc822"})
        return answer.raise_for_status().json()["blobId"]

    def role(self, role: str) -> str:
        return next(m["id"] for m in self.call("Mailbox/get", {})["list"] if m["role"] == role)


def http_import(url: str, auth: tuple[str, str], count: int, seed: int, clients: int = 4) -> float:
    """Upload + Email/import in batches of 50 from ``clients`` threads; messages/s."""
    from jmap_mail.samples import generate

    messages = list(generate(count, seed=seed))
    batches = [messages[i:i + 50] for i in range(0, len(messages), 50)]
    sessions = [Http(url, auth) for _ in range(clients)]
    inbox = sessions[0].role("inbox")

    def run(worker: int) -> int:
        client, done = sessions[worker], 0
        for batch in batches[worker::clients]:
            emails = {str(n): {"blobId": client.upload(raw), "mailboxIds": {inbox: True}, "keywords": meta["keywords"],
                               "receivedAt": meta["receivedAt"]} for n, (raw, meta) in enumerate(batch)}
            result = client.call("Email/import", {"emails": emails})
            if result.get("notCreated"):
                raise RuntimeError(f"Email/import refused: {result['notCreated']}")
            done += len(batch)
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(run, range(clients)))
    return total / (time.perf_counter() - started)


# -- wrk ------------------------------------------------------------------------------


def lua_script(bodies: list[bytes]) -> str:
    """POST each body in turn (one Lua state per wrk thread; we use one thread)."""
    token = base64.b64encode(":".join(AUTH).encode()).decode()
    listed = ",\n".join(f"[==[{b.decode()}]==]" for b in bodies)
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Basic {token}"\n'
        f"local bodies = {{\n{listed}\n}}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[(n - 1) % #bodies + 1])\n"
        "end\n"
    )


def workloads(client: Http) -> dict[str, list[bytes]]:
    """The request bodies of each workload (each checked once to succeed)."""
    from jmap_mail.samples import generate

    account, inbox = client.account, client.role("inbox")
    encode = lambda calls: json.dumps({"using": USING, "methodCalls": calls}).encode()  # noqa: E731
    ids = client.call("Email/query", {"filter": {"inMailbox": inbox}, "limit": 1600,
                                      "sort": [{"property": "receivedAt", "isAscending": False}]})["ids"][::4]
    threads = list(dict.fromkeys(e["threadId"] for e in client.call("Email/get", {"ids": ids, "properties": ["threadId"]})["list"]))
    archive = client.role("archive")
    blobs = [client.upload(raw) for raw, _ in generate(200, seed=99)]
    bodies = {
        "open the inbox": [encode([
            ["Email/query", {"accountId": account, "filter": {"inMailbox": inbox},
                             "sort": [{"property": "receivedAt", "isAscending": False}], "limit": 50}, "q"],
            ["Email/get", {"accountId": account, "properties": LIST_PROPERTIES,
                           "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}}, "g"]])],
        "get-body-values": [encode([["Email/get", {"accountId": account, "ids": [i], "properties": ["bodyValues", "textBody"],
                                                   "fetchTextBodyValues": True}, "b"]]) for i in ids],
        "set-keywords": [encode([["Email/set", {"accountId": account, "update": {i: {"keywords/$seen": on}}}, "k"]])
                         for on in (True, None) for i in ids],
        "Thread/get": [encode([["Thread/get", {"accountId": account, "ids": [t]}, "t"]]) for t in threads],
        # Last: it grows the mailbox (into the Archive, so the inbox stays at its size).
        "import": [encode([["Email/import", {"accountId": account, "emails": {"m": {"blobId": b, "mailboxIds": {archive: True}}}}, "i"]])
                   for b in blobs],
    }
    for name, listed in bodies.items():
        answer = client.http.post("/jmap/api/", content=listed[0], headers={"Content-Type": "application/json"}).json()
        for response, args, _ in answer["methodResponses"]:
            if response == "error" or args.get("notCreated") or args.get("notUpdated"):
                raise SystemExit(f"{name} does not succeed: {answer}")
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages in the measured account")
    parser.add_argument("--import-messages", type=int, default=10000, help="messages for the import rates")
    parser.add_argument("--seconds", type=int, default=8)
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_mail_http needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="bench-mail-http-") as tmp:
        work = Path(tmp)
        data = work / "data"
        for name, password in (AUTH, ("http", "http-pw"), ("cli", "cli-pw")):
            jmapcore("account", "add", name, "--password", password, "--data", str(data))
        print(f"generating {options.messages:,} + {options.import_messages:,} messages ...", file=sys.stderr)
        write_mbox(work / "bench.mbox", options.messages, seed=1)
        write_mbox(work / "cli.mbox", options.import_messages, seed=2)
        imports = []
        rate, wall = cli_import("bench", work / "bench.mbox", data)
        imports.append([f"CLI (jmapcore import of an mbox), {options.messages:,} messages", f"{rate:,.0f}", f"{wall:,.0f}"])
        server = start("serve", data, work / "server.log", auth=AUTH, extra=["--workers", "2"])
        try:
            rate = http_import(server.url, ("http", "http-pw"), options.import_messages, seed=3)
            imports.append([f"HTTP upload + Email/import ×50, 4 clients, {options.import_messages:,} messages", f"{rate:,.0f}", "—"])
            rate, wall = cli_import("cli", work / "cli.mbox", data)
            imports.append([f"CLI (jmapcore import of an mbox), {options.import_messages:,} messages", f"{rate:,.0f}", f"{wall:,.0f}"])
            rows = []
            bodies = workloads(Http(server.url, AUTH))
            for name, listed in bodies.items():
                script = work / "workload.lua"
                script.write_text(lua_script(listed))
                for connections in (1, 4):
                    run_wrk(server.url, script, 1, connections)  # warm up both workers
                    result = run_wrk(server.url, script, options.seconds, connections)
                    rows.append([name, connections, f"{result['rps']:,.0f}", f"{result['p50']:.2f}", f"{result['p99']:.2f}",
                                 CYRUS[name] if connections == 4 else ""])
        finally:
            stop(server.process)
    print(f"jmapcore serve --workers 2 over HTTP on 127.0.0.1, LMDB, {options.messages:,} messages, {machine()}")
    print("\nBulk import (messages/s):")
    print(table(["path", "messages/s", "incl. CLI start-up"], imports))
    print(f"\nwrk -t1, {options.seconds} s each:")
    print(table(["workload", "clients", "requests/s", "p50 ms", "p99 ms", "Cyrus 3.6, 4 clients (req/s)"], rows))


if __name__ == "__main__":
    main()
