"""Names and limits of the blob capability (RFC 9404 §3.1)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from jmapcore.api import Limits

BLOB = "urn:ietf:params:jmap:blob"

#: [blob-3.1-capability] the largest blob Blob/upload makes; RFC 9404 says it
#: SHOULD equal the core's maxSizeUpload.
MAX_SIZE_BLOB_SET = Limits().maxSizeUpload
#: [blob-3.1-capability] DataSourceObjects per creation (the RFC asks >= 64).
MAX_DATA_SOURCES = 256

#: [blob-3.1-capability] HTTP Digest algorithm names (lowercase), preferred
#: first, and the hash each one is.
DIGESTS: dict[str, Callable[..., Any]] = {
    "sha-256": hashlib.sha256,
    "sha": hashlib.sha1,
}
