"""The MIME tree ([mail-4.1.4-bodyStructure]), found by scanning the message octets.

Each part records byte offsets into the raw message, so its content is an exact slice
(served as its own blob without re-encoding) and nothing is copied while parsing.
The stdlib parser was not used here: it keeps no offsets and rewrites line endings.

A multipart splits its own region at its delimiter lines, then each child is parsed
inside its slice, so a child can never run past a parent delimiter (nested parts
reusing the parent boundary, missing close delimiters). Depth, part count and the
number of near-miss delimiter lines are capped: work stays linear-ish and bounded.
"""

from __future__ import annotations

import re

from .encodedwords import text_form
from .headerblock import decode_fields, split_header_block
from .params import display_name, mime_type, parse_content_header
from .transfer import IDENTITY, classify, decode

MAX_DEPTH = 50  # deeper multiparts are treated as leaves
MAX_PARTS = 5_000  # per message; further parts are dropped
MAX_NEAR_MISSES = 100_000  # "--boundary..." lines that are not delimiters

_DELIMITER_TAIL = re.compile(rb"(--)?[ \t]*(\r?\n|\r?\Z)")
_ANGLED = re.compile(r"<([^<>]*)>")
_CONTENT_HEADERS = frozenset(
    ("content-type", "content-disposition", "content-transfer-encoding", "content-id",
     "content-language", "content-location")
)


class BodyPart:
    """One MIME entity. ``part_id`` is None exactly for multiparts (``sub_parts`` set)."""

    __slots__ = ("part_id", "headers", "type", "charset", "disposition", "cid", "language",
                 "location", "name", "sub_parts", "header_start", "body_start", "body_end",
                 "cte", "params", "raw", "_size")

    def __init__(self, raw: bytes, headers: list[tuple[str, str]], header_start: int,
                 body_start: int, body_end: int) -> None:
        self.raw = raw
        self.headers = headers
        self.header_start = header_start
        self.body_start = body_start
        self.body_end = body_end
        self.part_id: str | None = None
        self.type = "text/plain"
        self.charset: str | None = "us-ascii"
        self.disposition: str | None = None
        self.cid: str | None = None
        self.language: list[str] | None = None
        self.location: str | None = None
        self.name: str | None = None
        self.sub_parts: list[BodyPart] | None = None
        self.cte = IDENTITY
        self.params: dict[str, str] = {}
        self._size: int | None = None

    def __repr__(self) -> str:
        return f"<BodyPart {self.part_id or '-'} {self.type} {self.body_end - self.body_start}B>"

    @property
    def is_multipart(self) -> bool:
        return self.sub_parts is not None

    def encoded(self) -> bytes:
        """The part's content as it sits in the message (still transfer-encoded)."""
        return self.raw[self.body_start : self.body_end]

    def content(self) -> tuple[bytes, bool]:
        """(decoded octets, transfer-encoding problem); unknown encodings pass through."""
        return decode(self.encoded(), self.cte)

    @property
    def size(self) -> int:
        """Octets after transfer decoding ([mail-4.1.4-bodyPart] size)."""
        if self._size is None:
            if self.sub_parts is not None:
                self._size = 0
            elif self.cte == IDENTITY:
                self._size = self.body_end - self.body_start
            else:
                self._size = len(self.content()[0])
        return self._size

    def walk(self):
        """This part and all descendants, depth first."""
        yield self
        for child in self.sub_parts or ():
            yield from child.walk()


class _Budget:
    __slots__ = ("parts", "leaves")

    def __init__(self) -> None:
        self.parts = 0
        self.leaves = 0


def _first_content_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in _CONTENT_HEADERS and key not in found:
            found[key] = value
    return found


