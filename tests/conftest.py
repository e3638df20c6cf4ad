"""Shared fixtures: a Core on a fresh backend with the example Notes plugin,
and in-process clients for two users (alice has two accounts)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jmapcore import Core
from jmapcore.accounts import add_account, principal_for
from jmapcore.registry import Registry
from jmapcore.storage import AccountInfo, PrincipalInfo
from jmapcore.testing.client import Client
from jmapcore.testing.memory import MemoryBackend

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import notes_plugin  # noqa: E402

NOTES = notes_plugin.NOTES


def lmdb_backend(path: Path):
    from jmap_lmdb import open_backend

    return open_backend(path)


def maildir_backend(path: Path):
    from jmap_maildir import open_backend

    return open_backend(path)


@pytest.fixture(params=["memory", "lmdb", "maildir"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """Every core test runs on each backend."""
    if request.param == "memory":
        instance = MemoryBackend()
    elif request.param == "lmdb":
        pytest.importorskip("jmap_lmdb")
        instance = lmdb_backend(tmp_path / "data")
    else:
        pytest.importorskip("jmap_lmdb")
        instance = maildir_backend(tmp_path / "data")
    yield instance
    instance.close()


@pytest.fixture
def core(backend: object) -> Core:
    registry = Registry.from_entry_points([notes_plugin.plugin])
    return Core(backend, registry)  # type: ignore[arg-type]


def second_account(core: Core, name: str) -> str:
    """Give user ``name`` a second account (for /copy tests)."""
    directory = core.backend.directory
    info = directory.get_principal(name)
    assert info is not None
    account = AccountInfo(account_id=f"x{name}2", name=f"{name}-shared", owners=(name,), is_personal=False)
    directory.create_account(account)
    directory.put_principal(PrincipalInfo(info.name, info.password_hash, (*info.account_ids, account.account_id)))
    return account.account_id


@pytest.fixture
def alice(core: Core) -> Client:
    add_account(core, "alice", "alice-pass")
    second_account(core, "alice")
    return Client(core, principal_for(core, "alice"), using=[NOTES])


@pytest.fixture
def bob(core: Core) -> Client:
    add_account(core, "bob", "bob-pass")
    return Client(core, principal_for(core, "bob"), using=[NOTES])


MAIL = "urn:ietf:params:jmap:mail"


@pytest.fixture
def mail(core: Core) -> Client:
    """A mail user (default mailboxes created with the account) with a second account."""
    add_account(core, "mary", "mary-pass")
    second_account(core, "mary")
    from jmap_mail import create_default_mailboxes

    create_default_mailboxes(core, core.backend.directory.get_account("xmary2"))
    return Client(core, principal_for(core, "mary"), using=[MAIL])
