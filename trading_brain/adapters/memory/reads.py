"""The reads of ``adapters.memory.book.MemoryBook`` (what the scan, the executor tick and the
paper venue ask), answered from its dicts and indexes with the warehouse's semantics: the same
filters, ``ORDER BY`` keys and values as the SQL of ``adapters.duckdb`` (``ports.TradingStore``).
trading_brain_tests/test_memory_book_reads.py compares them with the warehouse's on the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, localcontext

from trading_brain.adapters.memory.index import BookIndex, SlotLedger
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import Fill
from trading_brain.domain.records import (
    CENT,
    OPEN_ORDER_STATES,
    ZERO,
    CashEntry,
    FillBook,
    LedgerTotals,
    OrderRow,
    PositionRecord,
)
from trading_brain.domain.risk import PortfolioView, RiskState
from trading_brain.engine.valuation import portfolio_view_of
from trading_brain.ports import SavedBook


class BookReads:
    """Read methods over the book's state (declared here, held by ``MemoryBook``)."""

    orders_: dict[str, OrderRow]
    intents_: dict[str, OrderIntent]
    fills_: dict[str, Fill]
    positions_: dict[str, PositionRecord]
    entries: list[tuple[CashEntry, int]]  # (entry, seq) in seq order
    risk_states: dict[str, tuple[str, datetime]]  # rows as stored: (JSON, ts)
    kept_states: dict[str, tuple[RiskState, datetime]]  # see ``MemoryBook.save_risk_state``
    papers: dict[str, tuple[SavedBook, datetime]]
    _ix: BookIndex | None
    _fill_books: dict[str, tuple[tuple[BookIndex, int], FillBook]]

    @property
    def ix(self) -> BookIndex:
        """The indexes of ``adapters.memory.index`` (built from the dicts on first use, e.g.
        after ``memory.flush.load`` filled them; kept up to date by every write after that)."""
        if self._ix is None:
            self._ix = BookIndex.build(self)
        return self._ix

    def _ledger(self, slot: str) -> SlotLedger:
        return self.ix.ledger(slot) or SlotLedger(slot)

    def executor_header(self, slot: str) -> tuple[Decimal | None, RiskState | None,
                                                  datetime | None, Decimal]:
        """The slot's header; its risk state as the object kept (``load_risk_state``)."""
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
    def _by_age(rows: Iterable[OrderRow]) -> list[OrderRow]:
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

    def paper_book_state(self, account: str) -> SavedBook | None:
        """The state object held for the account: the ``SavedText`` loaded or saved, or the
        ``paper.book.BookText`` the venue kept (``keep_paper_book``); the venue compares it by
        identity (``renew``)."""
        row = self.papers.get(account)
        return row[0] if row else None

    def paper_book_row(self, account: str) -> tuple[str, datetime] | None:
        """The account's ``paper_accounts`` row as stored: (JSON text, updated_at)."""
        row = self.papers.get(account)
        return (row[0].text(), row[1]) if row is not None else None

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
        cash = fees = real = ZERO
        open_fills: list[Fill] = []
        with localcontext(prec=80):
            for b in self.ix.fills.get(slot, {}).values():
                if b.negative:
                    return None
                if b.cash is not None and b.fees is not None and b.real is not None:
                    cash, fees, real = cash + b.cash, fees + b.fees, real + b.real  # all set
                open_fills += b.rows[b.closed_k:]
        return FillBook(cash, fees, real), open_fills

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
