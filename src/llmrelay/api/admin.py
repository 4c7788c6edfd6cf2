"""The admin API: ``/admin/keys`` and ``/admin/usage``, for the admin key alone."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmrelay.api.body import read_body
from llmrelay.api.serving import json_response
from llmrelay.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from llmrelay.gateway.auth import KeyChecker, bearer_key
from llmrelay.protocol.nesting import nested_too_deep, too_deep
from llmrelay.store.keys import SETTINGS, KeyRecord, KeyStore, SettingError, hash_key
from llmrelay.store.ledger import GROUPS, Ledger
from llmrelay.store.schema import as_stored

#: what a request body may set, by its name in the API
_FIELDS = {"name", *SETTINGS}


class AdminRoutes:
    def __init__(
        self,
        store: KeyStore,
        checker: KeyChecker,
        ledger: Ledger,
        admin_hash: str,
        *,
        max_body_bytes: int,
    ) -> None:
        self._store = store
        self._checker = checker
        self._ledger = ledger
        self._admin_hash = admin_hash
        self._max_body = max_body_bytes

    def routes(self) -> list[Route]:
        return [
            Route("/admin/keys", self.create_key, methods=["POST"]),
            Route("/admin/keys", self.list_keys, methods=["GET"]),
            Route("/admin/keys/{key_id}", self.show_key, methods=["GET"]),
            Route("/admin/keys/{key_id}", self.update_key, methods=["PATCH", "POST"]),
            Route("/admin/keys/{key_id}", self.revoke_key, methods=["DELETE"]),
            Route("/admin/usage", self.usage, methods=["GET"]),
            Route("/admin/requests", self.requests, methods=["GET"]),
        ]

    async def create_key(self, request: Request) -> Response:
        self._admin(request)
        settings = await self._settings(request)
        if "name" not in settings:
            raise InvalidRequestError("A key needs a `name`.", param="name")
        name = settings.pop("name")
        record, key = await _stored(self._store.create(name, **settings))
        await self._checker.refresh()  # usable on this instance at once
        return json_response({**record.public(), "key": key}, status=201)

    async def list_keys(self, request: Request) -> Response:
        self._admin(request)
        keys = [record.public() for record in await self._store.all()]
        return json_response({"object": "list", "data": keys})

    async def show_key(self, request: Request) -> Response:
        self._admin(request)
        return json_response(_found(await self._store.get(request.path_params["key_id"])))

    async def update_key(self, request: Request) -> Response:
        self._admin(request)
        settings = await self._settings(request)
        record = await _stored(self._store.update(request.path_params["key_id"], **settings))
        await self._checker.refresh()
        return json_response(_found(record))

    async def revoke_key(self, request: Request) -> Response:
        self._admin(request)
        record = await self._store.revoke(request.path_params["key_id"])
        await self._checker.refresh()
        return json_response(_found(record))

    async def usage(self, request: Request) -> Response:
        """Totals and a row per day, key or model (``group_by``); filters: ``key_id``,
        ``model``, ``since``, ``until`` (whole UTC days)."""
        self._admin(request)
        query = request.query_params
        known = {"key_id", "model", "since", "until", "group_by"}
        if unknown := sorted(set(query) - known):
            raise InvalidRequestError(f"Unknown filter `{unknown[0]}`.", param=unknown[0])
        group_by = query.get("group_by", "day")
        if group_by not in GROUPS:
            raise InvalidRequestError(
                f"`group_by` must be one of {', '.join(GROUPS)}.", param="group_by"
            )
        times = {f: parse_time(query[f], f) for f in ("since", "until") if f in query}
        await self._ledger.flush()  # include what is still on its way to the database
        report = await self._ledger.report(
            group_by=group_by,
            key_id=query.get("key_id"),
            model=query.get("model"),
            since=times.get("since"),
            until=times.get("until"),
        )
        return json_response({"object": "usage", **report})

    async def requests(self, request: Request) -> Response:
        """The latest ledger rows, newest first: ``limit`` (at most 1000), ``key_id``,
        ``model``, ``errors=true``, ``before`` (a row's ``id``, for the next page)."""
        self._admin(request)
        query = request.query_params
        if unknown := sorted(set(query) - {"limit", "key_id", "model", "errors", "before"}):
            raise InvalidRequestError(f"Unknown filter `{unknown[0]}`.", param=unknown[0])
        limit = min(_whole(query.get("limit", "100"), "limit"), 1000)
        before = _whole(query["before"], "before") if "before" in query else None
        await self._ledger.flush()
        rows = await self._ledger.recent(
            limit=limit,
            key_id=query.get("key_id"),
            model=query.get("model"),
            errors_only=query.get("errors") == "true",
            before_id=before,
        )
        return json_response({"object": "list", "data": rows})

    async def _settings(self, request: Request) -> dict[str, Any]:
        body = await read_body(request, max_bytes=self._max_body)
        return _settings(body)

    def _admin(self, request: Request) -> None:
        """Only the admin key passes; another valid key gets a 403, anything else a 401."""
        authorization = request.headers.get("authorization")
        if hmac.compare_digest(hash_key(bearer_key(authorization)), self._admin_hash):
            return
        self._checker.authenticate(authorization)
        raise PermissionDeniedError("Only the admin key may use the admin API.")


def _settings(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError("The body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("The body must be a JSON object.")
    if unknown := sorted(set(body) - _FIELDS):
        raise InvalidRequestError(f"Unknown field `{unknown[0]}`.", param=unknown[0])
    if too_deep(body.get("metadata")):
        raise nested_too_deep("metadata")
    if isinstance(body.get("expires_at"), str):
        body["expires_at"] = parse_time(body["expires_at"], "expires_at")
    return body


def _whole(text: str, param: str) -> int:
    """A query parameter that is a whole number from 1 up (a row id, a count), at most the
    largest a row id can be."""
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise InvalidRequestError(f"`{param}` must be a whole number from 1 up.", param=param)
    return min(int(text), 2**63 - 1)


def parse_time(text: str, param: str) -> datetime:
    """An ISO 8601 time as naive UTC, as the store keeps times."""
    try:
        return as_stored(datetime.fromisoformat(text))
    except (ValueError, OverflowError) as exc:  # overflow: a time whose UTC is past year 1..9999
        raise InvalidRequestError(
            f"`{param}` is not an ISO 8601 time within years 1 to 9999 (UTC).", param=param
        ) from exc


async def _stored(work: Any) -> Any:
    try:
        return await work
    except SettingError as exc:
        raise InvalidRequestError(str(exc), param=exc.field) from exc


def _found(record: KeyRecord | None) -> dict[str, Any]:
    if record is None:
        raise NotFoundError("No API key has this id.", code="key_not_found")
    return record.public()
