"""The file-system layer of the Maildir backend (issue 4).

It knows Maildir++ (and Dovecot's LAYOUT=fs) as Dovecot and Courier write
it, and nothing about JMAP records, LMDB or the mail plugin: folder names
(:mod:`.names`, :mod:`.mutf7`), flags and ``dovecot-keywords``
(:mod:`.flags`, :mod:`.keywords_file`).
"""

from __future__ import annotations

from .errors import InvalidName, LockTimeout, MaildirError, UnsafePath
from .flags import (
    FLAG_KEYWORDS,
    KEYWORD_FLAGS,
    TRASHED,
    MaildirFlags,
    format_info,
    parse_info,
    split_name,
)
from .keywords_file import KeywordTable
from .mutf7 import ModifiedUtf7Error
from .mutf7 import decode as mutf7_decode
from .mutf7 import encode as mutf7_encode
from .names import INBOX, FolderPath, Layout, folder_dirname, folder_path

__all__ = [
    "FLAG_KEYWORDS",
    "INBOX",
    "KEYWORD_FLAGS",
    "TRASHED",
    "FolderPath",
    "InvalidName",
    "KeywordTable",
    "Layout",
    "LockTimeout",
    "MaildirError",
    "MaildirFlags",
    "ModifiedUtf7Error",
    "UnsafePath",
    "folder_dirname",
    "folder_path",
    "format_info",
    "mutf7_decode",
    "mutf7_encode",
    "parse_info",
    "split_name",
]
