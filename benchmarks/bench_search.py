"""Full-text search engines on the Email/query workload: SQLite FTS5 vs tantivy.

Generates synthetic email-like documents (subject, from, to, body drawn
from a Zipf-distributed vocabulary; fixed seed), indexes them with
SQLite FTS5 through jmap_fts.SqliteSearchIndex and with tantivy (if
importable), and reports for each engine:
  * bulk index rate (documents per second, 500 per transaction/commit),
  * index size on disk,
  * the latency of one document committed alone (a delivery),
  * p50/p99 latency of 1-word, 2-word, phrase and from-address queries,
    each returning every matching id (prefix semantics as in jmapcore.textsearch).
Both engines must return the same ids; differences are counted and printed.
A plot goes to benchmarks/results/search.png when matplotlib is installed.
Run: python benchmarks/bench_search.py [--docs N] [--queries N]
"""

from __future__ import annotations

import argparse
import math
import random
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from _common import ROOT, machine, table
from jmap_fts import SqliteSearchIndex

from jmapcore.storage import SearchDocument
from jmapcore.textsearch import parse_query, words

SEED = 8621
ACCOUNT = "1"
TYPE = "Email"
KINDS = ("1-word", "2-word", "phrase", "from-address")
BATCH = 500
SINGLE_COMMITS = 100
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in _VOWELS]
_ACCENTED = ["café", "résumé", "naïve", "façade", "über", "déjà", "señor", "crème", "fiancée"]


# -- corpus ----------------------------------------------------------------------


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    """Distinct pseudo-words; rank order = frequency order (short words first)."""
    seen: dict[str, None] = dict.fromkeys(_ACCENTED)
    while len(seen) < size:
        length = min(4, 1 + int(rng.expovariate(0.9)))
        seen.setdefault("".join(rng.choice(_SYLLABLES) for _ in range(length)))
    vocab = list(seen)
    rng.shuffle(vocab)
    vocab.sort(key=len)
    return vocab


@dataclass
class Corpus:
    vocab: list[str]
    docs: list[SearchDocument]
    rng: random.Random


def _people(rng: random.Random, count: int) -> list[str]:
    domains = [
        f"{rng.choice(_SYLLABLES)}{rng.choice(_SYLLABLES)}.{tld}"
        for tld in ("com", "org", "net", "de", "fr")
        for _ in range(10)
    ]
    people = []
    for _ in range(count):
        first = "".join(rng.choice(_SYLLABLES) for _ in range(2))
        last = "".join(rng.choice(_SYLLABLES) for _ in range(3))
        people.append(f"{first.title()} {last.title()} <{first}.{last}@{rng.choice(domains)}>")
    return people


def make_corpus(count: int) -> Corpus:
    """``count`` documents, deterministic for a given count."""
    rng = random.Random(SEED)
    vocab = _vocabulary(rng, 30_000)
    cum = list(_cumulative([1 / (rank + 1) ** 1.05 for rank in range(len(vocab))]))
    people = _people(rng, 5_000)
    people_cum = list(_cumulative([1 / (rank + 1) ** 0.8 for rank in range(len(people))]))
    docs = []
    for n in range(count):
        body = rng.choices(vocab, cum_weights=cum, k=rng.randint(100, 400))
        for at in range(12, len(body), rng.randint(8, 20)):
            body[at] += "."
        fields = {
            "subject": " ".join(rng.choices(vocab, cum_weights=cum, k=rng.randint(3, 8))),
            "from": rng.choices(people, cum_weights=people_cum)[0],
            "to": ", ".join(rng.choices(people, cum_weights=people_cum, k=rng.randint(1, 3))),
            "body": " ".join(body),
        }
        docs.append(SearchDocument(TYPE, f"M{n:07d}", fields))
    return Corpus(vocab, docs, rng)


def _cumulative(weights: list[float]) -> Iterator[float]:
    total = 0.0
    for weight in weights:
        total += weight
        yield total


def make_queries(corpus: Corpus, per_kind: int) -> dict[str, list[tuple[str | None, str]]]:
    """(field, query) per kind; words picked log-uniformly by rank between
    30 and 10,000, so results range from hundreds to tens of thousands."""
    rng = corpus.rng

    def word() -> str:
        return corpus.vocab[int(math.exp(rng.uniform(math.log(30), math.log(10_000))))]

    def phrase() -> str:
        body = rng.choice(corpus.docs).fields["body"].split()
        at = rng.randrange(len(body) - 1)
        return '"' + " ".join(w.rstrip(".") for w in body[at : at + 2]) + '"'

    def address() -> str:
        return rng.choice(corpus.docs).fields["from"].split("<")[1].rstrip(">")

    return {
        "1-word": [(None, word()) for _ in range(per_kind)],
        "2-word": [(None, f"{word()} {word()}") for _ in range(per_kind)],
        "phrase": [(None, phrase()) for _ in range(per_kind)],
        "from-address": [("from", address()) for _ in range(per_kind)],
    }


