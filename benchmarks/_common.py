"""Shared helpers for the benchmark scripts: timing, tables, a demo Core."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import notes_plugin  # noqa: E402  (the example plugin, from examples/)

__all__ = ["ROOT", "machine", "notes_plugin", "per_call_seconds", "table"]


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def per_call_seconds(action: Callable[[], object], iterations: int, rounds: int = 7) -> float:
    """Median over ``rounds`` of the mean time of one ``action`` call."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iterations):
            action()
        samples.append((time.perf_counter() - start) / iterations)
    return statistics.median(samples)


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells[1:]])
