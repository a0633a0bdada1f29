"""The listing endpoints (GET, JSON pages; see ``reads.listing_page`` for the page shape).

Every listing takes ``limit`` (1..1000, default 100), ``offset`` (0..1,000,000), ``order``
(``desc``, newest first, or ``asc``), ``since`` (inclusive) and ``until`` (exclusive) on its
time column, plus the filters of its signature. Names are checked (symbols ``BASE/QUOTE`` in
capitals, statuses from their fixed sets); a bad value, an unknown parameter or ``since`` not
before ``until`` is a 422 (``app``). The auth dependency is the router's, in ``app``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from trading_brain.adapters.http_api.queries import Page
from trading_brain.adapters.http_api.reads import Warehouse, listing_page
from trading_brain.domain.orders import OrderState, Side

MAX_LIMIT, MAX_OFFSET = 1000, 1_000_000
NAME = r"^[A-Za-z0-9_.:@-]{1,64}$"
Symbol = Annotated[str | None, Query(pattern=r"^[A-Z0-9]{1,16}/[A-Z0-9]{1,16}$",
                                     description="a pair such as BTC/USD")]
Name = Annotated[str | None, Query(pattern=NAME)]
Slot = Annotated[str | None, Query(pattern=NAME, description="active, or a candidate slot")]
Strategy = Annotated[str | None, Query(pattern=NAME, description="a strategy id, e.g. ema_cross")]


def _utc(t: datetime | None) -> datetime | None:
    return None if t is None else t.replace(tzinfo=UTC) if t.tzinfo is None else t


class Window:
    """``since``/``until`` (ISO-8601; no offset means UTC) and the page."""

    def __init__(self,
                 limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
                 offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                 order: Literal["asc", "desc"] = "desc",
                 since: Annotated[datetime | None, Query(description="inclusive")] = None,
                 until: Annotated[datetime | None, Query(description="exclusive")] = None,
                 ) -> None:
        self.since, self.until = _utc(since), _utc(until)
        if self.since and self.until and self.since >= self.until:
            raise HTTPException(422, "since must be before until")
        self.page = Page(limit, offset, order)


def warehouse(request: Request) -> Warehouse:
    return request.app.state.warehouse


Wh = Annotated[Warehouse, Depends(warehouse)]
Win = Annotated[Window, Depends()]
router = APIRouter()


def _page(wh: Warehouse, name: str, w: Window, **filters: object) -> dict[str, object]:
    return listing_page(wh, name, filters, w.since, w.until, w.page)


@router.get("/positions", tags=["trading"])
def positions(wh: Wh, w: Win, symbol: Symbol = None, slot: Slot = None,
              strategy: Strategy = None,
              status: Literal["open", "closed", "all"] = "open") -> dict[str, object]:
    """Positions (open by default), by entry time."""
    return _page(wh, "positions", w, symbol=symbol, slot=slot, strategy=strategy,
                 status=None if status == "all" else status)


@router.get("/trades", tags=["trading"])
def trades(wh: Wh, w: Win, symbol: Symbol = None, slot: Slot = None,
           strategy: Strategy = None) -> dict[str, object]:
    """Closed round trips (closed positions with their realised P&L), by exit time."""
    return _page(wh, "trades", w, symbol=symbol, slot=slot, strategy=strategy)


@router.get("/fills", tags=["trading"])
def fills(wh: Wh, w: Win, symbol: Symbol = None, slot: Slot = None,
          side: Side | None = None) -> dict[str, object]:
    """Executions, by fill time."""
    return _page(wh, "fills", w, symbol=symbol, slot=slot, side=side)


@router.get("/orders", tags=["trading"])
def orders(wh: Wh, w: Win, symbol: Symbol = None, slot: Slot = None,
           status: OrderState | None = None, side: Side | None = None,
           purpose: Literal["entry", "exit", "stop_loss", "take_profit", "kill"] | None = None,
           ) -> dict[str, object]:
    """Orders, by creation time; ``status`` is the order state."""
    return _page(wh, "orders", w, symbol=symbol, slot=slot, status=status, side=side,
                 purpose=purpose)


@router.get("/equity", tags=["portfolio"])
def equity(wh: Wh, w: Win, slot: Slot = None) -> dict[str, object]:
    """Portfolio snapshots (equity, cash, exposure, drawdown, P&L), by time."""
    return _page(wh, "equity", w, slot=slot)


@router.get("/risk", tags=["portfolio"])
def risk(wh: Wh, w: Win, slot: Slot = None) -> dict[str, object]:
    """Risk state per slot: halts, kill switch, peak equity, probation, rollback."""
    return _page(wh, "risk", w, slot=slot)


@router.get("/risk/events", tags=["portfolio"])
def risk_events(wh: Wh, w: Win, kind: Name = None, symbol: Symbol = None
                ) -> dict[str, object]:
    """Risk events (decisions, halts, resumes, probation, cooldowns), by time."""
    return _page(wh, "risk_events", w, kind=kind, symbol=symbol)


VersionStatus = Literal["registered", "active", "candidate", "retired", "cancelled",
                        "rolled_back", "rejected"]


@router.get("/strategies", tags=["strategies"])
def strategies(wh: Wh, w: Win, strategy: Strategy = None, status: VersionStatus | None = None
               ) -> dict[str, object]:
    """Strategy versions (without their source), by registration time."""
    return _page(wh, "strategies", w, strategy=strategy, status=status)


@router.get("/strategies/deployments", tags=["strategies"])
def deployments(wh: Wh, w: Win, strategy: Strategy = None, action: Name = None
                ) -> dict[str, object]:
    """Deployments log (deploy, promote, rollback…), by time."""
    return _page(wh, "deployments", w, strategy=strategy, action=action)


@router.get("/candidates", tags=["evolution"])
def candidates(wh: Wh, w: Win, strategy: Strategy = None,
               status: Literal["running", "passed", "failed", "inconclusive",
                               "cancelled"] | None = None) -> dict[str, object]:
    """Candidate versions with their latest shadow paper test; ``status`` is the test's."""
    return _page(wh, "candidates", w, strategy=strategy, status=status)


@router.get("/cycles", tags=["evolution"])
def cycles(wh: Wh, w: Win, status: Literal["running", "done", "failed", "rejected"] | None = None,
           advisor: Name = None) -> dict[str, object]:
    """Evolution cycles and their decisions, by start time."""
    return _page(wh, "cycles", w, status=status, advisor=advisor)


@router.get("/thoughts", tags=["evolution"])
def thoughts(wh: Wh, w: Win, cycle: Name = None, role: Name = None, step: Name = None
             ) -> dict[str, object]:
    """The advisor's stored conversation (thought spool), by time."""
    return _page(wh, "thoughts", w, cycle=cycle, role=role, step=step)


@router.get("/benchmarks", tags=["evolution"])
def benchmarks(wh: Wh, w: Win, slot: Slot = None,
               scope: Literal["slot", "version", "symbol"] | None = None, subject: Name = None,
               metric: Name = None, cycle: Name = None) -> dict[str, object]:
    """Truth benchmarks (rigid SQL metrics), by as-of time."""
    return _page(wh, "benchmarks", w, slot=slot, scope=scope, subject=subject, metric=metric,
                 cycle=cycle)


@router.get("/scorecard", tags=["evolution"])
def scorecard(wh: Wh, w: Win, strategy: Strategy = None,
              verdict: Literal["pending", "won", "lost", "tie"] | None = None
              ) -> dict[str, object]:
    """Every promotion and its later review against the incumbent, by promotion time."""
    return _page(wh, "scorecard", w, strategy=strategy, verdict=verdict)
