"""The executor tick's inputs and the one slot's state it keeps in memory.

Contract:
- Inputs: ``ExecutorStore`` (the warehouse ports a tick uses), ``SlotSetup`` (a slot's venue
  and starting capital), ``TickConfig``; venues may also be ``Protective`` (they arm a
  position's stop) and ``Deferring`` (they batch their own writes per venue phase).
- ``TickContext`` is one slot's tick. Its inputs (store, market, pairs, limits, config, now,
  slot, venue) never change. Its state is the warehouse's rows as this tick changes them
  (``rows``, ``positions``, intent ``status``, ``cash``, ``state``), plus what each phase hands
  to the next (venue answers, the plan, the venue's replies), plus ``w``: the writes of the
  current phase, merged per row, written by ``flush`` in the caller's transaction. The only
  ways to change the mirrored rows are its methods (``insert_order``, ``update_order``,
  ``apply_fix``, ``set_status``, ``finish_intent``, ``refuse``, ``save_position``), so every
  change is also a write. The decisions themselves are pure (engine/executor/reconcile.py,
  protective.py); the phases live in tick.py, place.py, protect.py and book.py.
- Intent statuses only move forward (``FORWARD``; domain.intents).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.intents import EXIT_PURPOSES, INTENT_ORDER_PURPOSES, OrderIntent
from trading_brain.domain.orders import Balance, Fill, OrderAck, OrderRequest, OrderStatus
from trading_brain.domain.records import CashEntry, OrderRow, PositionRecord
from trading_brain.domain.risk import RiskEvent, RiskLimits, RiskState
from trading_brain.domain.timeframes import Timeframe
from trading_brain.engine.executor.alerts import order_rejected
from trading_brain.engine.executor.protective import Protection
from trading_brain.engine.executor.reconcile import OrderFix
from trading_brain.engine.executor.report import SlotReport, TickReport
from trading_brain.ports import Exchange, LedgerStore, MarketData, MetaStore, RiskStore

__all__ = ["EXITS", "MODELLED_STOPS", "ORDER_PURPOSES", "PROTECTIVE", "REASON_OF",
           "VENUE_BASELINE_KEY", "Deferring", "ExecutorStore", "Protective", "SlotReport",
           "SlotSetup", "TickConfig", "TickContext", "TickReport", "Writes"]


class ExecutorStore(LedgerStore, RiskStore, MetaStore, Protocol):
    """The warehouse a tick uses (trading_brain/ports/storage.py: the ledger tables, the risk
    state and events, ``system_meta``); the DuckDB store and simulate's memory book implement
    it."""


@runtime_checkable
class Protective(Protocol):
    """A venue that protects a filled entry with ONE stop-loss order (both venues; see
    engine/executor/protective.py): placed under ``stop_cid`` once the entry is filled,
    idempotent, never raising once it learnt something."""

    def reconcile_protective(self, entry: OrderRequest,
                             stop_cid: str | None = None) -> Protection: ...


@runtime_checkable
class Deferring(Protocol):
    """A venue that writes its own book once per ``deferred_saves()`` block (paper)."""

    def deferred_saves(self) -> AbstractContextManager[object]: ...


@dataclass(frozen=True, slots=True)
class SlotSetup:
    """One slot: its venue and the capital its cash pool started with.

    ``venue_capital`` (live mode, the active slot on Kraken): the venue's balances are the truth,
    so ``starting_capital`` is ignored and the first tick deposits the venue's quote balance and
    records the coins held then as the baseline (``VENUE_BASELINE_KEY``; see book.py).
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
    # price, are checked each tick (engine/executor/protective.py ``take_profit_reached``)
    tp_timeframe: Timeframe = "1m"
    tp_lookback: timedelta = timedelta(minutes=2)


REASON_OF = {"entry": "signal", "exit": "signal", "stop_loss": "stop_loss",
             "take_profit": "take_profit", "kill": "kill"}
PROTECTIVE = ("stop_loss", "take_profit")
EXITS = EXIT_PURPOSES  # sells of an exit intent (``kill``: one written by `trading-brain kill`)
ORDER_PURPOSES = INTENT_ORDER_PURPOSES  # orders of an intent (settle the intent when finished)
# Venues whose protective orders are modelled, not held at the venue: the paper venue lets a
# pending exit sell wait for the stop bar so a stop on it comes first (the backtest's rule,
# DESIGN §6), so its exits are not guarded (``TickContext.guards_exits``).
MODELLED_STOPS = ("paper",)
VENUE_BASELINE_KEY = "venue.baseline"  # system_meta: {slot: {ts, deposit, assets}} (JSON)

# intent status moves forward only (domain.intents): what ``set_status`` allows
FORWARD = {"pending": {"submitted", "rejected", "cancelled"},
           "submitted": {"done", "rejected", "cancelled"},
           "done": set(), "rejected": set(), "cancelled": set()}
FINAL = ("done", "rejected", "cancelled")

