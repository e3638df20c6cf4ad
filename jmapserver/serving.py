"""Running the app under gunicorn with uvicorn workers, programmatically.

No preload: each worker builds its own :class:`Core` after the fork (an LMDB
environment opened before a fork must not be used after it), so the master
process never holds the backend open while it serves.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from .config import ConfigError, Settings
from .tls import check_tls

log = logging.getLogger("jmapserver")

WORKER_CLASS = "jmapserver.worker.JmapWorker"


class PortInUse(ConfigError):
    """Another process already listens on the address."""


def check_port(host: str, port: int) -> None:
    """Fail early, with a sentence, if we cannot bind ``host:port``.

    SO_REUSEADDR as gunicorn uses it, so a port left in TIME_WAIT by a
    previous run is not reported as busy, but a listening one is.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as ex:
        raise ConfigError(f"cannot listen on {host}:{port}: {ex.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as ex:
            if ex.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {port} on {host} is already in use (another server is running?); "
                    f"stop it or choose another address with --listen HOST:PORT"
                ) from None
            raise ConfigError(f"cannot listen on {host}:{port}: {ex.strerror}") from None


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """gunicorn configured from :class:`Settings` instead of its own command line."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        settings = self.settings
        url = settings.url()

        def when_ready(server: Any) -> None:
            log.info("jmapcore serving %s/ (session: %s/.well-known/jmap)", url, url)

        options: dict[str, Any] = {
            "bind": [settings.listen],
            "workers": settings.workers,
            "worker_class": WORKER_CLASS,
            "preload_app": False,
            "loglevel": settings.log_level,
            "accesslog": None,
            "errorlog": "-",
            "graceful_timeout": 10,
            "timeout": 60,
            "keepalive": 5,
            "proc_name": "jmapcore",
            # One fixed control-socket path per user would make two servers fight over it.
            "control_socket_disable": True,
            "when_ready": when_ready,
        }
        if settings.tls:
            # The worker class adds the TLS 1.2 floor (see jmapserver.tls).
            options["certfile"] = str(settings.tls_cert)
            options["keyfile"] = str(settings.tls_key)
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Runs in each worker after the fork: open the backend here."""
        from .app import create_app
        from .wiring import build_core

        core = build_core(self.settings)
        return create_app(
            core,
            base_url=self.settings.base_url,
            trust_forwarded=self.settings.trust_forwarded,
            close_core_on_shutdown=True,
        )


def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; the exit status of gunicorn's arbiter."""
    check_port(settings.host, settings.port)
    check_tls(settings)
    try:
        GunicornServer(settings).run()
    except SystemExit as ex:  # the arbiter leaves through sys.exit
        code = ex.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.stdout.flush()
    return 0
