"""The file-system layer of the Maildir backend (issue 4).

It knows Maildir++ (and Dovecot's LAYOUT=fs) as Dovecot and Courier write
it, and nothing about JMAP records, LMDB or the mail plugin. This first
part maps folder names (:mod:`.names`, :mod:`.mutf7`).
"""

from __future__ import annotations

from .errors import InvalidName, MaildirError, UnsafePath
from .mutf7 import ModifiedUtf7Error
from .mutf7 import decode as mutf7_decode
from .mutf7 import encode as mutf7_encode
from .names import INBOX, FolderPath, Layout, folder_dirname, folder_path

__all__ = [
    "INBOX",
    "FolderPath",
    "InvalidName",
    "Layout",
    "MaildirError",
    "ModifiedUtf7Error",
    "UnsafePath",
    "folder_dirname",
    "folder_path",
    "mutf7_decode",
    "mutf7_encode",
]
