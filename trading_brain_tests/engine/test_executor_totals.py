"""The tick's snapshot and invariant from warehouse totals (``ledger_totals``, ``fill_totals``,
``slot_book``, ``check_totals``) equal the full replay of every cash entry and fill, tick by
tick and to the last of 18 decimals, and still fail on every kind of tampering."""

from __future__ import annotations

import random
import shutil
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.domain.orders import Fill
from trading_brain.domain.records import CENT, FillBook, OrderRow
from trading_brain.engine.executor import book as executor_books
from trading_brain.engine.executor.book import slot_book
from trading_brain.engine.ledger import PositionMeta, apply_fill
from trading_brain.engine.valuation import check_invariant, ledger_totals, replay_fills
from trading_brain_tests.engine.test_executor import SYMBOLS, T0, World

D = Decimal
BASE = {"BTC/USD": D("61234.5678901234"), "ETH/USD": D("3001.2534567891"),
        "SOL/USD": D("142.987654321987")}


def history(store: Store, slot: str, n: int, start, *, seed: int = 1, capital: int = 10_000,
            flat: bool = True, pnl: bool = True) -> list[Fill]:
    """Store ``n`` fills of ``slot`` as the executor books them (orders, fills, cash entries,
    positions) from ``start`` on: entries, adds, partial and full exits over three symbols at
    prices with 10-12 decimals (products need the half-even rounding at 18 decimals), equal
    times for runs of same-side fills. ``flat``: every position closed at the end; ``pnl``
    False: one price per position and no fees (the cash moves by rounding only)."""
    rng = random.Random(seed)
    store.ensure_deposit(slot, D(capital), start - timedelta(minutes=1))
    balance = store.ledger_totals(slot).balance
    held: dict[str, object] = {}
    price = dict(BASE)
    orders, fills, entries, positions = [], [], [], {}
    ts, last_side = start, None
    for i in range(n):
        if flat and n - i <= len(held):
            sym, side = sorted(held)[0], "sell"
        elif flat and not held and n - i == 1:
            break  # a flat history has an even number of fills
        else:
            sym = rng.choice(SYMBOLS)
            side = "buy" if sym not in held or rng.random() < 0.4 else "sell"
            if flat and sym not in held and n - i < len(held) + 2:  # no room to close it
                sym, side = (sorted(held)[0], "buy") if held else (sym, side)
        pos = held.get(sym)
        if side == "buy":
            qty = (D(rng.randint(1, 10**8)) / 10**8 * D(100) / BASE[sym]).quantize(D("1e-8"))
            qty = max(qty, D("1e-8"))
            if pnl or pos is None:
                price[sym] = (BASE[sym] * D(1 + rng.uniform(-0.05, 0.05))).quantize(D("1e-11"))
        else:
            whole = pos.quantity  # type: ignore[attr-defined]
            part = (whole * D(rng.uniform(0.1, 0.9))).quantize(D("1e-8"))
            qty = whole if (flat and n - i <= len(held)) or rng.random() < 0.5 or part <= 0 \
                or part >= whole else part
            if pnl:
                price[sym] = (BASE[sym] * D(1 + rng.uniform(-0.05, 0.05))).quantize(D("1e-11"))
        fee = (qty * price[sym] * D("0.0026")).quantize(D("1e-10")) if pnl else D(0)
        if side != last_side or rng.random() < 0.5:
            ts += timedelta(minutes=1)
        last_side = side
        f = Fill(fill_id=f"{slot}-h{i:06d}", client_order_id=f"{slot}-c{i:06d}",
                 venue_order_id=f"v{i}", symbol=sym, side=side, qty=qty, price=price[sym],
                 fee=fee, fee_currency="USD", ts=ts)
        effect = apply_fill(pos, f, slot, balance, PositionMeta(f"{slot}-pos{i:06d}"))  # type: ignore[arg-type]
        balance = effect.entries[-1].balance_after
        pid = effect.position.position_id
        orders.append(OrderRow(f.client_order_id, pid, slot, "paper", sym, side, "market",
                               "entry" if side == "buy" else "exit", qty, "filled", ts, ts,
                               filled_qty=qty, avg_price=f.price, fee=fee))
        fills.append(f)
        entries += effect.entries
        positions[pid] = effect.position
        if effect.closed:
            del held[sym]
        else:
            held[sym] = effect.position
    with store.atomic():
        store.write_orders(orders, [])
        store.insert_fills(fills, entries, ts)
        store.save_positions(list(positions.values()))
    return fills


