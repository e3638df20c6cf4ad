"""HTTPS terminated by the workers themselves ([core-1.7-https], [core-8.1-tls]).

gunicorn hands ``certfile``/``keyfile`` to the uvicorn worker, which builds
its own SSLContext: gunicorn's ``ssl_context`` hook is not consulted by
uvicorn workers and its ``ssl_version`` setting is deprecated, so the TLS 1.2
floor is applied through uvicorn's ``ssl_context_factory`` (see
:mod:`.worker`).  TLS 1.3 stays enabled (the maximum is left open).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from .config import ConfigError, Settings

#: RFC 8620 §8.1 (RFC 7525): nothing older than TLS 1.2.
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


def restrict(context: ssl.SSLContext) -> ssl.SSLContext:
    """Raise ``context``'s minimum protocol to TLS 1.2 (never lower it)."""
    if context.minimum_version < MINIMUM_VERSION:  # MINIMUM_SUPPORTED is -2
        context.minimum_version = MINIMUM_VERSION
    return context


def context_factory(config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's ``ssl_context_factory``: its usual context, TLS 1.2 at least."""
    return restrict(default())


def check_tls(settings: Settings) -> None:
    """Load the certificate and key once in the master, so a bad pair is one
    sentence at startup instead of every worker failing to boot."""
    if not settings.tls:
        return
    cert, key = settings.tls_cert, settings.tls_key
    assert cert is not None and key is not None
    asked: list[bool] = []

    def no_password() -> bytes:
        asked.append(True)  # an encrypted key: the workers would prompt for it
        return b""

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=no_password)
    except ssl.SSLError as ex:
        if asked:
            raise ConfigError(
                f"the TLS key {key} is encrypted; give an unencrypted key "
                f"(readable only by the server's user)"
            ) from None
        if ex.reason == "KEY_VALUES_MISMATCH":
            detail = "the key does not match the certificate"
        else:  # OpenSSL says "PEM lib" for anything it cannot parse
            detail = "both must be PEM (a certificate chain and its private key)"
        raise ConfigError(
            f"cannot use the TLS certificate {cert} with the key {key}: {detail}"
        ) from None
