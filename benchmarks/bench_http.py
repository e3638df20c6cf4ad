"""The real server over HTTP: requests/s, p50 and p99 with 1 and 2 workers.

Starts ``jmapcore serve`` (gunicorn + uvicorn workers, LMDB) on 127.0.0.1,
loads it with wrk (``apt-get install wrk``; it is written in C, so the load
generator takes little of the 2 cores) and prints a table.  Workloads:
Core/echo, and Note/get of 50 small objects (the example plugin).
Run: python benchmarks/bench_http.py [--seconds 8] [--connections 32]
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
from _common import ROOT, machine, run_wrk, table

sys.path.insert(0, str(ROOT))
from tests.support import jmapcore, start, stop  # noqa: E402

NOTES = "https://example.com/jmap/notes"
USING = ["urn:ietf:params:jmap:core", NOTES]
AUTH = ("bench", "bench-pw")

def post_script(body: bytes, workdir: Path) -> Path:
    """A wrk Lua script that POSTs ``body`` with Basic auth."""
    token = base64.b64encode(":".join(AUTH).encode()).decode()
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Basic {token}"\n'
    )
    return script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_http needs wrk: apt-get install wrk")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        added = jmapcore("account", "add", AUTH[0], "--password", AUTH[1], "--data", str(data))
        account = added.stdout.strip()
        bodies = {}
        for workers in (1, 2):
            server = start("serve", data, work / f"server{workers}.log", auth=AUTH,
                           extra=["--workers", str(workers), "--plugin", "notes_plugin:plugin"])
            try:
                if not bodies:
                    bodies = _bodies(server.url, account)
                for name, body in bodies.items():
                    script = post_script(body, work)
                    run_wrk(server.url, script, 1, options.connections)  # warm up every worker
                    result = run_wrk(server.url, script, options.seconds, options.connections)
                    rows.append([name, workers, f"{result['rps']:,.0f}", f"{result['p50']:.2f}", f"{result['p99']:.2f}"])
            finally:
                stop(server.process)
    print(f"jmapcore serve over HTTP on 127.0.0.1, wrk -c{options.connections}, {options.seconds} s each, {machine()}")
    print(table(["workload", "workers", "requests/s", "p50 ms", "p99 ms"], rows))


def _bodies(url: str, account: str) -> dict[str, bytes]:
    create = {f"n{i}": {"title": f"note {i}", "body": "x" * 40} for i in range(50)}
    with httpx.Client(base_url=url, auth=AUTH, timeout=30) as http:
        response = http.post("/jmap/api/", json={"using": USING, "methodCalls": [["Note/set", {"accountId": account, "create": create}, "0"]]})
        ids = [value["id"] for value in response.json()["methodResponses"][0][1]["created"].values()]
    encode = lambda calls: json.dumps({"using": USING, "methodCalls": calls}).encode()  # noqa: E731
    return {
        "Core/echo": encode([["Core/echo", {"hello": True}, "0"]]),
        "Note/get of 50 objects": encode([["Note/get", {"accountId": account, "ids": ids}, "0"]]),
    }


if __name__ == "__main__":
    main()
