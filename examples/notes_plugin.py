"""An example third-party plugin: a ``Note`` data type.

It declares one capability and one data type; the six standard methods
(Note/get, /changes, /set, /copy, /query, /queryChanges) come from the type
description alone.  To ship it, point an entry point at ``plugin``::

    [project.entry-points."jmapcore.plugins"]
    notes = "notes_plugin:plugin"
"""

from __future__ import annotations

import time
from typing import Any

from jmapcore import Core  # noqa: F401  (re-exported for readers of the example)
from jmapcore.datatype import DataType, Filter, Property, property_sort
from jmapcore.errors import SetError
from jmapcore.registry import Plugin
from jmapcore.wire import Id

NOTES = "https://example.com/jmap/notes"


def _stamp(ctx: Any, record: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Server-set ``updated``: the time of the last change, in UTC."""
    record["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _title_not_blank(ctx: Any, record: dict[str, Any], old: dict[str, Any] | None) -> SetError | None:
    if not record["title"].strip():
        return SetError.invalid_properties(["title"], "A note needs a title.")
    return None


Note = DataType(
    name="Note",
    capability=NOTES,
    properties={
        "title": Property(str),
        "body": Property(str, default=""),
        "isPinned": Property(bool, default=False),
        "parentId": Property(Id | None, default=None, ref="Note"),
        "updated": Property(str, server_set=True),
    },
    filters={
        "text": Filter(str, lambda note, text: text.casefold() in (note["title"] + " " + note["body"]).casefold()),
        "isPinned": Filter(bool, lambda note, pinned: note["isPinned"] is pinned),
    },
    sorts={
        "title": property_sort("title", text=True),
        "updated": property_sort("updated"),
        "isPinned": property_sort("isPinned", indexed=False),
    },
    compute=_stamp,
    validate=_title_not_blank,
)

plugin = Plugin(capability=NOTES, session_capability={"maxNoteLength": 100_000}, types=[Note])
