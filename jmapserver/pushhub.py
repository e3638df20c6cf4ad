"""One change waiter per worker process, shared by every push listener.

A listener (an EventSource response, a WebSocket with push on, the
PushSubscription sender) registers the accounts it watches and the modseq it
has seen of each; one thread calls the backend's ``wait_for_change`` over
the union and wakes, on the event loop, the listeners of each account that
moved.  The backend's waiter sees commits of every process (LMDB polls its
meta page; the Maildir backend also folds in other programs' deliveries),
so a change made through any worker reaches listeners on every worker with
no message broker ([issue 5]).

One thread, not one per listener: ``asyncio.to_thread`` has a handful of
threads per process, and a hundred idle EventSource connections must not
starve the API of them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from jmapcore.push import PushFeed

log = logging.getLogger(__name__)

#: How long one wait_for_change call may block: new listeners' accounts join
#: the wait after at most this long (they are not missed meanwhile: their
#: baseline modseq is compared at the next round).
WAIT_SECONDS = 0.5


class Listener:
    """A registration: ``changed`` is set when a watched account moved."""

    def __init__(self, hub: PushHub, key: int, since: Mapping[str, int]) -> None:
        self.hub = hub
        self.key = key
        self.since = dict(since)
        self.changed = asyncio.Event()
        #: Set when the worker is shutting down: the stream should end.
        self.closed = False

    def advance(self, modseqs: Mapping[str, int]) -> None:
        """Record what the listener has now seen (after it pushed)."""
        self.hub.advance(self, modseqs)

    def close(self) -> None:
        self.hub.remove(self)


#: Every hub of this process, so that a stopping worker can end their streams.
_hubs: weakref.WeakSet[PushHub] = weakref.WeakSet()


def close_all_streams() -> None:
    """End the push streams of every hub in this process (worker shutdown)."""
    for hub in list(_hubs):
        hub.close_streams()


class PushHub:
    """Watches the accounts listeners care about; see the module docstring."""

    def __init__(self, backend: Any, wait_seconds: float = WAIT_SECONDS) -> None:
        _hubs.add(self)
        self.backend = backend
        self.wait_seconds = wait_seconds
        self._listeners: dict[int, Listener] = {}
        self._keys = itertools.count()
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- listeners (called on the event loop) ------------------------------

    def listen(self, since: Mapping[str, int]) -> Listener:
        """Register interest in accounts, each with the modseq already seen."""
        self._start()
        with self._lock:
            listener = Listener(self, next(self._keys), since)
            self._listeners[listener.key] = listener
        self._wakeup.set()
        return listener

    def advance(self, listener: Listener, modseqs: Mapping[str, int]) -> None:
        with self._lock:
            listener.since.update(modseqs)

    def remove(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.pop(listener.key, None)

    @property
    def listener_count(self) -> int:
        return len(self._listeners)

    def close_streams(self) -> None:
        """End every open push stream (the worker is stopping): a server
        waits for open responses, and these would otherwise never end."""
        with self._lock:
            listeners = list(self._listeners.values())
        for listener in listeners:
            listener.closed = True
            listener.changed.set()

    # -- the waiter thread --------------------------------------------------

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._loop = asyncio.get_running_loop()
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="jmap-push-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _watched(self) -> dict[str, int]:
        """Per account, the smallest modseq any listener has seen."""
        since: dict[str, int] = {}
        with self._lock:
            for listener in self._listeners.values():
                for account_id, modseq in listener.since.items():
                    seen = since.get(account_id)
                    since[account_id] = modseq if seen is None else min(seen, modseq)
        return since

    def _run(self) -> None:
        while not self._stopped.is_set():
            since = self._watched()
            if not since:
                self._wakeup.wait(self.wait_seconds)
                self._wakeup.clear()
                continue
            try:
                current = self.backend.wait_for_change(since, self.wait_seconds)
            except Exception:  # a broken backend read must not end push for good
                log.exception("waiting for changes failed")
                self._stopped.wait(1.0)
                continue
            moved = [a for a, m in since.items() if current.get(a, m) > m]
            if moved and self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._wake, current, moved)
                except RuntimeError:  # the loop closed: the worker is stopping
                    return
                # Until the listeners advance, the same accounts look moved:
                # give them a moment instead of spinning.
                self._stopped.wait(0.05)

    def _wake(self, current: Mapping[str, int], moved: Iterable[str]) -> None:
        moved = set(moved)
        with self._lock:
            listeners = list(self._listeners.values())
        for listener in listeners:
            if any(current.get(a, 0) > m for a, m in listener.since.items() if a in moved):
                listener.changed.set()


#: A burst of commits is gathered for this long before one event goes out.
COALESCE_SECONDS = 0.02
#: At most one event per listener this often: a burst of changes becomes a
#: bounded number of events ([core-7.1-stateChange] coalescing is allowed).
MIN_EVENT_INTERVAL = 0.25


class PushStream:
    """A :class:`~jmapcore.push.PushFeed` driven by the hub: await the next
    StateChange worth sending, with coalescing and a rate bound."""

    def __init__(self, hub: PushHub, feed: PushFeed) -> None:
        self.hub = hub
        self.feed = feed
        self._listener = hub.listen(feed.modseqs())
        self._last_event = 0.0

    async def poll(self) -> dict[str, Any] | None:
        """The feed's StateChange now (None if nothing it wants moved)."""
        change = await asyncio.to_thread(self.feed.poll)
        self._listener.advance(self.feed.modseqs())
        if change is not None:
            self._last_event = time.monotonic()
        return change

    async def next_change(self, timeout: float | None) -> dict[str, Any] | None:
        """The next StateChange, or None when ``timeout`` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._listener.changed.wait(), remaining)
            except TimeoutError:
                return None
            if self.closed:
                return None
            spacing = self._last_event + MIN_EVENT_INTERVAL - time.monotonic()
            await asyncio.sleep(max(COALESCE_SECONDS, spacing))
            self._listener.changed.clear()
            change = await self.poll()
            if change is not None:
                return change

    @property
    def closed(self) -> bool:
        """True once the worker asked push streams to end."""
        return self._listener.closed

    def close(self) -> None:
        self._listener.close()
