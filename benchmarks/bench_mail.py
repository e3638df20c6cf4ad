"""Mail in-process on LMDB: import rate and latency against mailbox size.

Grows one data directory 1k → 10k → 100k generated messages
(``jmap_mail.samples``) through the importer's path (blobs stored, then
Email/import in batches of 100 through ``Core.api``), reporting the import
rate of each step.  At each size a fresh child process (a "worker": it did
not import anything, so its memory is what serving costs) opens the data
and measures, over ≥200 iterations each, p50 and p99 of:

* open the inbox: Email/query inMailbox, receivedAt descending, limit 50,
  plus Email/get of the list properties by back-reference, in one request;
* Email/changes from a state 10 changes old;
* text search (Email/query ``text``) for a common and a rare word;
* get-body-values (Email/get with fetchTextBodyValues of one message);
* set-keywords (Email/set toggling $seen on one message);
* Thread/get of one thread;

then its resident memory.  Prints a table, writes a PNG plot of p50 against
mailbox size (matplotlib, if installed) to benchmarks/results/mail_latency.png.
Run: python benchmarks/bench_mail.py [--sizes 1000,10000,100000] [--iterations 200]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
from _common import ROOT, machine, table

LIST_PROPERTIES = [
    "threadId", "mailboxIds", "keywords", "from", "to", "subject", "receivedAt", "size", "preview",
    "hasAttachment",
]
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
WORKLOADS = [
    "open the inbox", "Email/changes (10 changes)", "text search: common word",
    "text search: rare word", "get-body-values", "set-keywords", "Thread/get",
]
RESULTS = ROOT / "benchmarks" / "results"


# -- growing the mailbox (parent process) ----------------------------------------


def grow(data: Path, sizes: list[int]) -> list[list[object]]:
    """Import up to each size in turn; one row per step with its rate."""
    from jmap_mail.samples import generate

    from jmapcore.accounts import add_account
    from jmapserver.config import Settings
    from jmapserver.importer import Api, Importer, Summary, ensure_mailboxes, find_account
    from jmapserver.mailsources import Item
    from jmapserver.wiring import build_core

    core = build_core(Settings(data=data))
    rows = []
    try:
        add_account(core, "bench", "bench-pw")
        principal, account_id = find_account(core, "bench")
        api = Api(core, principal, account_id)
        boxes = ensure_mailboxes(core, api)
        summary = Summary(source="samples", account="bench")
        importer = Importer(api, boxes, boxes.target("inbox"), summary, check=False)
        roles = {role: boxes.target(role) for role in ("inbox", "sent", "archive")}
        messages = generate(sizes[-1], seed=1)
        done = 0
        for size in sizes:
            elapsed = 0.0
            for start in range(done, size, 2000):
                # Generated outside the clock: only the import is timed.
                chunk = [(Item(meta["messageId"], raw, keywords=meta["keywords"], received_at=meta["receivedAt"]),
                          roles[meta["mailbox"]]) for raw, meta in _take(messages, min(2000, size - start))]
                started = time.perf_counter()
                for item, mailbox_id in chunk:
                    importer.add(item, mailbox_id)
                importer.flush()
                elapsed += time.perf_counter() - started
            if summary.failures:
                raise SystemExit(f"import failed: {summary.failures[:3]}")
            rows.append([f"{done:,} → {size:,}", f"{size - done:,}", f"{elapsed:.1f}", f"{(size - done) / elapsed:,.0f}"])
            print(f"  imported {done:,} → {size:,}: {(size - done) / elapsed:,.0f} messages/s", file=sys.stderr)
            done = size
            _measure_in_child(data, size)
    finally:
        core.close()
    return rows


def _take(iterator: Iterator[Any], count: int) -> Iterator[Any]:
    for _ in range(count):
        yield next(iterator)


_MEASURED: dict[int, dict[str, Any]] = {}


def _measure_in_child(data: Path, size: int) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")])}
    output = subprocess.run(
        [sys.executable, __file__, "--measure", str(data), "--iterations", str(OPTIONS.iterations)],
        capture_output=True, text=True, env=env, check=False,
    )
    if output.returncode != 0:
        raise SystemExit(f"measuring at {size:,} failed:\n{output.stderr}")
    _MEASURED[size] = json.loads(output.stdout)


# -- measuring (child process) ------------------------------------------------------


class Bench:
    """A core on the data directory and the request bodies of each workload."""

    def __init__(self, data: Path) -> None:
        from jmapcore.accounts import principal_for
        from jmapserver.config import Settings
        from jmapserver.wiring import build_core

        self.core = build_core(Settings(data=data))
        self.principal = principal_for(self.core, "bench")
        self.account = self.principal.account_ids[0]
        boxes = self.call([["Mailbox/get", {"accountId": self.account}, "0"]])[0][1]["list"]
        self.inbox = next(m["id"] for m in boxes if m["role"] == "inbox")
        ids = self.call([["Email/query", {"accountId": self.account, "limit": 2000,
                                          "sort": [{"property": "receivedAt", "isAscending": False}]}, "0"]])[0][1]["ids"]
        self.ids = ids[::4][:400]
        got = self.call([["Email/get", {"accountId": self.account, "ids": self.ids, "properties": ["threadId"]}, "0"]])
        self.thread_ids = list(dict.fromkeys(e["threadId"] for e in got[0][1]["list"]))

    def body(self, calls: list[Any]) -> bytes:
        return msgspec.json.encode({"using": USING, "methodCalls": calls})

    def call(self, calls: list[Any]) -> list[Any]:
        result = self.core.api(self.principal, self.body(calls))
        answer = msgspec.json.decode(result.body)
        for name, args, _ in answer["methodResponses"]:
            if name == "error":
                raise RuntimeError(f"{calls[0][0]}: {args}")
        return answer["methodResponses"]

    def open_inbox(self) -> bytes:
        return self.body([
            ["Email/query", {"accountId": self.account, "filter": {"inMailbox": self.inbox},
                             "sort": [{"property": "receivedAt", "isAscending": False}], "limit": 50}, "q"],
            ["Email/get", {"accountId": self.account, "properties": LIST_PROPERTIES,
                           "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}}, "g"],
        ])

    def search(self, word: str) -> bytes:
        return self.body([["Email/query", {"accountId": self.account, "filter": {"text": word},
                                           "sort": [{"property": "receivedAt", "isAscending": False}], "limit": 50}, "s"]])

    def state_ten_changes_ago(self) -> str:
        state = self.call([["Email/get", {"accountId": self.account, "ids": []}, "0"]])[0][1]["state"]
        keyword = f"bench{time.time_ns()}"  # new each run: every update is a change
        for email_id in self.ids[:10]:
            self.call([["Email/set", {"accountId": self.account, "update": {email_id: {f"keywords/{keyword}": True}}}, "0"]])
        return state


def _checked(result: Any) -> None:
    """A timed request must do what it says: no method error, nothing refused."""
    for name, args, _ in msgspec.json.decode(result.body)["methodResponses"]:
        if name == "error" or args.get("notUpdated") or args.get("notCreated"):
            raise RuntimeError(f"{name}: {args}")


def _timed(action: Callable[[int], Any], iterations: int) -> tuple[float, float]:
    for n in range(10):  # warm caches, and check the answers
        _checked(action(n))
    samples = []
    for n in range(iterations):
        started = time.perf_counter()
        action(n)
        samples.append(time.perf_counter() - started)
    samples.sort()
    return statistics.median(samples) * 1e3, samples[int(len(samples) * 0.99) - 1] * 1e3


def _memory() -> dict[str, float]:
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
    fields["maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return fields


def workloads(bench: Bench, iterations: int) -> tuple[dict[str, tuple[float, float]], dict[str, int]]:
    """p50/p99 of each workload on ``bench``'s core, and the search hit counts
    (shared with bench_backends.py, so both backends run the same requests)."""
    from jmap_mail.samples import COMMON_WORD, RARE_WORD

    api = bench.core.api
    who = bench.principal
    inbox = bench.open_inbox()
    listed = bench.call(msgspec.json.decode(inbox)["methodCalls"])
    assert len(listed[1][1]["list"]) == 50
    since = bench.state_ten_changes_ago()
    changes = bench.body([["Email/changes", {"accountId": bench.account, "sinceState": since}, "c"]])
    assert len(bench.call(msgspec.json.decode(changes)["methodCalls"])[0][1]["updated"]) == 10
    common, rare = bench.search(COMMON_WORD), bench.search(RARE_WORD)
    bodies = [bench.body([["Email/get", {"accountId": bench.account, "ids": [i], "properties": ["bodyValues", "textBody"],
                                         "fetchTextBodyValues": True}, "b"]]) for i in bench.ids]
    toggles = [bench.body([["Email/set", {"accountId": bench.account, "update": {i: {"keywords/$seen": on or None}}}, "k"]])
               for on in (True, False) for i in bench.ids]
    threads = [bench.body([["Thread/get", {"accountId": bench.account, "ids": [t]}, "t"]]) for t in bench.thread_ids]
    actions: dict[str, Callable[[int], Any]] = {
        "open the inbox": lambda n: api(who, inbox),
        "Email/changes (10 changes)": lambda n: api(who, changes),
        "text search: common word": lambda n: api(who, common),
        "text search: rare word": lambda n: api(who, rare),
        "get-body-values": lambda n: api(who, bodies[n % len(bodies)]),
        "set-keywords": lambda n: api(who, toggles[n % len(toggles)]),
        "Thread/get": lambda n: api(who, threads[n % len(threads)]),
    }
    results = {name: _timed(action, iterations) for name, action in actions.items()}
    hits = {word: len(bench.call(msgspec.json.decode(b)["methodCalls"])[0][1]["ids"]) for word, b in (("common", common), ("rare", rare))}
    return results, hits


def measure(data: Path, iterations: int) -> dict[str, Any]:
    bench = Bench(data)
    results, hits = workloads(bench, iterations)
    bench.core.close()
    return {"latency": results, "memory": _memory(), "hits": hits}


# -- reporting -----------------------------------------------------------------------


def plot(sizes: list[int]) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no plot"
    figure, axes = plt.subplots(figsize=(8, 5))
    for name in WORKLOADS:
        axes.plot(sizes, [_MEASURED[s]["latency"][name][0] for s in sizes], marker="o", label=name)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("messages in the account")
    axes.set_ylabel("p50 latency (ms), in-process")
    axes.set_title("jmapcore mail on LMDB: latency against mailbox size")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / "mail_latency.png"
    figure.savefig(target, dpi=120, bbox_inches="tight")
    return f"plot written to {target.relative_to(ROOT)}"


def report(sizes: list[int], import_rows: list[list[object]]) -> None:
    print(f"jmapcore mail, in-process, LMDB, {machine()}")
    print("\nImport (stored blob + Email/import in batches of 100, through Core.api):")
    print(table(["messages", "imported", "seconds", "messages/s"], import_rows))
    rows = []
    for name in WORKLOADS:
        row: list[object] = [name]
        for size in sizes:
            p50, p99 = _MEASURED[size]["latency"][name]
            row.append(f"{p50:.2f} / {p99:.2f}")
        rows.append(row)
    print(f"\nLatency in ms, p50 / p99 over {OPTIONS.iterations} iterations, by messages in the account:")
    print(table(["workload", *[f"{s:,}" for s in sizes]], rows))
    print("\nSearch hits (limit 50): " + ", ".join(f"{s:,}: {_MEASURED[s]['hits']}" for s in sizes))
    memory_rows = [[f"{s:,}", *(f"{_MEASURED[s]['memory'][k]:.0f}" for k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"))] for s in sizes]
    print("\nWorker memory after the workloads (MB; RssFile is LMDB's mapped pages, shared and reclaimable):")
    print(table(["messages", "VmRSS", "RssAnon", "RssFile", "peak VmHWM"], memory_rows))
    print("\n" + plot(sizes))


def main() -> None:
    global OPTIONS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated mailbox sizes")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--data", type=Path, help="data directory to grow (default: a temporary one)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    OPTIONS = parser.parse_args()
    if OPTIONS.measure is not None:
        print(json.dumps(measure(OPTIONS.measure, OPTIONS.iterations)))
        return
    sizes = sorted(int(s) for s in OPTIONS.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-mail-") as tmp:
        data = OPTIONS.data or Path(tmp) / "data"
        import_rows = grow(data, sizes)
    report(sizes, import_rows)


OPTIONS: argparse.Namespace

if __name__ == "__main__":
    main()
