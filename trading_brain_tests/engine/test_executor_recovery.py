"""Write-ahead and recovery: crashes, ambiguous answers and partial fills never duplicate orders."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from trading_brain.domain.orders import OrderAck, OrderRequest, derive_client_order_id
from trading_brain.errors import AmbiguousOrderError, TemporaryError
from trading_brain_tests.engine.test_executor import World


class FlakyVenue:
    """A real paper venue behind a connection that fails in a chosen way when placing."""

    def __init__(self, inner, mode: str) -> None:
        self.inner, self.mode, self.name = inner, mode, inner.name
        self.placed: list[str] = []

    def __getattr__(self, item):
        return getattr(self.inner, item)

    def place_order(self, req: OrderRequest) -> OrderAck:
        self.placed.append(req.client_order_id)
        if self.mode == "crash_before":
            raise RuntimeError("process killed before the request left")
        if self.mode == "lost":
            raise AmbiguousOrderError("timeout: the request never arrived")
        ack = self.inner.place_order(req)
        if self.mode == "crash_after":
            raise RuntimeError("process killed after the venue accepted")
        if self.mode == "ambiguous":
            raise AmbiguousOrderError("HTTP 502 after sending")
        if self.mode == "temporary":
            raise TemporaryError("read timeout")
        return ack


def _world(tmp_path, mode: str) -> tuple[World, list[FlakyVenue]]:
    made: list[FlakyVenue] = []

    def wrap(v):
        made.append(FlakyVenue(v, mode))
        return made[-1]

    return World(tmp_path / "w.duckdb", wrap=wrap), made


def _entry_orders(w: World) -> list[str]:
    return [o.cid for o in w.venues["active"].inner.book.orders.values()
            if o.type == "market"] if hasattr(w.venues["active"], "inner") else [
        o.cid for o in w.venues["active"].book.orders.values() if o.type == "market"]


def test_crash_after_the_venue_accepted_is_recovered_without_a_second_order(tmp_path) -> None:
    w, made = _world(tmp_path, "crash_after")
    iid = w.intent("BTC/USD", "enter", "0.01")
    with pytest.raises(RuntimeError, match="after the venue accepted"):
        w.tick()
    cid = derive_client_order_id(iid)
    assert w.store.order(cid).state == "submitting"  # written ahead, answer never recorded
    assert w.status(iid) == "submitted"
    w.wrap = None
    w.restart()  # a fresh process over the same warehouse
    w.clock.advance(timedelta(seconds=15))
    rep = w.tick().slots["active"]
    assert rep.orders_placed == [] and cid in rep.orders_updated
    w.run(2)
    assert made[0].placed == [cid]
    assert _entry_orders(w) == [cid]
    assert w.store.order(cid).state == "filled" and w.status(iid) == "done"
    assert len(w.store.fills("active")) == 1 and len(w.store.positions("active")) == 1
    assert w.tick().invariant_ok


@pytest.mark.parametrize("mode", ["ambiguous", "temporary"])
def test_ambiguous_answer_stays_unresolved_until_the_lookup_settles_it(tmp_path, mode) -> None:
    w, made = _world(tmp_path, mode)
    iid = w.intent("ETH/USD", "enter", "0.1")
    rep = w.tick().slots["active"]
    cid = derive_client_order_id(iid)
    assert rep.orders_placed == [] and any("unresolved" in e for e in rep.errors)
    assert w.store.order(cid).state == "unresolved"
    reports = w.run(3)
    assert made[0].placed == [cid]  # looked up, never resent
    assert w.store.order(cid).state == "filled" and w.status(iid) == "done"
    assert sum(r.count("fills") for r in reports) == 1
    assert reports[-1].invariant_ok


def test_order_the_venue_never_received_is_rejected_after_the_grace_not_resent(tmp_path) -> None:
    w, made = _world(tmp_path, "lost")
    iid = w.intent("SOL/USD", "enter", "2")
    w.tick()
    cid = derive_client_order_id(iid)
    w.run(1.5)  # inside the 2-minute grace: still unresolved
    assert w.store.order(cid).state == "unresolved" and w.status(iid) == "submitted"
    w.run(1)
    row = w.store.order(cid)
    assert (row.state, row.reason) == ("rejected", "not_at_venue")
    assert w.status(iid) == "rejected"
    assert made[0].placed == [cid]
    assert w.store.fills("active") == [] and w.tick().invariant_ok


def test_crash_before_sending_never_sends_later(tmp_path) -> None:
    w, made = _world(tmp_path, "crash_before")
    iid = w.intent("BTC/USD", "enter", "0.01")
    with pytest.raises(RuntimeError):
        w.tick()
    w.wrap = None
    w.restart()
    w.run(3)
    cid = derive_client_order_id(iid)
    assert w.store.order(cid).state == "rejected" and w.status(iid) == "rejected"
    assert _entry_orders(w) == [] and made[0].placed == [cid]


def test_partial_fills_accumulate_into_one_position(tmp_path) -> None:
    w = World(tmp_path / "w.duckdb", max_volume_fraction=0.0005)
    iid = w.intent("BTC/USD", "enter", "0.01", sl=0.05, tp=0.05)
    w.tick()
    states, reports = set(), []
    for _ in range(30):
        w.clock.advance(timedelta(seconds=30))
        reports.append(w.tick())
        states.add(w.store.order(derive_client_order_id(iid)).state)
        if w.status(iid) == "done":
            break
    fills = w.store.fills("active")
    assert len(fills) >= 2 and "partially_filled" in states
    assert sum(f.qty for f in fills) == Decimal("0.01")
    (pos,) = w.store.positions("active")
    assert pos.quantity == Decimal("0.01")
    assert pos.entry_fee == sum(f.fee for f in fills)
    assert pos.stop_loss_price is not None  # armed once the entry was complete
    entries = w.store.cash_entries("active")
    assert len(entries) == 1 + 2 * len(fills)
    assert all(r.invariant_ok for r in reports)


def test_crash_between_write_ahead_and_intent_status_does_not_send(tmp_path) -> None:
    """The order row exists but the intent still says pending: the row wins, nothing is sent."""
    from trading_brain.domain.records import OrderRow

    w, made = _world(tmp_path, "ok")
    iid = w.intent("BTC/USD", "enter", "0.01")
    cid = derive_client_order_id(iid)
    now = w.clock.now()
    assert w.store.insert_order(OrderRow(cid, iid, "active", "paper", "BTC/USD", "buy", "market",
                                         "entry", Decimal("0.01"), "submitting", now, now))
    assert not w.store.insert_order(OrderRow(cid, iid, "active", "paper", "BTC/USD", "buy",
                                             "market", "entry", Decimal("0.01"), "submitting",
                                             now, now))
    assert w.status(iid) == "pending"
    w.tick()
    assert made[0].placed == [] and w.store.order(cid).state == "unresolved"
    w.run(3)
    assert made[0].placed == [] and w.status(iid) == "rejected"
    assert w.store.order(cid).reason == "not_at_venue"
