"""JMAP Blob management (RFC 9404): Blob/upload, Blob/get and Blob/lookup.

A capability of its own, ``urn:ietf:params:jmap:blob``, registered through
the ``jmapcore.plugins`` entry point ``blob`` like any third-party plugin.
Blob/copy is unchanged by RFC 9404 and stays a core method in
:mod:`jmap_basics` ([blob-4-copyUnchanged]).

* :mod:`.upload`: Blob/upload, blobs made inside a request from text, base64
  and ranges of other blobs, usable as ``#creationId`` later in the request;
* :mod:`.get`: Blob/get, a range of a blob as text or base64, and digests;
* :mod:`.lookup`: Blob/lookup, which Emails (and so Threads and Mailboxes)
  reference a blob, answered from a reverse index of Emails by blobId.

Blobs are read through :meth:`jmapcore.api.Core.read_blob` and the blob
store, so the RFC 8620 visibility rules hold here too: an unreferenced
upload is its uploader's alone ([core-6.1-uploaderOnly]).
"""

from __future__ import annotations

from typing import Any

from jmapcore.registry import Method, Plugin
from jmapcore.storage import AccountInfo

from .constants import (
    BLOB,
    DIGESTS,
    MAX_DATA_SOURCES,
    MAX_SIZE_BLOB_SET,
)
from .get import BlobGetArgs, blob_get
from .lookup import LOOKUP_INDEXES, LOOKUP_TYPES, BlobLookupArgs, blob_lookup
from .upload import BlobUploadArgs, blob_upload


def account_capability(account: AccountInfo) -> dict[str, Any]:
    """[blob-3.1-capability] what every account may do with blobs."""
    return {
        "maxSizeBlobSet": MAX_SIZE_BLOB_SET,
        "maxDataSources": MAX_DATA_SOURCES,
        "supportedTypeNames": list(LOOKUP_TYPES),
        "supportedDigestAlgorithms": list(DIGESTS),
    }


plugin = Plugin(
    capability=BLOB,
    session_capability={},
    account_capability=account_capability,
    methods=[
        Method("Blob/upload", blob_upload, BlobUploadArgs, BLOB, writes=True),
        Method("Blob/get", blob_get, BlobGetArgs, BLOB),
        Method("Blob/lookup", blob_lookup, BlobLookupArgs, BLOB),
    ],
    push_types=(),
    indexes=LOOKUP_INDEXES,
)

__all__ = ["BLOB", "plugin"]
