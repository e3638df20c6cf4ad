"""The file-system layer of the Maildir backend (issue 4).

It knows Maildir++ (and Dovecot's LAYOUT=fs) as Dovecot and Courier write
it, and nothing about JMAP records, LMDB or the mail plugin: folder names
(:mod:`.names`, :mod:`.mutf7`), flags and ``dovecot-keywords``
(:mod:`.flags`, :mod:`.keywords_file`), crash-safe writes, hard links and
cheap change detection (:mod:`.tree`, :mod:`.scan`, :mod:`.folders`).
The backend (:mod:`.backend`, entry point :func:`open_backend`) keeps
its sidecar index in LMDB and mirrors mail writes into :class:`MaildirTree`.
"""

from __future__ import annotations

from .backend import MaildirBackend, open_backend
from .errors import (
    FolderExists,
    FolderHasChildren,
    FolderNotEmpty,
    FolderNotFound,
    InvalidName,
    LockTimeout,
    MaildirError,
    MessageGone,
    UnsafePath,
)
from .flags import (
    FLAG_KEYWORDS,
    KEYWORD_FLAGS,
    TRASHED,
    MaildirFlags,
    format_info,
    parse_info,
    split_name,
)
from .folders import Folder, FolderListChanges, FolderListing
from .keywords_file import KeywordTable
from .mutf7 import ModifiedUtf7Error
from .mutf7 import decode as mutf7_decode
from .mutf7 import encode as mutf7_encode
from .names import INBOX, FolderPath, Layout, folder_dirname, folder_path
from .scan import (
    Change,
    FolderChanges,
    FolderScan,
    FolderStamp,
    MessageEntry,
    MessageFile,
)
from .tree import TMP_MAX_AGE, MaildirTree, RecoveryReport

__all__ = [
    "FLAG_KEYWORDS",
    "INBOX",
    "KEYWORD_FLAGS",
    "TMP_MAX_AGE",
    "TRASHED",
    "Change",
    "Folder",
    "FolderChanges",
    "FolderExists",
    "FolderHasChildren",
    "FolderListChanges",
    "FolderListing",
    "FolderNotEmpty",
    "FolderNotFound",
    "FolderPath",
    "FolderScan",
    "FolderStamp",
    "InvalidName",
    "KeywordTable",
    "Layout",
    "LockTimeout",
    "MaildirError",
    "MaildirBackend",
    "MaildirFlags",
    "MaildirTree",
    "MessageEntry",
    "MessageFile",
    "MessageGone",
    "ModifiedUtf7Error",
    "RecoveryReport",
    "UnsafePath",
    "folder_dirname",
    "folder_path",
    "format_info",
    "mutf7_decode",
    "mutf7_encode",
    "open_backend",
    "parse_info",
    "split_name",
]