def same_book(a: FillBook, b: FillBook) -> bool:
    def nonzero(d: dict) -> dict:
        return {k: v for k, v in d.items() if v != 0}

    return (a.cash_flow, a.fees, a.realized, nonzero(a.qty), nonzero(a.cost)) == \
        (b.cash_flow, b.fees, b.realized, nonzero(b.qty), nonzero(b.cost))


def test_warehouse_totals_equal_the_full_replay_to_18_decimals(tmp_path) -> None:
    store = Store.open(tmp_path / "w.duckdb")
    assert store.ledger_totals("active") == ledger_totals([])
    assert store.fill_totals("active") == (FillBook(), [])
    for k, (n, flat) in enumerate([(1, False), (7, False), (60, True), (300, False)]):
        slot = f"s{k}"
        history(store, slot, n, T0, seed=k, flat=flat)
        history(store, f"noise{k}", 5, T0, seed=10 + k, flat=False)  # other slots: not counted
        full = replay_fills(store.fills(slot))
        closed, open_fills = store.fill_totals(slot)
        assert same_book(replay_fills(open_fills, closed), full)
        assert same_book(slot_book(store, slot), full)
        assert (open_fills == []) == flat and (full.realized != 0 or n < 5)
        assert len(open_fills) < n / 3 or n < 10  # the closed cycles stay in the warehouse
        assert store.ledger_totals(slot) == ledger_totals(store.cash_entries(slot))


def _tick_scenario(w: World, ticks: int) -> list:
    """Entries with stops and adds, exits, three symbols; one tick a minute; the reports."""
    reports = []
    for k in range(ticks):
        w.clock.set(T0 + timedelta(seconds=60 * k))
        sym = SYMBOLS[k % 3]
        if k % 4 == 0:
            w.n = k
            w.intent(sym, "enter", {"BTC/USD": "0.01", "ETH/USD": "0.2", "SOL/USD": "3"}[sym],
                     sl=0.003, tp=0.004)
        elif k % 11 == 0:
            w.n = k
            w.intent(sym, "exit")
        reports.append(w.tick().slots["active"])
    return reports


def _old_path(monkeypatch) -> None:
    """The tick as it was: read every cash entry and fill, replay them in Python."""
    monkeypatch.setattr(executor_books, "slot_book",
                        lambda store, slot: replay_fills(store.fills(slot)))
    monkeypatch.setattr(Store, "ledger_totals",
                        lambda self, slot, tolerance=CENT: ledger_totals(
                            self.cash_entries(slot), tolerance))


def test_many_ticks_give_the_same_snapshots_and_invariant_as_the_full_replay(
        tmp_path, monkeypatch) -> None:
    worlds = {}
    for name in ("old", "new"):
        w = World(tmp_path / f"{name}.duckdb")
        history(w.store, "active", 120, T0 - timedelta(days=3), seed=3)
        with monkeypatch.context() as m:
            if name == "old":
                _old_path(m)
            worlds[name] = (w, _tick_scenario(w, 60))
    (old, old_reps), (new, new_reps) = worlds["old"], worlds["new"]
    assert len(new_reps) == 60
    for a, b in zip(old_reps, new_reps, strict=True):
        assert a.snapshot == b.snapshot
        assert a.invariant == b.invariant and b.invariant.ok, b.invariant.problems
    assert old.store.snapshots("active") == new.store.snapshots("active")
    assert old.dump() == new.dump()
    assert len(new.store.fills("active")) >= 130
    assert new_reps[-1].snapshot.realized_pnl != 0 and new.store.positions("active")


