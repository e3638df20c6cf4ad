"""In-process cost of a JMAP method call through jmapcore (no HTTP).

Measures, on the LMDB backend and on the in-memory backend:
  * one request holding one Core/echo call;
  * the marginal cost of one more Core/echo call in a request (16-call batch);
  * Note/get of 50 small objects (the README's example plugin).
Run: python benchmarks/bench_core.py
"""

from __future__ import annotations

import tempfile

import msgspec
from _common import machine, notes_plugin, per_call_seconds, table

from jmapcore import Core
from jmapcore.accounts import add_account, principal_for
from jmapcore.registry import Registry
from jmapcore.testing.memory import MemoryBackend
from jmapcore.wire import CORE


def _backends(tmp: str):
    from jmap_lmdb import open_backend

    yield "lmdb", open_backend(f"{tmp}/lmdb")
    yield "memory", MemoryBackend()


def measure(name: str, backend) -> list[list[object]]:
    core = Core(backend, Registry.from_entry_points([notes_plugin.plugin]))
    add_account(core, "bench", "pw")
    principal = principal_for(core, "bench")
    account = principal.account_ids[0]
    using = [CORE, notes_plugin.NOTES]
    create = {f"n{i}": {"title": f"note {i}", "body": "x" * 40} for i in range(50)}
    created = msgspec.json.decode(
        core.api(principal, msgspec.json.encode({"using": using, "methodCalls": [["Note/set", {"accountId": account, "create": create}, "0"]]})).body
    )["methodResponses"][0][1]["created"]
    ids = [c["id"] for c in created.values()]

    def body(calls):
        return msgspec.json.encode({"using": using, "methodCalls": calls})

    echo1 = body([["Core/echo", {"hello": True}, "0"]])
    echo16 = body([["Core/echo", {"hello": True}, str(i)] for i in range(16)])
    get50 = body([["Note/get", {"accountId": account, "ids": ids}, "0"]])
    for sample in (echo1, echo16, get50):
        assert core.api(principal, sample).status == 200
    one = per_call_seconds(lambda: core.api(principal, echo1), 5000)
    sixteen = per_call_seconds(lambda: core.api(principal, echo16), 1000)
    get = per_call_seconds(lambda: core.api(principal, get50), 1000)
    core.close()
    micro = lambda seconds: f"{seconds * 1e6:.1f}"  # noqa: E731
    return [
        [name, "request with 1 Core/echo", micro(one)],
        [name, "each extra Core/echo in a 16-call request", micro((sixteen - one) / 15)],
        [name, "request with Note/get of 50 objects", micro(get)],
    ]


def main() -> None:
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, backend in _backends(tmp):
            rows += measure(name, backend)
    print(f"In-process jmapcore cost per request/call (median of 7 rounds), {machine()}")
    print(table(["backend", "what", "µs"], rows))


if __name__ == "__main__":
    main()
