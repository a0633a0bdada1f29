"""Order intents: what the scan decided, after the risk shell, before any venue is called.

Contract (shared by the scan, which writes intents, and the executor, which consumes them):
- ``intent_id`` is deterministic: ``intent_id_for(strategy_id, version, slot, symbol, bar_time,
  action)`` — a rerun or retry of the same scan yields the same id, so storage (keyed by it)
  never holds a second intent for one decision (DESIGN §6);
- ``client_order_id = derive_client_order_id(intent_id)`` (domain.orders): one venue order per
  intent, found again after any crash;
- ``action`` ``enter`` buys, ``exit`` sells the slot's position; quantities are the risk shell's
  final (lot-rounded) ``Decimal`` values; ``stop_loss``/``take_profit`` are fractions of the
  entry fill price (DESIGN §6: levels are fixed from the fill);
- ``slot`` is ``"active"`` or a shadow candidate slot ``"shadow1".."shadow3"``; shadow slots
  trade on paper only;
- status moves ``pending -> submitted -> done`` (or ``rejected``/``cancelled``), never back.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Slot = Literal["active", "shadow1", "shadow2", "shadow3"]
IntentAction = Literal["enter", "exit"]
IntentStatus = Literal["pending", "submitted", "done", "rejected", "cancelled"]
INTENT_STATUSES: tuple[str, ...] = ("pending", "submitted", "done", "rejected", "cancelled")


def intent_id_for(strategy_id: str, version: int, slot: str, symbol: str, bar_time: datetime,
                  action: str) -> str:
    """Deterministic id of the decision taken on ``bar_time`` (open time of the decision bar)."""
    key = f"{strategy_id}@{version}|{slot}|{symbol}|{bar_time.isoformat()}|{action}"
    return "int-" + hashlib.sha256(key.encode()).hexdigest()[:24]


class OrderIntent(BaseModel):
    """A risk-approved decision waiting for (or given to) the executor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intent_id: str = Field(min_length=8, max_length=64)
    scan_id: str
    strategy_id: str
    version: int = Field(ge=1)
    slot: Slot = "active"
    symbol: str
    bar_time: datetime
    action: IntentAction
    quantity: Decimal = Field(gt=0)
    limit_price: Decimal | None = Field(default=None, gt=0)
    reference_price: Decimal = Field(gt=0, description="close of the decision bar")
    stop_loss: float | None = Field(default=None, gt=0, lt=1)
    take_profit: float | None = Field(default=None, gt=0)
    intent_type: Literal["day", "swing", "position"] = "swing"
    confidence: float = Field(default=0.0, ge=0, le=1)
    status: IntentStatus = "pending"
    created_at: datetime
