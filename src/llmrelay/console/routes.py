"""``Console``: the pages of ``/ui`` and the forms they post.

Every page but the login needs a session (``sessions.py``); without one a page redirects to
the login, and a POST is refused. The login takes the admin key, compared by its hash as the
admin API does. Pages read what the admin API reads: the key store, the ledger (its daily
totals, and its rows for the last hour and day), the router's health.
"""

from __future__ import annotations

import csv
import hmac
import io
from datetime import timedelta
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from llmrelay.api.admin import parse_time
from llmrelay.api.body import read_body
from llmrelay.console.charts import bars
from llmrelay.console.sessions import COOKIE, Session, Sessions, same_token
from llmrelay.errors import InvalidRequestError
from llmrelay.gateway.auth import KeyChecker
from llmrelay.pricing.price import usd
from llmrelay.router.router import Router
from llmrelay.store.keys import PERIODS, KeyStore, SettingError, hash_key
from llmrelay.store.ledger import GROUPS, REPORT_COLUMN, Ledger
from llmrelay.store.schema import utcnow

#: the overview's windows: their length, and how many bars a chart has
WINDOWS = {
    "hour": (timedelta(hours=1), 60),
    "day": (timedelta(days=1), 24),
    "month": (timedelta(days=30), 30),
}
_STYLE = resources.files(__package__).joinpath("static/console.css").read_bytes()
#: the largest form the console takes: its forms are a few hundred bytes
FORM_BYTES = 64 * 1024
_SETTINGS = ("models", "rpm", "tpm", "budget_tokens", "budget_usd", "budget_period", "expires_at")


class Console:
    def __init__(
        self, store: KeyStore, checker: KeyChecker, ledger: Ledger, router: Router, admin_hash: str
    ) -> None:
        self._store = store
        self._checker = checker
        self._ledger = ledger
        self._router = router
        self._admin_hash = admin_hash
        self._sessions = Sessions()
        self._pages = Environment(
            loader=PackageLoader(__package__, "templates"),
            autoescape=select_autoescape(default=True),
        )
        self._pages.filters["usd"] = lambda nanos: "unpriced" if nanos is None else "$" + usd(nanos)

    def routes(self) -> list[Route]:
        return [
            Route("/ui", self.overview, methods=["GET"]),
            Route("/ui/login", self.login_page, methods=["GET"]),
            Route("/ui/login", self.login, methods=["POST"]),
            Route("/ui/logout", self.logout, methods=["POST"]),
            Route("/ui/keys", self.keys, methods=["GET"]),
            Route("/ui/keys", self.create_key, methods=["POST"]),
            Route("/ui/keys/{key_id}", self.update_key, methods=["POST"]),
            Route("/ui/usage", self.usage, methods=["GET"]),
            Route("/ui/usage.csv", self.usage_csv, methods=["GET"]),
            Route("/ui/requests", self.requests, methods=["GET"]),
            Route("/ui/deployments", self.deployments, methods=["GET"]),
            Route("/ui/console.css", self.style, methods=["GET"]),
        ]

    # --- the session ---------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        return self._page("login.html", None, error=None)

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        key = form.get("admin_key", "")
        if not hmac.compare_digest(hash_key(key), self._admin_hash):
            return self._page("login.html", None, error="That is not the admin key.", status=401)
        token, _ = self._sessions.open()
        response = RedirectResponse("/ui", status_code=303)
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="strict", path="/ui", secure=_https(request)
        )
        return response

    async def logout(self, request: Request) -> Response:
        await self._posted(request)
        self._sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(COOKIE, path="/ui")
        return response

    def _session(self, request: Request) -> Session | None:
        return self._sessions.find(request.cookies.get(COOKIE))

    async def _posted(self, request: Request) -> dict[str, str]:
        """A form posted within a session, with the session's token; else a 403."""
        session = self._session(request)
        form = await _form(request)
        if session is None or not same_token(form.get("csrf"), session.csrf):
            raise Refused()
        return form

    # --- pages ---------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        if (session := self._session(request)) is None:
            return _to_login()
        await self._ledger.flush()  # include what is still on its way to the database
        window = request.query_params.get("window", "day")
        length, buckets = WINDOWS.get(window, WINDOWS["day"])
        since = utcnow() - length
        # a month by day, from the daily totals (which know no latency); shorter, from the rows
        monthly = window == "month"
        spans = await (
            self._ledger.days(since) if monthly else self._ledger.timeline(since, buckets)
        )
        labels = [s["start"][5 : 10 if monthly else 16].replace("T", " ") for s in spans]
        charts = [
            bars("Requests", labels, [s["requests"] for s in spans]),
            bars("Errors", labels, [s["errors"] for s in spans]),
            bars("Tokens", labels, [s["tokens"] for s in spans]),
            bars("Cost (USD)", labels, [s["cost_nanousd"] / 1e9 for s in spans]),
        ]
        if not monthly:
            latencies = [s["latency_ms"] or 0 for s in spans]
            charts.append(bars("Mean latency", labels, latencies, " ms"))
        by_model = await self._ledger.report(group_by="model", since=since)
        by_key = await self._ledger.report(group_by="key", since=since)
        names = {r.id: r.name for r in await self._store.all()}
        return self._page(
            "overview.html",
            session,
            window=window,
            windows=list(WINDOWS),
            charts=charts,
            by_model=by_model,
            by_key=by_key,
            names=names,
            since_day=since.date().isoformat(),
        )

    async def keys(
        self, request: Request, created: tuple[Any, str] | None = None, error: str | None = None
    ) -> Response:
        if (session := self._session(request)) is None:
            return _to_login()
        records = await self._store.all()
        return self._page(
            "keys.html",
            session,
            keys=[r.public() for r in records],
            periods=PERIODS,
            created=created,
            error=error,
            status=400 if error else 200,
        )

    async def create_key(self, request: Request) -> Response:
        form = await self._posted(request)
        try:
            record, key = await self._store.create(form.get("name", "").strip(), **_settings(form))
        except (SettingError, InvalidRequestError, ValueError) as exc:
            return await self.keys(request, error=str(exc))
        await self._checker.refresh()
        return await self.keys(request, created=(record.public(), key))

    async def update_key(self, request: Request) -> Response:
        form = await self._posted(request)
        key_id = request.path_params["key_id"]
        action = form.get("action", "save")
        try:
            if action == "revoke":
                await self._store.revoke(key_id)
            elif action in ("enable", "disable"):
                await self._store.update(key_id, enabled=action == "enable")
            else:
                await self._store.update(key_id, **_settings(form, clearing=True))
        except (SettingError, InvalidRequestError, ValueError) as exc:
            return await self.keys(request, error=str(exc))
        await self._checker.refresh()
        return RedirectResponse("/ui/keys", status_code=303)

    async def usage(self, request: Request) -> Response:
        if (session := self._session(request)) is None:
            return _to_login()
        filters, error = _usage_filters(request)
        await self._ledger.flush()
        report = await self._ledger.report(**filters) if error is None else None
        names = {r.id: r.name for r in await self._store.all()}
        return self._page(
            "usage.html",
            session,
            report=report,
            filters=request.query_params,
            query=str(request.query_params),
            groups=list(GROUPS),
            names=names,
            error=error,
            status=400 if error else 200,
        )

    async def usage_csv(self, request: Request) -> Response:
        if self._session(request) is None:
            return _to_login()
        filters, error = _usage_filters(request)
        if error is not None:
            return Response(error, status_code=400, media_type="text/plain")
        await self._ledger.flush()
        report = await self._ledger.report(**filters)
        out = io.StringIO()
        rows = report["rows"]
        columns = list(rows[0]) if rows else [REPORT_COLUMN[filters["group_by"]]]
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        writer.writerows(rows)
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"content-disposition": 'attachment; filename="llmrelay-usage.csv"'},
        )

    async def requests(self, request: Request) -> Response:
        if (session := self._session(request)) is None:
            return _to_login()
        query = request.query_params
        await self._ledger.flush()
        rows = await self._ledger.recent(
            limit=200,
            key_id=query.get("key_id") or None,
            model=query.get("model") or None,
            errors_only=query.get("errors") == "1",
        )
        return self._page("requests.html", session, rows=rows, filters=query)

    async def deployments(self, request: Request) -> Response:
        if (session := self._session(request)) is None:
            return _to_login()
        return self._page("deployments.html", session, models=self._router.health())

    async def style(self, request: Request) -> Response:
        return Response(_STYLE, media_type="text/css", headers={"cache-control": "max-age=3600"})

    def _page(
        self, name: str, session: Session | None, status: int = 200, **values: Any
    ) -> Response:
        html = self._pages.get_template(name).render(
            csrf=session.csrf if session else "", page=name.removesuffix(".html"), **values
        )
        return HTMLResponse(
            html,
            status_code=status,
            headers={
                "cache-control": "no-store",
                "x-frame-options": "DENY",
                "content-security-policy": _POLICY,
            },
        )


