"""Set-based tick writes: same rows as the per-row methods, one transaction, write-ahead kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.domain.orders import Fill, OrderAck, OrderRequest, derive_client_order_id
from trading_brain.domain.records import OrderRow
from trading_brain.engine.ledger import PositionMeta, apply_fill
from trading_brain_tests.engine.test_executor import T0, World

ODD = Decimal("123.4567890123456789012345675")  # 25 decimals: rounded by the DECIMAL(38, 18) cast


def _rows(store: Store, table: str, key: str, ids: list[str]) -> list[tuple]:
    marks = ", ".join("?" for _ in ids)
    return store.execute(f"SELECT * EXCLUDE ({key}) FROM {table} WHERE {key} IN ({marks}) "
                         f"ORDER BY {key}", ids)


def _order(cid: str, **kw) -> OrderRow:
    base = OrderRow(cid, "int-abcdefgh", "active", "paper", "BTC/USD", "buy", "market", "entry",
                    Decimal("1000000000.000000000000000001"), "submitting", T0, T0)
    return replace(base, **kw)


def test_batched_order_writes_store_exactly_what_per_row_writes_store(tmp_path) -> None:
    store = Store.open(tmp_path / "w.duckdb")
    later = T0 + timedelta(seconds=15)
    change = dict(state="partially_filled", venue_order_id="P-1", filled_qty=Decimal("0.5"),
                  avg_price=ODD, fee=Decimal("0.000000000000000001"), reason=None)
    assert store.insert_order(_order("a-1", limit_price=Decimal("1E+3")))
    store.update_order("a-1", later, **change)
    with store.atomic():
        assert store.write_orders([_order("b-1", limit_price=Decimal("1E+3"))], []) == {"b-1"}
        assert store.write_orders([_order("b-1")], []) == set()  # write-ahead: never twice
        store.write_orders([], [replace(_order("b-1", limit_price=Decimal("1E+3")),
                                        updated_at=later, **change)])
    per_row, batched = _rows(store, "orders", "client_order_id", ["a-1", "b-1"])
    assert per_row == batched
    assert store.order("b-1").avg_price == Decimal("123.456789012345678901")  # half up, 18 dp


def test_batched_fills_entries_and_positions_match_record_fill(tmp_path) -> None:
    store = Store.open(tmp_path / "w.duckdb")
    store.ensure_deposit("active", Decimal(10_000), T0)
    effects = {}
    for tag in ("a", "b"):
        fill = Fill(fill_id=f"{tag}-f1", client_order_id=f"{tag}-1", venue_order_id="V",
                    symbol="BTC/USD", side="buy", qty=Decimal("0.012345678"), price=ODD,
                    fee=Decimal("0.0039"), fee_currency="USD", ts=T0)
        effects[tag] = (fill, apply_fill(None, fill, "active", Decimal(10_000),
                                         PositionMeta(f"pos-{tag}", "s", 1, "day")))
        store.insert_order(_order(f"{tag}-1", intent_id=f"pos-{tag}"))
    fill, effect = effects["a"]
    assert store.record_fill("active", fill, effect, T0)
    fill, effect = effects["b"]
    with store.atomic():
        store.insert_fills([fill], effect.entries, T0)
        store.save_positions([replace(effect.position, quantity=Decimal(7)), effect.position])
    assert _rows(store, "fills", "fill_id", ["a-f1"]) == [
        (r[0].replace("b-", "a-"), *r[1:]) for r in _rows(store, "fills", "fill_id", ["b-f1"])]
    entries = store.execute("SELECT amount, balance_after, cause, seq FROM cash_ledger "
                            "ORDER BY seq")
    assert [e[3] for e in entries] == [1, 2, 3, 4, 5]  # seq continues the ledger in order
    assert entries[1][:3] == entries[3][:3] and entries[2][:3] == entries[4][:3]
    a, b = _rows(store, "positions", "position_id", ["pos-a", "pos-b"])
    assert a == b  # the last version of a position id wins, every column as save_position


def test_a_failure_inside_atomic_leaves_no_fill_entry_or_position(tmp_path) -> None:
    store = Store.open(tmp_path / "w.duckdb")
    fill = Fill(fill_id="f1", client_order_id="c-1", venue_order_id="V", symbol="BTC/USD",
                side="buy", qty=Decimal(1), price=Decimal(100), fee=Decimal("0.26"),
                fee_currency="USD", ts=T0)
    effect = apply_fill(None, fill, "active", Decimal(1000), PositionMeta("pos-1"))
    with pytest.raises(RuntimeError), store.atomic():
        store.insert_fills([fill], effect.entries, T0)
        store.save_positions([effect.position])
        raise RuntimeError("crash between the writes and the commit")
    assert store.fills("active") == [] and store.cash_entries("active") == []
    assert store.positions("active") == []


class WatchingVenue:
    """A paper venue that, when asked to place, reads the warehouse over its own connection."""

    def __init__(self, inner, path) -> None:
        self.inner, self.path, self.name, self.seen = inner, path, inner.name, []

    def __getattr__(self, item):
        return getattr(self.inner, item)

    def place_order(self, req: OrderRequest) -> OrderAck:
        others = Store(self.path)  # a fresh connection sees committed rows only
        self.seen.append({o.client_order_id: o.state for o in others.orders("active")})
        return self.inner.place_order(req)


def test_every_write_ahead_row_is_committed_before_the_first_order_is_sent(tmp_path) -> None:
    w = World(tmp_path / "w.duckdb", local=False,
              wrap=lambda v: WatchingVenue(v, tmp_path / "w.duckdb"))
    ids = [w.intent(s, "enter", q) for s, q in (("BTC/USD", "0.01"), ("ETH/USD", "0.1"),
                                                   ("SOL/USD", "2"))]
    rep = w.tick().slots["active"]
    cids = [derive_client_order_id(i) for i in ids]
    assert sorted(rep.orders_placed) == sorted(cids)
    first = w.venues["active"].seen[0]
    assert {c: first.get(c) for c in cids} == dict.fromkeys(cids, "submitting")
    assert {w.status(i) for i in ids} == {"submitted"}
    assert {w.store.order(c).state for c in cids} == {"open"}
