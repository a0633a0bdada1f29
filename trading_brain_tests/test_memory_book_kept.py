"""What ``MemoryBook`` keeps instead of recomputing per tick answers what the warehouse would.

- the risk state is kept as the object saved: ``load_risk_state``/``executor_header`` answer it
  (the executor takes it as is), its JSON is written only when the row is read as text (the
  flush), byte for byte what ``Store.save_risk_state`` stores, and parsing that text gives the
  same values of the same types;
- an order or position written again normalises only the decimals that are not the held row's
  own objects: the same row as normalising every field;
- ``memo_fill_book`` (``executor_books.slot_book`` kept per slot) answers what a fresh
  ``slot_book`` does and is dropped when a fill of the slot is stored.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.memory import flush as memory_flush
from trading_brain.adapters.memory.book import MemoryBook
from trading_brain.adapters.memory.rows import (
    _ORDER_DEC,
    _POS_DEC,
    _dec_fields,
    norm_order,
    norm_position,
)
from trading_brain.domain.orders import Fill
from trading_brain.domain.records import CashEntry, OrderRow, PositionRecord
from trading_brain.domain.risk import ClosedTrade, Halt, RiskState, SymbolRisk
from trading_brain.engine.executor.book import _slot_book, slot_book

T0 = datetime(2024, 3, 1, tzinfo=UTC)
D = Decimal


def _state(n: int) -> RiskState:
    return RiskState(
        halts={"daily_loss": Halt(reason="x", since=T0)} if n % 2 else {},
        peak_equity=D("10012.123456789012345678") + n, day=date(2024, 3, 1),
        day_start_equity=D("9999.5"), consecutive_losses=n,
        symbols={"BTC/USD": SymbolRisk(day_pnl=D("-1.25"), closes=(
            ClosedTrade(ts=T0, pnl=D("-1.25"), cost=D("100")),),
            cooldown_until=T0 + timedelta(hours=4))},
        updated_at=T0 + timedelta(minutes=n))


def test_the_risk_state_is_kept_and_flushed_as_the_warehouse_stores_it(tmp_path) -> None:
    store = Store.open(tmp_path / "w.duckdb")
    book = MemoryBook(store)
    assert book.load_risk_state("active") is None and book.executor_header("active")[1] is None
    for n in range(3):
        st = _state(n)
        book.save_risk_state("active", st, T0 + timedelta(minutes=n))
        assert book.load_risk_state("active") is st and book.executor_header("active")[1] is st
        with store.atomic():
            store.save_risk_state("active", st, T0 + timedelta(minutes=n))
    text = book.risk_state_row("active")[0]
    assert text == store.execute("SELECT state FROM risk_state")[0][0] == st.model_dump_json()
    parsed = book.load_risk_state("active")  # from the text now: a parsed copy
    assert parsed is not st and parsed == st and parsed.model_dump_json() == text
    book.save_risk_state("active", _state(7), T0)
    other = Store.open(tmp_path / "x.duckdb")
    flushed = MemoryBook(other)
    flushed.save_risk_state("active", _state(7), T0)
    with other.atomic():
        memory_flush.flush(flushed)
    assert other.execute("SELECT state, updated_at FROM risk_state")[0][0] \
        == _state(7).model_dump_json()
    assert memory_flush.load(other).load_risk_state("active") == _state(7)


def _order(cid: str, **kw) -> OrderRow:
    return OrderRow(cid, "i-1", "active", "paper", "BTC/USD", "buy", "market", "entry",
                    D("0.5"), "submitting", T0, T0, **kw)


def test_rows_written_again_normalise_only_what_changed() -> None:
    held = norm_order(_order("c1", limit_price=D("101.25")))
    for changes in ({"state": "open"}, {"filled_qty": D("0.2"), "avg_price": D("101.3333")},
                    {"fee": 0.1, "stop_price": D("99.123456789012345678912")},
                    {"quantity": 1}, {}):
        new = replace(held, **changes)
        want = replace(new, **_dec_fields(new, _ORDER_DEC))
        got = norm_order(new, held)
        assert got == want and all(str(getattr(got, f)) == str(getattr(want, f))
                                   for f in _ORDER_DEC)
    assert norm_order(replace(held, state="open"), held).quantity is held.quantity
    pos = norm_position(PositionRecord("p1", "BTC/USD", "active", "s", 1, "swing", "open",
                                       D("0.5"), D("30000.5"), D("0.1"), T0, T0))
    for changes in ({"max_adverse_excursion": 0.01}, {"quantity": D("0.25"), "version": True},
                    {"max_adverse_excursion": 1}, {"realized_pnl": 2.5}, {}):
        new = replace(pos, **changes)
        want = replace(new, **_dec_fields(new, _POS_DEC), version=int(new.version),
                       max_adverse_excursion=float(new.max_adverse_excursion))
        got = norm_position(new, pos)
        assert got == want and type(got.version) is int
        assert type(got.max_adverse_excursion) is float
        assert all(str(getattr(got, f)) == str(getattr(want, f)) for f in _POS_DEC)


def _fill(fid: str, side: str, qty: str, price: str, minute: int) -> Fill:
    return Fill(fill_id=fid, client_order_id="c1", venue_order_id="V", symbol="BTC/USD",
                side=side, qty=D(qty), price=D(price), fee=D("0.01"), fee_currency="USD",
                ts=T0 + timedelta(minutes=minute))


def test_the_fill_book_is_kept_until_a_fill_of_the_slot_is_stored() -> None:
    book = MemoryBook(None)
    book.ensure_deposit("active", D("10000"), T0)
    book.write_orders([_order("c1")], [])
    first = slot_book(book, "active")
    assert slot_book(book, "active") is first and first == _slot_book(book, "active")
    balance = D("10000")
    for k, (side, qty, price) in enumerate([("buy", "0.3", "60000"), ("sell", "0.1", "60100"),
                                            ("sell", "0.2", "59900"), ("buy", "0.1", "61000")]):
        f = _fill(f"f{k}", side, qty, price, k)
        balance += (f.qty * f.price) * (1 if side == "sell" else -1) - f.fee
        book.insert_fills([f], [CashEntry(f"e{k}", f.ts, "active", D(0), balance, side)], f.ts)
        got = slot_book(book, "active")
        assert got is not first and got == _slot_book(book, "active")
        assert slot_book(book, "active") is got
        first = got
    book._ix = None  # an index rebuilt from the rows: another key
    assert slot_book(book, "active") is not first and slot_book(book, "active") == first