@pytest.fixture(scope="module")
def _traded_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime]:
    """A slot after history + trading (built once: ~3 s), and the clock it stopped at."""
    w = World(tmp_path_factory.mktemp("traded") / "w.duckdb")
    history(w.store, "active", 80, T0 - timedelta(days=1), seed=5)
    _tick_scenario(w, 14)
    assert w.store.positions("active")  # an open position (its cycle is read row by row)
    return w.path, w.clock.now()


@pytest.fixture()
def traded(_traded_file, tmp_path, monkeypatch):
    """A copy of the traded slot, as a restarted process sees it (``World.restart``: the
    warehouse holds the whole state, the sim market is a function of the clock), and the
    arguments of every ``check_totals`` call."""
    src, now = _traded_file
    for f in src.parent.iterdir():  # the file (and a WAL, if one is left)
        shutil.copyfile(f, tmp_path / f.name)
    w = World(tmp_path / src.name, start=now)
    calls: list[tuple] = []
    real = executor_books.check_totals

    def spy(*args, **kw):
        calls.append(args)
        return real(*args, **kw)

    monkeypatch.setattr(executor_books, "check_totals", spy)
    return w, calls


def _verdict(w: World, calls: list[tuple]):
    """The next tick's invariant, and check_invariant over every stored entry and fill with
    the same positions and marks (the old tick's verdict)."""
    w.clock.advance(timedelta(seconds=30))
    rep = w.tick().slots["active"]
    capital, _, _, positions, marks = calls[-1]
    full = check_invariant(capital, w.store.cash_entries("active"), w.store.fills("active"),
                           positions, marks)
    assert rep.invariant == full
    return rep.invariant


TAMPER = {
    "old ledger amount": "UPDATE cash_ledger SET amount = amount + 0.05 "
                         "WHERE entry_id = 'active-h000010:fee'",
    "old ledger balance": "UPDATE cash_ledger SET balance_after = balance_after - 0.02 "
                          "WHERE entry_id = 'active-h000020:buy'",
    "newest ledger balance": "UPDATE cash_ledger SET balance_after = balance_after + 0.02 "
                             "WHERE seq = (SELECT max(seq) FROM cash_ledger)",
    "old fill price": "UPDATE fills SET price = price + 20 WHERE fill_id = 'active-h000030'",
    "old fill fee": "UPDATE fills SET fee = fee + 0.02 WHERE fill_id = 'active-h000040'",
    "lost old fill": "DELETE FROM fills WHERE fill_id = 'active-h000050'",
    "open fill qty": "UPDATE fills SET qty = qty * 0.5 WHERE fill_id = (SELECT max(fill_id) "
                     "FROM fills WHERE side = 'buy' AND fill_id NOT LIKE 'active-h%')",
    "position qty": "UPDATE positions SET quantity = quantity * 0.5 WHERE status = 'open'",
    "oversold": "UPDATE fills SET qty = qty * 3 WHERE fill_id = (SELECT min(fill_id) FROM fills "
                "WHERE side = 'sell')",
}


def test_the_tick_invariant_holds_untampered(traded) -> None:
    assert _verdict(*traded).ok


@pytest.mark.parametrize("what", sorted(TAMPER))
def test_the_tick_invariant_fails_on_each_kind_of_tampering(traded, what) -> None:
    w, calls = traded
    w.store.execute(TAMPER[what])
    if what in ("oversold", "position qty"):  # sold short: the full replay; untouched fills
        assert (w.store.fill_totals("active") is None) == (what == "oversold")
    res = _verdict(w, calls)
    assert not res.ok and res.problems
