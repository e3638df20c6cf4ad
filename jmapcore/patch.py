"""PatchObject application (RFC 8620 §5.3, [core-5.3-patchPointer]).

A patch maps JSON Pointers (with an implicit leading ``/``) to values; null
removes a key or resets a property to its default ([core-5.3-patchNull]).
A pointer into an array, through a missing parent, or that is a prefix of
another pointer in the same patch makes the whole update ``invalidPatch``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .errors import SetError
from .storage import Record

_json_copy_encoder = msgspec.msgpack.Encoder()
_json_copy_decoder = msgspec.msgpack.Decoder()


def deep_copy(value: Any) -> Any:
    """A copy of JSON-shaped data (faster than copy.deepcopy)."""
    return _json_copy_decoder.decode(_json_copy_encoder.encode(value))


def _tokens(path: str) -> list[str]:
    return [token.replace("~1", "/").replace("~0", "~") for token in path.split("/")]


def _invalid(detail: str) -> SetError:
    return SetError("invalidPatch", detail)


def _check_prefixes(paths: list[str]) -> SetError | None:
    ordered = sorted(paths)
    for shorter, longer in zip(ordered, ordered[1:], strict=False):
        if longer.startswith(shorter + "/"):
            return _invalid(f"{shorter!r} is a prefix of {longer!r}")
    return None


def apply_patch(record: Record, patch: dict[str, Any], defaults: dict[str, Any]) -> Record | SetError:
    """Return the patched copy of ``record``, or why the patch is invalid.

    ``defaults`` gives each top-level property's default (for null).
    Property names and value types are checked by the caller.
    """
    error = _check_prefixes(list(patch))
    if error is not None:
        return error
    patched = dict(record)
    copied: set[str] = set()
    for path, value in patch.items():
        tokens = _tokens(path)
        top = tokens[0]
        if len(tokens) == 1:
            patched[top] = deep_copy(defaults.get(top)) if value is None else value
            continue
        if top not in copied:
            patched[top] = deep_copy(patched.get(top))
            copied.add(top)
        container = patched.get(top)
        for token in tokens[1:-1]:
            if not isinstance(container, dict) or token not in container:
                return _invalid(f"{path!r}: {token!r} does not exist")
            container = container[token]
        if not isinstance(container, dict):
            return _invalid(f"{path!r} does not point inside an object")
        if value is None:
            container.pop(tokens[-1], None)
        else:
            container[tokens[-1]] = value
    return patched


def top_level(path: str) -> str:
    return _tokens(path)[0]
