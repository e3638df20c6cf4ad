"""Names and limits of the submission capability (RFC 8621 §1.3.2, §6, §7)."""

from __future__ import annotations

SUBMISSION = "urn:ietf:params:jmap:submission"

IDENTITY = "Identity"
EMAIL_SUBMISSION = "EmailSubmission"
#: The outbound queue: one record per message waiting for the relay, in the
#: sending account's store (not a JMAP data type: no methods, no push).
QUEUE = "OutboundMessage"

#: [mail-1.3.2-submissionCap] the longest a client may hold a message back
#: (FUTURERELEASE HOLDFOR/HOLDUNTIL, RFC 4865), in seconds.
MAX_DELAYED_SEND = 7 * 24 * 3600
#: The largest message accepted for sending (octets, as sent).
MAX_SIZE = 25_000_000
#: [mail-7.5-errors] tooManyRecipients above this.
MAX_RECIPIENTS = 100
