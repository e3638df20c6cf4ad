"""The sans-I/O entry point: bytes and a principal in, status and bytes out.

:class:`Core` is what an HTTP front (or an embedder, or a test) calls.  It
knows nothing of sockets: :meth:`Core.api` takes a request body and returns
an :class:`HttpResult`; the front only moves bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .auth import AccessTokens, Authenticator, Principal
from .dispatch import run_request
from .errors import ProblemError
from .registry import Plugin, Registry
from .storage import AccountInfo, Backend, BlobInfo, Snapshot, UnknownAccount
from .wire import CORE, encode

log = logging.getLogger(__name__)

UNREFERENCED_BLOB_LIFETIME = 3600.0  # [core-6-blobLifetime] at least one hour
#: [core-5.2-cannotCalculate] changes can be computed from any state of the last 30 days.
CHANGE_LOG_RETENTION = 30 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Limits:
    """The core capability's limits ([core-2-coreCapLimits]); all enforced."""

    maxSizeUpload: int = 50_000_000
    maxConcurrentUpload: int = 4
    maxSizeRequest: int = 10_000_000
    maxConcurrentRequests: int = 4
    maxCallsInRequest: int = 32
    maxObjectsInGet: int = 500
    maxObjectsInSet: int = 500
    collationAlgorithms: tuple[str, ...] = ("i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap")


@dataclass(frozen=True, slots=True)
class HttpResult:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def problem(error: ProblemError) -> HttpResult:
    return HttpResult(error.status, encode(error.to_dict()), "application/problem+json")


@dataclass(slots=True)
class _Gate:
    """Counts in-flight work per principal to enforce a concurrency limit.

    Per process: each server worker enforces the limit on its own.
    """

    limit: int
    name: str
    status: int = 429
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def enter(self, who: str) -> Iterator[None]:
        with self._lock:
            count = self._counts.get(who, 0)
            if count >= self.limit:
                raise ProblemError.limit(
                    self.name, f"At most {self.limit} concurrent {self.name[13:].lower()}s.", self.status
                )
            self._counts[who] = count + 1
        try:
            yield
        finally:
            with self._lock:
                self._counts[who] -= 1
                if not self._counts[who]:
                    del self._counts[who]


