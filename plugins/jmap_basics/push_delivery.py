"""Delivering push subscriptions' pushes (RFC 8620 §7.2), from every worker.

The server runs :func:`delivery_job` in a thread of each worker process
(``Plugin.background``).  Each waits for a commit in any account
(``wait_for_change``, which works across processes), then makes one pass
over every subscription (:meth:`Deliverer.run_once`):

* a subscription whose credential is no longer valid (a changed password,
  a deleted token) or that has expired is erased [core-7.2-credentials]
  [core-7.2-expires];
* an unverified one gets only its PushVerification [core-7.2-verifyFirst];
* a verified one gets a StateChange when a type it listens to moved since
  its stored push position (a :class:`jmapcore.push.PushFeed`), filtered by
  its ``types`` [core-7.2-typesFilter].

Work is shared through the store, not memory: a worker *claims* a push by
writing it into the record as ``pending`` with a lease, together with the
new position, in a write conditional on the type's modseq; another worker
reading the same record loses the write and finds the lease.  So each
change is sent once, whichever worker saw it first.  If a worker dies
mid-send, the lease runs out and another retries (then, and only then, a
push may arrive twice).

A POST has ``Content-Type: application/json``, a ``TTL`` and an
``Urgency`` header [core-7.2-postFormat]; with ``keys`` the body is
encrypted per RFC 8291 (aes128gcm, by the ``http_ece`` library, with a
fresh server key per message) [core-8.7-pushEncryption].  Failures (no
connection, 5xx, 408) are retried with exponential backoff from
:data:`BACKOFF_FIRST` up to :data:`BACKOFF_MAX` seconds, at most
:data:`MAX_ATTEMPTS` times; a retried StateChange absorbs the changes made
meanwhile.  A 429 doubles the subscription's minimum interval between
pushes (up to :data:`SLOW_MAX`; ``Retry-After`` honoured) and successes
halve it again.  Other 4xx answers and URLs the SSRF guard refuses
[core-8.6-ssrf] are not retried.  Every outcome is logged.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jmapcore.auth import Principal
from jmapcore.push import PushFeed
from jmapcore.storage import Record, UnknownAccount

from . import push_store as store
from .push_methods import parse_utc_date, policy_of
from .push_policy import PushPolicy, Unresolvable, UrlRefused

if TYPE_CHECKING:
    from jmapcore.api import Core

log = logging.getLogger("jmap_basics.push")

LEASE = 60.0
MAX_ATTEMPTS = 8
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
SLOW_MAX = 300.0
#: Per connect/read: a worker stopping waits for sends in flight.
POST_TIMEOUT = 5.0
#: RFC 8030 TTL: how long a push service may keep an undelivered push.
TTL_SECONDS = 43200
MAX_RESPONSE = 64 * 1024
#: The longest the job sleeps without looking (stop requests, retries due).
IDLE_WAIT = 1.0
#: How often a pass reads every account anyway.
FULL_PASS_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one POST came to."""

    status: int | None
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        if self.status is None:
            return self.error is not None and not self.error.startswith("refused")
        return self.status >= 500 or self.status in (408, 429)

    def describe(self) -> str:
        return str(self.status) if self.status is not None else (self.error or "error")


#: (url, JSON body, keys or None, urgency) -> Outcome.
Sender = Callable[[str, dict[str, Any], dict[str, str] | None, str], Outcome]


