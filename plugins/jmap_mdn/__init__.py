"""Message Disposition Notifications (RFC 9007): MDN/parse and MDN/send.

A capability of its own, ``urn:ietf:params:jmap:mdn``, registered through
the ``jmapcore.plugins`` entry point ``mdn``.  MDN/send needs the mail
capability in ``using`` too ([mdn-2.1-send]: it updates Emails and uses
Identities) and sends through the submission plugin's outbound queue.

* :mod:`.report`: RFC 8098 reports, read and written (no storage);
* :mod:`.parse`: MDN/parse, MDN objects of stored or uploaded messages;
* :mod:`.send`: MDN/send.
"""

from __future__ import annotations

from jmapcore.registry import Method, Plugin

from .constants import MDN
from .parse import MdnParseArgs, mdn_parse
from .send import MdnSendArgs, mdn_send

plugin = Plugin(
    capability=MDN,
    # [mdn-1.3-capability] an empty object in the session and in every account.
    session_capability={},
    account_capability={},
    methods=[
        Method("MDN/parse", mdn_parse, MdnParseArgs, MDN),
        Method("MDN/send", mdn_send, MdnSendArgs, MDN, writes=True),
    ],
    push_types=(),
)

__all__ = ["MDN", "plugin"]
