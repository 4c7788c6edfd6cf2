"""The one place errors become responses: ``{"error": {...}}`` as OpenAI's APIs write them, or
``{"type": "error", "error": {...}}`` for Anthropic's Messages API (``/v1/messages...``)."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llmrelay.api.middleware import REQUEST_ID_KEY
from llmrelay.api.sse import internal_error_body
from llmrelay.errors import LLMRelayError
from llmrelay.observe.ended import ERROR_KEY
from llmrelay.protocol.anthropic.objects import error_body

log = logging.getLogger(__name__)


#: the paths of Anthropic's API, whose errors have its shape
ANTHROPIC_PATHS = "/v1/messages"


async def relay_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LLMRelayError)
    request.scope[ERROR_KEY] = exc.code or exc.type
    body = error_body(exc) if request.url.path.startswith(ANTHROPIC_PATHS) else exc.body()
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail
    if exc.status_code in (404, 405):
        message = f"Invalid URL ({request.method} {request.url.path})"
    error = LLMRelayError(str(message))
    error.status, error.type = exc.status_code, "invalid_request_error"
    if not request.url.path.startswith(ANTHROPIC_PATHS):
        return JSONResponse(error.body(), status_code=exc.status_code, headers=exc.headers)
    return JSONResponse(error_body(error), status_code=exc.status_code, headers=exc.headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get(REQUEST_ID_KEY, "unknown")
    log.error("request %s failed", request_id, exc_info=exc)
    body = internal_error_body(request_id)
    if request.url.path.startswith(ANTHROPIC_PATHS):
        body = error_body(body)
    return JSONResponse(body, status_code=500)


EXCEPTION_HANDLERS = {
    LLMRelayError: relay_error,
    HTTPException: http_error,
    Exception: internal_error,
}
