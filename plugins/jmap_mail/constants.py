"""Names and limits of the mail capability (RFC 8621 §1.3.1)."""

from __future__ import annotations

MAIL = "urn:ietf:params:jmap:mail"

MAILBOX = "Mailbox"
THREAD = "Thread"
EMAIL = "Email"
#: Per-mailbox counts live in their own records so that a count change is
#: logged as a Mailbox update naming only the count properties.
MAILBOX_COUNTS = "MailboxCounts"
#: [mail-1.5-push] a pseudo-type whose state changes when mail arrives.
EMAIL_DELIVERY = "EmailDelivery"

MAX_MAILBOXES_PER_EMAIL = 1000
MAX_MAILBOX_DEPTH = 10
MAX_SIZE_MAILBOX_NAME = 255
MAX_SIZE_ATTACHMENTS_PER_EMAIL = 50_000_000
MAX_KEYWORDS_PER_EMAIL = 100

COUNT_PROPERTIES = ("totalEmails", "unreadEmails", "totalThreads", "unreadThreads")

#: [mail-2-role] the IANA registry of mailbox roles (lowercased).
ROLES = frozenset(
    {"all", "archive", "drafts", "flagged", "important", "inbox", "junk", "sent", "subscribed", "trash", "snoozed", "scheduled", "memos"}
)
#: Created with every account ([DESIGN] Inbox, Drafts, Sent, Trash, Junk, Archive).
DEFAULT_MAILBOXES = (
    ("Inbox", "inbox", 1),
    ("Drafts", "drafts", 2),
    ("Sent", "sent", 3),
    ("Archive", "archive", 4),
    ("Junk", "junk", 5),
    ("Trash", "trash", 6),
)
