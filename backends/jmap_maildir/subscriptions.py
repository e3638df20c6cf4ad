"""The ``subscriptions`` file at the root of the tree, as Dovecot keeps it.

Dovecot writes one subscribed mailbox per line, in its storage form (the
encoded segments joined by the layout's separator, ``.`` for Maildir++ and
``/`` for LAYOUT=fs; ``INBOX`` for INBOX). Newer files start with the
header ``V<tab>2`` and an empty line and join segments with a tab instead.
Both are read; a rewrite keeps the version it found (Dovecot itself starts
new files without the header), keeps the order of the lines, and keeps
every line it cannot decode, since another program may understand it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from . import dotlock
from .errors import InvalidName
from .names import INBOX, FolderPath, Layout, decode_segment, storage_name, validate_path

FILE_NAME = "subscriptions"
V2_HEADER = "V\t2\n\n"


def _separator(layout: Layout, v2: bool) -> str:
    if v2:
        return "\t"
    return "." if layout == "maildir++" else "/"


def decode_line(line: str, layout: Layout, escape_char: str | None, v2: bool) -> FolderPath:
    """The mailbox path of one line; :class:`InvalidName` if it has none."""
    if line == "INBOX":
        return INBOX
    segments = line.split(_separator(layout, v2))
    return validate_path(decode_segment(s, layout, escape_char) for s in segments)


def encode_line(path: FolderPath, layout: Layout, escape_char: str | None, v2: bool) -> str:
    return _separator(layout, v2).join(storage_name(path, layout, escape_char))


def _split(data: bytes | None) -> tuple[bool, list[str]]:
    text = (data or b"").decode("utf-8", "surrogateescape")
    v2 = text.startswith(V2_HEADER)
    if v2:
        text = text[len(V2_HEADER) :]
    return v2, [line for line in text.split("\n") if line]


def read(root: Path, layout: Layout, escape_char: str | None) -> set[FolderPath]:
    v2, lines = _split(dotlock.read_bytes(root / FILE_NAME))
    result: set[FolderPath] = set()
    for line in lines:
        try:
            result.add(decode_line(line, layout, escape_char, v2))
        except InvalidName:
            continue
    return result


def _rewrite(
    data: bytes | None,
    decide: Callable[[set[FolderPath]], set[FolderPath]],
    layout: Layout,
    escape_char: str | None,
) -> bytes:
    v2, lines = _split(data)
    decoded: list[tuple[str, FolderPath | None]] = []
    for line in lines:
        try:
            decoded.append((line, decode_line(line, layout, escape_char, v2)))
        except InvalidName:
            decoded.append((line, None))  # not ours to judge: kept as it is
    wanted = decide({path for _, path in decoded if path is not None})
    kept: list[str] = []
    present: set[FolderPath] = set()
    for line, path in decoded:
        if path is None:
            kept.append(line)
        elif path in wanted and path not in present:
            kept.append(line)
            present.add(path)
    kept.extend(encode_line(p, layout, escape_char, v2) for p in sorted(wanted - present))
    body = "".join(line + "\n" for line in kept)
    return ((V2_HEADER if v2 else "") + body).encode("utf-8", "surrogateescape")


def update(
    root: Path,
    decide: Callable[[set[FolderPath]], Iterable[Iterable[str]]],
    layout: Layout,
    escape_char: str | None,
    *,
    timeout: float = dotlock.DEFAULT_TIMEOUT,
    stale: float = dotlock.DEFAULT_STALE,
) -> None:
    """Rewrite the file with ``decide(currently subscribed paths)`` as the
    new subscribed set, under the dot-lock, so that concurrent changes by
    another server are never lost."""

    def checked(current: set[FolderPath]) -> set[FolderPath]:
        wanted = {validate_path(p) for p in decide(current)}
        for path in wanted - current:
            storage_name(path, layout, escape_char)  # refuse unstorable names
        return wanted

    dotlock.update(
        root / FILE_NAME,
        lambda data: _rewrite(data, checked, layout, escape_char),
        timeout=timeout,
        stale=stale,
    )
