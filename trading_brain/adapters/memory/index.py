"""Indexes and running totals of ``adapters.memory.book.MemoryBook``, maintained on write.

The book's per-tick reads (``executor_header``, ``ledger_totals``, ``fill_totals``,
``portfolio_view``, ``executor_orders``, ``open_counts``, ``busy_slots``...) read these instead of
scanning the whole history, so a step costs O(open orders/positions/intents + symbols), not
O(rows ever written). Contract:
- ``BookIndex.build(book)`` derives every index from the book's dicts; after that the book calls
  ``order``/``intent``/``position``/``fill``/``entry`` for every row it writes, in write order;
- ``order`` returns False when an existing order changed slot or intent (never done by the
  executor): the book then drops the index and rebuilds it on the next read;
- ``SlotLedger`` keeps a slot's cash entries in ``seq`` order with the running sum and first
  break at ``CENT`` tolerance (``engine.valuation.ledger_totals``), the deposit, the newest buy/sell
  time; ``SymbolFills`` keeps a (slot, symbol)'s fills in replay order (time, buys first, fill id)
  with the totals of its closed cycles (the prefix up to the last point the running quantity is
  back to zero), exactly as ``LedgerBatchMixin.fill_totals`` splits them.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING

from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import FINISHED_ORDER_STATES as TERMINAL
from trading_brain.domain.orders import Fill
from trading_brain.domain.records import (
    CENT,
    OPEN_ORDER_STATES,
    ZERO,
    CashEntry,
    OrderRow,
    PositionRecord,
    mul,
)

if TYPE_CHECKING:
    from trading_brain.adapters.memory.reads import BookReads


@dataclass
class SlotLedger:
    """One slot's cash ledger (``(entry, seq)`` in ``seq`` order) and its running figures."""

    slot: str
    rows: list[tuple[CashEntry, int]] = field(default_factory=list)
    running: Decimal = ZERO
    broken: tuple[Decimal, str, Decimal] | None = None  # first entry off by more than CENT
    deposit: Decimal | None = None
    last_fill: datetime | None = None

    def add(self, e: CashEntry, seq: int) -> None:
        self.rows.append((e, seq))
        with localcontext(prec=60):
            self.running += e.amount
            if self.broken is None and abs(self.running - e.balance_after) > CENT:
                self.broken = (self.running, e.entry_id, e.balance_after)
        if e.entry_id == f"deposit:{self.slot}":
            self.deposit = e.amount if self.deposit is None else max(self.deposit, e.amount)
        if e.cause in ("buy", "sell") and (self.last_fill is None or e.ts > self.last_fill):
            self.last_fill = e.ts


def _key(f: Fill) -> tuple[datetime, bool, str]:
    return (f.ts, f.side != "buy", f.fill_id)


@dataclass
class SymbolFills:
    """One (slot, symbol)'s fills in replay order, split into closed cycles and the open one."""

    rows: list[Fill] = field(default_factory=list)
    closed_k: int = 0  # rows[:closed_k] are closed cycles
    held: Decimal = ZERO
    negative: bool = False  # some prefix sells more than was bought
    cash: Decimal | None = None
    fees: Decimal | None = None
    real: Decimal | None = None

    def add(self, f: Fill) -> None:
        if self.rows and _key(f) < _key(self.rows[-1]):  # out of replay order: recompute
            insort(self.rows, f, key=_key)
            rows, self.rows = self.rows, []
            self.closed_k, self.held, self.negative = 0, ZERO, False
            self.cash = self.fees = self.real = None
            for r in rows:
                self._append(r)
            return
        self._append(f)

    def _append(self, f: Fill) -> None:
        self.rows.append(f)
        with localcontext(prec=80):  # exact sums; ``mul`` rounds half-even like the SQL
            self.held += f.qty if f.side == "buy" else -f.qty
            if self.held < 0:
                self.negative = True
            if self.held <= 0:
                for c in self.rows[self.closed_k:]:
                    n = mul(c.qty, c.price)
                    flow = -n if c.side == "buy" else n
                    self.cash = (self.cash or ZERO) + (flow - c.fee)
                    self.fees = (self.fees or ZERO) + c.fee
                    self.real = (self.real or ZERO) + flow
                self.closed_k = len(self.rows)


