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
from dataclasses import dataclass, field

from .storage import Directory

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
TOKEN_PREFIX = "jmc_"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user and the accounts it may use."""

    name: str
    account_ids: tuple[str, ...]
    #: Which credentials proved it (a digest, never the secret): push
    #: subscriptions are bound to it [core-7.2-credentials].  Empty for a
    #: principal made in-process (an embedder, a test).
    credential: str = field(default="", compare=False)


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


def password_credential(stored_hash: str) -> str:
    """The credential id of a password: changes when the password does."""
    return "pw:" + hashlib.sha256(stored_hash.encode("utf-8")).hexdigest()[:32]


def token_credential(token_hash: str) -> str:
    """The credential id of a bearer token (its hash: not secret)."""
    return "tok:" + token_hash


def new_token() -> str:
    """A fresh bearer token (shown once; only its hash is stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of entropy, so a fast hash is enough.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Authenticator:
    """Turns credentials into a :class:`Principal`.

    A verified password is remembered (as a keyed digest, with the stored
    hash it matched) so later requests skip scrypt.  Each hit still reads the
    principal from the directory, a cheap lookup, and is honoured only while
    the stored hash is unchanged: a password change or a deleted account takes
    effect at once in every worker process.
    """

    def __init__(self, directory: Directory, cache_seconds: float = 300.0) -> None:
        self._directory = directory
        self._cache_seconds = cache_seconds
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def _cache_key(self, username: str, password: str) -> bytes:
        secret = username.encode("utf-8", "surrogatepass") + b"\0" + password.encode("utf-8", "surrogatepass")
        return hmac.digest(self._key, secret, "sha256")

    def peek_password(self, username: str, password: str) -> Principal | None:
        """The principal if these credentials were verified recently, else
        None; never hashes, so an event loop may call it."""
        hit = self._cache.get(self._cache_key(username, password))
        if hit is None or hit[0] < time.monotonic():
            return None
        info = self._directory.get_principal(username)
        if info is None or info.password_hash != hit[1]:
            return None
        return Principal(info.name, tuple(info.account_ids), password_credential(hit[1]))

    def password(self, username: str, password: str) -> Principal | None:
        """Check a user name and password (slow unless recently verified)."""
        principal = self.peek_password(username, password)
        if principal is not None:
            return principal
        info = self._directory.get_principal(username)
        if info is None or not verify_password(password, info.password_hash):
            return None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[self._cache_key(username, password)] = (
                time.monotonic() + self._cache_seconds,
                info.password_hash,
            )
        return Principal(info.name, tuple(info.account_ids), password_credential(info.password_hash))

    def token(self, token: str) -> Principal | None:
        """Check a bearer token (a hash and two lookups: no cache needed)."""
        token_hash = hash_token(token)
        name = self._directory.token_principal(token_hash)
        info = self._directory.get_principal(name) if name else None
        if info is None:
            return None
        return Principal(info.name, tuple(info.account_ids), token_credential(token_hash))

    def forget(self) -> None:
        """Drop remembered credentials."""
        with self._lock:
            self._cache.clear()


ACCESS_TOKEN_PREFIX = "jma_"
ACCESS_TOKEN_SECONDS = 600


class AccessTokens:
    """Short-lived tokens for URLs, where a browser cannot send a header.

    ``EventSource`` and ``WebSocket`` in a browser cannot set
    ``Authorization``, so an authenticated client asks for an access token
    and puts it in the URL (``access_token=``).  A token is a signed
    (principal, credential, expiry): nothing is stored, every worker that
    shares the secret accepts it, and it dies with its expiry or when the
    credential that asked for it changes (a new password, a deleted token).
    """

    def __init__(self, directory: Directory, secret: bytes, seconds: int = ACCESS_TOKEN_SECONDS) -> None:
        self._directory = directory
        self._secret = secret
        self.seconds = seconds

    def _mac(self, name: str, credential: str, expires: int) -> str:
        message = f"{name}\0{credential}\0{expires}".encode("utf-8", "surrogatepass")
        return _b64(hmac.digest(self._secret, message, "sha256"))

    def issue(self, principal: Principal, now: float | None = None) -> tuple[str, int]:
        """A token for ``principal`` and its unix expiry."""
        expires = int(now if now is not None else time.time()) + self.seconds
        name = _b64(principal.name.encode("utf-8", "surrogatepass"))
        credential = _b64(principal.credential.encode("ascii"))
        mac = self._mac(principal.name, principal.credential, expires)
        return f"{ACCESS_TOKEN_PREFIX}{name}.{credential}.{expires}.{mac}", expires

    def check(self, token: str, now: float | None = None) -> Principal | None:
        """The principal a token was issued to, while valid; else None."""
        if not token.startswith(ACCESS_TOKEN_PREFIX) or len(token) > 1024:
            return None
        try:
            name_part, credential_part, expires_part, mac = token[len(ACCESS_TOKEN_PREFIX):].split(".")
            name = _unb64(name_part).decode("utf-8", "surrogatepass")
            credential = _unb64(credential_part).decode("ascii")
            expires = int(expires_part)
        except (ValueError, UnicodeError):
            return None
        if not hmac.compare_digest(mac, self._mac(name, credential, expires)):
            return None
        if expires < (now if now is not None else time.time()):
            return None
        info = self._directory.get_principal(name)
        if info is None or not self._credential_alive(info.name, info.password_hash, credential):
            return None
        return Principal(info.name, tuple(info.account_ids), credential)

    def _credential_alive(self, name: str, password_hash: str, credential: str) -> bool:
        """Is the credential a token was issued under still this principal's?"""
        if credential.startswith("pw:"):
            return credential == password_credential(password_hash)
        if credential.startswith("tok:"):
            return self._directory.token_principal(credential[4:]) == name
        return False
