"""``create_app``: the read-only FastAPI app over the warehouse.

Contract:
- every data route (``routes``, ``/status``, ``/events``, ``/metrics``) needs
  ``Authorization: Bearer <token>``; a missing or wrong token is a 401 with one fixed message
  and no data (checked before the parameters, compared in constant time);
- ``/openapi.json`` and ``/docs`` are public: they describe the routes and hold no data and no
  secret; ``/docs`` is a self-contained HTML reference rendered from the schema
  (``docs_page``: no script, nothing fetched from a CDN, so it works offline);
- errors are JSON ``{"error": "<one line>"}``: 401, 404, 422 (bad value, unknown parameter,
  ``since`` not before ``until``: the message names the parameter), 503 when the warehouse
  stayed locked by the writer for the whole read budget (with ``Retry-After``) or cannot be
  opened, 503 when ``max_streams`` event streams are already open;
- nothing here writes: the warehouse is a ``reads.Warehouse`` (read-only connections).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from trading_brain.adapters.http_api import events, reads, routes
from trading_brain.adapters.http_api.docs_page import render_docs
from trading_brain.adapters.http_api.metrics import WarehouseCollector
from trading_brain.errors import OperationalError, WarehouseLocked

UNAUTHORIZED = "missing or wrong bearer token"
_bearer = HTTPBearer(auto_error=False, description="TRADING_BRAIN_API_TOKEN")


def _authorize(request: Request, cred: Annotated[HTTPAuthorizationCredentials | None,
                                                 Depends(_bearer)]) -> None:
    token: str = request.app.state.token
    given = cred.credentials if cred is not None else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


def _query_names(d: Dependant) -> set[str]:
    return {p.alias for p in d.query_params}.union(*(_query_names(s) for s in d.dependencies))


def _known_params(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise HTTPException(422, f"unknown parameter {unknown[0]!r}; allowed: "
                                 f"{', '.join(sorted(known)) or 'none'}")


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("query", "path", "body")]
        got = e.get("input")
        shown = f" (got {str(got)[:40]!r})" if isinstance(got, str | int | float) else ""
        parts.append(f"{'.'.join(loc) or 'request'}: {e.get('msg', 'invalid')}{shown}")
    return "; ".join(parts)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_params(_r: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(exc)}, 422)

    @app.exception_handler(WarehouseLocked)
    async def locked(_r: Request, exc: WarehouseLocked) -> JSONResponse:
        return JSONResponse({"error": f"warehouse busy: {exc}; retry shortly"}, 503,
                            headers={"Retry-After": "1"})

    @app.exception_handler(OperationalError)
    async def unavailable(_r: Request, exc: OperationalError) -> JSONResponse:
        return JSONResponse({"error": f"warehouse unavailable: {exc}"}, 503)


def create_app(wh: reads.Warehouse, token: str, info: Mapping[str, object] | None = None, *,
               poll_s: float = 1.0, heartbeat_s: float = 15.0, max_streams: int = 16) -> FastAPI:
    """The app; ``token`` must be non-empty (the caller refuses to start without one)."""
    if not token:
        raise ValueError("an API token is required")
    app = FastAPI(title="Trading Brain API", version="1", docs_url=None, redoc_url=None,
                  description=(
        "Read-only data API over the Trading Brain warehouse. Send `Authorization: Bearer "
        "<TRADING_BRAIN_API_TOKEN>`. Lists are pages: `limit`, `offset`, `order`, `since`, "
        "`until` and filters; `next_offset` is null on the last page."))
    app.state.warehouse, app.state.token, app.state.streams = wh, token, 0

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        return HTMLResponse(render_docs(app.openapi()))

    guards = [Depends(_authorize), Depends(_known_params)]
    app.include_router(routes.router, dependencies=guards)
    _install_errors(app)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WarehouseCollector(wh))
    facts = dict(info or {})

    @app.get("/status", dependencies=guards, tags=["portfolio"])
    def status() -> dict[str, object]:
        """Mode, per slot trading/halted, equity, drawdown, open positions; candle freshness,
        active strategy, last scan (one object, no pagination)."""
        return reads.status(wh, facts)

    @app.get("/metrics", dependencies=guards, response_class=PlainTextResponse,
             tags=["operations"])
    def metrics() -> Response:
        """Prometheus text format (see ``metrics`` for each metric's source)."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/events", dependencies=guards, tags=["operations"])
    async def event_stream(request: Request, since: Annotated[datetime | None, Query(
            description="replay events recorded from this time on")] = None
                           ) -> StreamingResponse:
        """Server-Sent Events: ``fill``, ``halt``, ``decision``, ``deployment``; from now, from
        ``since``, or after the ``Last-Event-ID`` header's event (an EventSource reconnecting)."""
        if app.state.streams >= max_streams:
            raise HTTPException(503, f"too many event streams open ({max_streams})")
        last = request.headers.get("last-event-id")
        try:
            poller = (events.EventPoller.resuming(wh, last) if last
                      else events.EventPoller(wh, routes._utc(since)))
        except ValueError as e:
            raise HTTPException(422, f"Last-Event-ID: not an id of this stream ({e})") from None
        await asyncio.to_thread(poller.start)  # locked: a 503 before the stream starts
        app.state.streams += 1

        async def body() -> AsyncIterator[str]:
            try:
                async for chunk in events.stream(poller, request.is_disconnected,
                                                 poll_s=poll_s, heartbeat_s=heartbeat_s):
                    yield chunk
            finally:
                app.state.streams -= 1

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app