class BookIndex:
    """Every index the book's reads use (see the module docstring)."""

    def __init__(self) -> None:
        self.ledgers: dict[str, SlotLedger] = {}
        self.max_seq = 0
        self.fills: dict[str, dict[str, SymbolFills]] = {}  # slot -> symbol -> fills
        # client order id (None: none) not stored yet -> fills
        self.orphans: dict[str | None, list[Fill]] = {}
        self.by_intent: dict[str, list[str]] = {}  # intent id -> client order ids, as stored
        self.open_orders: dict[str, str] = {}  # client order id -> slot (OPEN_ORDER_STATES)
        self.live_orders: dict[str, str] = {}  # client order id -> slot (not TERMINAL)
        self.pending: dict[str, str] = {}  # pending intent id -> slot
        self.slot_positions: dict[str, dict[str, None]] = {}  # slot -> position ids
        self.open_positions: dict[str, str] = {}  # open position id -> slot
        self.fill_version: dict[str, int] = {}  # slot -> fills added to its ``fills`` so far

    @classmethod
    def build(cls, book: BookReads) -> BookIndex:
        ix = cls()
        for o in book.orders_.values():
            ix.order(None, o, book.orders_)
        for i in book.intents_.values():
            ix.intent(i)
        for p in book.positions_.values():
            ix.position(p)
        for f in sorted(book.fills_.values(), key=_key):
            ix.fill(f, book.orders_)
        for e, seq in sorted(book.entries, key=lambda r: r[1]):
            ix.entry(e, seq)
        return ix

    def ledger(self, slot: str) -> SlotLedger | None:
        return self.ledgers.get(slot)

    def entry(self, e: CashEntry, seq: int) -> None:
        led = self.ledgers.get(e.slot)
        if led is None:
            led = self.ledgers[e.slot] = SlotLedger(e.slot)
        led.add(e, seq)
        self.max_seq = max(self.max_seq, seq)

    def order(self, old: OrderRow | None, o: OrderRow, orders: Mapping[str, OrderRow]) -> bool:
        cid = o.client_order_id
        if old is not None and (old.slot != o.slot or old.intent_id != o.intent_id):
            return False
        if old is None and o.intent_id is not None:
            self.by_intent.setdefault(o.intent_id, []).append(cid)
        for held, keep in ((self.open_orders, o.state in OPEN_ORDER_STATES),
                           (self.live_orders, o.state not in TERMINAL)):
            if keep:
                held[cid] = o.slot
            else:
                held.pop(cid, None)
        for f in self.orphans.pop(cid, []) if old is None else []:
            self.fill(f, orders)
        return True

    def intent(self, i: OrderIntent) -> None:
        if i.status == "pending":
            self.pending[i.intent_id] = i.slot
        else:
            self.pending.pop(i.intent_id, None)

    def position(self, p: PositionRecord) -> None:
        self.slot_positions.setdefault(p.slot, {})[p.position_id] = None
        if p.status == "open":
            self.open_positions[p.position_id] = p.slot
        else:
            self.open_positions.pop(p.position_id, None)

    def fill(self, f: Fill, orders: Mapping[str, OrderRow]) -> None:
        o = orders.get(f.client_order_id) if f.client_order_id is not None else None
        if o is None:  # the join finds no order (yet): not a fill of any slot
            self.orphans.setdefault(f.client_order_id, []).append(f)
            return
        per = self.fills.setdefault(o.slot, {})
        book = per.get(f.symbol)
        if book is None:
            book = per[f.symbol] = SymbolFills()
        book.add(f)
        self.fill_version[o.slot] = self.fill_version.get(o.slot, 0) + 1
