"""Account administration: the operations behind ``jmapcore account ...``.

One principal per user with one personal account of the same name; each
plugin's ``on_account_created`` hook then sets the account up (the mail
plugin, for example, creates the default mailboxes).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from .api import Core
from .auth import Principal, hash_password, hash_token, new_token
from .context import new_id
from .storage import AccountExists, AccountInfo, PrincipalInfo

_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")


class AdminError(Exception):
    """Wrong use of an administrative operation (shown to the operator)."""


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise AdminError(
            f"invalid account name {name!r}: use 1-128 letters, digits and . _ @ + -"
        )


def add_account(core: Core, name: str, password: str, addresses: Iterable[str] = ()) -> AccountInfo:
    """Create a principal ``name`` with a personal account of the same name
    (receiving at and sending from ``addresses``)."""
    _check_name(name)
    if not password:
        raise AdminError("the password must not be empty")
    directory = core.backend.directory
    if directory.get_principal(name) is not None:
        raise AdminError(f"an account named {name!r} already exists")
    checked = _check_addresses(core, addresses, None)
    account = AccountInfo(account_id=new_id("a"), name=name, owners=(name,), addresses=checked)
    try:
        directory.create_account(account)
    except AccountExists as ex:  # pragma: no cover - ids are random
        raise AdminError(str(ex)) from None
    directory.put_principal(PrincipalInfo(name, hash_password(password), (account.account_id,)))
    for plugin in core.registry.plugins.values():
        if plugin.on_account_created is not None:
            plugin.on_account_created(core, account)
    return account


_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\\\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


def normalize_address(address: str) -> str:
    """An address as stored and compared: the domain in lower case."""
    local, _, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}"


def _check_addresses(core: Core, addresses: Iterable[str], account_id: str | None) -> tuple[str, ...]:
    """Well-formed, without duplicates, and no other account's."""
    checked: list[str] = []
    for address in addresses:
        if not _ADDRESS.fullmatch(address.strip()) or len(address) > 254:
            raise AdminError(f"{address!r} is not an email address (local@domain)")
        normal = normalize_address(address)
        owner = account_for_address(core, normal)
        if owner is not None and owner.account_id != account_id:
            raise AdminError(f"{normal} already belongs to account {owner.name!r}")
        if normal not in checked:
            checked.append(normal)
    return tuple(checked)


def account_for_address(core: Core, address: str) -> AccountInfo | None:
    """The account an address belongs to (for delivery): one listing it,
    compared with the domain case-folded; None if no account does.

    Reads every account: fine for the accounts one machine serves.
    """
    wanted = normalize_address(address)
    local = wanted.rpartition("@")[0]
    for account in core.backend.directory.list_accounts():
        for own in account.addresses:
            own_local, _, own_domain = own.rpartition("@")
            if own_local == local and f"{own_local}@{own_domain.lower()}" == wanted:
                return account
    return None


def set_addresses(core: Core, name: str, addresses: Iterable[str]) -> AccountInfo:
    """Replace the addresses of ``name``'s personal account."""
    info = _principal(core, name)
    if not info.account_ids:
        raise AdminError(f"{name!r} has no account")
    directory = core.backend.directory
    account = directory.get_account(info.account_ids[0])
    if account is None:
        raise AdminError(f"the account of {name!r} is gone")
    updated = dataclasses.replace(account, addresses=_check_addresses(core, addresses, account.account_id))
    directory.update_account(updated)
    return updated


def _principal(core: Core, name: str) -> PrincipalInfo:
    info = core.backend.directory.get_principal(name)
    if info is None:
        raise AdminError(f"no account named {name!r}")
    return info


def delete_account(core: Core, name: str) -> None:
    """Delete the principal, its tokens and the accounts only it owns."""
    info = _principal(core, name)
    directory = core.backend.directory
    for account_id in info.account_ids:
        account = directory.get_account(account_id)
        if account is not None and account.owners == (name,):
            directory.delete_account(account_id)
    directory.delete_tokens(name)
    directory.delete_principal(name)
    core.authenticator.forget()


def set_password(core: Core, name: str, password: str) -> None:
    if not password:
        raise AdminError("the password must not be empty")
    info = _principal(core, name)
    core.backend.directory.put_principal(
        PrincipalInfo(info.name, hash_password(password), info.account_ids)
    )
    core.authenticator.forget()


def create_token(core: Core, name: str) -> str:
    """A new bearer token for ``name``; only its hash is stored."""
    _principal(core, name)
    token = new_token()
    core.backend.directory.put_token(hash_token(token), name)
    return token


def list_accounts(core: Core) -> list[tuple[PrincipalInfo, list[AccountInfo]]]:
    directory = core.backend.directory
    result = []
    for principal in directory.list_principals():
        accounts = [a for a in map(directory.get_account, principal.account_ids) if a is not None]
        result.append((principal, accounts))
    return result


def principal_for(core: Core, name: str) -> Principal:
    """The :class:`Principal` of a user, without credentials (for embedders and tests)."""
    info = _principal(core, name)
    return Principal(info.name, tuple(info.account_ids))
