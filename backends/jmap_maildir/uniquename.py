"""Unique Maildir file names: ``<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>``.

The Maildir convention: time, process id and a per-process counter make a
name no other delivery (here or on another host sharing the tree) can
produce. ``,S=<size>`` is the Dovecot/Courier extension that lets a reader
know the size without a stat. In the host name ``/`` and ``:`` are written
``\\057`` and ``\\072`` as the Maildir spec asks, and ``,`` as ``\\054`` so
it cannot start a field.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import threading
import time
from dataclasses import dataclass

_OURS = re.compile(r"(?P<sec>\d+)\.M(?P<usec>\d+)P(?P<pid>\d+)Q(?P<n>\d+)\.(?P<host>[^,:]+)")


def sanitize_host(host: str) -> str:
    return host.replace("/", "\\057").replace(":", "\\072").replace(",", "\\054") or "localhost"


@dataclass(frozen=True, slots=True)
class NameParts:
    """What a name this module made says about its writer."""

    pid: int
    host: str


class NameGenerator:
    """Thread-safe source of unique base names for one process (the pid is
    read at each call, so a forked child never repeats its parent)."""

    def __init__(self, host: str | None = None) -> None:
        self.host = sanitize_host(host if host is not None else socket.gethostname())
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self, size: int) -> str:
        with self._lock:
            n = next(self._counter)
        now = time.time_ns()
        seconds, rest = divmod(now, 1_000_000_000)
        return f"{seconds}.M{rest // 1000}P{os.getpid()}Q{n}.{self.host},S={size}"


def parse(base: str) -> NameParts | None:
    """Writer details of a name in this module's format, else None."""
    match = _OURS.match(base)
    if match is None:
        return None
    return NameParts(int(match["pid"]), match["host"])
