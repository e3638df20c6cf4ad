"""jmapserver: the HTTP front and the command line of jmapcore.

The front (:func:`jmapserver.app.create_app`) only moves bytes between HTTP
and :class:`jmapcore.api.Core`; the CLI (:mod:`jmapserver.cli`) wires a
configuration into a running gunicorn server and administers accounts.
"""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    # Lazy, so that ``jmapcore account ...`` does not pay for importing falcon.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
