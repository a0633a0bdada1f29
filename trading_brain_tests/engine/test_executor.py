"""The executor tick over a real warehouse, the real sim market and the paper venue (SimClock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.paper.exchange import PaperExchange
from trading_brain.adapters.sim.market import SimMarket
from trading_brain.domain.intents import OrderIntent, intent_id_for
from trading_brain.domain.orders import Balance, derive_client_order_id
from trading_brain.domain.risk import RiskLimits
from trading_brain.engine import fills as fm
from trading_brain.engine.executor.book import slot_invariant
from trading_brain.engine.executor.tick import (
    SlotSetup,
    TickConfig,
    TickReport,
    run_tick,
)
from trading_brain.engine.risk_state import halt

T0 = datetime(2026, 3, 2, 12, 0, 10, tzinfo=UTC)
SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]
TABLES = {"orders": "client_order_id", "fills": "fill_id", "cash_ledger": "entry_id",
          "positions": "position_id", "risk_events": "event_id"}


class World:
    """A warehouse + sim market + one paper venue per slot, all on one SimClock."""

    def __init__(self, path: Path, slots=("active",), start: datetime = T0, seed: int = 7,
                 wrap=None, local: bool = True, **paper_kw) -> None:
        self.path, self.slots, self.wrap, self.paper_kw = path, slots, wrap, paper_kw
        self.config = TickConfig(local_venues=local)
        self.clock = SimClock(start)
        self.market = SimMarket(SYMBOLS, seed=seed, clock=self.clock)
        self.pairs = self.market.asset_pairs(SYMBOLS)
        self.restart()
        self.n = 0

    def restart(self) -> None:
        """New objects over the same warehouse file (a process restart)."""
        self.store = Store.open(self.path)
        self.venues = {s: PaperExchange(self.market, self.clock, self.store, self.pairs,
                                        account=s, **self.paper_kw) for s in self.slots}
        if self.wrap:
            self.venues = {s: self.wrap(v) for s, v in self.venues.items()}

    def tick(self, limits: RiskLimits | None = None) -> TickReport:
        setups = {s: SlotSetup(v, Decimal(10_000)) for s, v in self.venues.items()}
        return run_tick(self.store, setups, self.market, self.clock, self.pairs,
                        limits or RiskLimits(), self.config)

    def intent(self, symbol: str, action: str, qty: str = "0.01", slot: str = "active",
               sl: float | None = None, tp: float | None = None) -> str:
        self.n += 1
        now = self.clock.now()
        bar = now.replace(second=0) - timedelta(minutes=5)
        iid = intent_id_for("trend", 1, slot, symbol, bar + timedelta(seconds=self.n), action)
        scan = dict(scan_id=f"scan-{self.n}", bar_time=bar, started_at=now, duration_ms=1.0,
                    symbols=1, signals=1, intents=1, rejected=0, details={})
        self.store.record_scan(scan, [], [OrderIntent(
            intent_id=iid, scan_id=scan["scan_id"], strategy_id="trend", version=1, slot=slot,
            symbol=symbol, bar_time=bar, action=action, quantity=Decimal(qty),
            reference_price=Decimal("1"), stop_loss=sl, take_profit=tp, intent_type="day",
            created_at=now)])
        return iid

    def run(self, minutes: float, every_s: int = 30) -> list[TickReport]:
        out = []
        for _ in range(int(minutes * 60 / every_s)):
            self.clock.advance(timedelta(seconds=every_s))
            out.append(self.tick())
        return out

    def counts(self) -> dict[str, int]:
        return {t: self.store.execute(f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}

    def dump(self) -> dict[str, list]:
        return {t: self.store.execute(f"SELECT * EXCLUDE (updated_at) FROM {t} ORDER BY {k}")
                if t in ("orders", "positions") else
                self.store.execute(f"SELECT * FROM {t} ORDER BY {k}") for t, k in TABLES.items()}

    def status(self, iid: str) -> str:
        return self.store.intent_by_id(iid).status


def test_entry_fills_at_the_next_price_with_slippage_and_fee(tmp_path) -> None:
    w = World(tmp_path / "w.duckdb")
    iid = w.intent("BTC/USD", "enter", "0.02")
    first = w.tick()
    assert first.slots["active"].orders_placed == [derive_client_order_id(iid)]
    assert w.status(iid) == "submitted"
    reports = w.run(3)
    (fill,) = w.store.fills("active")
    placed = T0.replace(second=0) + timedelta(minutes=1)
    assert fill.ts == placed
    assert float(fill.price) == fm.buy_price(w.market.price_at("BTC/USD", placed), 0.0005)
    assert fill.fee == (fill.qty * fill.price * Decimal("0.0026")).quantize(Decimal("1e-18"))
    assert w.status(iid) == "done"
    (pos,) = w.store.positions("active")
    assert (pos.position_id, pos.quantity, pos.intent_type, pos.strategy_id) == (
        iid, Decimal("0.02"), "day", "trend")
    assert all(r.invariant_ok for r in reports)
    snap = reports[-1].slots["active"].snapshot
    assert snap.cash == Decimal(10_000) - fill.qty * fill.price - fill.fee
    assert snap.fees_paid == fill.fee and 0 < snap.exposure < 0.2


def test_exit_sells_the_whole_position_and_feeds_the_risk_state(tmp_path) -> None:
    w = World(tmp_path / "w.duckdb")
    w.intent("ETH/USD", "enter", "0.5")
    w.tick()
    w.run(3)
    xid = w.intent("ETH/USD", "exit", "0.1")  # quantity is ignored: an exit sells everything
    reports = w.run(3)
    (pos,) = w.store.positions("active", status="closed")
    assert pos.sold_qty == Decimal("0.5") and pos.exit_reason == "signal"
    fills = w.store.fills("active")
    assert pos.realized_pnl == sum((f.qty * f.price * (1 if f.side == "sell" else -1) - f.fee
                                    for f in fills), Decimal(0))
    assert w.status(xid) == "done"
    state = w.store.load_risk_state("active")
    assert state.symbol("ETH/USD").closes[0].pnl == pos.realized_pnl
    assert state.consecutive_losses == (1 if pos.realized_pnl < 0 else 0)
    assert any(r.slots["active"].positions_closed for r in reports)
    snap = reports[-1].slots["active"].snapshot
    assert snap.realized_pnl == pos.exit_value - pos.entry_cost and snap.positions_value == 0
    assert snap.equity == Decimal(10_000) + pos.realized_pnl


def test_repeated_ticks_create_no_duplicate_rows(tmp_path) -> None:
    w = World(tmp_path / "w.duckdb")
    w.intent("BTC/USD", "enter", "0.01", sl=0.01, tp=0.01)
    w.intent("SOL/USD", "enter", "2")
    w.tick()
    w.run(4)
    before = w.counts()
    assert before["fills"] == 2 and before["orders"] == 3  # 2 entries + the stop of BTC
    for _ in range(5):  # same clock reading: nothing new
        rep = w.tick()
        assert rep.count("fills") == rep.count("orders_placed") == 0
    assert w.counts() == before
    w.restart()
    w.tick()
    assert w.counts() == before


def test_venue_rejection_marks_the_intent_rejected_with_the_reason(tmp_path) -> None:
    w = World(tmp_path / "w.duckdb")
    tiny = w.intent("BTC/USD", "enter", "0.00000001")  # below the sim's ordermin
    orphan = w.intent("SOL/USD", "exit")  # nothing to sell
    first = w.intent("ETH/USD", "enter", "0.1")
    twice = w.intent("ETH/USD", "enter", "0.1")  # one position per symbol and slot
    rep = w.tick().slots["active"]
    assert rep.intents_rejected == {tiny: "order_minimum", orphan: "no_position",
                                    twice: "duplicate_pending"}
    assert w.status(tiny) == w.status(orphan) == w.status(twice) == "rejected"
    assert w.status(first) == "submitted"
    row = w.store.order(derive_client_order_id(tiny))
    assert (row.state, row.reason) == ("rejected", "order_minimum")
    assert len(w.store.orders("active")) == 2
    reasons = {r[0] for r in w.store.execute("SELECT reason FROM risk_events")}
    assert {"order_minimum", "no_position"} <= reasons


def test_halt_cancels_entries_but_exits_always_pass(tmp_path) -> None:
    w = World(tmp_path / "w.duckdb")
    w.intent("BTC/USD", "enter", "0.01")
    w.tick()
    w.run(3)
    state, _ = halt(w.store.load_risk_state("active"), "operator", w.clock.now())
    w.store.save_risk_state("active", state)
    entry = w.intent("ETH/USD", "enter", "0.1")
    exit_ = w.intent("BTC/USD", "exit")
    w.tick()
    w.run(3)
    assert w.status(entry) == "cancelled" and w.status(exit_) == "done"
    assert w.store.positions("active") == []


def test_slots_have_their_own_cash_pools_and_risk_state(tmp_path) -> None:
    w = World(tmp_path / "w.duckdb", slots=("active", "shadow1"), local=False)
    w.intent("BTC/USD", "enter", "0.05", slot="active")
    w.intent("BTC/USD", "enter", "0.01", slot="shadow1")
    w.tick()
    reports = w.run(3)
    last = reports[-1].slots
    assert last["active"].snapshot.cash < last["shadow1"].snapshot.cash < Decimal(10_000)
    assert [p.quantity for p in w.store.positions("active")] == [Decimal("0.05")]
    assert [p.quantity for p in w.store.positions("shadow1")] == [Decimal("0.01")]
    assert w.venues["shadow1"].balances().get("BTC") == Decimal("0.01")
    assert w.store.load_risk_state("shadow1") is not None
    assert all(r.invariant_ok for r in reports)


def _scenario(w: World, ticks: int, start_tick: int = 0) -> None:
    """A fixed trading script: entries with stops, exits, several symbols; one tick per 60 s."""
    for k in range(start_tick, ticks):
        w.clock.set(T0 + timedelta(seconds=60 * k))
        sym = SYMBOLS[k % 3]
        if k % 5 == 0:
            w.n = k
            w.intent(sym, "enter", {"BTC/USD": "0.01", "ETH/USD": "0.2", "SOL/USD": "3"}[sym],
                     sl=0.003, tp=0.004)
        elif k % 13 == 0:
            w.n = k
            w.intent(sym, "exit")
        rep = w.tick()
        assert rep.invariant_ok, [(r.invariant.problems, r.mismatches) for r in rep.slots.values()]


def test_invariant_to_the_cent_over_many_ticks_and_resume_reproduces(tmp_path) -> None:
    full = World(tmp_path / "a.duckdb")
    _scenario(full, 45)
    counts = full.counts()
    closed = full.store.positions("active", status="closed")
    assert counts["fills"] >= 10 and len(closed) >= 4
    assert {p.exit_reason for p in closed} >= {"stop_loss", "take_profit"}
    snaps = full.store.snapshots("active")
    assert len(snaps) == 45 and snaps[-1].fees_paid > 0
    resumed = World(tmp_path / "b.duckdb")
    _scenario(resumed, 22)
    resumed.restart()  # simulate --resume: new objects over the same warehouse
    _scenario(resumed, 45, start_tick=22)
    assert resumed.dump() == full.dump()


def test_live_reconcile_detects_cash_and_position_mismatches(tmp_path) -> None:
    class Drifted:
        """The venue after someone traded on the account by hand."""

        def __init__(self, inner) -> None:
            self.inner, self.name = inner, inner.name

        def __getattr__(self, item):
            return getattr(self.inner, item)

        def balances(self) -> Balance:
            b = self.inner.balances().assets
            return Balance(assets={**b, "USD": b["USD"] - Decimal("12.5"), "BTC": Decimal("0.3")})

    w = World(tmp_path / "w.duckdb")
    w.intent("ETH/USD", "enter", "0.1")
    w.tick()
    w.run(2)
    assert w.tick().invariant_ok
    marks = {"ETH/USD": Decimal(3000)}
    assert slot_invariant(w.store, "active", marks).ok
    assert slot_invariant(w.store, "shadow2", marks).ok  # a slot that never traded
    w.store.execute("UPDATE positions SET quantity = quantity / 2")  # corrupt the ledger
    bad = slot_invariant(w.store, "active", marks)
    assert not bad.ok and any("ETH/USD" in p for p in bad.problems)
    w.store.execute("UPDATE positions SET quantity = quantity * 2")
    w.venues = {"active": Drifted(w.venues["active"])}
    rep = w.tick().slots["active"]
    assert not rep.ok and rep.invariant.ok  # the ledger is consistent, the venue disagrees
    assert sorted(m.asset for m in rep.mismatches) == ["BTC", "USD"]
    usd = next(m for m in rep.mismatches if m.asset == "USD")
    assert usd.ledger - usd.venue == Decimal("12.5")


def test_portfolio_view_for_the_risk_shell(tmp_path) -> None:
    w = World(tmp_path / "w.duckdb")
    w.intent("BTC/USD", "enter", "0.02")
    w.tick()
    w.run(3)
    waiting = w.intent("ETH/USD", "enter", "0.5")  # not yet taken by the executor
    mark = Decimal(60_000)
    view = w.store.portfolio_view("active", {"BTC/USD": mark}, fee_rate=Decimal("0.0026"))
    (pos,) = w.store.positions("active")
    assert view.cash == w.store.cash_balance("active")
    assert view.positions["BTC/USD"].qty == Decimal("0.02")
    assert view.positions["BTC/USD"].value == Decimal("0.02") * mark
    assert view.positions["BTC/USD"].entry_price == pos.entry_price
    (pending,) = view.pending
    assert (pending.intent_id, pending.action, pending.qty) == (waiting, "enter", Decimal("0.5"))
    assert pending.reserved == Decimal("0.5") * Decimal(1) * Decimal("1.0026")  # reference 1
    assert view.equity == view.cash + Decimal("0.02") * mark
    w.tick()  # the intent becomes an open order: still reserved until it fills
    assert [p.intent_id for p in w.store.portfolio_view("active", {}).pending] == [waiting]
    w.run(3)
    assert w.store.portfolio_view("active", {}).pending == ()
