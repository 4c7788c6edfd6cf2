"""The error tree of llmrelay, each class carrying its HTTP status and OpenAI ``type``/``code``.

    LLMRelayError (500, server_error)
    ├── InvalidRequestError (400, invalid_request_error)
    │   ├── ContextLengthExceededError (code context_length_exceeded)
    │   └── UnsupportedParameterError (code unsupported_parameter)
    ├── AuthenticationError (401, code invalid_api_key)
    │   └── MissingAPIKeyError (code null)
    ├── PermissionDeniedError (403, code permission_denied)
    ├── NotFoundError (404, code model_not_found)
    ├── RequestTimeoutError (408, code request_timeout)
    ├── RequestTooLargeError (413)
    ├── RateLimitError (429, code rate_limit_exceeded)
    ├── QuotaExceededError (429, insufficient_quota)
    ├── ClientLeftError (499: nobody reads it)
    ├── UpstreamError (502)
    ├── UnavailableError (503: overloaded, stopping, limits unreachable)
    └── UpstreamTimeoutError (504)

One handler at the HTTP edge renders the whole family as ``{"error": {...}}``.
"""

from __future__ import annotations

from collections.abc import Iterable

#: a secret shorter than this is not looked for in text (it would match by chance)
_SECRET_LENGTH = 8


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret in it replaced by ``***`` (an upstream may echo its key)."""
    for secret in secrets:
        if len(secret) >= _SECRET_LENGTH and secret in text:
            text = text.replace(secret, "***")
    return text


class LLMRelayError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(LLMRelayError):
    status = 400
    type = "invalid_request_error"


class ContextLengthExceededError(InvalidRequestError):
    code = "context_length_exceeded"


class UnsupportedParameterError(InvalidRequestError):
    code = "unsupported_parameter"


class AuthenticationError(LLMRelayError):
    status = 401
    type = "invalid_request_error"
    code: str | None = "invalid_api_key"


class MissingAPIKeyError(AuthenticationError):
    code = None


class PermissionDeniedError(LLMRelayError):
    status = 403
    type = "invalid_request_error"
    code = "permission_denied"


class NotFoundError(LLMRelayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class RequestTimeoutError(LLMRelayError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class RequestTooLargeError(LLMRelayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimitError(LLMRelayError):
    status = 429
    type = "requests"
    code = "rate_limit_exceeded"


class QuotaExceededError(LLMRelayError):
    """A budget is spent: retrying does not help (``x-should-retry: false``)."""

    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


class ClientLeftError(LLMRelayError):
    """The client went away before its request was read: the response goes to nobody."""

    status = 499
    type = "invalid_request_error"
    code = "client_closed_request"


class UpstreamError(LLMRelayError):
    status = 502
    type = "upstream_error"


class UnavailableError(LLMRelayError):
    """llmrelay itself cannot serve the request now (not the deployment's fault)."""

    status = 503
    type = "server_error"
    code = "service_unavailable"


class UpstreamTimeoutError(LLMRelayError):
    status = 504
    type = "upstream_timeout"
