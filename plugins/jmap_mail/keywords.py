"""Keywords (RFC 8621 §4.1.1): validated, and always lowercased."""

from __future__ import annotations

import re
from typing import Any

#: [mail-4.1.1-keywordSyntax] 1-255 of ASCII 0x21-0x7E except ( ) { ] % * " \
_ALLOWED = "".join(re.escape(chr(c)) for c in range(0x21, 0x7F) if chr(c) not in '(){]%*"\\')
_KEYWORD = re.compile(f"^[{_ALLOWED}]{{1,255}}$")

SEEN = "$seen"
DRAFT = "$draft"


def normalise(keywords: Any) -> dict[str, bool] | None:
    """``{keyword: true}`` lowercased, or None if any key or value is invalid."""
    if not isinstance(keywords, dict):
        return None
    result: dict[str, bool] = {}
    for keyword, value in keywords.items():
        if value is not True or not isinstance(keyword, str) or not _KEYWORD.match(keyword):
            return None
        result[keyword.lower()] = True
    return result


def is_unread(keywords: dict[str, bool]) -> bool:
    """[mail-2-counts] unread = neither $seen nor $draft."""
    return SEEN not in keywords and DRAFT not in keywords
