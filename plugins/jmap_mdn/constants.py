"""Names of the MDN capability (RFC 9007)."""

from __future__ import annotations

MDN = "urn:ietf:params:jmap:mdn"
MAIL = "urn:ietf:params:jmap:mail"
EMAIL = "Email"
#: The submission plugin's type: who the MDN is from.
IDENTITY = "Identity"
#: [mdn-1.2-keyword] always lowercase.
MDN_SENT = "$mdnsent"