class Core:
    """One JMAP server: a backend, the registered capabilities and limits."""

    def __init__(
        self,
        backend: Backend,
        registry: Registry | None = None,
        limits: Limits | None = None,
        *,
        plugins: tuple[Plugin, ...] = (),
        secret: bytes | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """``secret`` signs short-lived access tokens; processes serving the
        same data must share it (default: random, good for one process).
        ``options`` are the operator's settings for plugins, under a key each
        plugin documents (``"push"``: see ``jmap_basics.push_policy``)."""
        self.backend = backend
        self.options: dict[str, Any] = dict(options or {})
        self.registry = registry if registry is not None else Registry.from_entry_points(plugins)
        self.limits = limits or Limits()
        self.authenticator = Authenticator(backend.directory)
        self.access_tokens = AccessTokens(backend.directory, secret or secrets.token_bytes(32))
        for spec in self.registry.indexes():
            backend.register_index(spec)
        attach = getattr(backend, "attach", None)
        if callable(attach):
            attach(self)  # a backend with an outside store reports its changes to the plugins
        self._requests = _Gate(self.limits.maxConcurrentRequests, "maxConcurrentRequests")
        self._uploads = _Gate(self.limits.maxConcurrentUpload, "maxConcurrentUpload")
        self._accounts: dict[str, tuple[float, AccountInfo | None]] = {}
        self._session_states: dict[Principal, tuple[float, str]] = {}

    # -- accounts and capabilities ----------------------------------------

    def account_info(self, account_id: str) -> AccountInfo | None:
        """Account metadata, cached briefly (it changes only by admin action)."""
        hit = self._accounts.get(account_id)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        info = self.backend.directory.get_account(account_id)
        self._accounts[account_id] = (now + 5.0, info)
        return info

    def account_capability(self, account: AccountInfo, uri: str) -> Mapping[str, Any] | None:
        plugin = self.registry.plugins.get(uri)
        if uri == CORE:
            return {}
        if plugin is None:
            return None
        value = plugin.account_capability
        return value(account) if callable(value) else value

    def capability_objects(self) -> dict[str, Any]:
        caps: dict[str, Any] = {CORE: self.core_capability()}
        for uri, plugin in self.registry.plugins.items():
            if uri == CORE:
                continue
            value = plugin.session_capability
            caps[uri] = dict(value(self) if callable(value) else value)
        return caps

    def core_capability(self) -> dict[str, Any]:
        return dataclasses.asdict(self.limits) | {
            "collationAlgorithms": list(self.limits.collationAlgorithms)
        }

    # -- the session resource ([core-2-sessionGet]) -------------------------

    def session(
        self,
        principal: Principal,
        base_url: str,
        transport_capabilities: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The session resource; ``transport_capabilities`` are those the
        front serves itself (WebSocket, whose URL it alone knows)."""
        base = base_url.rstrip("/")
        accounts: dict[str, Any] = {}
        primary: dict[str, str] = {}
        for account_id in principal.account_ids:
            info = self.account_info(account_id)
            if info is None:
                continue
            caps: dict[str, Any] = {}
            for uri in self.capability_objects():
                value = self.account_capability(info, uri)
                if value is not None:
                    caps[uri] = dict(value)
                    if uri != CORE:
                        primary.setdefault(uri, account_id)
            accounts[account_id] = {
                "name": info.name,
                "isPersonal": info.is_personal,
                "isReadOnly": info.is_read_only,
                "accountCapabilities": caps,
            }
        session: dict[str, Any] = {
            "capabilities": self.capability_objects(),
            "accounts": accounts,
            "primaryAccounts": primary,
            "username": principal.name,
            "apiUrl": f"{base}/jmap/api/",
            "downloadUrl": f"{base}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?type={{type}}",
            "uploadUrl": f"{base}/jmap/upload/{{accountId}}/",
            "eventSourceUrl": f"{base}/jmap/eventsource/?types={{types}}&closeafter={{closeafter}}&ping={{ping}}",
        }
        # The state leaves the transport's capabilities out, so that it
        # matches the sessionState every API response carries.
        session["state"] = self._session_state(session)
        for uri, value in (transport_capabilities or {}).items():
            session["capabilities"][uri] = dict(value)
        return session

    def session_state(self, principal: Principal) -> str:
        """The ``state`` of the principal's session ([core-2-state]).

        Echoed in every response, so it is cached briefly: it changes only
        when an administrator changes accounts or capabilities.
        """
        now = time.monotonic()
        hit = self._session_states.get(principal)
        if hit is not None and hit[0] > now:
            return hit[1]
        state = self._session_state(self.session(principal, ""))
        self._session_states[principal] = (now + 5.0, state)
        return state

    @staticmethod
    def _session_state(session: Mapping[str, Any]) -> str:
        # The URLs depend on how the client reached us, not on what it may use.
        keys = ("capabilities", "accounts", "primaryAccounts", "username")
        digest = hashlib.sha256(encode({k: session[k] for k in keys}))
        return digest.hexdigest()[:16]

    # -- the API endpoint --------------------------------------------------

    def api(self, principal: Principal, body: bytes, content_type: str | None = "application/json") -> HttpResult:
        """Run one JMAP request ([core-3.1-post])."""
        try:
            if len(body) > self.limits.maxSizeRequest:
                raise ProblemError.limit(
                    "maxSizeRequest", f"The request is larger than {self.limits.maxSizeRequest} octets."
                )
            if content_type is not None and content_type.split(";")[0].strip().lower() != "application/json":
                raise ProblemError.not_json("The request's Content-Type must be application/json.")
            with self._requests.enter(principal.name):
                return HttpResult(200, run_request(self, principal, body))
        except ProblemError as ex:
            return problem(ex)

    # -- blobs ([core-6.1-upload], [core-6.2-download]) ----------------------

    def upload(self, principal: Principal, account_id: str, data: bytes, content_type: str | None) -> HttpResult:
        try:
            if account_id not in principal.account_ids or self.account_info(account_id) is None:
                raise ProblemError("notFound", 404, "No account with that id is available to you.")
            info = self.account_info(account_id)
            if info is not None and info.is_read_only:
                raise ProblemError("forbidden", 403, "The account is read-only.")
            if len(data) > self.limits.maxSizeUpload:
                raise ProblemError.limit(
                    "maxSizeUpload", f"Uploads are limited to {self.limits.maxSizeUpload} octets.", 413
                )
            with self._uploads.enter(principal.name):
                blob = self.backend.put_blob(account_id, data, principal.name)
        except ProblemError as ex:
            return problem(ex)
        self.backend.expire_blobs(account_id, time.time() - UNREFERENCED_BLOB_LIFETIME)
        result = {
            "accountId": account_id,
            "blobId": blob.blob_id,
            "type": content_type or "application/octet-stream",
            "size": blob.size,
        }
        return HttpResult(201, encode(result))

    def blob_visible(self, principal: Principal, blob: BlobInfo | None) -> bool:
        """[core-6.1-uploaderOnly] an unreferenced blob is the uploader's alone."""
        return blob is not None and (blob.refs > 0 or blob.uploader in (None, principal.name))

    def read_blob(self, principal: Principal, snap: Snapshot, blob_id: str) -> bytes | None:
        """A blob's octets if the principal may see it: stored blobs, or
        ones a plugin derives from a stored blob (a message's MIME part)."""
        blob = snap.blob_info(blob_id)
        if blob is not None:
            return snap.read_blob(blob_id) if self.blob_visible(principal, blob) else None
        for plugin in self.registry.plugins.values():
            if plugin.blob_resolver is None:
                continue
            found = plugin.blob_resolver(snap, blob_id)
            if found is not None:
                data, source = found
                return data if self.blob_visible(principal, snap.blob_info(source)) else None
        return None

    def download(
        self, principal: Principal, account_id: str, blob_id: str, offset: int = 0, length: int | None = None
    ) -> tuple[bytes, int] | None:
        """The blob's bytes (a range of them) and its full size, or None (404)."""
        if account_id not in principal.account_ids:
            return None
        try:
            with self.backend.snapshot(account_id) as snap:
                blob = snap.blob_info(blob_id)
                if blob is not None:
                    if not self.blob_visible(principal, blob):
                        return None
                    data = snap.read_blob(blob_id, offset, length)
                    return (data, blob.size) if data is not None else None
                whole = self.read_blob(principal, snap, blob_id)
        except (UnknownAccount, ValueError):  # no such account, or a malformed id
            return None
        if whole is None:
            return None
        end = len(whole) if length is None else offset + length
        return whole[offset:end], len(whole)

    def rebuild_search(self, account_id: str) -> dict[str, int]:
        """Re-index every searchable type of an account from its records,
        then start a new epoch so no query state from before is trusted."""
        counts: dict[str, int] = {}
        for plugin in self.registry.plugins.values():
            for type_name, documents in plugin.search_documents.items():
                with self.backend.snapshot(account_id) as snap:
                    counts[type_name] = self.backend.rebuild_search(account_id, type_name, documents(snap))
        if counts:
            self.backend.bump_epoch(account_id)
        return counts

    def maintain(self, now: float | None = None) -> None:
        """Housekeeping, safe to run from several workers at once: drop
        change-log rows older than the retention period and unreferenced
        blobs older than their lifetime, in every account."""
        now = time.time() if now is None else now
        for account in self.backend.directory.list_accounts():
            try:
                keep_from = self.backend.modseq_before(account.account_id, now - CHANGE_LOG_RETENTION)
                if keep_from:
                    self.backend.prune_changes(account.account_id, keep_from + 1)
                self.backend.expire_blobs(account.account_id, now - UNREFERENCED_BLOB_LIFETIME)
            except UnknownAccount:  # deleted meanwhile
                continue

    def close(self) -> None:
        self.backend.close()
