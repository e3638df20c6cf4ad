"""jmapcore: a transport-neutral JMAP (RFC 8620) core.

Imports only the standard library and msgspec.  See :mod:`jmapcore.api` for
the entry point an HTTP front (or an embedder) calls.
"""