# -- HTTP -----------------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address the SSRF guard checked, not a new lookup."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def encrypt(body: bytes, keys: dict[str, str]) -> bytes:
    """RFC 8291 aes128gcm with a fresh server key [core-8.7-pushEncryption]."""
    import base64

    import http_ece
    from cryptography.hazmat.primitives.asymmetric import ec

    def unb64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    return http_ece.encrypt(
        body,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=unb64(keys["p256dh"]),
        auth_secret=unb64(keys["auth"]),
        version="aes128gcm",
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(max(float(value.strip()), 0.0), 3600.0)
    except ValueError:
        return None  # an HTTP date: the backoff decides


def http_sender(policy: PushPolicy, timeout: float = POST_TIMEOUT) -> Sender:
    """POSTs with the stdlib, through the SSRF guard, with timeouts."""

    def send(url: str, body: dict[str, Any], keys: dict[str, str] | None, urgency: str) -> Outcome:
        try:
            scheme, host, port = policy.check_url(url)
            address = policy.resolve(host, port)  # [core-8.6-ssrf] at every delivery
        except Unresolvable as ex:
            return Outcome(None, f"dns: {ex}")  # retried
        except UrlRefused as ex:
            return Outcome(None, f"refused: {ex}")
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        # [core-7.2-postFormat]
        headers = {
            "Content-Type": "application/json",
            "TTL": str(TTL_SECONDS),
            "Urgency": urgency,
        }
        if keys is not None:
            payload = encrypt(payload, keys)
            headers["Content-Encoding"] = "aes128gcm"
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kind = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
        connection = kind(host, port, str(address), timeout)
        try:
            connection.request("POST", target, body=payload, headers=headers)
            response = connection.getresponse()
            response.read(MAX_RESPONSE)
            return Outcome(response.status, None, _retry_after(response.getheader("Retry-After")))
        except (OSError, http.client.HTTPException) as ex:
            return Outcome(None, f"{type(ex).__name__}: {ex}"[:200])
        finally:
            connection.close()

    return send


# -- the deliverer ------------------------------------------------------------------


def backoff(attempts: int) -> float:
    return min(BACKOFF_FIRST * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


def merge_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """One StateChange holding both (the newer state of a type wins)."""
    changed = {account: dict(types) for account, types in old.get("changed", {}).items()}
    for account, types in new.get("changed", {}).items():
        changed.setdefault(account, {}).update(types)
    return {"@type": "StateChange", "changed": changed}


class Deliverer:
    """One worker's share of the deliveries (see the module docstring).

    ``send`` and ``clock`` are replaceable for tests; without an
    ``executor`` sends run inline in :meth:`run_once`.
    """

    def __init__(
        self,
        core: Core,
        *,
        send: Sender | None = None,
        clock: Callable[[], float] = time.time,
        executor: Executor | None = None,
    ) -> None:
        self.core = core
        self.policy = policy_of(core)
        self.send = send or http_sender(self.policy)
        self.clock = clock
        self.executor = executor
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        #: Each account's modseq at the last pass, and those holding subscriptions.
        self._modseqs: dict[str, int] = {}
        self._holding: set[str] = set()
        self._next_full_pass = 0.0

    def run_once(self) -> float:
        """One pass over the subscriptions; seconds until a retry is due
        (``inf``: nothing is due until the next change).

        Reads the accounts known to hold subscriptions, and those whose
        modseq moved since the last pass (where one may have been created),
        not every account: a commit costs one modseq read per account."""
        now = self.clock()
        due = math.inf
        accounts = [a.account_id for a in self.core.backend.directory.list_accounts()]
        modseqs = self.core.backend.current_modseqs(accounts)
        full = now >= self._next_full_pass
        if full:
            self._next_full_pass = now + FULL_PASS_SECONDS
        for account_id in accounts:
            moved = modseqs.get(account_id) != self._modseqs.get(account_id)
            if not (full or moved or account_id in self._holding):
                continue
            try:
                _, records = store.read_all(self.core, account_id)
            except UnknownAccount:
                continue
            if records:
                self._holding.add(account_id)
            else:
                self._holding.discard(account_id)
            for record in records:
                try:
                    due = min(due, self._consider(account_id, record, now))
                except Exception:  # one broken record must not stop the others
                    log.exception("push subscription %s: delivery pass failed", record.get("id"))
        self._modseqs = modseqs
        return max(0.0, due - now)

    # -- deciding -------------------------------------------------------------

    def _principal(self, record: Record) -> Principal | None:
        info = self.core.backend.directory.get_principal(record.get("principal", ""))
        if info is None:
            return None
        return Principal(info.name, tuple(info.account_ids), record.get("credential", ""))

    def _consider(self, account_id: str, record: Record, now: float) -> float:
        record_id = record["id"]
        if not store.credential_alive(self.core, record.get("principal", ""), record.get("credential", "")):
            store.erase(self.core, account_id, record_id, "its credential is no longer valid")
            return math.inf
        expires = parse_utc_date(record.get("expires"))
        if expires is not None and expires <= now:
            store.erase(self.core, account_id, record_id, "expired")  # [core-7.2-expires]
            return math.inf
        pending = record.get("pending")
        if pending is not None:
            if pending.get("lease", 0.0) > now:
                return pending["lease"]
            not_before = pending.get("next", 0.0)
            if not_before > now:
                return not_before
        elif not record.get("verified"):
            return math.inf  # [core-7.2-verifyFirst] nothing but the verification
        if pending is None or pending.get("kind") == "state":
            gate = (record.get("lastSentAt") or 0.0) + record.get("slow", 0.0)
            if gate > now:
                return gate  # slowed down after 429s
        principal = self._principal(record)
        if principal is None:
            return math.inf
        position = record.get("position")
        body = pending["body"] if pending is not None else None
        if record.get("verified") and (pending is None or pending.get("kind") == "state"):
            feed = PushFeed(self.core, principal, record.get("types"), since=position)
            # An unreadable position starts from now (the feed's default).
            change = feed.poll() if feed.resumed else None
            if change is not None:
                body = merge_changes(body, change) if body is not None else change
            new_position = feed.push_state()
        else:
            new_position = position
        if body is None:
            return math.inf
        return self._claim(account_id, record, body, new_position, now)

    def _claim(self, account_id: str, seen: Record, body: dict[str, Any], position: str | None, now: float) -> float:
        token = secrets.token_hex(8)
        kind = seen["pending"]["kind"] if seen.get("pending") else "state"

        def claim(current: Record) -> Record | None:
            if current.get("pending") != seen.get("pending") or current.get("position") != seen.get("position"):
                return None  # someone else moved it on
            if kind == "state" and not current.get("verified"):
                return None
            previous = current.get("pending") or {}
            current["pending"] = {
                "kind": kind,
                "body": body,
                "attempts": previous.get("attempts", 0),
                "next": 0.0,
                "lease": now + LEASE,
                "owner": self.owner,
                "token": token,
            }
            current["position"] = position
            return current

        claimed = store.update(self.core, account_id, seen["id"], claim)
        if claimed is None:
            return math.inf
        job = (account_id, claimed, token)
        if self.executor is None:
            return self._deliver(*job)
        self.executor.submit(self._deliver, *job)
        return now + LEASE  # the outcome's write wakes every worker sooner

    # -- sending --------------------------------------------------------------

    def _deliver(self, account_id: str, record: Record, token: str) -> float:
        """Send a claimed push and record the outcome; when to look again."""
        pending = record["pending"]
        urgency = "high" if pending["kind"] == "verify" else "normal"
        try:
            outcome = self.send(record["url"], pending["body"], record.get("keys"), urgency)
        except Exception as ex:  # noqa: BLE001 - a sender bug is a failed delivery
            log.exception("push subscription %s: sending failed", record["id"])
            outcome = Outcome(None, f"{type(ex).__name__}: {ex}"[:200])
        now = self.clock()
        return self._record(account_id, record, token, outcome, now)

    def _record(self, account_id: str, sent: Record, token: str, outcome: Outcome, now: float) -> float:
        kind = sent["pending"]["kind"]
        attempts = sent["pending"].get("attempts", 0) + 1
        verdict: list[str] = []
        due = [math.inf]

        def note(current: Record) -> Record | None:
            pending = current.get("pending")
            if pending is None or pending.get("token") != token:
                return None  # verified meanwhile, or a lease we lost
            current["lastAt"] = now
            current["lastResult"] = f"{kind} {outcome.describe()}"
            slow = current.get("slow", 0.0)
            if outcome.ok:
                current["pending"] = None
                current["sent"] = current.get("sent", 0) + 1
                current["failures"] = 0
                current["lastSentAt"] = now
                current["slow"] = slow / 2 if slow >= 2 else 0.0
                verdict[:] = ["delivered"]
                return current
            current["failures"] = current.get("failures", 0) + 1
            if outcome.status == 429:  # [core-7.2-postFormat] push less often
                slow = min(max(slow * 2, 2.0), SLOW_MAX)
                current["slow"] = slow
            if not outcome.retryable or attempts >= MAX_ATTEMPTS:
                current["pending"] = None
                verdict[:] = ["dropped"]
                return current
            wait = max(backoff(attempts), outcome.retry_after or 0.0, slow if outcome.status == 429 else 0.0)
            current["pending"] = dict(pending, attempts=attempts, next=now + wait, lease=0.0, owner="", token="")
            verdict[:] = [f"retry in {wait:g}s"]
            due[0] = now + wait
            return current

        store.update(self.core, account_id, sent["id"], note)
        host = urlsplit(sent["url"]).hostname
        level = logging.INFO if outcome.ok else logging.WARNING
        log.log(
            level,
            "push %s to subscription %s (%s, %s): %s, attempt %d: %s",
            kind,
            sent["id"],
            sent.get("principal"),
            host,
            outcome.describe(),
            attempts,
            verdict[0] if verdict else "no longer pending",
        )
        return due[0]


def delivery_job(core: Core, stopping: threading.Event) -> None:
    """The background job: deliver until ``stopping`` is set."""
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="jmap-push-send")
    deliverer = Deliverer(core, executor=executor)
    try:
        while not stopping.is_set():
            accounts = [a.account_id for a in core.backend.directory.list_accounts()]
            seen = core.backend.current_modseqs(accounts)
            try:
                wait = deliverer.run_once()
            except Exception:  # keep delivering after a storage hiccup
                log.exception("push delivery pass failed")
                wait = IDLE_WAIT
            if stopping.is_set():
                break
            core.backend.wait_for_change(seen, min(max(wait, 0.05), IDLE_WAIT))
    finally:
        # Sends in flight finish and record their outcome before the core closes.
        executor.shutdown(wait=True, cancel_futures=True)
