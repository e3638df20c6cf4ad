"""Turning change-log rows into one page of /changes.

Pure logic over an ordered stream of ``(modseq, seq, row)``, so it does not
depend on how rows are stored.  Pages end at a modseq boundary when they can
(every intermediate state is then a real state of the account); only when a
single modseq holds more distinct ids than ``max_changes`` does a page end
inside it, at ``LogPosition(modseq, rows delivered)``.
"""

from __future__ import annotations

from collections.abc import Iterable

from jmapcore.storage import ChangeKind, ChangesPage, LogPosition

from .codec import LogRow

_CREATED = int(ChangeKind.CREATED)
_UPDATED = int(ChangeKind.UPDATED)
_DESTROYED = int(ChangeKind.DESTROYED)


class _Entry:
    """What the page knows about one id: first and last change, and the
    properties named if every change was a touch naming them."""

    __slots__ = ("first", "last", "props")

    def __init__(self, row: LogRow) -> None:
        self.first = row.kind
        self.last = row.kind
        self.props: set[str] | None = set(row.props) if row.kind == _UPDATED and row.props else None

    def add(self, row: LogRow) -> None:
        self.last = row.kind
        if self.props is not None:
            if row.kind == _UPDATED and row.props:
                self.props.update(row.props)
            else:
                self.props = None


def _merge(acc: dict[str, _Entry], rows: Iterable[LogRow]) -> None:
    for row in rows:
        entry = acc.get(row.id)
        if entry is None:
            acc[row.id] = _Entry(row)
        else:
            entry.add(row)


def _page(acc: dict[str, _Entry], position: LogPosition, has_more: bool) -> ChangesPage:
    """Coalesce per [core-5.2-coalesce]: created+updated -> created,
    updated+destroyed -> destroyed, created+destroyed -> omitted."""
    created: list[str] = []
    updated: list[str] = []
    destroyed: list[str] = []
    props: set[str] | None = set()
    for record_id, entry in acc.items():
        if entry.first == _CREATED:
            if entry.last != _DESTROYED:
                created.append(record_id)
        elif entry.last == _DESTROYED:
            destroyed.append(record_id)
        else:
            updated.append(record_id)
            if props is not None and entry.props is not None:
                props |= entry.props
            else:
                props = None
    return ChangesPage(
        created=created,
        updated=updated,
        destroyed=destroyed,
        position=position,
        has_more=has_more,
        updated_properties=sorted(props) if updated and props is not None else None,
    )


def build_page(
    rows: Iterable[tuple[int, int, LogRow]],
    since: LogPosition,
    max_changes: int | None,
    end: LogPosition,
) -> ChangesPage:
    """One page of changes from ``rows`` (the log after ``since``, in order).

    ``end`` is the position reached when every row was consumed.
    """
    acc: dict[str, _Entry] = {}
    pending: list[LogRow] = []
    pending_new: set[str] = set()
    group: int | None = None
    merged_any = False
    last_complete = since.modseq
    for modseq, seq, row in rows:
        if modseq != group:
            if group is not None:
                _merge(acc, pending)
                merged_any = True
                last_complete = group
            group, pending, pending_new = modseq, [], set()
        if row.id not in acc and row.id not in pending_new:
            if max_changes is not None and len(acc) + len(pending_new) >= max_changes:
                if merged_any:
                    return _page(acc, LogPosition(last_complete, 0), True)
                # One modseq alone exceeds the limit: stop inside it.
                _merge(acc, pending)
                return _page(acc, LogPosition(modseq, seq), True)
            pending_new.add(row.id)
        pending.append(row)
    _merge(acc, pending)
    return _page(acc, end, False)
