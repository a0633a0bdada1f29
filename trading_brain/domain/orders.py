"""Venue-neutral order types shared by the live (Kraken) and the paper executor.

Contract:
- Every model is a frozen pydantic model (``extra="forbid"``); quantities, prices and fees are
  ``Decimal`` (never float), times are timezone-aware UTC ``datetime``.
- ``OrderRequest``: what the executor asks a venue to do. ``type="limit"`` needs
  ``limit_price``; ``type="market"`` must not carry one. ``stop_loss``/``take_profit`` are the
  levels of the exchange-native protective orders placed *after* the entry fills (only for a
  ``buy`` entry: a spot long is protected by sells); ``stop_loss < take_profit`` when both.
- ``OrderStatus.state`` is one of ``ORDER_STATES``; ``is_terminal`` is true for filled,
  canceled, rejected and expired. A canceled order may have ``filled_qty > 0``.
- ``Fill`` is one execution (a venue trade) with its fee in ``fee_currency``.
- ``Balance`` maps common asset codes (``BTC``, ``USD``) to total amounts; ``get`` → 0 when absent.
- ``FeeTier``: the account's current maker/taker rates as fractions (0.0026 = 0.26 %).
- ``derive_client_order_id(intent_id, suffix="")`` → a deterministic RFC 4122 UUID string (36
  chars), so an intent always maps to the same client order id across restarts; ``suffix``
  derives sibling ids (``"sl"``, ``"tp"``) for protective orders.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]
OrderState = Literal[
    "pending", "open", "partially_filled", "filled", "canceled", "rejected", "expired"
]
ORDER_STATES: tuple[str, ...] = (
    "pending", "open", "partially_filled", "filled", "canceled", "rejected", "expired"
)
TERMINAL_STATES = frozenset({"filled", "canceled", "rejected", "expired"})
_NAMESPACE = uuid.UUID("6f1c3b1e-6c53-4a53-9d55-7472616469e6")  # fixed: ids must never change


def derive_client_order_id(intent_id: str, suffix: str = "") -> str:
    """Deterministic client order id (a UUID string) for an intent (and an optional sibling)."""
    if not intent_id:
        raise ValueError("intent_id must not be empty")
    return _derive(intent_id, suffix)


@lru_cache(maxsize=1 << 14, typed=True)
def _derive(intent_id: str, suffix: str) -> str:
    """A pure function of its arguments (a name-based UUID), so a memo can never be stale; the
    executor asks for the same ids on every tick while an order or position is open."""
    return str(uuid.uuid5(_NAMESPACE, f"{intent_id}:{suffix}" if suffix else intent_id))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderRequest(_Frozen):
    """An order to send; ``client_order_id`` is the idempotency handle (look-ups, reconciliation)."""

    client_order_id: str = Field(min_length=1, max_length=64)
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal = Field(gt=0)
    limit_price: Decimal | None = Field(default=None, gt=0)
    stop_loss: Decimal | None = Field(default=None, gt=0)
    take_profit: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> OrderRequest:
        if self.type == "limit" and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")
        if self.type == "market" and self.limit_price is not None:
            raise ValueError("a market order must not carry limit_price")
        if (self.stop_loss or self.take_profit) and self.side != "buy":
            raise ValueError("stop_loss/take_profit protect a buy entry only")
        if self.stop_loss and self.take_profit and self.stop_loss >= self.take_profit:
            raise ValueError("stop_loss must be below take_profit")
        return self


class OrderAck(_Frozen):
    """The venue accepted an order (it may still be pending)."""

    client_order_id: str
    venue_order_id: str
    state: OrderState = "open"
    accepted_at: datetime


class OrderStatus(_Frozen):
    """The venue's view of one order at ``updated_at``."""

    client_order_id: str | None
    venue_order_id: str
    symbol: str
    side: Side
    order_type: str = Field(description="venue order type (market, limit, stop-loss…)")
    quantity: Decimal = Field(ge=0)
    state: OrderState
    filled_qty: Decimal = Field(default=Decimal(0), ge=0)
    avg_price: Decimal | None = Field(default=None, ge=0)
    fee: Decimal = Field(default=Decimal(0), ge=0)
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    reason: str | None = None
    updated_at: datetime

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def remaining_qty(self) -> Decimal:
        return max(Decimal(0), self.quantity - self.filled_qty)


class Fill(_Frozen):
    """One execution of an order."""

    fill_id: str
    client_order_id: str | None
    venue_order_id: str
    symbol: str
    side: Side
    qty: Decimal = Field(gt=0)
    price: Decimal = Field(gt=0)
    fee: Decimal = Field(ge=0)
    fee_currency: str
    ts: datetime


class Balance(_Frozen):
    """Total balance per common asset code."""

    assets: dict[str, Decimal]

    def get(self, asset: str) -> Decimal:
        return self.assets.get(asset.upper(), Decimal(0))


class FeeTier(_Frozen):
    """Current account fee rates for one symbol (fractions) and the 30-day volume behind them."""

    symbol: str
    taker: Decimal = Field(ge=0, le=Decimal("0.1"))
    maker: Decimal = Field(ge=0, le=Decimal("0.1"))
    volume_30d: Decimal = Field(default=Decimal(0), ge=0)
    volume_currency: str = "USD"
