"""``MemoryBook``: a write-behind, in-memory copy of the trading tables for ``simulate``.

The NautilusTrader cache + database pattern: the simulation's scans and executor ticks talk to
this object instead of the warehouse, and the rows they change are written to the warehouse in
set-based statements at each chunk commit (``adapters.memory_flush``). Nothing here imports
DuckDB: the warehouse side (loading, flushing) lives in ``memory_flush``.

Contract:
- it implements exactly the store methods the scan (``trading.scan_once``/``load_inputs``/
  ``persist_risk``) and the executor (``engine.executor_types.ExecutorStore``, ``fill_totals``,
  ``ledger_totals``, the paper venue's book) call, with the warehouse's SQL semantics: the same
  filters, ``ORDER BY`` keys, conflict rules (``ON CONFLICT DO NOTHING``/``INSERT OR REPLACE``),
  ``seq`` numbering and DECIMAL(38, 18) values (rounded half away from zero, returned with 18
  decimals, like DuckDB returns them);
- it holds orders, order intents, fills, cash ledger, positions, risk state, risk event ids and
  paper books (loaded from the warehouse at start/resume); snapshots, new risk events and every
  changed row are kept as pending writes until ``memory_flush.flush`` stores them;
- the risk state and the paper books are kept as the objects saved (a frozen ``RiskState``, a
  ``paper_book.BookText``): their JSON is made only when read as text (``risk_state_row``,
  ``paper_book_row``: the flush, a new venue), the same text the warehouse would hold; the
  executor and the scan take the kept ``RiskState`` as is (``executor_header``,
  ``load_risk_state``); ``memo_fill_book`` keeps a slot's replayed fills until one is added;
- it is valid only while nothing else writes those tables (``simulate`` holds the warehouse);
- any other store attribute is delegated to the real store only when listed in ``PASS``
  (tables the book does not hold); anything else raises AttributeError, so a caller reading a
  held table through a method the book lacks fails loudly instead of reading stale rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any

from trading_brain.adapters.memory.index import BookIndex, SlotLedger
from trading_brain.adapters.memory.rows import (  # noqa: F401  (dec, Pending: re-exported)
    Pending,
    dec,
    norm_entry,
    norm_fill,
    norm_intent,
    norm_order,
    norm_position,
)
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import Fill
from trading_brain.domain.risk import (
    PortfolioView,
    RiskEvent,
    RiskState,
)
from trading_brain.engine.ledger import (
    CENT,
    OPEN_ORDER_STATES,
    ZERO,
    CashEntry,
    OrderRow,
    PositionRecord,
)
from trading_brain.engine.valuation import FillBook, LedgerTotals, Snapshot, portfolio_view_of

PASS = frozenset({"read_candles", "upsert_candles", "read_indicators", "upsert_indicators",
                  "read_asset_pairs", "upsert_asset_pairs", "active_version",
                  "strategy_version", "record_scans", "get_meta", "set_meta"})


class MemoryBook:
    """The trading tables in memory over ``store`` (see the module docstring)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.orders_: dict[str, OrderRow] = {}
        self.intents_: dict[str, OrderIntent] = {}
        self.intent_updated: dict[str, datetime] = {}
        self.fills_: dict[str, Fill] = {}
        self.entries: list[tuple[CashEntry, int]] = []  # (entry, seq) in seq order
        self.entry_ids: set[str] = set()
        self.positions_: dict[str, PositionRecord] = {}
        self.risk_states: dict[str, tuple[str, datetime]] = {}  # rows as stored: (JSON, ts)
        self.kept_states: dict[str, tuple[RiskState, datetime]] = {}  # see ``save_risk_state``
        self.event_ids: set[str] = set()
        self.papers: dict[str, tuple[object, datetime]] = {}  # text or ``BookText`` (kept)
        self.pending = Pending()
        self._ix: BookIndex | None = None
        self._fill_books: dict[str, tuple[tuple[BookIndex, int], FillBook]] = {}

    @property
    def ix(self) -> BookIndex:
        """The indexes of ``adapters.memory_index`` (built from the dicts on first use, e.g.
        after ``memory_flush.load`` filled them; kept up to date by every write after that)."""
        if self._ix is None:
            self._ix = BookIndex.build(self)
        return self._ix

    def __getattr__(self, name: str) -> Any:
        if name in PASS:
            return getattr(self.store, name)
        raise AttributeError(f"MemoryBook does not provide {name!r}")

    # -- sessions: no warehouse work happens here ----------------------------------------------
    def session(self) -> Any:
        return nullcontext(self)

    def atomic(self) -> Any:
        return nullcontext(self)

    # -- reads ---------------------------------------------------------------------------------
    def _ledger(self, slot: str) -> SlotLedger:
        return self.ix.ledger(slot) or SlotLedger(slot)

    def executor_header(self, slot: str) -> tuple[Decimal | None, str | None, datetime | None,
                                                  Decimal]:
        """The slot's header; its risk state as the object (``load_risk_state``), which the
        executor takes as is (the warehouse answers the JSON text, which it parses)."""
        led = self._ledger(slot)
        return (led.deposit, self.load_risk_state(slot), led.last_fill,
                led.rows[-1][0].balance_after if led.rows else Decimal(0))

    def pending_intents(self, slot: str, limit: int) -> list[OrderIntent]:
        rows = [self.intents_[i] for i, s in self.ix.pending.items() if s == slot]
        return sorted(rows, key=lambda i: (i.created_at, i.intent_id))[:limit]

    def intents(self, status: str | None = None, slot: str | None = None) -> list[OrderIntent]:
        rows = [i for i in self.intents_.values()
                if (not status or i.status == status) and (not slot or i.slot == slot)]
        return sorted(rows, key=lambda i: (i.created_at, i.intent_id))

    @staticmethod
    def _by_age(rows: Any) -> list[OrderRow]:
        return sorted(rows, key=lambda o: (o.created_at, o.client_order_id))

    def executor_orders(self, slot: str, intent_ids: Sequence[str]) -> list[OrderRow]:
        ix = self.ix
        cids = {c for c, s in ix.open_orders.items() if s == slot}
        for i in set(intent_ids):
            cids.update(c for c in ix.by_intent.get(i, ()) if self.orders_[c].slot == slot)
        return self._by_age(self.orders_[c] for c in cids)

    def orders_by_cids(self, cids: Sequence[str]) -> list[OrderRow]:
        return self._by_age(self.orders_[c] for c in set(cids) if c in self.orders_)

    def intents_by_ids(self, ids: Sequence[str]) -> dict[str, OrderIntent]:
        return {i: self.intents_[i] for i in ids if i in self.intents_}

    def positions(self, slot: str, status: str | None = "open") -> list[PositionRecord]:
        if status == "open":
            rows = [self.positions_[p] for p, s in self.ix.open_positions.items() if s == slot]
        else:
            rows = [p for p in map(self.positions_.__getitem__,
                                   self.ix.slot_positions.get(slot, ()))
                    if status is None or p.status == status]
        return sorted(rows, key=lambda p: (p.entry_time, p.position_id))

    def known_fill_ids(self, fill_ids: Sequence[str]) -> set[str]:
        return {f for f in fill_ids if f in self.fills_}

    def fills(self, slot: str) -> list[Fill]:
        rows = [f for b in self.ix.fills.get(slot, {}).values() for f in b.rows]
        return sorted(rows, key=lambda f: (f.ts, f.fill_id))

    def cash_entries(self, slot: str) -> list[CashEntry]:
        return [e for e, _ in self._ledger(slot).rows]

    def starting_capital(self, slot: str) -> Decimal | None:
        return self._ledger(slot).deposit

    def cash_balance(self, slot: str) -> Decimal:
        rows = self._ledger(slot).rows
        return rows[-1][0].balance_after if rows else Decimal(0)

    def load_risk_state(self, slot: str) -> RiskState | None:
        kept = self.kept_states.get(slot)
        if kept is not None:
            return kept[0]
        row = self.risk_states.get(slot)
        return RiskState.model_validate_json(row[0]) if row else None

    def risk_state_row(self, slot: str) -> tuple[str, datetime] | None:
        """The slot's ``risk_state`` row as the warehouse stores it: (JSON text, updated_at)."""
        kept = self.kept_states.pop(slot, None)
        if kept is not None:
            self.risk_states[slot] = (kept[0].model_dump_json(), kept[1])
        return self.risk_states.get(slot)

    def load_paper_book(self, account: str) -> str | None:
        row = self.paper_book_row(account)
        return row[0] if row else None

    def paper_book_state(self, account: str) -> object | None:
        """The state object held for the account: the text, or the ``paper_book.BookText``
        the venue kept (``keep_paper_book``); the venue compares it by identity (``renew``)."""
        row = self.papers.get(account)
        return row[0] if row else None

    def paper_book_row(self, account: str) -> tuple[str, datetime] | None:
        """The account's ``paper_accounts`` row as stored: (JSON text, updated_at)."""
        row = self.papers.get(account)
        if row is None:
            return None
        state, ts = row
        return (state if isinstance(state, str) else state.text(), ts)  # type: ignore[attr-defined]

    def open_counts(self) -> tuple[int, int, int]:
        """(orders not terminal, open positions, pending intents) over every slot."""
        ix = self.ix
        return len(ix.live_orders), len(ix.open_positions), len(ix.pending)

    def busy_slots(self) -> set[str]:
        """Slots with pending intents, open positions or non-terminal orders."""
        ix = self.ix
        return set(ix.pending.values()) | set(ix.open_positions.values()) \
            | set(ix.live_orders.values())

    def ledger_totals(self, slot: str, tolerance: Decimal = CENT) -> LedgerTotals:
        """``LedgerBatchMixin.ledger_totals`` from the slot's running totals (a tolerance other
        than ``CENT`` walks the slot's entries)."""
        led = self._ledger(slot)
        if not led.rows:
            return LedgerTotals(ZERO, ZERO)
        balance = led.rows[-1][0].balance_after
        running, broken = led.running, led.broken
        if tolerance != CENT:
            running, broken = ZERO, None
            with localcontext(prec=60):
                for e, _ in led.rows:
                    running += e.amount
                    if broken is None and abs(running - e.balance_after) > tolerance:
                        broken = (running, e.entry_id, e.balance_after)
        if broken is not None:
            return LedgerTotals(broken[0], balance, (broken[1], broken[2]))
        return LedgerTotals(running, balance)

    def fill_totals(self, slot: str) -> tuple[FillBook, list[Fill]] | None:
        """``LedgerBatchMixin.fill_totals`` from the per-symbol closed-cycle totals kept on
        write (same cycles, same rounding): O(symbols + open cycles' fills)."""
        cash = fees = real = None
        open_fills: list[Fill] = []
        with localcontext(prec=80):
            for b in self.ix.fills.get(slot, {}).values():
                if b.negative:
                    return None
                if b.cash is not None:
                    cash, fees, real = ((t or ZERO) + v for t, v in
                                        ((cash, b.cash), (fees, b.fees), (real, b.real)))
                open_fills += b.rows[b.closed_k:]
        return FillBook(*(v if v is not None else ZERO for v in (cash, fees, real))), open_fills

    def memo_fill_book(self, slot: str, make: Callable[[Any, str], FillBook]) -> FillBook:
        """``make(self, slot)`` (``executor_books.slot_book``: a pure function of the slot's
        fills), kept until a fill of the slot is added: the key is the index object and its
        count of the slot's fills, and every fill the book stores goes through that index (a
        rebuilt index is another object). Callers only read the ``FillBook``."""
        ix = self.ix
        key = (ix, ix.fill_version.get(slot, 0))
        kept = self._fill_books.get(slot)
        if kept is not None and kept[0][0] is ix and kept[0][1] == key[1]:
            return kept[1]
        book = make(self, slot)
        self._fill_books[slot] = (key, book)
        return book

    def portfolio_view(self, slot: str, marks: Mapping[str, Decimal],
                       fee_rate: Decimal = Decimal(0)) -> PortfolioView:
        """``LedgerTablesMixin.portfolio_view`` from memory (same rows, same arithmetic): the
        candidate intents are the slot's pending ones and those with an open order."""
        ix, kinds = self.ix, ("entry", "exit", "kill")
        live = {i for i, s in ix.pending.items() if s == slot}
        live.update(o.intent_id for o in map(self.orders_.__getitem__, ix.open_orders)
                    if o.intent_id is not None and o.intent_id in self.intents_)
        rows = []
        for i in sorted((self.intents_[i] for i in live if self.intents_[i].slot == slot),
                        key=lambda i: i.intent_id):
            px = i.limit_price if i.limit_price is not None else i.reference_price
            joined = [o for o in map(self.orders_.__getitem__, ix.by_intent.get(i.intent_id, ()))
                      if o.purpose in kinds] or [None]
            for o in joined:
                if i.status == "pending" or (i.status == "submitted" and o is not None
                                             and o.state in OPEN_ORDER_STATES):
                    q = o.quantity - o.filled_qty if o is not None else i.quantity
                    rows.append((i.intent_id, i.symbol, i.action, q, px))
        return portfolio_view_of(self.cash_balance(slot), self.positions(slot), marks, rows,
                                 fee_rate)

    # -- writes --------------------------------------------------------------------------------
    def _append_entries(self, entries: Sequence[CashEntry]) -> None:
        ix = self.ix
        base = ix.max_seq
        for i, e in enumerate(entries, start=1):
            if e.entry_id in self.entry_ids:
                continue
            row = (norm_entry(e), base + i)
            self.entries.append(row)
            self.entry_ids.add(e.entry_id)
            self.pending.entries.append(row)
            ix.entry(*row)

    def ensure_deposit(self, slot: str, amount: Decimal, ts: datetime) -> bool:
        if f"deposit:{slot}" in self.entry_ids:
            return False
        self._append_entries([CashEntry(f"deposit:{slot}", ts, slot, amount, amount, "deposit")])
        return True

    def record_intents(self, intents: Sequence[OrderIntent]) -> int:
        new = 0
        for i in intents:
            if i.intent_id in self.intents_:
                continue
            self.intents_[i.intent_id] = norm_intent(i)
            if self._ix is not None:
                self._ix.intent(self.intents_[i.intent_id])
            self.intent_updated[i.intent_id] = i.created_at
            self.pending.new_intents.add(i.intent_id)
            new += 1
        return new

    def set_intent_statuses(self, statuses: Sequence[tuple[str, str]], now: datetime) -> None:
        for iid, status in statuses:
            if iid in self.intents_:
                self.intents_[iid] = self.intents_[iid].model_copy(update={"status": status})
                if self._ix is not None:
                    self._ix.intent(self.intents_[iid])
                self.intent_updated[iid] = now
                self.pending.intents.add(iid)

    def write_orders(self, new: Sequence[OrderRow], changed: Sequence[OrderRow]) -> set[str]:
        inserted: set[str] = set()
        for o in new:
            if o.client_order_id not in self.orders_:
                self._put_order(None, norm_order(o))
                self.pending.new_orders.add(o.client_order_id)
                inserted.add(o.client_order_id)
        for o in changed:
            if o.client_order_id in self.orders_:
                old = self.orders_[o.client_order_id]
                self._put_order(old, norm_order(o, old))
                self.pending.orders.add(o.client_order_id)
        return inserted

    def _put_order(self, old: OrderRow | None, o: OrderRow) -> None:
        self.orders_[o.client_order_id] = o
        if self._ix is not None and not self._ix.order(old, o, self.orders_):
            self._ix = None  # an order moved slot or intent: rebuild on the next read

    def insert_fills(self, fills: Sequence[Fill], entries: Sequence[CashEntry],
                     now: datetime) -> None:
        for f in fills:
            if f.fill_id in self.fills_:  # the warehouse's primary key refuses it
                raise ValueError(f"duplicate fill id {f.fill_id}")
            self.fills_[f.fill_id] = norm_fill(f)
            self.pending.fills.append((self.fills_[f.fill_id], now))
            if self._ix is not None:
                self._ix.fill(self.fills_[f.fill_id], self.orders_)
        self._append_entries(entries)

    def save_positions(self, positions: Sequence[PositionRecord]) -> None:
        for p in positions:
            self.positions_[p.position_id] = norm_position(p, self.positions_.get(p.position_id))
            self.pending.positions.add(p.position_id)
            if self._ix is not None:
                self._ix.position(self.positions_[p.position_id])

    def write_snapshot(self, s: Snapshot) -> None:
        self.pending.snapshots[s.ts, s.slot] = s

    def record_risk_events(self, slot: str, events: Sequence[RiskEvent]) -> int:
        new = 0
        for e in events:
            body = e.model_dump_json()
            eid = hashlib.sha256(f"{slot}|{body}".encode()).hexdigest()[:32]
            if eid in self.event_ids:
                continue
            self.event_ids.add(eid)
            details = {**e.details, "slot": slot}
            self.pending.events.append([eid, e.ts, e.kind, e.symbol, e.reason,
                                        json.dumps(details, default=str)])
            new += 1
        return new

    def save_risk_state(self, slot: str, state: RiskState, now: datetime | None = None) -> None:
        """Keep ``state`` itself (a frozen model) as the slot's row: its JSON is written only
        when the row is read as text (``risk_state_row``: the flush), and ``load_risk_state``
        answers the kept object, sparing a dump and a parse per tick. What the warehouse would
        answer is ``RiskState.model_validate_json(state.model_dump_json())``: the same values
        (every field round-trips its JSON exactly; the risk rules build states through
        validated models and copies of them); the text flushed is ``state.model_dump_json()``,
        as before."""
        ts = now or state.updated_at or datetime.now(UTC)
        self.kept_states[slot] = (state, ts)
        self.pending.risk_states.add(slot)

    def save_paper_book(self, account: str, state: str, now: datetime) -> None:
        self.papers[account] = (state, now)
        self.pending.papers.add(account)

    def keep_paper_book(self, account: str, state: object, now: datetime) -> None:
        """``save_paper_book`` of a state whose text is made when read (``paper_book_row``):
        the paper venue writes its book after every change, once per tick; its JSON (the
        whole book) is only needed at the flush or by a new venue over the account."""
        self.papers[account] = (state, now)
        self.pending.papers.add(account)
