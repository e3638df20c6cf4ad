"""JMAP Submission (RFC 8621 §1.3.2, §6, §7): Identity, EmailSubmission and
the outbound queue that sends through the operator's SMTP relay.

Registered through the public plugin API (the ``jmapcore.plugins`` entry
point ``submission``).  Other plugins queue mail for the relay with
:func:`jmap_submission.outbound.enqueue`.
"""

from __future__ import annotations

from typing import Any

from jmapcore.registry import Method, Plugin
from jmapcore.standard.args import ChangesArgs, GetArgs, SetArgs
from jmapcore.storage import AccountInfo

from .constants import MAX_DELAYED_SEND, MAX_SIZE, SUBMISSION
from .identity import (
    IDENTITY_TYPE,
    identity_changes,
    identity_get,
    identity_set,
    on_account_created,
)
from .outbound import enqueue, sender_job
from .submission import SUBMISSION_TYPE, SubmissionSetArgs, submission_set

__all__ = ["enqueue", "plugin"]


def may_send(account: AccountInfo) -> bool:
    """[mail-1.4-perAccount] an account sends only from addresses it owns."""
    return bool(account.addresses) and not account.is_read_only


def account_capability(account: AccountInfo) -> dict[str, Any] | None:
    """[mail-1.3.2-submissionCap] only on accounts that may send; the SMTP
    extensions a client may use through ``envelope`` parameters."""
    if not may_send(account):
        return None
    extensions: dict[str, list[str]] = {"SIZE": [str(MAX_SIZE)]}
    if MAX_DELAYED_SEND:
        extensions["FUTURERELEASE"] = [str(MAX_DELAYED_SEND)]
    return {"maxDelayedSend": MAX_DELAYED_SEND, "submissionExtensions": extensions}


plugin = Plugin(
    capability=SUBMISSION,
    session_capability={},
    account_capability=account_capability,
    types=[IDENTITY_TYPE, SUBMISSION_TYPE],
    methods=[
        Method("Identity/get", identity_get, GetArgs, SUBMISSION),
        Method("Identity/changes", identity_changes, ChangesArgs, SUBMISSION),
        Method("Identity/set", identity_set, SetArgs, SUBMISSION, writes=True),
        Method("EmailSubmission/set", submission_set, SubmissionSetArgs, SUBMISSION, writes=True),
    ],
    on_account_created=on_account_created,
    background=[sender_job],
)
