"""The six standard methods, written once and driven by a DataType."""

from __future__ import annotations

from ..datatype import DataType
from ..registry import Method
from .args import ChangesArgs, CopyArgs, GetArgs, QueryArgs, QueryChangesArgs, SetArgs
from .changes import make_changes
from .copy import make_copy
from .get import make_get
from .query import make_query
from .query_changes import make_query_changes
from .set import make_set

_FACTORIES = {
    "get": (make_get, GetArgs, False),
    "changes": (make_changes, ChangesArgs, False),
    "set": (make_set, SetArgs, True),
    "copy": (make_copy, CopyArgs, True),
    "query": (make_query, QueryArgs, False),
    "queryChanges": (make_query_changes, QueryChangesArgs, False),
}


def standard_methods(data_type: DataType) -> list[Method]:
    """[core-5-naming] ``Foo/get`` and friends for the methods a type lists."""
    methods = []
    for verb in data_type.methods:
        factory, args_type, writes = _FACTORIES[verb]
        methods.append(
            Method(
                name=f"{data_type.name}/{verb}",
                handler=factory(data_type),
                args_type=args_type,
                capability=data_type.capability,
                writes=writes,
            )
        )
    return methods
