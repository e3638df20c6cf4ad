"""Problem-details (RFC 7807) responses written by the HTTP front itself.

The core returns its own problems (notJSON, limit, ...) as an
:class:`~jmapcore.api.HttpResult`; the front only adds the few that belong to
HTTP: 401, unknown paths, wrong verbs, body size caps and the catch-all 500
([core-3.6.1-problemJson]).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import falcon
import falcon.asgi

from jmapcore.api import HttpResult, problem
from jmapcore.errors import ProblemError
from jmapcore.wire import encode

PROBLEM_JSON = "application/problem+json"

#: [core-8.2-authScheme] Both schemes we accept, one challenge each.
AUTH_CHALLENGE = 'Basic realm="jmapcore", charset="UTF-8", Bearer realm="jmapcore"'


def write_result(resp: falcon.asgi.Response, result: HttpResult) -> None:
    """Copy a core :class:`HttpResult` onto the falcon response."""
    resp.status = result.status
    resp.content_type = result.content_type
    resp.data = result.body
    for name, value in result.headers:
        resp.append_header(name, value)


def write_problem(resp: falcon.asgi.Response, error: ProblemError) -> None:
    write_result(resp, problem(error))


def write_http_problem(
    resp: falcon.asgi.Response, status: int, detail: str | None = None, **extra: Any
) -> None:
    """A problem with no JMAP meaning: ``type`` is ``about:blank`` (RFC 7807 §4.2)."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {"type": "about:blank", "title": phrase, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    resp.status = status
    resp.content_type = PROBLEM_JSON
    resp.data = encode(body)


def write_unauthorized(resp: falcon.asgi.Response) -> None:
    """401 with both challenges ([core-8.2-authScheme])."""
    write_http_problem(resp, 401, "Valid credentials are required (HTTP Basic or a Bearer token).")
    resp.set_header("WWW-Authenticate", AUTH_CHALLENGE)


def request_too_large(limit: int) -> ProblemError:
    """[core-3.6.1-limit] the same problem the core gives for an oversized body."""
    return ProblemError.limit("maxSizeRequest", f"The request is larger than {limit} octets.")


def upload_too_large(limit: int) -> ProblemError:
    """[core-6.1-upload] decision: 413 with ``limit: maxSizeUpload``."""
    return ProblemError.limit("maxSizeUpload", f"Uploads are limited to {limit} octets.", 413)


def server_fail() -> ProblemError:
    """The body of every unexpected failure: no internals, ever."""
    return ProblemError("serverFail", 500, "An unexpected error occurred; it has been logged.")
