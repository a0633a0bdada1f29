"""engine/ledger.py: fills -> positions and cash entries, the invariant, the venue reconcile."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_brain.domain.orders import Balance, Fill
from trading_brain.domain.records import CashEntry
from trading_brain.engine.ledger import PositionMeta, apply_fill
from trading_brain.engine.valuation import check_invariant, make_snapshot, reconcile_balances
from trading_brain.errors import DataError

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
D = Decimal


def fill(n: int, side: str, qty: str, price: str, fee: str, sym: str = "BTC/USD") -> Fill:
    return Fill(fill_id=f"f{n}", client_order_id=f"c{n}", venue_order_id=f"v{n}", symbol=sym,
                side=side, qty=D(qty), price=D(price), fee=D(fee), fee_currency="USD",
                ts=T0 + timedelta(minutes=n))


def run(fills: list[Fill], capital: D | None = None):
    """Apply fills in order; return (entries incl. deposit, positions by id)."""
    capital = D(1000) if capital is None else capital
    entries = [CashEntry("deposit:active", T0, "active", capital, capital, "deposit")]
    positions = {}
    for f in fills:
        cur = next((p for p in positions.values() if p.symbol == f.symbol and p.status == "open"),
                   None)
        eff = apply_fill(cur, f, "active", entries[-1].balance_after,
                         PositionMeta(f"pos-{f.fill_id}", "s", 2, "day"))
        entries += eff.entries
        positions[eff.position.position_id] = eff.position
    return entries, positions


def test_round_trip_cash_entries_and_net_pnl() -> None:
    entries, pos = run([fill(1, "buy", "2", "100", "0.52"), fill(2, "sell", "2", "110", "0.572")])
    assert [(e.cause, e.amount) for e in entries[1:]] == [
        ("buy", D(-200)), ("fee", D("-0.52")), ("sell", D(220)), ("fee", D("-0.572"))]
    assert entries[-1].balance_after == D(1000) - 200 - D("0.52") + 220 - D("0.572")
    (p,) = pos.values()
    assert (p.status, p.exit_reason, p.quantity) == ("closed", "signal", 0)
    assert p.realized_pnl == D(20) - D("0.52") - D("0.572")
    assert (p.entry_price, p.exit_price, p.intent_type, p.version) == (100, 110, "day", 2)
    assert [e.entry_id for e in entries[1:3]] == ["f1:buy", "f1:fee"]


def test_partial_entries_and_exits_use_average_cost() -> None:
    _, pos = run([fill(1, "buy", "1", "100", "0"), fill(2, "buy", "1", "120", "0"),
                  fill(3, "sell", "0.5", "130", "0")])
    (p,) = pos.values()
    assert (p.status, p.quantity, p.entry_price) == ("open", D("1.5"), D(110))
    assert p.cost_basis == D(165)
    _, pos = run([fill(1, "buy", "1", "100", "1"), fill(2, "buy", "1", "120", "1"),
                  fill(3, "sell", "0.5", "130", "1"), fill(4, "sell", "1.5", "90", "1")])
    (p,) = pos.values()
    assert p.status == "closed"
    assert p.realized_pnl == D("0.5") * 130 + D("1.5") * 90 - 220 - 4


def test_sell_without_or_beyond_the_position_is_refused() -> None:
    with pytest.raises(DataError, match="without an open position"):
        run([fill(1, "sell", "1", "100", "0")])
    with pytest.raises(DataError, match="sells 2 > held 1"):
        run([fill(1, "buy", "1", "100", "0"), fill(2, "sell", "2", "100", "0")])


def test_invariant_holds_and_catches_each_kind_of_corruption() -> None:
    fills = [fill(1, "buy", "0.013", "61234.5", "2.07"), fill(2, "buy", "3", "3001.25", "23.41",
             "ETH/USD"), fill(3, "sell", "0.013", "60011.1", "2.03")]
    entries, pos = run(fills, D(20_000))
    positions = list(pos.values())
    marks = {"BTC/USD": D(60_000), "ETH/USD": D("3100.5")}
    ok = check_invariant(D(20_000), entries, fills, positions, marks)
    assert ok.ok, ok.problems
    assert ok.equity == entries[-1].balance_after + 3 * D("3100.5")
    snap = make_snapshot(T0, "active", entries[-1].balance_after, positions, marks, fills,
                         D(21_000), D(20_000))
    assert snap.equity == ok.equity and snap.fees_paid == D("27.51")
    assert snap.unrealized_pnl == 3 * (D("3100.5") - D("3001.25"))
    assert snap.drawdown == pytest.approx(float((21_000 - snap.equity) / 21_000))
    # a ledger entry whose running balance is off by two cents
    bad = [*entries[:-1], replace(entries[-1], balance_after=entries[-1].balance_after + D("0.02"))]
    assert not check_invariant(D(20_000), bad, fills, positions, marks).ok
    # a lost fill
    assert not check_invariant(D(20_000), entries, fills[:2], positions, marks).ok
    # a position quantity that no fill explains
    eth = next(p for p in positions if p.symbol == "ETH/USD" and p.status == "open")
    drift = [p if p is not eth else replace(eth, quantity=D("2.9")) for p in positions]
    res = check_invariant(D(20_000), entries, fills, drift, marks)
    assert not res.ok and any("ETH/USD" in s for s in res.problems)
    # wrong starting capital
    assert not check_invariant(D(20_001), entries, fills, positions, marks).ok
    # sub-cent noise is tolerated ("to the cent")
    noise = [*entries[:-1], replace(entries[-1], amount=entries[-1].amount + D("0.004"),
                                    balance_after=entries[-1].balance_after + D("0.004"))]
    assert check_invariant(D(20_000), noise, fills, positions, marks).ok
    assert not check_invariant(D(20_000), entries, fills, positions, {"BTC/USD": D(1)}).ok


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["BTC/USD", "ETH/USD"]), st.integers(1, 10**6),
                          st.integers(1, 10**7), st.integers(0, 2)), min_size=1, max_size=40))
def test_invariant_to_the_cent_over_random_trading(steps) -> None:
    fills, held, n = [], {}, 0
    for sym, qty_units, price_cents, kind in steps:
        n += 1
        price = D(price_cents) / 100 + D("0.000123")
        if kind < 2 or held.get(sym, 0) == 0:
            qty = D(qty_units) / 10**6
            side = "buy"
        else:
            qty = held[sym] if kind == 2 and qty_units % 2 else held[sym] / 3
            qty = qty.quantize(D("1e-8")) or held[sym]
            side = "sell"
        fee = (qty * price * D("0.0026")).quantize(D("1e-12"))
        fills.append(fill(n, side, str(qty), str(price), str(fee), sym))
        held[sym] = held.get(sym, 0) + (qty if side == "buy" else -qty)
    entries, pos = run(fills, D(10**9))
    marks = {"BTC/USD": D("61000.17"), "ETH/USD": D("2999.99")}
    res = check_invariant(D(10**9), entries, fills, list(pos.values()), marks)
    assert res.ok, res.problems


def test_reconcile_balances_reports_every_difference() -> None:
    venue = Balance(assets={"USD": D("1000.00"), "BTC": D("0.5"), "ETH": D(0)})
    assert reconcile_balances(D("1000.004"), {"BTC": D("0.5")}, venue) == []
    mm = reconcile_balances(D("999.9"), {"BTC": D("0.4"), "SOL": D(1)}, venue)
    assert [(m.asset, m.ledger, m.venue) for m in mm] == [
        ("USD", D("999.9"), D("1000.00")), ("BTC", D("0.4"), D("0.5")), ("SOL", D(1), D(0))]
    assert "USD: ledger 999.9 != venue 1000.00" in [str(m) for m in mm]
    extra = Balance(assets={"USD": D(1000), "DOGE": D(7)})
    assert [m.asset for m in reconcile_balances(D(1000), {}, extra)] == ["DOGE"]
