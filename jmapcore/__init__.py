"""jmapcore: a transport-neutral JMAP (RFC 8620) core.

Imports only the standard library and msgspec.  :class:`Core` is the entry
point an HTTP front, an embedder or a test calls; plugins describe their
capability with :class:`Plugin`, :class:`DataType` and :class:`Method`.
"""

from .api import Core, HttpResult, Limits
from .auth import Principal
from .datatype import DataType, Filter, Property, Sort, property_sort
from .errors import MethodError, ProblemError, SetError
from .registry import Method, Plugin, Registry

__all__ = [
    "Core",
    "DataType",
    "Filter",
    "HttpResult",
    "Limits",
    "Method",
    "MethodError",
    "Plugin",
    "Principal",
    "ProblemError",
    "Property",
    "Registry",
    "SetError",
    "Sort",
    "property_sort",
]
