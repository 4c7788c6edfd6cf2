"""``GET /metrics`` on the API's port, for the metrics token alone (not the API's keys)."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmrelay.errors import AuthenticationError
from llmrelay.gateway.auth import bearer_key
from llmrelay.observe.metrics import CONTENT_TYPE, Metrics


class MetricsRoute:
    def __init__(self, metrics: Metrics, token: str) -> None:
        self._metrics = metrics
        self._token = token.encode()

    def routes(self) -> list[Route]:
        return [Route("/metrics", self.metrics, methods=["GET"])]

    async def metrics(self, request: Request) -> Response:
        given = bearer_key(request.headers.get("authorization")).encode()
        if not hmac.compare_digest(given, self._token):
            raise AuthenticationError("The metrics need the metrics token (`metrics.token`).")
        return Response(self._metrics.exposition(), media_type=CONTENT_TYPE)