#: what a console page may load and where its forms may go: itself alone
_POLICY = "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"


class Refused(Exception):
    """A POST without a session or its token."""


async def refused(request: Request, exc: Exception) -> Response:
    return HTMLResponse("Forbidden: log in to the console again.", status_code=403)


async def _form(request: Request) -> dict[str, str]:
    """A posted form (``application/x-www-form-urlencoded``, as the console's pages send
    them), at most ``FORM_BYTES`` (a 413 beyond): the last value of each field."""
    body = await read_body(request, max_bytes=FORM_BYTES)
    return dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))


def _to_login() -> Response:
    return RedirectResponse("/ui/login", status_code=303)


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def _settings(form: dict[str, str], *, clearing: bool = False) -> dict[str, Any]:
    """A key's settings from a form: an empty field is no setting (``clearing``: none, removed)."""
    settings: dict[str, Any] = {}
    for field in _SETTINGS:
        text = form.get(field, "").strip()
        if not text:
            if clearing and field in form:
                settings[field] = None
            continue
        if field == "models":
            settings[field] = [m.strip() for m in text.split(",") if m.strip()]
        elif field in ("rpm", "tpm", "budget_tokens"):
            settings[field] = int(text)
        elif field == "expires_at":
            settings[field] = parse_time(text, field)
        else:
            settings[field] = text
    return settings


def _usage_filters(request: Request) -> tuple[dict[str, Any], str | None]:
    query = request.query_params
    filters: dict[str, Any] = {"group_by": query.get("group_by") or "day"}
    if filters["group_by"] not in GROUPS:
        return filters, f"group_by must be one of {', '.join(GROUPS)}"
    for field in ("key_id", "model"):
        if query.get(field):
            filters[field] = query[field]
    for field in ("since", "until"):
        if query.get(field):
            try:
                filters[field] = parse_time(query[field], field)
            except InvalidRequestError as exc:
                return filters, str(exc)
    return filters, None
