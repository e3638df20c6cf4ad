"""vCard import rate: ``jmapcore import NAME cards.vcf`` on LMDB, through the real CLI.

Generates ``--cards`` vCards (seeded; half vCard 3.0 as phones and Apple
Contacts export them, half vCard 4.0; each with FN, N, two EMAIL, two TEL,
ADR, ORG, TITLE, NOTE, BDAY, CATEGORIES, UID and one X- property), makes a
fresh data directory with ``jmapcore account add``, and times:

* parsing alone (``jmap_contacts.vcard.read_vcards``, in-process): vobject's
  content-line grammar plus the RFC 9555 mapping;
* ``jmapcore import`` as a user runs it (a new process: start-up, opening
  LMDB, parsing, ContactCard/set in batches of 100 with validation, uid
  checks, indexes and the search role), wall clock, and the rate the
  command's own summary reports (the import without start-up);
* ``jmapcore export --contacts`` of the same cards (query, get, vCard 4.0).

Prints one table.  Run: python benchmarks/bench_vcard.py [--cards 1000,4000]
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine, table

sys.path.insert(0, str(ROOT / "plugins"))

from jmap_contacts.vcard import read_vcards  # noqa: E402

GIVEN = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Dennis",
         "Zoë", "Jürgen", "Beñat", "Søren", "Łucja", "Ana María", "Tony", "Adele", "Jean", "Katherine"]  # fmt: skip
CITIES = ["London", "Paris", "Berlin", "Madrid", "Rome", "Vienna", "Prague", "Lisbon", "Dublin", "Oslo"]


def surname(rng: random.Random) -> str:
    syllables = ["ka", "ro", "mi", "ten", "bar", "lo", "vin", "sel", "dor", "an", "be", "quist", "ham", "ford"]
    return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))).capitalize()


def make_vcard(rng: random.Random, n: int) -> str:
    given, family, city = rng.choice(GIVEN), surname(rng), rng.choice(CITIES)
    user = f"{given.split()[0].lower()}.{family.lower()}{n}"
    v3 = n % 2 == 0
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0" if v3 else "VERSION:4.0",
        f"UID:urn:uuid:00000000-0000-4000-8000-{n:012d}",
        f"FN:{given} {family}",
        f"N:{family};{given};;;",
        f"EMAIL;TYPE=INTERNET,WORK,PREF:{user}@work.example" if v3 else f"EMAIL;TYPE=work;PREF=1:{user}@work.example",
        f"EMAIL;TYPE=INTERNET,HOME:{user}@home.example" if v3 else f"EMAIL;TYPE=home:{user}@home.example",
        f"item1.TEL;TYPE=CELL:+44 7700 {n % 1000000:06d}",
        "item1.X-ABLabel:mobile",
        f"TEL;TYPE=WORK,VOICE:+44 20 7946 {n % 10000:04d}",
        f"ADR;TYPE=HOME:;;{rng.randint(1, 200)} High Street;{city};;{rng.randint(10000, 99999)};United Kingdom",
        f"ORG:{surname(rng)} Ltd;Engineering",
        "TITLE:Engineer",
        f"NOTE:Met at the {city} conference\\, {rng.randint(2000, 2024)}. Likes {rng.choice(GIVEN)}'s talks.",
        f"BDAY:{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "CATEGORIES:colleague,conference",
        f"X-SOCIAL-ID:{n}",
        "END:VCARD",
    ]
    return "".join(line + "\r\n" for line in lines)


def jmapcore(*argv: str) -> tuple[float, str]:
    env_path = [str(ROOT), str(ROOT / "backends"), str(ROOT / "plugins")]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "jmapserver.cli", *argv], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": ":".join(env_path), "PATH": "/usr/bin:/bin"},
    )
    return time.perf_counter() - started, done.stdout


def run(count: int, work: Path) -> list[object]:
    rng = random.Random(count)
    source = work / f"cards-{count}.vcf"
    source.write_text("".join(make_vcard(rng, n) for n in range(count)), encoding="utf-8")
    started = time.perf_counter()
    parsed = read_vcards(source.read_bytes())
    parse_seconds = time.perf_counter() - started
    assert len(parsed.cards) == count and all(c.card is not None for c in parsed.cards)

    data = work / f"data-{count}"
    jmapcore("account", "add", "alice", "--password", "pw", "--data", str(data))
    wall, output = jmapcore("import", "alice", str(source), "--data", str(data), "--quiet")
    imported = int(re.search(r"imported ([\d,]+) of", output).group(1).replace(",", ""))
    reported = float(re.search(r"\(([\d,]+) cards/s\)", output).group(1).replace(",", ""))
    assert imported == count, output
    out = work / f"out-{count}.vcf"
    export_wall, _ = jmapcore("export", "alice", "--contacts", str(out), "--data", str(data))
    assert out.read_text(encoding="utf-8").count("BEGIN:VCARD") == count
    return [
        f"{count:,}",
        f"{source.stat().st_size / 1e6:.1f} MB",
        f"{count / parse_seconds:,.0f}",
        f"{count / wall:,.0f} ({wall:.1f} s)",
        f"{reported:,.0f}",
        f"{count / export_wall:,.0f} ({export_wall:.1f} s)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", default="1000,4000", help="comma-separated card counts")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-vcard-") as tmp:
        for count in (int(c) for c in args.cards.split(",")):
            rows.append(run(count, Path(tmp)))
    print(f"vCard import through the CLI on LMDB ({machine()})\n")
    print(table(
        ["cards", "file", "parse only (cards/s)", "jmapcore import, wall (cards/s)",
         "import as its summary reports (cards/s)", "jmapcore export, wall (cards/s)"],
        rows,
    ))


if __name__ == "__main__":
    main()
