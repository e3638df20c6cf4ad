"""Faults against the real server (gunicorn, 2 workers, LMDB, 127.0.0.1):
workers killed with SIGKILL while clients write, and racing writers."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jmapcore.state import State
from jmapcore.wire import CORE
from tests.support import Running, jmapcore, start, stop, worker_pids

pytestmark = [pytest.mark.server, pytest.mark.slow]

NOTES = "https://example.com/jmap/notes"
USING = [CORE, NOTES]
AUTH = ("alice", "alice-pw")
SERVE = ["--workers", "2", "--plugin", "notes_plugin:plugin"]


@pytest.fixture
def notes_server(tmp_path: Path) -> Iterator[Running]:
    data = tmp_path / "data"
    added = jmapcore("account", "add", "alice", "--password", "alice-pw", "--data", str(data))
    assert added.returncode == 0, added.stderr
    running = start("serve", data, tmp_path / "server.log", extra=SERVE)
    running.account_id = added.stdout.strip()
    try:
        yield running
    finally:
        stop(running.process)


def call(http: httpx.Client, name: str, arguments: dict, timeout: float = 10) -> tuple[str, dict]:
    response = http.post("/jmap/api/", json={"using": USING, "methodCalls": [[name, arguments, "c"]]}, timeout=timeout)
    assert response.status_code == 200, response.text
    [[response_name, result, _]] = response.json()["methodResponses"]
    return response_name, result


def all_notes(http: httpx.Client, account: str) -> dict[str, dict]:
    ids: list[str] = []
    while True:
        _, query = call(http, "Note/query", {"accountId": account, "calculateTotal": True, "position": len(ids)})
        ids += query["ids"]
        if not query["ids"]:
            break
    assert len(ids) == len(set(ids)) == query["total"]
    notes: dict[str, dict] = {}
    for chunk in range(0, len(ids), 500):
        _, got = call(http, "Note/get", {"accountId": account, "ids": ids[chunk : chunk + 500]})
        assert got["notFound"] == []
        notes.update({note["id"]: note for note in got["list"]})
    return notes


def replay_created(http: httpx.Client, account: str, since: str) -> set[str]:
    """Every id /changes reports created since ``since``, following intermediate states."""
    created: set[str] = set()
    for _ in range(10_000):
        name, page = call(http, "Note/changes", {"accountId": account, "sinceState": since, "maxChanges": 100})
        assert name == "Note/changes", page
        assert page["updated"] == [] and page["destroyed"] == []
        created |= set(page["created"])
        since = page["newState"]
        if not page["hasMoreChanges"]:
            return created
    raise AssertionError("/changes never finished")


def test_sigkill_workers_while_writing(notes_server: Running, tmp_path: Path) -> None:
    """Every answered write survives, nothing half-written is visible, and
    /changes from every state a client saw is still right ([core-5.2-cannotCalculate],
    [core-3.6.2-noSideEffects], [core-5.3-atomicRecord])."""
    account = notes_server.account_id
    with httpx.Client(base_url=notes_server.url, auth=AUTH) as http:
        _, first = call(http, "Note/get", {"accountId": account, "ids": []})
    answered: list[tuple[str, str, str]] = []  # (id, title, newState)
    lock = threading.Lock()
    deadline = time.monotonic() + 8.0
    kills = 0

    def writer(number: int) -> None:
        rng = random.Random(number)
        with httpx.Client(base_url=notes_server.url, auth=AUTH) as http:
            for index in range(5000):
                if time.monotonic() > deadline:
                    return
                title = f"w{number}-{index}"
                create = {f"c{k}": {"title": f"{title}-{k}", "body": "x" * rng.randrange(2000)} for k in range(3)}
                try:
                    name, result = call(http, "Note/set", {"accountId": account, "create": create}, timeout=15)
                except httpx.TransportError:
                    continue  # cut off by a kill: may or may not be stored
                assert name == "Note/set", result
                with lock:
                    for creation_id, value in result["created"].items():
                        answered.append((value["id"], create[creation_id]["title"], result["newState"]))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    rng = random.Random(42)
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.3, 0.9))
        pids = worker_pids(notes_server.process.pid)
        if pids:
            os.kill(rng.choice(pids), signal.SIGKILL)
            kills += 1
    for thread in threads:
        thread.join(timeout=60)
    stop(notes_server.process)

    restarted = start("serve", notes_server.data, tmp_path / "restarted.log", extra=SERVE)
    try:
        with httpx.Client(base_url=restarted.url, auth=AUTH, timeout=30) as http:
            stored = all_notes(http, account)
            assert kills >= 3 and len(answered) >= 30, (kills, len(answered))
            for note_id, title, _ in answered:
                assert stored[note_id]["title"] == title, "an answered write was lost"
            for note in stored.values():
                assert set(note) == {"id", "title", "body", "isPinned", "parentId", "updated"}
                assert note["title"].startswith("w") and note["updated"], "half-written record"
            states = [first["state"]] + random.Random(1).sample([s for _, _, s in answered], min(25, len(answered)))
            for state in states:
                modseq = State.decode(state).modseq
                created = replay_created(http, account, state)
                after = {i for i, _, s in answered if State.decode(s).modseq > modseq}
                before = {i for i, _, s in answered if State.decode(s).modseq <= modseq}
                assert after <= created and not (before & created) and created <= set(stored)
    finally:
        stop(restarted.process)


def test_racing_if_in_state_exactly_one_wins(notes_server: Running) -> None:
    """[core-5.3-ifInState] two clients update with the same ifInState:
    one wins, the other gets stateMismatch, and the winner's value is stored."""
    account = notes_server.account_id
    with httpx.Client(base_url=notes_server.url, auth=AUTH, timeout=20) as http:
        _, created = call(http, "Note/set", {"accountId": account, "create": {"n": {"title": "start"}}})
        note_id = created["created"]["n"]["id"]
        for round_number in range(15):
            _, got = call(http, "Note/get", {"accountId": account, "ids": [note_id]})
            barrier = threading.Barrier(2)
            results: dict[str, tuple[str, dict]] = {}

            def racer(
                label: str,
                state: str = got["state"],
                barrier: threading.Barrier = barrier,
                results: dict = results,
            ) -> None:
                with httpx.Client(base_url=notes_server.url, auth=AUTH, timeout=20) as own:
                    barrier.wait(timeout=10)
                    results[label] = call(
                        own,
                        "Note/set",
                        {"accountId": account, "ifInState": state, "update": {note_id: {"title": label}}},
                    )

            labels = [f"r{round_number}a", f"r{round_number}b"]
            threads = [threading.Thread(target=racer, args=(label,)) for label in labels]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            winners = [label for label in labels if results[label][0] == "Note/set"]
            losers = [label for label in labels if results[label][0] == "error"]
            assert len(winners) == 1 and len(losers) == 1, results
            assert results[losers[0]][1]["type"] == "stateMismatch"
            _, after = call(http, "Note/get", {"accountId": account, "ids": [note_id]})
            assert after["list"][0]["title"] == winners[0]
