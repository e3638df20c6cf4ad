"""JMAP Mail (RFC 8621): Mailbox, Thread, Email and SearchSnippet.

Registered through the public plugin API like any third-party plugin (the
``jmapcore.plugins`` entry point ``mail``).  Submission and vacation
responses are separate capabilities.
"""

from __future__ import annotations

from typing import Any

from jmapcore.api import Core
from jmapcore.context import new_id
from jmapcore.registry import Method, Plugin
from jmapcore.standard import make_query, make_query_changes
from jmapcore.standard.args import CopyArgs, QueryArgs, QueryChangesArgs, SetArgs
from jmapcore.storage import AccountInfo, Put, WriteBatch

from .constants import (
    COUNT_PROPERTIES,
    DEFAULT_MAILBOXES,
    EMAIL_DELIVERY,
    MAIL,
    MAILBOX,
    MAX_MAILBOX_DEPTH,
    MAX_MAILBOXES_PER_EMAIL,
    MAX_SIZE_ATTACHMENTS_PER_EMAIL,
    MAX_SIZE_MAILBOX_NAME,
)
from .email import SORTS, Email, Thread, collapse_threads, total_hint
from .email_get import EmailGetArgs, EmailParseArgs, email_get, email_parse, resolve_part_blob
from .email_set import EmailImportArgs, email_copy, email_import, email_set
from .external import apply_external_changes
from .mailbox import ALL_RIGHTS, Mailbox
from .mailbox import METHODS as MAILBOX_METHODS
from .snippet import SearchSnippetArgs, search_snippet_get
from .store import search_documents


def account_capability(account: AccountInfo) -> dict[str, Any]:
    """[mail-1.3.1-mailCap]"""
    return {
        "maxMailboxesPerEmail": MAX_MAILBOXES_PER_EMAIL,
        "maxMailboxDepth": MAX_MAILBOX_DEPTH,
        "maxSizeMailboxName": MAX_SIZE_MAILBOX_NAME,
        "maxSizeAttachmentsPerEmail": MAX_SIZE_ATTACHMENTS_PER_EMAIL,
        "emailQuerySortOptions": sorted(SORTS),
        "mayCreateTopLevelMailbox": True,
    }


def create_default_mailboxes(core: Core, account: AccountInfo) -> None:
    """Inbox, Drafts, Sent, Archive, Junk and Trash, with their roles."""
    batch = WriteBatch(account.account_id)
    for name, role, sort_order in DEFAULT_MAILBOXES:
        record = {
            "id": new_id("M"),
            "name": name,
            "parentId": None,
            "role": role,
            "sortOrder": sort_order,
            "isSubscribed": True,
            "myRights": dict(ALL_RIGHTS),
            **dict.fromkeys(COUNT_PROPERTIES, 0),
        }
        batch.puts.append(Put(MAILBOX, record, created=True))
    core.backend.commit(batch)


class EmailQueryArgs(QueryArgs, kw_only=True):
    collapseThreads: bool = False


class EmailQueryChangesArgs(QueryChangesArgs, kw_only=True):
    collapseThreads: bool = False


plugin = Plugin(
    capability=MAIL,
    session_capability={},
    account_capability=account_capability,
    types=[Mailbox, Thread, Email],
    methods=[
        *MAILBOX_METHODS,
        Method("Email/get", email_get, EmailGetArgs, MAIL),
        Method("Email/set", email_set, SetArgs, MAIL, writes=True),
        Method("Email/query", make_query(Email, collapse_threads, total_hint), EmailQueryArgs, MAIL),
        Method("Email/queryChanges", make_query_changes(Email, collapse_threads), EmailQueryChangesArgs, MAIL),
        Method("Email/copy", email_copy, CopyArgs, MAIL, writes=True),
        Method("Email/import", email_import, EmailImportArgs, MAIL, writes=True),
        Method("Email/parse", email_parse, EmailParseArgs, MAIL),
        Method("SearchSnippet/get", search_snippet_get, SearchSnippetArgs, MAIL),
    ],
    on_account_created=create_default_mailboxes,
    push_types=[MAILBOX, "Thread", "Email", EMAIL_DELIVERY],
    blob_resolver=resolve_part_blob,
    search_documents={"Email": search_documents},
    external_changes=apply_external_changes,
)
