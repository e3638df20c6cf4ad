"""Contacts (RFC 9610) in-process on LMDB: an address book of 10,000 cards.

A fresh data directory (LMDB, the FTS search role) gets ``--cards``
generated JSContact cards (seeded: names, nicknames, emails, phones,
organizations, addresses, notes) through ContactCard/set in batches of
``--batch`` (what an importer does); the import rate is reported.  Then,
through ``Core.api`` (request bytes in, response bytes out: decoding,
dispatch and encoding included), p50/p99 over ``--iterations`` of:

* ContactCard/query with a text filter: a rare word (a surname, ~10 hits)
  and a common one (a city, ~5% of the cards), sorted by name/surname, limit 50;
* ContactCard/query by email, and by name/given;
* ContactCard/query of the whole address book sorted by name/surname, first 50
  (the sort index walk);
* ContactCard/get of 50 cards (all properties) picked at random;
* the typical client round trip: query (text) + get of the page by a result
  reference, in one request.

Prints one table.  Run: python benchmarks/bench_contacts.py [--cards 10000] [--iterations 200]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
from _common import machine, table

CONTACTS = "urn:ietf:params:jmap:contacts"
USING = ["urn:ietf:params:jmap:core", CONTACTS]

GIVEN = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Dennis",
         "Ken", "Radia", "Tim", "Vint", "Leslie", "Niklaus", "Tony", "Adele", "Jean", "Katherine"]  # fmt: skip
CITIES = ["London", "Paris", "Berlin", "Madrid", "Rome", "Vienna", "Prague", "Lisbon", "Dublin", "Oslo",
          "Helsinki", "Warsaw", "Athens", "Zurich", "Brussels", "Amsterdam", "Copenhagen", "Stockholm",
          "Budapest", "Bucharest"]  # fmt: skip
WORDS = ["met", "at", "the", "conference", "friend", "of", "neighbour", "former", "colleague", "cousin",
         "plumber", "dentist", "call", "after", "lunch", "birthday", "gift", "project", "review", "team"]  # fmt: skip


def surname(rng: random.Random) -> str:
    syllables = ["ka", "ro", "mi", "ten", "bar", "lo", "vin", "sel", "dor", "an", "be", "quist", "ham", "ford"]
    return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))).capitalize()


def make_card(rng: random.Random, n: int) -> dict[str, Any]:
    given, family, city = rng.choice(GIVEN), surname(rng), rng.choice(CITIES)
    company = f"{surname(rng)} {rng.choice(['Ltd', 'GmbH', 'Inc', 'SA'])}"
    card: dict[str, Any] = {
        "name": {"components": [{"kind": "given", "value": given}, {"kind": "surname", "value": family}]},
        "emails": {"e1": {"address": f"{given.lower()}.{family.lower()}{n}@example.com", "contexts": {"work": True}}},
        "phones": {"p1": {"number": f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}", "features": {"voice": True}}},
        "organizations": {"o1": {"name": company}},
        "addresses": {"a1": {"components": [{"kind": "number", "value": str(rng.randint(1, 200))},
                                            {"kind": "name", "value": f"{surname(rng)} Street"},
                                            {"kind": "locality", "value": city}], "countryCode": "GB"}},
        "notes": {"n1": {"note": " ".join(rng.choice(WORDS) for _ in range(8))}},
    }
    if rng.random() < 0.3:
        card["nicknames"] = {"k1": {"name": given[:3]}}
    return card


class Bench:
    def __init__(self, data: Path) -> None:
        from jmapcore.accounts import add_account, principal_for
        from jmapserver.config import Settings
        from jmapserver.wiring import build_core, check_data_dir

        settings = Settings(data=data, backend="lmdb")
        check_data_dir(settings, create=True)
        self.core = build_core(settings)
        self.account = add_account(self.core, "bench", "bench-pw").account_id
        self.principal = principal_for(self.core, "bench")

    def request(self, calls: list[list[Any]]) -> list[Any]:
        body = msgspec.json.encode({"using": USING, "methodCalls": calls})
        result = self.core.api(self.principal, body, "application/json")
        responses = msgspec.json.decode(result.body)["methodResponses"]
        for name, args, _ in responses:
            if name == "error":
                raise RuntimeError(args)
        return responses

    def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.request([[name, {"accountId": self.account, **args}, "0"]])[0][1]


def cycle_of(values: list[str]) -> Iterator[str]:
    return itertools.cycle(values)


def timed(action: Callable[[], Any], iterations: int) -> tuple[float, float]:
    action()  # warm
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=200)
    options = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="bench-contacts-") as tmp:
        bench = Bench(Path(tmp) / "data")
        cards = [make_card(rng, n) for n in range(options.cards)]
        start = time.perf_counter()
        ids: list[str] = []
        for first in range(0, len(cards), options.batch):
            chunk = {f"c{n}": card for n, card in enumerate(cards[first : first + options.batch], first)}
            result = bench.call("ContactCard/set", {"create": chunk})
            if result["notCreated"]:
                raise RuntimeError(result["notCreated"])
            ids.extend(created["id"] for created in result["created"].values())
        imported = time.perf_counter() - start
        book = bench.call("AddressBook/get", {})["list"][0]["id"]
        pick = random.Random(2)
        sample = pick.sample(cards, 100)
        # A server does not hold the imported cards: dropped, so that the
        # collector's full passes do not walk them (they made the p99).
        del cards, chunk, result
        gc.collect()
        # Each iteration asks something else, so no cache answers for it.
        rare = cycle_of([card["name"]["components"][1]["value"] for card in sample])
        emails = cycle_of([card["emails"]["e1"]["address"] for card in sample])
        cities, givens = cycle_of(CITIES), cycle_of(GIVEN)
        by_surname = [{"property": "name/surname"}]

        def count(filter: dict[str, Any]) -> int:
            return len(bench.call("ContactCard/query", {"filter": filter, "limit": 10_000})["ids"])

        hits = {
            "rare": statistics.mean(count({"text": card["name"]["components"][1]["value"]}) for card in sample[:20]),
            "common": statistics.mean(count({"text": city}) for city in CITIES[:5]),
            "given": statistics.mean(count({"name/given": given}) for given in GIVEN[:5]),
        }

        def get50() -> Any:
            return bench.call("ContactCard/get", {"ids": pick.sample(ids, 50)})

        page = {"limit": 50, "sort": by_surname}
        workloads: list[tuple[str, Callable[[], Any]]] = [
            (f"query text, a rare word (~{hits['rare']:.0f} hits), by surname",
             lambda: bench.call("ContactCard/query", {"filter": {"text": next(rare)}, **page})),
            (f"query text, a city (~{hits['common']:.0f} hits), by surname, first 50",
             lambda: bench.call("ContactCard/query", {"filter": {"text": next(cities)}, **page})),
            ("query email (an exact address)",
             lambda: bench.call("ContactCard/query", {"filter": {"email": next(emails)}, **page})),
            (f"query name/given (~{hits['given']:.0f} hits), by surname, first 50",
             lambda: bench.call("ContactCard/query", {"filter": {"name/given": next(givens)}, **page})),
            ("query inAddressBook, by surname, first 50",
             lambda: bench.call("ContactCard/query", {"filter": {"inAddressBook": book}, **page})),
            ("get 50 cards (all properties)", get50),
            ("query text (rare) + get of the page, one request",
             lambda: bench.request([
                 ["ContactCard/query", {"accountId": bench.account, "filter": {"text": next(rare)}, **page}, "q"],
                 ["ContactCard/get", {"accountId": bench.account,
                                      "#ids": {"resultOf": "q", "name": "ContactCard/query", "path": "/ids"}}, "g"]])),
        ]
        rows = []
        for name, action in workloads:
            p50, p99 = timed(action, options.iterations)
            rows.append([name, f"{p50:.2f}", f"{p99:.2f}"])
        bench.core.backend.close()
    print(f"# Contacts on LMDB: {options.cards} cards in one address book; {machine()}")
    print(f"import through ContactCard/set (batches of {options.batch}): "
          f"{options.cards / imported:,.0f} cards/s ({imported:.1f} s)")
    print(table(["workload", "p50 ms", "p99 ms"], rows))


if __name__ == "__main__":
    sys.exit(main())