def _describe(part: BodyPart, content: dict[str, str], in_digest: bool) -> None:
    """Fill type, charset, disposition, name, cid, language, location from headers."""
    default_type = "message/rfc822" if in_digest else "text/plain"
    raw_type = content.get("content-type")
    params: dict[str, str] = {}
    if raw_type is None:
        part.type = default_type
    else:
        value, params = parse_content_header(raw_type)
        part.type = mime_type(value) or "text/plain"
    part.params = params
    charset = params.get("charset")
    if charset is not None:
        part.charset = charset.strip() or None
    else:
        part.charset = "us-ascii" if part.type.startswith("text/") else None
    filename = None
    raw_disposition = content.get("content-disposition")
    if raw_disposition is not None:
        disposition, disposition_params = parse_content_header(raw_disposition)
        part.disposition = disposition.split("(", 1)[0] or None
        filename = disposition_params.get("filename")
    part.name = display_name(filename if filename is not None else params.get("name"))
    raw_cid = content.get("content-id")
    if raw_cid is not None:
        angled = _ANGLED.search(raw_cid)
        cid = (angled.group(1) if angled else raw_cid).strip()
        part.cid = "".join(cid.split()) or None
    raw_language = content.get("content-language")
    if raw_language is not None:
        languages = [item.strip() for item in raw_language.split(",")]
        part.language = [item for item in languages if item] or None
    raw_location = content.get("content-location")
    if raw_location is not None:
        part.location = "".join(text_form(raw_location).split()) or None
    part.cte = classify(content.get("content-transfer-encoding"))


def split_multipart(raw: bytes, start: int, end: int, boundary: bytes,
                    limit: int) -> list[tuple[int, int]] | None:
    """Regions between delimiter lines of ``boundary`` in [start, end), at most ``limit``.

    None when no delimiter line exists at all. Without a close delimiter the last part
    runs to ``end``; the line break before a delimiter belongs to the delimiter.
    """
    if limit <= 0:
        return []
    dash = b"--" + boundary
    needle = b"\n" + dash
    regions: list[tuple[int, int]] = []
    part_start: int | None = None
    found_any = False
    misses = 0
    search_from = start
    tail = _DELIMITER_TAIL.match
    while True:
        if search_from == start and raw.startswith(dash, start, end):
            line_start = start
        else:
            newline = raw.find(needle, max(search_from - 1, start), end)
            if newline < 0:
                break
            line_start = newline + 1
        after = tail(raw, line_start + len(dash), end)
        if after is None:
            misses += 1
            if misses > MAX_NEAR_MISSES:
                break
            search_from = line_start + 1
            continue
        found_any = True
        if part_start is not None:
            content_end = line_start - 1 if line_start > start else start
            if content_end > part_start and raw[content_end - 1] == 0x0D:
                content_end -= 1
            regions.append((part_start, max(content_end, part_start)))
            if len(regions) >= limit:
                return regions
        part_start = after.end()
        if after.group(1):  # close delimiter: the rest is epilogue
            part_start = None
            break
        search_from = part_start
    if part_start is not None:
        regions.append((part_start, end))
    return regions if found_any else None


def parse_entity(raw: bytes, start: int, end: int, depth: int = 0, in_digest: bool = False,
                 budget: _Budget | None = None) -> BodyPart:
    """Parse the entity in raw[start:end] and, for multiparts, its children."""
    budget = budget or _Budget()
    budget.parts += 1
    fields, body_start = split_header_block(raw, start, end)
    headers = decode_fields(fields)
    part = BodyPart(raw, headers, start, body_start, end)
    _describe(part, _first_content_headers(headers), in_digest)
    if part.type.startswith("multipart/") and depth < MAX_DEPTH:
        boundary = part.params.get("boundary", "")
        regions = None
        if boundary:
            boundary_octets = boundary.encode("utf-8", "surrogateescape")
            regions = split_multipart(raw, body_start, end, boundary_octets,
                                      max(MAX_PARTS - budget.parts, 0))
        if regions is None:
            # No usable boundary: keep the multipart, its body one text/plain leaf.
            part.sub_parts = [_orphan_body(raw, body_start, end, budget)]
        else:
            digest = part.type == "multipart/digest"
            part.sub_parts = [
                parse_entity(raw, region_start, region_end, depth + 1, digest, budget)
                for region_start, region_end in regions
            ]
        return part
    budget.leaves += 1
    part.part_id = str(budget.leaves)
    return part


def _orphan_body(raw: bytes, start: int, end: int, budget: _Budget) -> BodyPart:
    budget.parts += 1
    budget.leaves += 1
    leaf = BodyPart(raw, [], start, start, end)
    leaf.part_id = str(budget.leaves)
    return leaf
