"""Types of the executor tick: the store port it needs, slot setup, config and reports.

``run_tick`` (engine/executor.py) consumes ``SlotSetup``/``TickConfig`` and returns a
``TickReport`` (one ``SlotReport`` per slot) that the executor sensor turns into asset events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

from trading_brain.domain.alerts import Alert
from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import (
    Balance,
    Fill,
    OrderRequest,
    OrderStatus,
)
from trading_brain.domain.records import CashEntry, OrderRow, PositionRecord, Snapshot
from trading_brain.domain.risk import RiskEvent, RiskLimits, RiskState
from trading_brain.engine.executor.protective import Protection
from trading_brain.engine.valuation import InvariantReport, Mismatch
from trading_brain.ports import Exchange, MarketData


class ExecutorStore(Protocol):
    """The warehouse methods a tick uses (``adapters.duckdb.Store`` implements them).

    A tick reads with a few set-based queries and writes each phase with one multi-row
    statement per table inside ``atomic()`` (one transaction; re-entrant).
    """

    def session(self) -> AbstractContextManager[object]: ...
    def atomic(self) -> AbstractContextManager[object]: ...
    def executor_header(self, slot: str) -> tuple[Decimal | None, str | RiskState | None,
                                                  datetime | None, Decimal]: ...
    def executor_orders(self, slot: str, intent_ids: Sequence[str]) -> list[OrderRow]: ...
    def orders_by_cids(self, cids: Sequence[str]) -> list[OrderRow]: ...
    def pending_intents(self, slot: str, limit: int) -> list[OrderIntent]: ...
    def intents_by_ids(self, ids: Sequence[str]) -> dict[str, OrderIntent]: ...
    def positions(self, slot: str, status: str | None = "open") -> list[PositionRecord]: ...
    def known_fill_ids(self, fill_ids: Sequence[str]) -> set[str]: ...
    def ensure_deposit(self, slot: str, amount: Decimal, ts: datetime) -> bool: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def write_orders(self, new: Sequence[OrderRow], changed: Sequence[OrderRow]) -> set[str]: ...
    def set_intent_statuses(self, statuses: Sequence[tuple[str, str]], now: datetime) -> None: ...
    def insert_fills(self, fills: Sequence[Fill], entries: Sequence[CashEntry],
                     now: datetime) -> None: ...
    def save_positions(self, positions: Sequence[PositionRecord]) -> None: ...
    def fills(self, slot: str) -> list[Fill]: ...
    def cash_entries(self, slot: str) -> list[CashEntry]: ...
    def starting_capital(self, slot: str) -> Decimal | None: ...
    def write_snapshot(self, s: Snapshot) -> None: ...
    def record_risk_events(self, slot: str, events: Sequence[RiskEvent]) -> int: ...
    def save_risk_state(self, slot: str, state: RiskState, now: datetime | None = None) -> None: ...


@runtime_checkable
class Protective(Protocol):
    """A venue that protects a filled entry with ONE stop-loss order (both venues; see
    engine/protective.py): placed under ``stop_cid`` once the entry is filled, idempotent,
    never raising once it learnt something."""

    def reconcile_protective(self, entry: OrderRequest,
                             stop_cid: str | None = None) -> Protection: ...


@dataclass(frozen=True, slots=True)
class SlotSetup:
    """One slot: its venue and the capital its cash pool started with.

    ``venue_capital`` (live mode, the active slot on Kraken): the venue's balances are the truth,
    so ``starting_capital`` is ignored and the first tick deposits the venue's quote balance and
    records the coins held then as the baseline (``VENUE_BASELINE_KEY``; see engine/executor.py).
    """

    exchange: Exchange
    starting_capital: Decimal
    venue_capital: bool = False


@dataclass(frozen=True, slots=True)
class TickConfig:
    max_orders: int = 50
    unresolved_grace: timedelta = timedelta(minutes=2)
    budget_s: float = 10.0
    quote: str = "USD"
    local_venues: bool = False  # venues and market do no network I/O: share the session
    fill_lookback: timedelta = timedelta(minutes=15)
    # the executor's take-profit (venues that hold the stop: not paper): bars of this
    # timeframe that closed after the entry bar and at most ``tp_lookback`` ago, and the last
    # price, are checked each tick (engine/protective.py ``take_profit_reached``)
    tp_timeframe: str = "1m"
    tp_lookback: timedelta = timedelta(minutes=2)


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
    orders_cancelled: list[str] = field(default_factory=list)  # cancels the venue confirmed
    warnings: list[str] = field(default_factory=list)  # ambiguous orders, service errors
    alerts: list[Alert] = field(default_factory=list)  # for the notifier (idempotent by key)
    unprotected: list[str] = field(default_factory=list)  # positions whose leg is blocked
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
EXITS = ("exit", "kill")  # sells of an exit intent ("kill": one written by `trading-brain kill`)
ORDER_PURPOSES = ("entry", *EXITS)  # orders of an intent (settle the intent when terminal)
# Venues whose protective orders are modelled, not held at the venue: the paper venue lets a
# pending exit sell wait for the stop bar so a stop on it comes first (the backtest's rule,
# DESIGN §6), so its exits are not guarded (``executor._guards_exits``).
MODELLED_STOPS = ("paper",)
VENUE_BASELINE_KEY = "venue.baseline"  # system_meta: {slot: {ts, deposit, assets}} (JSON)


# intent status moves forward only (domain.intents): what ``set_status`` allows
FORWARD = {"pending": {"submitted", "rejected", "cancelled"},
           "submitted": {"done", "rejected", "cancelled"},
           "done": set(), "rejected": set(), "cancelled": set()}


@dataclass(slots=True)
class Writes:
    """The warehouse writes of one phase, merged per row (flushed in one transaction)."""

    new_orders: dict[str, OrderRow] = field(default_factory=dict)
    changed_orders: dict[str, OrderRow] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    entries: list[CashEntry] = field(default_factory=list)
    positions: dict[str, PositionRecord] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.new_orders or self.changed_orders or self.statuses or self.fills
                    or self.entries or self.positions)


@dataclass(slots=True)
class TickContext:
    """One slot's tick: its inputs, what it learnt (kept in memory for the tick) and the
    writes of the current phase. ``rows``/``status``/``positions`` mirror the warehouse as
    this tick changes it; ``flush`` writes the phase (the caller holds ``store.atomic()``)."""

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
    to_protect: list[tuple[OrderRequest, str | None]] = field(default_factory=list)
    protected: list[tuple[str | None, Protection]] = field(default_factory=list)
    to_cancel: list[str] = field(default_factory=list)
    # intent None: the executor's take-profit sell of a position (engine/executor_protect.py)
    to_place: list[tuple[OrderIntent | None, OrderRequest]] = field(default_factory=list)
    guarded: list[tuple[OrderIntent | None, OrderRow, list[str]]] = field(default_factory=list)
    confirmed: dict[str, OrderStatus | None] = field(default_factory=dict)
    cancel_reason: dict[str, str] = field(default_factory=dict)  # why a confirmed cancel
    tp_hits: set[str] = field(default_factory=set)  # positions whose take-profit is reached
    fps: dict[str, str] = field(default_factory=dict)  # symbol -> protective fingerprint now
    venue_balance: Balance | None = None  # the venue's balances as read (before the baseline)
    opening: Balance | None = None  # live slot's first tick: the venue's balances (deposit)
    baseline: dict[str, Decimal] = field(default_factory=dict)  # coins held before the bot
    answers: list[tuple[OrderIntent | None, str, object]] = field(default_factory=list)
    marks: dict[str, Decimal] = field(default_factory=dict)
    balance: Balance | None = None
    capital: Decimal | None = None
    cash: Decimal = Decimal(0)
    rows: dict[str, OrderRow] = field(default_factory=dict)
    known_intents: dict[str, OrderIntent | None] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    w: Writes = field(default_factory=Writes)

    # ---- intents ---------------------------------------------------------------------------
    def load_intents(self, ids: Sequence[str]) -> None:
        """Read the intents among ``ids`` not known yet (one query); unknown ids map to None."""
        missing = sorted({i for i in ids if i not in self.known_intents})
        if not missing:
            return
        found = self.store.intents_by_ids(missing)
        for i in missing:
            self.known_intents[i] = found.get(i)
            if i in found:
                self.status[i] = found[i].status

    def intent(self, intent_id: str) -> OrderIntent | None:
        """An intent's immutable fields (read once per tick; its status is ``status_of``)."""
        self.load_intents([intent_id])
        return self.known_intents[intent_id]

    def status_of(self, intent_id: str) -> str | None:
        """The intent's status as stored plus this tick's changes (None: unknown intent)."""
        self.load_intents([intent_id])
        return self.status.get(intent_id)

    def set_status(self, intent_id: str, status: str) -> None:
        """Move an intent forward (a backwards or unknown transition raises ValueError)."""
        old = self.status_of(intent_id)
        if old is None:
            raise ValueError(f"unknown intent {intent_id}")
        if old == status:
            return
        if status not in FORWARD[old]:
            raise ValueError(f"intent {intent_id}: {old} -> {status} is not allowed")
        self.status[intent_id] = self.w.statuses[intent_id] = status

    # ---- orders and positions --------------------------------------------------------------
    def open_rows(self) -> list[OrderRow]:
        """The slot's open orders as this tick knows them, oldest first."""
        return sorted((o for o in self.rows.values() if o.slot == self.slot and o.is_open),
                      key=lambda o: (o.created_at, o.client_order_id))

    def insert_order(self, row: OrderRow) -> None:
        if row.client_order_id not in self.rows:
            self.rows[row.client_order_id] = self.w.new_orders[row.client_order_id] = row

    def update_order(self, cid: str, **fields: object) -> None:
        """Set ``fields`` and ``updated_at`` on a known order (an unknown id changes nothing)."""
        row = self.rows.get(cid)
        if row is None:
            return
        new = replace(row, **fields, updated_at=self.now)  # type: ignore[arg-type]
        self.rows[cid] = new
        (self.w.new_orders if cid in self.w.new_orders else self.w.changed_orders)[cid] = new

    def save_position(self, p: PositionRecord) -> None:
        self.w.positions[p.position_id] = p

    def flush(self) -> set[str]:
        """Write this phase's changes (inside the caller's ``store.atomic()``); return the
        client order ids inserted now."""
        w, self.w, s = self.w, Writes(), self.store
        inserted = s.write_orders(list(w.new_orders.values()), list(w.changed_orders.values())) \
            if w.new_orders or w.changed_orders else set()
        if w.statuses:
            s.set_intent_statuses(list(w.statuses.items()), self.now)
        if w.fills or w.entries:
            s.insert_fills(w.fills, w.entries, self.now)
        if w.positions:
            s.save_positions(list(w.positions.values()))
        return inserted
