"""The gunicorn worker class: uvicorn's, with our choices of its options."""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker


class JmapWorker(UvicornWorker):
    """uvloop + httptools when present; the app handles X-Forwarded-* itself.

    ``proxy_headers`` is off because uvicorn would otherwise trust
    X-Forwarded-Proto from 127.0.0.1 without the operator asking for it
    (``trust_forwarded`` in the settings is the one switch).
    """

    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "auto",
        "http": "auto",
        "proxy_headers": False,
        "server_header": False,
        "lifespan": "on",
    }