# -- engines ---------------------------------------------------------------------


class Engine(Protocol):
    name: str

    def index(self, docs: list[SearchDocument]) -> None: ...
    def search(self, field: str | None, query: str) -> set[str]: ...
    def size(self) -> int: ...
    def close(self) -> None: ...


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class SqliteEngine:
    name = "SQLite FTS5"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.index_ = SqliteSearchIndex(path / "search.sqlite3")

    def index(self, docs: list[SearchDocument]) -> None:
        self.index_.add(ACCOUNT, docs)

    def search(self, field: str | None, query: str) -> set[str]:
        return self.index_.search(ACCOUNT, TYPE, field, query)

    def size(self) -> int:
        import sqlite3

        with sqlite3.connect(self.path / "search.sqlite3") as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            try:
                query = "SELECT sum(pgsize) FROM dbstat WHERE name = 'texts'"
                texts = conn.execute(query).fetchone()[0] or 0
                print(f"  {self.name}: {texts / 1e6:.0f} MB of it are the texts kept for deletes")
            except sqlite3.OperationalError:
                pass  # SQLite built without dbstat
        return _dir_size(self.path)

    def close(self) -> None:
        self.index_.close()


class TantivyEngine:
    """tantivy with the same matching rules: folded words, the last word of
    an unquoted term a prefix, a scope term like the SQLite rowid range."""

    name = "tantivy"
    fields = ("subject", "from", "to", "body")

    def __init__(self, path: Path) -> None:
        import tantivy

        self.t = tantivy
        builder = tantivy.SchemaBuilder()
        builder.add_unsigned_field("rowid", stored=False, fast=True, indexed=False)
        builder.add_unsigned_field("scope", indexed=True)
        for name in self.fields:
            builder.add_text_field(name, tokenizer_name="fold", index_option="position")
        self.schema = builder.build()
        self.idx = tantivy.Index(self.schema, path=str(path))
        analyzer = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.ascii_fold())
            .build()
        )
        self.idx.register_tokenizer("fold", analyzer)
        self.writer = self.idx.writer(heap_size=128_000_000, num_threads=2)
        self.path = path
        self.searcher: Any = None

    def index(self, docs: list[SearchDocument]) -> None:
        for doc in docs:
            document = self.t.Document()
            document.add_unsigned("rowid", int(doc.id[1:]))
            document.add_unsigned("scope", 1)
            for name, text in doc.fields.items():
                document.add_text(name, text)
            self.writer.add_document(document)
        self.writer.commit()
        self.idx.reload()
        self.searcher = self.idx.searcher()

    def _term(self, field: str, term_words: list[str], phrase: bool) -> Any:
        q = self.t.Query
        if phrase:
            if len(term_words) == 1:
                return q.term_query(self.schema, field, term_words[0])
            return q.phrase_query(self.schema, field, term_words)
        if len(term_words) == 1:
            return q.regex_query(self.schema, field, re.escape(term_words[0]) + ".*")
        return q.phrase_prefix_query(self.schema, field, term_words)

    def search(self, field: str | None, query: str) -> set[str]:
        q = self.t.Query
        must = self.t.Occur.Must
        clauses = [(must, q.term_query(self.schema, "scope", 1))]
        for term in parse_query(query):
            term_words = words(term.text)
            targets = self.fields if field is None else (field,)
            alternatives = [self._term(f, term_words, term.phrase) for f in targets]
            clauses.append((must, q.disjunction_max_query(alternatives)))
        limit = max(1, self.searcher.num_docs)  # every match, as SQLite returns
        result = self.searcher.search(q.boolean_query(clauses), limit=limit, count=False)
        addresses = [address for _score, address in result.hits]
        return {f"M{n:07d}" for n in self.searcher.fast_field_values("rowid", addresses)}

    def size(self) -> int:
        self.writer.wait_merging_threads()
        return _dir_size(self.path)

    def close(self) -> None:
        pass


# -- measuring -------------------------------------------------------------------


