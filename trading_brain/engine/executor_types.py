"""Types of the executor tick: the store port it needs, slot setup, config and reports.

``run_tick`` (engine/executor.py) consumes ``SlotSetup``/``TickConfig`` and returns a
``TickReport`` (one ``SlotReport`` per slot) that the executor sensor turns into asset events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import (
    Balance,
    Fill,
    OrderRequest,
    OrderStatus,
)
from trading_brain.domain.risk import RiskEvent, RiskLimits, RiskState
from trading_brain.engine.ledger import (
    CashEntry,
    FillEffect,
    InvariantReport,
    Mismatch,
    OrderRow,
    PositionRecord,
    Snapshot,
)
from trading_brain.ports import Exchange, MarketData


class ExecutorStore(Protocol):
    """The warehouse methods a tick uses (``adapters.duckdb.Store`` implements them)."""

    def intents(self, status: str | None = None, slot: str | None = None) -> list[OrderIntent]: ...
    def intent_by_id(self, intent_id: str) -> OrderIntent | None: ...
    def set_intent_status(self, intent_id: str, status: str, now: datetime) -> None: ...
    def insert_order(self, row: OrderRow) -> bool: ...
    def update_order(self, cid: str, now: datetime, **fields: object) -> None: ...
    def order(self, cid: str) -> OrderRow | None: ...
    def orders(self, slot: str | None = None, open_only: bool = False,
               intent_ids: Sequence[str] | None = None) -> list[OrderRow]: ...
    def record_fill(self, slot: str, fill: Fill, effect: FillEffect, now: datetime) -> bool: ...
    def known_fill_ids(self, fill_ids: Sequence[str]) -> set[str]: ...
    def fills(self, slot: str) -> list[Fill]: ...
    def last_fill_ts(self, slot: str) -> datetime | None: ...
    def session(self) -> AbstractContextManager[object]: ...
    def positions(self, slot: str, status: str | None = "open") -> list[PositionRecord]: ...
    def save_position(self, p: PositionRecord) -> None: ...
    def ensure_deposit(self, slot: str, amount: Decimal, ts: datetime) -> bool: ...
    def starting_capital(self, slot: str) -> Decimal | None: ...
    def cash_entries(self, slot: str) -> list[CashEntry]: ...
    def cash_balance(self, slot: str) -> Decimal: ...
    def write_snapshot(self, s: Snapshot) -> None: ...
    def record_risk_events(self, slot: str, events: Sequence[RiskEvent]) -> int: ...
    def load_risk_state(self, slot: str) -> RiskState | None: ...
    def save_risk_state(self, slot: str, state: RiskState, now: datetime | None = None) -> None: ...


@runtime_checkable
class Protective(Protocol):
    """A venue that protects a filled entry with stop-loss/take-profit orders (both venues)."""

    def reconcile_protective(self, entry: OrderRequest) -> object: ...


@dataclass(frozen=True, slots=True)
class SlotSetup:
    """One slot: its venue and the capital its cash pool started with."""

    exchange: Exchange
    starting_capital: Decimal


@dataclass(frozen=True, slots=True)
class TickConfig:
    max_orders: int = 50
    unresolved_grace: timedelta = timedelta(minutes=2)
    budget_s: float = 10.0
    quote: str = "USD"
    local_venues: bool = False  # venues and market do no network I/O: share the session
    fill_lookback: timedelta = timedelta(minutes=15)


@dataclass(slots=True)
class SlotReport:
    """What one slot's tick did (the sensor's asset events)."""

    slot: str
    orders_placed: list[str] = field(default_factory=list)
    orders_updated: list[str] = field(default_factory=list)
    fills: list[str] = field(default_factory=list)
    positions_opened: list[str] = field(default_factory=list)
    positions_closed: list[str] = field(default_factory=list)
    intents_rejected: dict[str, str] = field(default_factory=dict)
    events: list[RiskEvent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    invariant: InvariantReport | None = None
    snapshot: Snapshot | None = None

    @property
    def ok(self) -> bool:
        return self.invariant is not None and self.invariant.ok and not self.mismatches


@dataclass(slots=True)
class TickReport:
    """The whole tick: one report per slot."""

    ts: datetime
    slots: dict[str, SlotReport]
    duration_s: float = 0.0

    @property
    def invariant_ok(self) -> bool:
        return all(r.ok for r in self.slots.values())

    def count(self, what: str) -> int:
        return sum(len(getattr(r, what)) for r in self.slots.values())


REASON_OF = {"entry": "signal", "exit": "signal", "stop_loss": "stop_loss",
             "take_profit": "take_profit", "kill": "kill"}
PROTECTIVE = ("stop_loss", "take_profit")


@dataclass(slots=True)
class TickContext:
    store: ExecutorStore
    market: MarketData
    pairs: Mapping[str, AssetPair]
    limits: RiskLimits
    config: TickConfig
    now: datetime
    slot: str
    ex: Exchange
    rep: SlotReport
    started: float
    state: RiskState = field(default_factory=RiskState)
    open_orders: list[OrderRow] = field(default_factory=list)
    positions: dict[str, PositionRecord] = field(default_factory=dict)
    intents: list[OrderIntent] = field(default_factory=list)
    since: datetime | None = None
    statuses: dict[str, OrderStatus | None] = field(default_factory=dict)
    venue_fills: list[Fill] = field(default_factory=list)
    to_protect: list[OrderRequest] = field(default_factory=list)
    to_cancel: list[str] = field(default_factory=list)
    to_place: list[tuple[OrderIntent, OrderRequest]] = field(default_factory=list)
    answers: list[tuple[OrderIntent, str, object]] = field(default_factory=list)
    marks: dict[str, Decimal] = field(default_factory=dict)
    balance: Balance | None = None
    capital: Decimal | None = None
    known_intents: dict[str, OrderIntent | None] = field(default_factory=dict)

    def intent(self, intent_id: str) -> OrderIntent | None:
        """An intent's immutable fields (cached for the tick; never read its status here)."""
        if intent_id not in self.known_intents:
            self.known_intents[intent_id] = self.store.intent_by_id(intent_id)
        return self.known_intents[intent_id]
