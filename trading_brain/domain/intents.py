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
- status moves ``pending -> submitted -> done`` (or ``rejected``/``cancelled``), never back;
- ``purpose`` (``IntentPurpose``) says what the order is for: ``entry`` (an ``enter``),
  ``exit`` (a strategy's ``exit``) or ``kill`` (an exit written by ``trading-brain kill``, whose
  ``strategy_id`` is ``KILL_STRATEGY_ID``); ``protective`` names the executor's own stop-loss /
  take-profit orders, which have no intent. ``order_intents`` has no purpose column: the
  purpose is derived from (action, strategy_id) by ``purpose_for``, the ONE place that rule
  lives, whenever an intent is built without one (a stored row), and an explicit purpose must
  agree with it (so a stored intent reads back with the purpose it was written with). The
  executor's order rows store it as their ``purpose``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Slot = Literal["active", "shadow1", "shadow2", "shadow3"]
IntentAction = Literal["enter", "exit"]
IntentStatus = Literal["pending", "submitted", "done", "rejected", "cancelled"]
INTENT_STATUSES: tuple[str, ...] = ("pending", "submitted", "done", "rejected", "cancelled")
KILL_STRATEGY_ID = "kill"  # the strategy id of the exits `trading-brain kill` writes


class IntentPurpose(StrEnum):
    """What an order is for (the ``purpose`` of its ``orders`` row for the first three)."""

    ENTRY = "entry"
    EXIT = "exit"
    KILL = "kill"
    PROTECTIVE = "protective"  # the executor's stop-loss/take-profit legs (no intent)


# ``orders.purpose`` of the orders an intent makes (they settle the intent when finished), and of
# those that sell a position on an intent's behalf
INTENT_ORDER_PURPOSES: tuple[str, ...] = (IntentPurpose.ENTRY, IntentPurpose.EXIT,
                                          IntentPurpose.KILL)
EXIT_PURPOSES: tuple[str, ...] = (IntentPurpose.EXIT, IntentPurpose.KILL)


def purpose_for(action: str, strategy_id: str) -> IntentPurpose:
    """The purpose of an intent with this action and strategy id (see the module contract)."""
    if action == "enter":
        return IntentPurpose.ENTRY
    return IntentPurpose.KILL if strategy_id == KILL_STRATEGY_ID else IntentPurpose.EXIT


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
    purpose: IntentPurpose = Field(
        default=IntentPurpose.ENTRY,
        description="derived from (action, strategy_id) when not given; must agree with it")

    @model_validator(mode="before")
    @classmethod
    def _derive_purpose(cls, data: Any) -> Any:  # pydantic's raw input (any shape)
        if not isinstance(data, dict) or not {"action", "strategy_id"} <= data.keys():
            return data  # pydantic reports the missing fields
        derived = purpose_for(str(data["action"]), str(data["strategy_id"]))
        given = data.get("purpose")
        if given is None:
            return {**data, "purpose": derived}
        if given != derived:
            raise ValueError(f"purpose {given!s} disagrees with action {data['action']!r} and "
                             f"strategy_id {data['strategy_id']!r} ({derived})")
        return data
