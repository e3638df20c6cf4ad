"""Result references (RFC 8620 §3.7) and creation-id references.

A result reference is an argument ``#foo: {resultOf, name, path}`` whose
value is taken from an earlier response of the same request by a JSON
Pointer, extended with ``*`` to map over arrays ([core-3.7-star]).  Any
failure is ``invalidResultReference`` ([core-3.7-failure]).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from .errors import MethodError
from .wire import ResultReference


def _fail(description: str) -> MethodError:
    return MethodError("invalidResultReference", description)


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def evaluate_pointer(document: Any, path: str) -> Any:
    """Evaluate a JSON Pointer with the ``*`` array extension."""
    if path == "":
        return document
    if not path.startswith("/"):
        raise _fail(f"path {path!r} is not a JSON Pointer")
    return _walk(document, [_unescape(token) for token in path[1:].split("/")], path)


def _walk(value: Any, tokens: list[str], path: str) -> Any:
    for index, token in enumerate(tokens):
        if isinstance(value, list):
            if token == "*":
                rest = tokens[index + 1 :]
                collected: list[Any] = []
                for item in value:
                    result = _walk(item, rest, path)
                    # [core-3.7-star] an array result is spliced in, not nested.
                    if isinstance(result, list):
                        collected.extend(result)
                    else:
                        collected.append(result)
                return collected
            if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
                raise _fail(f"{path}: {token!r} is not an array index")
            position = int(token)
            if position >= len(value):
                raise _fail(f"{path}: index {position} is out of range")
            value = value[position]
        elif isinstance(value, dict):
            if token not in value:
                raise _fail(f"{path}: no member {token!r}")
            value = value[token]
        else:
            raise _fail(f"{path}: cannot descend into a {type(value).__name__}")
    return value


def resolve_arguments(
    arguments: dict[str, Any],
    responses: Sequence[list[Any]],
    to_plain: Callable[[Any], Any],
) -> dict[str, Any]:
    """Replace every ``#name`` argument by the value it references.

    ``responses`` are the ``[name, args, callId]`` triples so far;
    ``to_plain`` turns a response's arguments into plain JSON values.
    """
    resolved = dict(arguments)
    for key in [k for k in arguments if k.startswith("#")]:
        target = key[1:]
        if target in arguments:
            # [core-3.7-bothForms]
            raise MethodError.invalid_arguments(f"both {target!r} and {key!r} are given")
        try:
            ref = msgspec.convert(arguments[key], ResultReference)
        except msgspec.ValidationError as ex:
            raise _fail(f"{key}: not a ResultReference ({ex})") from None
        # [core-3.7-resolveFirst] the first response with that call id.
        for name, args, call_id in responses:
            if call_id == ref.resultOf:
                if name != ref.name:
                    raise _fail(f"{key}: response {ref.resultOf!r} is {name!r}, not {ref.name!r}")
                resolved[target] = evaluate_pointer(to_plain(args), ref.path)
                break
        else:
            raise _fail(f"{key}: no earlier response has call id {ref.resultOf!r}")
        del resolved[key]
    return resolved
