"""Argument Structs of the six standard methods (RFC 8620 §5).

Unknown, missing or mistyped arguments fail decoding, which the dispatcher
turns into ``invalidArguments`` naming the path ([core-3.9-strictArgs]).
Plugins with extra arguments subclass these.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from ..wire import Id, IdOrRef, Int, UnsignedInt


class Args(Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class GetArgs(Args, kw_only=True):
    accountId: Id
    ids: list[IdOrRef] | None = None
    properties: list[str] | None = None


class ChangesArgs(Args, kw_only=True):
    accountId: Id
    sinceState: str
    maxChanges: UnsignedInt | None = None


class SetArgs(Args, kw_only=True):
    accountId: Id
    ifInState: str | None = None
    create: dict[Id, dict[str, Any]] | None = None
    update: dict[IdOrRef, dict[str, Any]] | None = None
    destroy: list[IdOrRef] | None = None


class CopyArgs(Args, kw_only=True):
    fromAccountId: Id
    ifFromInState: str | None = None
    accountId: Id
    ifInState: str | None = None
    create: dict[Id, dict[str, Any]]
    onSuccessDestroyOriginal: bool = False
    destroyFromIfInState: str | None = None


class QueryArgs(Args, kw_only=True):
    accountId: Id
    filter: dict[str, Any] | None = None
    sort: list[dict[str, Any]] | None = None
    position: Int = 0
    anchor: Id | None = None
    anchorOffset: Int = 0
    limit: UnsignedInt | None = None
    calculateTotal: bool = False


class QueryChangesArgs(Args, kw_only=True):
    accountId: Id
    filter: dict[str, Any] | None = None
    sort: list[dict[str, Any]] | None = None
    sinceQueryState: str
    maxChanges: UnsignedInt | None = None
    upToId: Id | None = None
    calculateTotal: bool = False
