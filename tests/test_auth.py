"""Credentials: scrypt hashes, bearer tokens, and cache invalidation across workers
([core-8.2-authScheme])."""

from __future__ import annotations

from jmapcore import Core
from jmapcore.accounts import add_account, create_token, delete_account, set_password
from jmapcore.auth import hash_password, verify_password


def test_password_hashes_are_salted_and_verified():
    first, second = hash_password("secret"), hash_password("secret")
    assert first != second and first.startswith("scrypt$")
    assert verify_password("secret", first) and not verify_password("Secret", first)
    assert not verify_password("secret", "garbage") and not verify_password("secret", "scrypt$1$2$3$!$!")


def test_password_change_and_deletion_take_effect_in_every_worker(core, backend):
    """Two Cores on one backend stand for two server workers."""
    other_worker = Core(backend, core.registry)
    add_account(core, "erin", "old-pass")
    assert other_worker.authenticator.password("erin", "old-pass") is not None
    assert other_worker.authenticator.peek_password("erin", "old-pass") is not None, "cached after one check"
    set_password(core, "erin", "new-pass")
    assert other_worker.authenticator.password("erin", "old-pass") is None
    assert other_worker.authenticator.password("erin", "new-pass") is not None
    token = create_token(core, "erin")
    assert other_worker.authenticator.token(token).name == "erin"
    assert other_worker.authenticator.token(token + "x") is None
    delete_account(core, "erin")
    assert other_worker.authenticator.password("erin", "new-pass") is None
    assert other_worker.authenticator.token(token) is None
