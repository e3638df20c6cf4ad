"""Errors of the LMDB backend, all :class:`~jmapcore.storage.StorageError`."""

from __future__ import annotations

from jmapcore.storage import StorageError


class LmdbStorageError(StorageError):
    """Base of the errors this backend raises itself."""


class UnusablePath(LmdbStorageError):
    """The data directory cannot be created or opened as an LMDB environment."""


class BackendClosed(LmdbStorageError):
    """The backend was used after :meth:`LmdbBackend.close`."""


class ForkedWhileBusy(LmdbStorageError):
    """The process was forked while another thread was inside an LMDB
    transaction, so the child cannot safely open the environment."""


class SnapshotInvalidated(LmdbStorageError):
    """An open snapshot lost its transaction (the map was resized or the
    process forked) and the account changed since, so its consistent view
    cannot be restored.  Rare; retrying the request is enough."""
