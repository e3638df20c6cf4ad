"""The plugin API and the registry of capabilities, data types and methods.

A :class:`Plugin` declares one capability: its URI, its session and account
capability objects, its data types (each getting the standard methods it
lists), extra methods, and a hook run when an account is created.  Built-in
capabilities are found through the ``jmapcore.plugins`` entry-point group,
the same one a third-party plugin uses.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import msgspec

from .datatype import DataType
from .storage import AccountInfo, ExternalChanges, IndexSpec, SearchDocument, Snapshot
from .wire import CORE

if TYPE_CHECKING:
    from .api import Core
    from .context import CallContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "jmapcore.plugins"

Handler = Callable[["CallContext", Any], Any]


@dataclass(frozen=True, slots=True)
class Method:
    """One JMAP method.

    ``args_type`` is a msgspec Struct the raw arguments are decoded into (so
    unknown or mistyped arguments become ``invalidArguments``); ``None``
    passes the arguments as a plain dict.  The handler returns the response
    arguments (a dict or a Struct) or raises :class:`~jmapcore.errors.MethodError`.
    """

    name: str
    handler: Handler
    args_type: type | None = None
    capability: str = CORE
    #: True for methods that change state (refused on read-only accounts).
    writes: bool = False
    _decoder: Any = field(default=None, compare=False, repr=False)

    def decoder(self) -> msgspec.json.Decoder:
        if self._decoder is None:
            kind = self.args_type if self.args_type is not None else dict[str, Any]
            object.__setattr__(self, "_decoder", msgspec.json.Decoder(kind))
        return self._decoder


@dataclass(slots=True)
class Plugin:
    """A capability as a plugin declares it.

    ``session_capability`` and ``account_capability`` are the capability
    objects for the session's ``capabilities`` and each account's
    ``accountCapabilities``; either may be a callable.  An
    ``account_capability`` callable returning ``None`` means the account
    does not have the capability ([core-2-accountCapabilities]).
    """

    capability: str
    session_capability: Mapping[str, Any] | Callable[[Core], Mapping[str, Any]] = field(
        default_factory=dict
    )
    account_capability: (
        Mapping[str, Any] | Callable[[AccountInfo], Mapping[str, Any] | None] | None
    ) = field(default_factory=dict)
    types: Sequence[DataType] = ()
    methods: Sequence[Method] = ()
    #: Runs once when an account is created (for example default mailboxes).
    on_account_created: Callable[[Core, AccountInfo], None] | None = None
    #: Type names that appear in push StateChange objects (default: ``types``).
    push_types: Sequence[str] | None = None
    #: Other capability URIs this one needs in ``using`` too.
    requires: Sequence[str] = ()
    #: Serves blobIds the backend does not store (for example one MIME part
    #: of a stored message): returns the octets and the stored blobId they
    #: come from (whose visibility decides), or None if not one of its ids.
    blob_resolver: Callable[[Snapshot, str], tuple[bytes, str] | None] | None = None
    #: Type name -> every full-text document of that type in a snapshot, for
    #: rebuilding the search index (``jmapcore reindex``).
    search_documents: Mapping[str, Callable[[Snapshot], Iterable[SearchDocument]]] = field(default_factory=dict)
    #: Applies changes other programs made in a backend's outside store
    #: (Maildir deliveries), so the backend never imports the plugin; called
    #: by backends that ``attach`` to the Core, before a snapshot is answered.
    external_changes: Callable[[Core, ExternalChanges], None] | None = None
    #: Long-running jobs (sending push subscriptions' deliveries...): a
    #: server runs each in a thread of every worker process, from start-up
    #: until the ``threading.Event`` it is given is set.  Jobs in several
    #: processes must share their work through the backend, not memory.
    background: Sequence[Callable[[Core, threading.Event], None]] = ()
    #: Extra backend indexes the plugin needs on any registered type (a
    #: reverse index of another plugin's records, as Blob/lookup's of Emails
    #: by blobId); kept by the backend like a data type's own indexes.
    indexes: Sequence[IndexSpec] = ()


class Registry:
    """Capabilities, data types and methods known to one server."""

    def __init__(self) -> None:
        self.plugins: dict[str, Plugin] = {}
        self.types: dict[str, DataType] = {}
        self.methods: dict[str, Method] = {}

    def add(self, plugin: Plugin) -> None:
        if plugin.capability in self.plugins:
            raise ValueError(f"capability {plugin.capability} registered twice")
        from .standard import standard_methods  # the standard methods import this module

        self.plugins[plugin.capability] = plugin
        for data_type in plugin.types:
            if data_type.name in self.types:
                raise ValueError(f"data type {data_type.name} registered twice")
            self.types[data_type.name] = data_type
            for method in standard_methods(data_type):
                self._add_method(method)
        for method in plugin.methods:
            self._add_method(method)

    def _add_method(self, method: Method) -> None:
        # A plugin's own method replaces a generated standard one of the
        # same name (a type with extra arguments writes its own /get).
        self.methods[method.name] = method

    def indexes(self) -> list[IndexSpec]:
        specs = [spec for data_type in self.types.values() for spec in data_type.indexes()]
        return specs + [spec for plugin in self.plugins.values() for spec in plugin.indexes]

    def push_types(self) -> list[str]:
        names: list[str] = []
        for plugin in self.plugins.values():
            names.extend(plugin.push_types if plugin.push_types is not None else [t.name for t in plugin.types])
        return names

    @classmethod
    def from_entry_points(
        cls, extra: Iterable[Plugin] = (), *, group: str = ENTRY_POINT_GROUP
    ) -> Registry:
        """Load every installed plugin (built-in ones included), then ``extra``."""
        registry = cls()
        for entry in sorted(entry_points(group=group), key=lambda e: e.name):
            loaded = entry.load()
            plugins = loaded() if callable(loaded) and not isinstance(loaded, Plugin) else loaded
            for plugin in plugins if isinstance(plugins, list | tuple) else [plugins]:
                log.debug("plugin %s from entry point %s", plugin.capability, entry.name)
                registry.add(plugin)
        for plugin in extra:
            registry.add(plugin)
        return registry
