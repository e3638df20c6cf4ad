"""The gunicorn worker class: uvicorn's, with our choices of its options."""

from __future__ import annotations

import asyncio
import ssl
import sys
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from .pushhub import close_all_streams
from .tls import context_factory


class JmapWorker(UvicornWorker):
    """uvloop + httptools when present; the app handles X-Forwarded-* itself.

    ``proxy_headers`` is off because uvicorn would otherwise trust
    X-Forwarded-Proto from 127.0.0.1 without the operator asking for it
    (``trust_forwarded`` in the settings is the one switch).  With
    ``certfile``/``keyfile`` set, the TLS context refuses anything below 1.2.
    """

    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "auto",
        "http": "auto",
        "proxy_headers": False,
        "server_header": False,
        "lifespan": "on",
        # JMAP over WebSocket (jmapserver.websocket) on the same port: the
        # websockets library (uvicorn[standard]) when installed, else wsproto.
        # uvicorn's defaults bound a message to 16 MiB and ping idle peers.
        "ws": "auto",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.cfg.is_ssl:
            # Read by uvicorn's Config.load(), which runs later in the worker.
            # uvicorn_worker passes gunicorn's deprecated ssl_version default
            # (PROTOCOL_TLS); a server socket wants PROTOCOL_TLS_SERVER.
            self.config.ssl_version = ssl.PROTOCOL_TLS_SERVER
            self.config.ssl_context_factory = context_factory

    async def _serve(self) -> None:
        """uvicorn's serve, plus: when it starts shutting down, end the open
        push streams at once (it waits for open responses, and an idle
        EventSource would hold it for the whole graceful timeout)."""
        self.config.app = self.wsgi
        server = Server(config=self.config)
        self._install_sigquit_handler()
        watcher = asyncio.create_task(_end_push_streams_on_exit(server))
        try:
            await server.serve(sockets=self.sockets)
        finally:
            watcher.cancel()
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


async def _end_push_streams_on_exit(server: Server) -> None:
    while not server.should_exit:
        await asyncio.sleep(0.1)
    close_all_streams()
