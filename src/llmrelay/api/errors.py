"""The one place errors become ``{"error": {...}}`` responses."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llmrelay.api.middleware import REQUEST_ID_KEY
from llmrelay.api.sse import internal_error_body
from llmrelay.errors import LLMRelayError

log = logging.getLogger(__name__)


async def relay_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LLMRelayError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail
    if exc.status_code in (404, 405):
        message = f"Invalid URL ({request.method} {request.url.path})"
    body = {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get(REQUEST_ID_KEY, "unknown")
    log.error("request %s failed", request_id, exc_info=exc)
    return JSONResponse(internal_error_body(request_id), status_code=500)


EXCEPTION_HANDLERS = {
    LLMRelayError: relay_error,
    HTTPException: http_error,
    Exception: internal_error,
}
