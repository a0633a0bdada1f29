"""Builders shared by the risk shell tests (no tests here; imported by test_risk_*.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.risk import (
    PendingOrder,
    PortfolioView,
    PositionView,
    Proposal,
    RiskLimits,
    RiskState,
)
from trading_brain.engine.risk_state import restore

D = Decimal
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LIMITS = RiskLimits()


def pair(symbol: str = "BTC/USD", **kw) -> AssetPair:
    """A Kraken-like pair: 8 lot decimals, 1 price decimal, fee 0.4 %, small minimums."""
    base, quote = symbol.split("/")
    fields = dict(symbol=symbol, base=base, quote=quote, venue_name=base + quote,
                  lot_decimals=8, pair_decimals=1, ordermin=D("0.0001"), costmin=D("0.5"),
                  fee_taker=0.004, fee_maker=0.0025)
    fields.update(kw)
    return AssetPair(**fields)


def unit_pair(symbol: str = "AAA/USD", **kw) -> AssetPair:
    """A pair with zero fee, whole-unit lots and price 1 arithmetic, for exact sizing tables."""
    return pair(symbol, lot_decimals=0, pair_decimals=2, ordermin=D(1), costmin=D(0),
                fee_taker=0.0, **kw)


def position(qty: str, value: str, entry: str = "1") -> PositionView:
    return PositionView(qty=D(qty), value=D(value), entry_price=D(entry))


def pending(intent_id: str, symbol: str, action: str = "enter", qty: str = "1",
            reserved: str = "0") -> PendingOrder:
    return PendingOrder(intent_id=intent_id, symbol=symbol, action=action, qty=D(qty),
                        reserved=D(reserved))


def portfolio(equity: str = "10000", cash: str | None = None, positions=None,
              pend=()) -> PortfolioView:
    return PortfolioView(equity=D(equity), cash=D(cash if cash is not None else equity),
                         positions=positions or {}, pending=tuple(pend))


def enter(symbol: str = "AAA/USD", size: float = 1.0, price: str = "1", intent: str | None = None,
          **kw) -> Proposal:
    return Proposal(intent_id=intent or f"enter-{symbol}", symbol=symbol, action="enter",
                    size=size, price=D(price), **kw)


def sell(symbol: str = "AAA/USD", action: str = "exit", qty: str | None = None,
         price: str = "1", intent: str | None = None) -> Proposal:
    return Proposal(intent_id=intent or f"{action}-{symbol}", symbol=symbol, action=action,
                    quantity=D(qty) if qty is not None else None, price=D(price))


def ready_state(equity: str = "10000", limits: RiskLimits = LIMITS, now: datetime = NOW,
                **updates) -> RiskState:
    """A state restored at ``now`` with ``equity`` (day start = peak = equity), then updated."""
    state, _ = restore(RiskState(), portfolio(equity), now, limits)
    return state.model_copy(update=updates) if updates else state


# zero buffer so unit_pair tables are exact integers
EXACT = RiskLimits(price_buffer_pct=0.0)