@dataclass
class Result:
    name: str
    rate: float
    size: int
    single_ms: float
    latencies: dict[str, list[float]]
    hits: dict[str, list[int]]
    answers: dict[str, list[set[str]]]


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def measure(
    engine: Engine, corpus: Corpus, queries: dict[str, list[tuple[str | None, str]]]
) -> Result:
    docs = corpus.docs[:-SINGLE_COMMITS]
    elapsed = 0.0
    for start in range(0, len(docs), BATCH):
        elapsed += _timed(lambda start=start: engine.index(docs[start : start + BATCH]))[0]
    print(f"  {engine.name}: indexed {len(docs)} in {elapsed:.1f} s", flush=True)
    singles = [_timed(lambda d=d: engine.index([d]))[0] for d in corpus.docs[-SINGLE_COMMITS:]]
    size = engine.size()
    latencies: dict[str, list[float]] = {}
    hits: dict[str, list[int]] = {}
    answers: dict[str, list[set[str]]] = {}
    for kind, items in queries.items():
        for field, query in items[:3]:  # warm up
            engine.search(field, query)
        timed = [_timed(lambda f=f, q=q: engine.search(f, q)) for f, q in items]
        latencies[kind] = [seconds * 1000 for seconds, _ids in timed]
        answers[kind] = [ids for _seconds, ids in timed]
        hits[kind] = [len(ids) for ids in answers[kind]]
    engine.close()
    return Result(
        engine.name,
        len(docs) / elapsed,
        size,
        statistics.median(singles) * 1000,
        latencies,
        hits,
        answers,
    )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(results: list[Result], count: int) -> None:
    print(f"\n{count} documents; {machine()}\n")
    rows = [
        [r.name, f"{r.rate:,.0f}", f"{r.size / 1e6:,.1f} MB", f"{r.single_ms:.1f}"] for r in results
    ]
    print(table(["engine", "index rate (docs/s)", "size on disk", "1-doc commit p50 (ms)"], rows))
    print()
    rows = []
    for kind in KINDS:
        for r in results:
            lat = r.latencies[kind]
            rows.append(
                [
                    kind,
                    r.name,
                    f"{_percentile(lat, 0.5):.2f}",
                    f"{_percentile(lat, 0.99):.2f}",
                    f"{statistics.mean(r.hits[kind]):,.0f}",
                ]
            )
    print(table(["query", "engine", "p50 (ms)", "p99 (ms)", "mean hits"], rows))
    if len(results) == 2:
        for kind in KINDS:
            pairs = zip(results[0].answers[kind], results[1].answers[kind], strict=True)
            differ = sum(a != b for a, b in pairs)
            if differ:
                print(f"note: {differ} {kind} queries gave different ids in the two engines")


def plot(results: list[Result], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(results)
    for i, r in enumerate(results):
        xs = [k + i * width for k in range(len(KINDS))]
        axes[0].bar(
            xs, [_percentile(r.latencies[k], 0.5) for k in KINDS], width, label=f"{r.name} p50"
        )
        axes[0].scatter(
            xs, [_percentile(r.latencies[k], 0.99) for k in KINDS], marker="_", s=200, color="black"
        )
        axes[1].scatter(
            [h for k in KINDS for h in r.hits[k]],
            [ms for k in KINDS for ms in r.latencies[k]],
            s=6,
            label=r.name,
        )
    axes[0].set_xticks([k + width * (len(results) - 1) / 2 for k in range(len(KINDS))], KINDS)
    axes[0].set_ylabel("ms (bar: p50, tick: p99)")
    axes[0].set_title("query latency")
    axes[0].legend()
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("ids returned")
    axes[1].set_ylabel("ms")
    axes[1].set_title("latency vs result size")
    axes[1].legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="queries per kind")
    parser.add_argument("--no-tantivy", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    corpus = make_corpus(args.docs)
    queries = make_queries(corpus, args.queries)
    print(
        f"generated {len(corpus.docs)} documents in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    engines: list[tuple[str, Callable[[Path], Engine]]] = [("sqlite", SqliteEngine)]
    try:
        import tantivy  # noqa: F401

        if not args.no_tantivy:
            engines.append(("tantivy", TantivyEngine))
    except ImportError:
        print("tantivy is not installed: SQLite FTS5 only (pip install tantivy)")
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    try:
        for name, factory in engines:
            (tmp / name).mkdir()
            results.append(measure(factory(tmp / name), corpus, queries))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, len(corpus.docs))
    plot(results, ROOT / "benchmarks" / "results" / "search.png")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
