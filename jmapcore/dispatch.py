"""The dispatch loop: one request's method calls, in order ([core-3.3-sequential]).

The body is decoded once into a :class:`~jmapcore.wire.Request` whose
arguments stay raw.  Each call's arguments are then decoded straight into the
method's argument Struct; only calls carrying ``#`` result references take
the slower decode-resolve-convert path.  A handler that raises anything but a
:class:`MethodError` becomes ``serverFail`` for that call alone, logged with
its traceback; the rest of the batch still runs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec

from .auth import Principal
from .context import CallContext, RequestState
from .errors import MethodError, ProblemError
from .references import resolve_arguments
from .registry import Method
from .wire import CORE, UNSET, any_decoder, encode, request_decoder, to_builtins

if TYPE_CHECKING:
    from .api import Core

log = logging.getLogger(__name__)

_WHITESPACE = b" \t\r\n"


def _decode_request(body: bytes) -> Any:
    try:
        return request_decoder.decode(body)
    except msgspec.ValidationError as ex:
        raise ProblemError.not_request(f"The body is not a JMAP Request: {ex}.") from None
    except (msgspec.DecodeError, RecursionError) as ex:
        raise ProblemError.not_json(f"The body is not valid I-JSON: {ex}.") from None


def _check_using(core: Core, using: list[str]) -> frozenset[str]:
    capabilities = frozenset(using)
    if CORE not in capabilities:
        # [core-3.3-usingCore] our decision: a request without core is malformed.
        raise ProblemError.not_request(f"'using' must include {CORE}.")
    for uri in using:
        if uri != CORE and uri not in core.registry.plugins:
            raise ProblemError.unknown_capability(uri)
    return capabilities


def _decode_arguments(method: Method, raw: bytes, state: RequestState) -> Any:
    try:
        if b'"#' not in raw:
            return method.decoder().decode(raw)
        arguments = any_decoder.decode(raw)
        arguments = resolve_arguments(arguments, state.responses, to_builtins)
        if method.args_type is None:
            return arguments
        return msgspec.convert(arguments, method.args_type)
    except msgspec.ValidationError as ex:
        raise MethodError.invalid_arguments(str(ex)) from None
    except RecursionError:
        raise MethodError.invalid_arguments("The arguments are nested too deeply.") from None


def _method_for(core: Core, name: str, using: frozenset[str]) -> Method:
    method = core.registry.methods.get(name)
    # [core-3.3-usingGating] a method whose capability is not in `using` is unknown.
    if method is None or method.capability not in using:
        raise MethodError("unknownMethod", f"Unknown method {name!r} (or its capability is not in 'using').")
    plugin = core.registry.plugins.get(method.capability)
    if plugin is not None and not all(uri in using for uri in plugin.requires):
        raise MethodError("unknownMethod", f"{name} needs {', '.join(plugin.requires)} in 'using'.")
    return method


def run_call(core: Core, principal: Principal, state: RequestState, name: str, raw: bytes, call_id: str) -> None:
    """Run one method call, appending its response(s) to ``state``."""
    try:
        method = _method_for(core, name, state.using)
        arguments = _decode_arguments(method, raw, state)
        context = CallContext(core, principal, state, call_id)
        result = method.handler(context, arguments)
    except MethodError as ex:
        state.responses.append(["error", ex.to_dict(), call_id])
        return
    except Exception:
        log.exception("method %s (call %r) failed", name, call_id)
        error = MethodError("serverFail", "The server failed to run this method; nothing was changed.")
        state.responses.append(["error", error.to_dict(), call_id])
        return
    if result is not None:
        state.responses.append([name, result, call_id])


def run_request(core: Core, principal: Principal, body: bytes) -> bytes:
    """Decode, dispatch and encode one request; raises :class:`ProblemError`."""
    request = _decode_request(body)
    using = _check_using(core, request.using)
    if len(request.methodCalls) > core.limits.maxCallsInRequest:
        raise ProblemError.limit(
            "maxCallsInRequest", f"At most {core.limits.maxCallsInRequest} method calls in one request."
        )
    calls = [(name, bytes(memoryview(raw)), call_id) for name, raw, call_id in request.methodCalls]
    for _, raw, _ in calls:
        if raw[:1] != b"{" and raw.lstrip(_WHITESPACE)[:1] != b"{":
            raise ProblemError.not_request("Every invocation's arguments must be a JSON object.")
    created = dict(request.createdIds) if request.createdIds is not UNSET else {}
    state = RequestState(using, created)
    for name, raw, call_id in calls:
        run_call(core, principal, state, name, raw, call_id)
    response: dict[str, Any] = {
        "methodResponses": state.responses,
        "sessionState": core.session_state(principal),
    }
    # [core-3.3-createdIdsIn] only when the request carried createdIds.
    if request.createdIds is not UNSET:
        response["createdIds"] = state.created_ids
    return encode(response)
