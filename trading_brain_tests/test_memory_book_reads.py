"""``MemoryBook``'s indexed reads equal the warehouse's SQL reads on the same rows.

The same writes (deposits, intents, orders, fills with their cash entries, positions, status and
state changes; two slots, two symbols, closed and open cycles, a fill arriving out of time
order, a fill before its order, a broken ledger) go to a ``Store`` and to a ``MemoryBook``; after
each batch every per-tick read (``fill_totals``, ``ledger_totals``, ``executor_header``,
``portfolio_view``, ``executor_orders``, ``pending_intents``, ``positions``, ``fills``,
``cash_entries``...) must return the same value from both, and a book loaded from the warehouse
(``memory_flush.load``: indexes built from scratch) must return it too.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.memory import flush as memory_flush
from trading_brain.adapters.memory.book import MemoryBook
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import Fill
from trading_brain.domain.records import CashEntry, OrderRow, PositionRecord

T0 = datetime(2024, 3, 1, tzinfo=UTC)
D = Decimal
SLOTS = ("active", "shadow1")
MARKS = {"BTC/USD": D("61000.123456789"), "ETH/USD": D("3100.5")}


def _intent(n: int, slot: str, symbol: str, action: str = "enter",
            limit: str | None = None) -> OrderIntent:
    return OrderIntent(intent_id=f"intent-{n:04d}", scan_id=f"scan-{n}", strategy_id="s",
                       version=1, slot=slot, symbol=symbol, bar_time=T0, action=action,
                       quantity=D("0.5"), reference_price=D("100.25"),
                       limit_price=D(limit) if limit else None,
                       created_at=T0 + timedelta(minutes=n))


def _order(cid: str, iid: str | None, slot: str, symbol: str, side: str, purpose: str,
           state: str, n: int) -> OrderRow:
    return OrderRow(cid, iid, slot, "paper", symbol, side, "market", purpose, D("0.5"), state,
                    T0 + timedelta(minutes=n), T0 + timedelta(minutes=n),
                    filled_qty=D("0.2") if state == "partially_filled" else D(0))


def _fill(fid: str, cid: str, symbol: str, side: str, qty: str, price: str, minute: int) -> Fill:
    return Fill(fill_id=fid, client_order_id=cid, venue_order_id="V", symbol=symbol, side=side,
                qty=D(qty), price=D(price), fee=D("0.0123456789"), fee_currency="USD",
                ts=T0 + timedelta(minutes=minute))


class Both:
    """Applies each write to the warehouse and to the book; tracks cash balances."""

    def __init__(self, store: Store) -> None:
        self.store, self.book = store, MemoryBook(store)
        self.balance = {s: D(0) for s in SLOTS}
        self.n = 0

    def do(self, name: str, *args) -> None:
        with self.store.atomic():
            getattr(self.store, name)(*args)
        getattr(self.book, name)(*args)

    def fill(self, slot: str, f: Fill, off: str = "0") -> None:
        self.n += 1
        amount = f.qty * f.price * (-1 if f.side == "buy" else 1) - f.fee
        self.balance[slot] += amount
        entry = CashEntry(f"e-{self.n}", f.ts, slot, amount, self.balance[slot] + D(off),
                          f.side, f.fill_id, f.symbol)
        self.do("insert_fills", [f], [entry], f.ts)


def _reads(s) -> list:
    out = []
    for slot in SLOTS:
        pend = [i.intent_id for i in s.pending_intents(slot, 10)]
        out += [s.fill_totals(slot), s.ledger_totals(slot), s.ledger_totals(slot, D("1E-9")),
                s.executor_header(slot), s.portfolio_view(slot, MARKS, fee_rate=D("0.0026")),
                s.executor_orders(slot, [*pend, "intent-0002"]), pend, s.fills(slot),
                s.positions(slot), s.positions(slot, None), s.positions(slot, "closed"),
                s.cash_entries(slot), s.starting_capital(slot), s.cash_balance(slot)]
    return out


def _check(w: Both) -> None:
    want = _reads(w.store)
    assert _reads(w.book) == want
    assert _reads(memory_flush.load(w.store)) == want


def test_indexed_reads_equal_the_warehouse_reads_as_history_grows(tmp_path) -> None:
    w = Both(Store.open(tmp_path / "w.duckdb"))
    _check(w)  # empty
    for slot in SLOTS:
        w.do("ensure_deposit", slot, D("10000"), T0)
        w.balance[slot] = D("10000")
    intents = [_intent(k, SLOTS[k % 2], ("BTC/USD", "ETH/USD")[k // 2 % 2],
                       limit="99.5" if k % 3 == 0 else None) for k in range(1, 9)]
    w.do("record_intents", intents)
    _check(w)
    orders = [_order(f"c-{i.intent_id}", i.intent_id, i.slot, i.symbol, "buy", "entry",
                     "open" if k % 2 else "partially_filled", k)
              for k, i in enumerate(intents[:6], start=1)]
    orders.append(_order("c-stop", "intent-0002", "shadow1", "ETH/USD", "sell", "stop_loss",
                         "open", 7))
    w.do("write_orders", orders, [])
    w.do("set_intent_statuses", [(i.intent_id, "submitted") for i in intents[:6]], T0)
    _check(w)
    # active BTC: a closed cycle, then an open one; shadow1 ETH: a fill before its order
    w.fill("active", _fill("f1", "c-intent-0001", "BTC/USD", "buy", "0.3", "60000.5", 10))
    w.fill("active", _fill("f2", "c-intent-0001", "BTC/USD", "sell", "0.3", "60100.25", 12))
    w.fill("active", _fill("f3", "c-intent-0003", "BTC/USD", "buy", "0.1", "60200", 14))
    w.fill("shadow1", _fill("f4", "c-late", "ETH/USD", "buy", "1.5", "3000.1", 15))
    _check(w)
    w.do("write_orders", [_order("c-late", None, "shadow1", "ETH/USD", "buy", "entry",
                                 "filled", 15)], [])
    w.fill("active", _fill("f5", "c-intent-0003", "BTC/USD", "sell", "0.1", "60300", 13))  # earlier
    w.fill("active", _fill("f6", "c-intent-0005", "ETH/USD", "buy", "2", "3050.333", 16))
    done = [replace(o, state="filled", filled_qty=o.quantity) for o in orders[:3]]
    w.do("write_orders", [], done)
    w.do("set_intent_statuses", [("intent-0001", "done"), ("intent-0007", "cancelled")], T0)
    pos = PositionRecord("pos-1", "ETH/USD", "active", "s", 1, "swing", "open", D("2"),
                         D("6100.666"), D("0.01"), T0 + timedelta(minutes=16), T0)
    w.do("save_positions", [pos, replace(pos, position_id="pos-0", symbol="BTC/USD",
                                         status="closed", quantity=D(0))])
    _check(w)
    w.do("save_positions", [replace(pos, status="closed", quantity=D(0))])
    w.fill("active", _fill("f7", "c-intent-0005", "ETH/USD", "sell", "2", "3060", 20), off="1")
    w.fill("shadow1", _fill("f8", "c-late", "ETH/USD", "sell", "2", "3010", 21))  # negative
    _check(w)
    assert w.book.fill_totals("shadow1") is None and w.book.ledger_totals("active").broken
