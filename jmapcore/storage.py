"""The storage interface: Protocols and value types only.

Backends (LMDB, Maildir, later PostgreSQL) implement these; the core and the
plugins only ever talk to storage through them.  Nothing here does I/O.

The model, per account:

* one monotonic **modseq**, raised once per committed :class:`WriteBatch`;
* for each data type, the last modseq that touched it (its *type modseq*,
  from which the JMAP state string is made);
* a **change log** with one row per (type, modseq, id), written in the same
  transaction as the records, read back with :meth:`Snapshot.changes`;
* secondary **indexes** declared by data types (:class:`IndexSpec`), kept by
  the backend on every write, scanned in key order by :meth:`Snapshot.scan_index`;
* a content-addressed, reference-counted **blob store** with ranged reads;
* a **full-text search** index of :class:`SearchDocument` values, written in
  step with the records (a record is never queryable but unsearchable);
* an **epoch** that changes when an account's indexes are rebuilt, so that an
  old state string yields ``cannotCalculateChanges`` rather than a wrong delta.

Accounts and the principals that may use them live in the :class:`Directory`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

#: A stored record: the JSON-shaped object a data type's /get would return
#: (before property projection), always including its ``id``.
Record = dict[str, Any]

#: A scalar that can appear in an index key.  Order: None < False < True <
#: numbers < strings < bytes; see :mod:`jmapcore.keycodec`.
KeyPart = None | bool | int | float | str | bytes

#: Computes the index keys of one record; one record may have zero, one or
#: many keys (for example one per mailbox it is in).
IndexExtractor = Callable[[Record], Iterable[tuple[KeyPart, ...]]]


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """A secondary index a data type asks the backend to keep.

    The backend stores ``(key..., id)`` for each key the extractor returns and
    keeps it in step with every write of the type.
    """

    type_name: str
    name: str
    extract: IndexExtractor


class ChangeKind(enum.IntEnum):
    """What happened to one record at one modseq."""

    CREATED = 1
    UPDATED = 2
    DESTROYED = 3


class LogPosition(NamedTuple):
    """A point in a type's change log.

    ``offset`` counts rows of ``modseq`` already delivered, so that one very
    large change can still be paged through with intermediate states.
    ``offset == 0`` means *all* of ``modseq`` was delivered (the ordinary
    state); ``LogPosition(m, k)`` with ``k > 0`` lies after ``LogPosition(m - 1)``
    and before ``LogPosition(m)``, so tuple order is not log order there.
    """

    modseq: int
    offset: int = 0


@dataclass(slots=True)
class ChangesPage:
    """The coalesced changes of one type between two log positions."""

    created: list[str]
    updated: list[str]
    destroyed: list[str]
    #: Where the next page starts; also the state the client reaches.
    position: LogPosition
    has_more: bool
    #: Properties that changed, for ids listed only as updated and whose
    #: every logged update named its properties (``touch`` rows); ``None``
    #: when any update was a full record write.
    updated_properties: list[str] | None = None


@dataclass(slots=True)
class Put:
    """Create or replace one record.

    ``changed`` names the properties an update changed, when the writer
    knows it is only those (a mailbox whose counts moved): /changes can then
    say so (``updatedProperties``).  ``None`` means "any property".
    """

    type_name: str
    record: Record
    created: bool
    changed: tuple[str, ...] | None = None


@dataclass(slots=True)
class Destroy:
    type_name: str
    id: str


@dataclass(slots=True)
class Touch:
    """Log an update of a record without rewriting it (for example a
    mailbox whose counts changed), naming the properties that changed."""

    type_name: str
    id: str
    properties: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """The text of one record for the full-text index, by field
    (for an Email: subject, from, to, cc, bcc, body, attachment names...).
    Destroying the record removes its document."""

    type_name: str
    id: str
    fields: Mapping[str, str]


@dataclass(slots=True)
class WriteBatch:
    """Everything one JMAP method writes, applied atomically or not at all.

    ``expect`` holds preconditions: type name -> the type modseq the writer
    read.  If any differs when the batch is applied, the backend raises
    :class:`StateConflict` and writes nothing; this is how ``ifInState`` and
    optimistic concurrency between workers are enforced.
    """

    account_id: str
    expect: dict[str, int] = field(default_factory=dict)
    puts: list[Put] = field(default_factory=list)
    destroys: list[Destroy] = field(default_factory=list)
    touches: list[Touch] = field(default_factory=list)
    #: blobId -> change in the number of records referencing it.
    blob_refs: dict[str, int] = field(default_factory=dict)
    #: Full-text documents to (re)index with this batch.
    search: list[SearchDocument] = field(default_factory=list)
    #: Set by a writer applying :class:`ExternalChanges`: record id -> the
    #: ``refs`` it gained (of an :class:`ExternalMessage` or
    #: :class:`ExternalUpdate`).  A backend that
    #: mirrors records into an outside store (Maildir files) records the link
    #: and does not write such a batch back; other backends ignore it.
    external: dict[str, list[str]] | None = None

    def is_empty(self) -> bool:
        return not (self.puts or self.destroys or self.touches or self.blob_refs or self.search)


@dataclass(frozen=True, slots=True)
class ExternalMessage:
    """A message another program put into mailboxes (a file dropped into a
    Maildir folder, with its hard links in others), already stored as a
    blob of the account."""

    mailbox_ids: tuple[str, ...]
    blob_id: str
    keywords: tuple[str, ...]
    #: Unix seconds (the file's mtime, as IMAP servers read it).
    received_at: float
    #: The backend's token for each mailbox's copy (same order as
    #: ``mailbox_ids``); see ``WriteBatch.external``.
    refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExternalUpdate:
    """Another program changed a message the backend already has as a
    record, in one mailbox."""

    record_id: str
    mailbox_id: str
    #: Its keywords now (a rename with other flags); None: unchanged.
    keywords: tuple[str, ...] | None = None
    #: It left the mailbox (removed, or flagged as deleted).
    removed: bool = False
    #: It was added to the mailbox (a hard link or move of its file): the
    #: token of the new copy.
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class ExternalMailbox:
    """Another program created, renamed or removed a folder."""

    #: The known record's id; None for a new mailbox.
    record_id: str | None
    #: Its name now (None when removed).
    name: str | None = None
    #: Its parent now: an existing record's id, or the ``ref`` of a mailbox
    #: created earlier in the same changes, or neither (top level).
    parent_id: str | None = None
    parent_ref: str | None = None
    removed: bool = False
    #: The backend's token for the folder; see ``WriteBatch.external``.
    ref: str = ""


@dataclass(slots=True)
class ExternalChanges:
    """What other programs changed in a backend's outside store since the
    last look, for the plugin that owns the records to apply."""

    account_id: str
    delivered: list[ExternalMessage] = field(default_factory=list)
    updated: list[ExternalUpdate] = field(default_factory=list)
    #: Folder changes, parents before children; applied before the rest.
    mailboxes: list[ExternalMailbox] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CommitResult:
    modseq: int
    #: type name -> its type modseq after the commit (for every type touched).
    type_modseqs: Mapping[str, int]


class StateConflict(Exception):
    """A :class:`WriteBatch` precondition failed; nothing was written."""

    def __init__(self, type_name: str, expected: int, actual: int) -> None:
        super().__init__(f"{type_name}: expected modseq {expected}, found {actual}")
        self.type_name = type_name
        self.expected = expected
        self.actual = actual


class StorageError(Exception):
    """A backend failure a client cannot fix (disk full, corruption...)."""


class AccountExists(StorageError):
    pass


class UnknownAccount(StorageError):
    pass


@dataclass(frozen=True, slots=True)
class BlobInfo:
    blob_id: str
    size: int
    #: Number of stored records that reference the blob.
    refs: int
    #: Unix time of the (last) upload, for unreferenced-blob expiry.
    uploaded_at: float
    #: Principal that uploaded it; an unreferenced blob is visible only to them.
    uploader: str | None


@dataclass(frozen=True, slots=True)
class AccountInfo:
    account_id: str
    name: str
    #: Principals allowed to use the account.
    owners: tuple[str, ...]
    is_personal: bool = True
    is_read_only: bool = False
    #: The email addresses that are this account's: mail to them is
    #: delivered here (LMTP), and its identities may send from them.
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PrincipalInfo:
    name: str
    password_hash: str
    #: Accounts the principal may use, the personal one first.
    account_ids: tuple[str, ...]


@runtime_checkable
class Snapshot(Protocol):
    """A consistent read view of one account.

    Everything read through one snapshot reflects one committed modseq.
    """

    account_id: str

    def modseq(self) -> int: ...
    def epoch(self) -> int: ...
    def type_modseq(self, type_name: str) -> int: ...
    def low_water(self, type_name: str) -> int:
        """The oldest modseq from which :meth:`changes` can still answer."""
        ...

    def get(self, type_name: str, record_id: str) -> Record | None: ...
    def get_many(self, type_name: str, record_ids: Sequence[str]) -> list[Record | None]: ...
    def count(self, type_name: str) -> int: ...
    def ids(self, type_name: str) -> Iterator[str]:
        """All ids of a type, in ascending id order."""
        ...

    def scan_index(
        self,
        type_name: str,
        index: str,
        prefix: tuple[KeyPart, ...] = (),
        *,
        reverse: bool = False,
    ) -> Iterator[tuple[tuple[KeyPart, ...], str]]:
        """Yield ``(key, id)`` of an index in key order (then id order),
        restricted to keys that start with ``prefix``."""
        ...

    def changes(self, type_name: str, since: LogPosition, max_changes: int | None) -> ChangesPage:
        """Coalesced changes after ``since``; at most ``max_changes`` ids.

        Raises :class:`LookupError` when ``since`` is below the low-water mark
        or beyond the current modseq.
        """
        ...

    def blob_info(self, blob_id: str) -> BlobInfo | None: ...
    def read_blob(self, blob_id: str, offset: int = 0, length: int | None = None) -> bytes | None: ...

    def search(self, type_name: str, field: str | None, query: str) -> set[str]:
        """Ids of records whose ``field`` (any field when None) matches
        ``query``: every word must occur (as a word prefix), "quoted phrases"
        as phrases, case- and accent-insensitively.  May include ids this
        snapshot no longer has (callers intersect with what they read) and
        may be remembered by the snapshot: treat the set as read-only."""
        ...


@runtime_checkable
class Directory(Protocol):
    """Accounts, principals and bearer tokens."""

    def create_account(self, account: AccountInfo) -> None: ...
    def update_account(self, account: AccountInfo) -> None:
        """Replace an account's metadata (its addresses...); raises UnknownAccount."""
        ...
    def delete_account(self, account_id: str) -> None: ...
    def get_account(self, account_id: str) -> AccountInfo | None: ...
    def list_accounts(self) -> list[AccountInfo]: ...

    def put_principal(self, principal: PrincipalInfo) -> None: ...
    def get_principal(self, name: str) -> PrincipalInfo | None: ...
    def delete_principal(self, name: str) -> None: ...
    def list_principals(self) -> list[PrincipalInfo]: ...

    def put_token(self, token_hash: str, principal: str) -> None: ...
    def token_principal(self, token_hash: str) -> str | None: ...
    def delete_tokens(self, principal: str) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """A storage backend: object store with change log, blob store,
    directory and change notification."""

    directory: Directory

    def register_index(self, spec: IndexSpec) -> None:
        """Ask the backend to keep an index; call before the first write."""
        ...

    def snapshot(self, account_id: str) -> AbstractContextManager[Snapshot]:
        """Open a read view; raises :class:`UnknownAccount`."""
        ...

    def commit(self, batch: WriteBatch) -> CommitResult:
        """Apply a batch atomically with its change-log rows.

        Raises :class:`StateConflict` if a precondition fails.
        """
        ...

    def put_blob(self, account_id: str, data: bytes, uploader: str | None) -> BlobInfo:
        """Store bytes (deduplicated by content) as an unreferenced blob of
        the account, or refresh the upload time of an existing one."""
        ...

    def expire_blobs(self, account_id: str, older_than: float) -> int:
        """Delete unreferenced blobs uploaded before ``older_than``."""
        ...

    def prune_changes(self, account_id: str, before_modseq: int) -> None:
        """Drop change-log rows older than ``before_modseq`` (raises the low-water mark)."""
        ...

    def modseq_before(self, account_id: str, when: float) -> int:
        """The last modseq committed before unix time ``when`` (0 if none),
        so a retention policy can be stated in days."""
        ...

    def rebuild_search(self, account_id: str, type_name: str, documents: Iterable[SearchDocument]) -> int:
        """Replace every search document of a type (after a crash, an
        upgrade or a tokenizer change); returns how many were indexed."""
        ...

    def bump_epoch(self, account_id: str) -> int:
        """Start a new epoch (after an index rebuild): old states become
        unusable for /changes."""
        ...

    def current_modseqs(self, account_ids: Iterable[str]) -> dict[str, int]:
        """Cheap read of each account's modseq (for push)."""
        ...

    def wait_for_change(self, since: Mapping[str, int], timeout: float) -> dict[str, int]:
        """Block until any account's modseq passes ``since`` or ``timeout``
        seconds pass; return the current modseqs.  Works across processes."""
        ...

    def close(self) -> None: ...
