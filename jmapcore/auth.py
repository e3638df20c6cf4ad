"""Credentials: salted slow password hashes, bearer tokens, and a cache.

Passwords are stored as scrypt hashes (``scrypt$n$r$p$salt$hash``).  Checking
one costs tens of milliseconds by design, so verified credentials are cached
in-process, keyed by a keyed digest of the credentials (never the password
itself), for a short time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from .storage import Directory

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
TOKEN_PREFIX = "jmc_"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user and the accounts it may use."""

    name: str
    account_ids: tuple[str, ...]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_token() -> str:
    """A fresh bearer token (shown once; only its hash is stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of entropy, so a fast hash is enough.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Authenticator:
    """Turns credentials into a :class:`Principal`, with a short-lived cache."""

    def __init__(self, directory: Directory, cache_seconds: float = 60.0) -> None:
        self._directory = directory
        self._cache_seconds = cache_seconds
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def _cached(self, kind: bytes, secret: str) -> tuple[bytes, Principal | None]:
        key = hmac.digest(self._key, kind + secret.encode("utf-8", "surrogatepass"), "sha256")
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return key, hit[1]
        return key, None

    def _remember(self, key: bytes, principal: Principal) -> Principal:
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + self._cache_seconds, principal)
        return principal

    def _principal(self, name: str) -> Principal | None:
        info = self._directory.get_principal(name)
        if info is None:
            return None
        return Principal(info.name, tuple(info.account_ids))

    def peek_password(self, username: str, password: str) -> Principal | None:
        """The cached principal for these credentials, or None; never hashes
        or reads storage, so an event loop may call it."""
        return self._cached(b"p:" + username.encode("utf-8", "surrogatepass") + b"\0", password)[1]

    def password(self, username: str, password: str) -> Principal | None:
        key, hit = self._cached(b"p:" + username.encode("utf-8", "surrogatepass") + b"\0", password)
        if hit is not None:
            return hit
        info = self._directory.get_principal(username)
        if info is None or not verify_password(password, info.password_hash):
            return None
        return self._remember(key, Principal(info.name, tuple(info.account_ids)))

    def token(self, token: str) -> Principal | None:
        key, hit = self._cached(b"t:", token)
        if hit is not None:
            return hit
        name = self._directory.token_principal(hash_token(token))
        principal = self._principal(name) if name else None
        return self._remember(key, principal) if principal else None

    def forget(self) -> None:
        """Drop cached credentials (after a password change or deletion)."""
        with self._lock:
            self._cache.clear()
