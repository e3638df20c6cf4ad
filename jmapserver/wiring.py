"""From :class:`Settings` to a :class:`Core`: find the backend, open it, check the data dir.

Used by the admin commands (in the CLI's process) and by every gunicorn
worker (after the fork: an LMDB environment must not cross a fork).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from jmapcore.api import Core
from jmapcore.registry import Plugin, Registry
from jmapcore.storage import Backend

from .config import ConfigError, Settings

BACKEND_GROUP = "jmapcore.backends"

#: The built-in backends, for a source checkout run without ``pip install``
#: (no entry-point metadata yet).  An installed entry point always wins.
_SOURCE_CHECKOUT_BACKENDS = {"lmdb": "jmap_lmdb:open_backend", "maildir": "jmap_maildir:open_backend"}


def available_backends() -> list[str]:
    return sorted(
        {ep.name for ep in entry_points(group=BACKEND_GROUP)} | set(_SOURCE_CHECKOUT_BACKENDS)
    )


def find_backend(name: str) -> Callable[..., Backend]:
    """The ``open_backend(path, **options)`` function registered under ``name``."""
    found = entry_points(group=BACKEND_GROUP, name=name)
    try:
        if found:
            return next(iter(found)).load()
        if name in _SOURCE_CHECKOUT_BACKENDS:
            module, _, attribute = _SOURCE_CHECKOUT_BACKENDS[name].partition(":")
            return getattr(import_module(module), attribute)
    except (ImportError, AttributeError) as ex:
        raise ConfigError(f"backend {name!r} cannot be loaded: {ex}") from None
    raise ConfigError(f"unknown backend {name!r} (available: {', '.join(available_backends())})")


def check_data_dir(settings: Settings, *, create: bool) -> Path:
    """The data directory, checked: it exists (or is created), is a directory, is writable.

    Checked here, before a backend sees it, so the operator gets one clear
    sentence rather than a storage library's error.
    """
    data = settings.data
    if data is None:
        raise ConfigError("no data directory: pass --data DIR (or set data in the config file)")
    if data.exists() and not data.is_dir():
        raise ConfigError(f"data directory {data} is not a directory")
    if not data.exists():
        if not create:
            raise ConfigError(
                f"data directory {data} does not exist; create an account first with "
                f"'jmapcore account add NAME --password PW --data {data}'"
            )
        try:
            data.mkdir(parents=True)
        except OSError as ex:
            raise ConfigError(f"cannot create data directory {data}: {ex.strerror}") from None
    if not os.access(data, os.W_OK | os.X_OK):
        raise ConfigError(f"data directory {data} is not writable by this user")
    if not create and not any(data.iterdir()):
        raise ConfigError(
            f"data directory {data} is not initialised (it is empty); create an account first "
            f"with 'jmapcore account add NAME --password PW --data {data}'"
        )
    return data


def backend_options(settings: Settings) -> dict[str, Any]:
    options = dict(settings.backend_options)
    if settings.maildir_root is not None:
        options["maildir_root"] = str(settings.maildir_root)
    return options


def load_plugins(specs: list[str]) -> list[Plugin]:
    """``module:attribute`` names to plugins (an attribute may be a list of them)."""
    plugins: list[Plugin] = []
    for spec in specs:
        module, _, attribute = spec.partition(":")
        try:
            loaded = getattr(import_module(module), attribute)
        except (ImportError, AttributeError) as ex:
            raise ConfigError(f"plugin {spec!r} cannot be loaded: {ex}") from None
        loaded = loaded if isinstance(loaded, list | tuple) else [loaded]
        if not all(isinstance(plugin, Plugin) for plugin in loaded):
            raise ConfigError(f"plugin {spec!r} is not a jmapcore.registry.Plugin")
        plugins.extend(loaded)
    return plugins


SECRET_FILE = "server.key"


def server_secret(data: Path) -> bytes:
    """The key every worker signs access tokens with: made once, kept in
    the data directory, readable by the server's user only."""
    path = data / SECRET_FILE
    try:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    fresh = secrets.token_bytes(32)
    temporary = data / f".{SECRET_FILE}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(fresh)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(temporary, path)  # the first worker to get here wins
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_bytes()


def build_core(settings: Settings) -> Core:
    """A :class:`Core` on the configured backend with every installed plugin."""
    if settings.data is None:
        raise ConfigError("no data directory: pass --data DIR (or set data in the config file)")
    opener = find_backend(settings.backend)
    try:
        backend = opener(str(settings.data), **backend_options(settings))
    except TypeError as ex:  # an option the backend does not take
        raise ConfigError(f"backend {settings.backend!r} rejected its options: {ex}") from None
    try:
        try:
            registry = Registry.from_entry_points(load_plugins(settings.plugins))
        except ValueError as ex:  # a capability or data type registered twice
            raise ConfigError(f"plugins: {ex}") from None
        return Core(
            backend,
            registry,
            limits=settings.core_limits(),
            secret=server_secret(settings.data),
            options=settings.plugin_options(),
        )
    except BaseException:
        backend.close()
        raise