# a placement's answer: the ack, or the OrderRejected/ambiguous/transient error it raised
Answer = tuple[OrderIntent | None, str, OrderAck | Exception]


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
    """One slot's tick (see the module contract)."""

    # inputs
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
    # the slot as loaded (phase 1) and changed by this tick
    capital: Decimal | None = None
    cash: Decimal = Decimal(0)
    state: RiskState = field(default_factory=RiskState)
    baseline: dict[str, Decimal] = field(default_factory=dict)  # coins held before the bot
    positions: dict[str, PositionRecord] = field(default_factory=dict)
    intents: list[OrderIntent] = field(default_factory=list)  # pending, at most max_orders
    open_orders: list[OrderRow] = field(default_factory=list)  # as loaded (asked at the venue)
    rows: dict[str, OrderRow] = field(default_factory=dict)
    known_intents: dict[str, OrderIntent | None] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    since: datetime | None = None  # fills are fetched from here
    # the venue's answers (phase 2; fills and fingerprints again in phase 4)
    opening: Balance | None = None  # live slot's first tick: the venue's balances (deposit)
    statuses: dict[str, OrderStatus | None] = field(default_factory=dict)
    venue_fills: list[Fill] = field(default_factory=list)  # consumed by book.record_fills
    tp_hits: set[str] = field(default_factory=set)  # positions whose take-profit is reached
    fps: dict[str, str] = field(default_factory=dict)  # symbol -> protective fingerprint now
    # the plan (phase 3): what phase 4 sends
    to_cancel: list[str] = field(default_factory=list)
    cancel_reason: dict[str, str] = field(default_factory=dict)  # why a confirmed cancel
    to_protect: list[tuple[OrderRequest, str | None]] = field(default_factory=list)
    # intent None: the executor's take-profit sell of a position (protect.py)
    to_place: list[tuple[OrderIntent | None, OrderRequest]] = field(default_factory=list)
    guarded: list[tuple[OrderIntent | None, OrderRow, list[str]]] = field(default_factory=list)
    # the venue's replies (phase 4), recorded in phase 5
    confirmed: dict[str, OrderStatus | None] = field(default_factory=dict)
    protected: list[tuple[str | None, Protection]] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    marks: dict[str, Decimal] = field(default_factory=dict)
    venue_balance: Balance | None = None  # the venue's balances as read (before the baseline)
    balance: Balance | None = None  # ... minus the baseline: what the ledger accounts for
    w: Writes = field(default_factory=Writes)

    @property
    def guards_exits(self) -> bool:
        """A real venue holds protective orders: an exit first cancels them and a position
        about to be exited is not armed. The paper venue models stops itself
        (``MODELLED_STOPS``: a stop on the exit's bar comes first, as in the backtest)."""
        return self.ex.name not in MODELLED_STOPS

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

    def finish_intent(self, intent_id: str | None, status: str, reason: str) -> None:
        """Settle an intent (no-op when unknown or final already); a refusal is reported."""
        intent = self.intent(intent_id) if intent_id else None
        if intent is None or self.status_of(intent.intent_id) in FINAL:
            return
        if self.status_of(intent.intent_id) == "pending":
            self.set_status(intent.intent_id, "submitted")
        self.set_status(intent.intent_id, status)
        if status != "done":
            self.refuse(intent, reason, status, record_status=False)

    def refuse(self, intent: OrderIntent, reason: str, status: str,
               record_status: bool = True) -> None:
        """An intent refused by the executor or the venue: status, report and risk event."""
        if record_status:
            self.set_status(intent.intent_id, status)
        self.rep.intents_rejected[intent.intent_id] = reason
        self.rep.alerts += order_rejected(self.slot, intent, reason, status)
        self.rep.events.append(RiskEvent(
            ts=self.now, kind="decision", symbol=intent.symbol, reason=reason,
            details={"intent_id": intent.intent_id, "action": intent.action, "status": status,
                     "stage": "executor", "slot": self.slot}))

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
        # the names are OrderRow's own fields (reconcile's fixes, the phases' literals)
        new = replace(row, **fields, updated_at=self.now)
        self.rows[cid] = new
        (self.w.new_orders if cid in self.w.new_orders else self.w.changed_orders)[cid] = new

    def apply_fix(self, fix: OrderFix) -> None:
        """Apply one reconcile decision: the row's fields, the report, the intent it settles."""
        if fix.error:
            self.rep.errors.append(fix.error)
        if fix.fields:
            self.update_order(fix.client_order_id, **fix.fields)
        if fix.updated:
            self.rep.orders_updated.append(fix.client_order_id)
        if fix.cancelled:
            self.rep.orders_cancelled.append(fix.client_order_id)
        if fix.intent is not None:
            self.finish_intent(fix.intent.intent_id, fix.intent.status, fix.intent.reason)

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

    def venue_batch(self) -> AbstractContextManager[object]:
        """The venue's ``deferred_saves()`` block when it is ``Deferring`` (else a no-op)."""
        return self.ex.deferred_saves() if isinstance(self.ex, Deferring) else nullcontext()
