"""End to end: real `scan_job` runs and real `executor_sensor` ticks on a temporary sim home.

Contract under test (DESIGN §5-§6): every 5 minutes a scan run turns the active strategy's
decision into a pending intent; the executor sensor writes the order ahead of the venue call,
records the paper fill, the position, the cash ledger and a portfolio snapshot, and reports them
as asset events; rerunning a scan or repeating a tick never creates a second intent, order or
fill; scan runs in other processes and sensor ticks share the one DuckDB warehouse without a
``WarehouseLocked`` failure.

The sim market is deterministic: ``_round_trip`` finds (with the trusted in-process strategy)
the first ema_cross entry after NOW that exits on the very next bar with no other symbol
entering meanwhile; the home is bootstrapped ten minutes before it with ema_cross@1 registered
through the sandbox and deployed (once per module, copied per test). The clock advances by
building a new resource with a later ``now`` for every run and every sensor context.
"""

from __future__ import annotations

import faulthandler
import multiprocessing as mp
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache

import dagster as dg
import polars as pl
import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.sim import SimMarket
from trading_brain.app.research.register import register_files
from trading_brain.app.research.strategy_files import STRATEGIES_ROOT, InProcessStrategy
from trading_brain.app.runtime import build_runtime
from trading_brain.definitions import defs
from trading_brain.defs.trading.executor import executor_sensor
from trading_brain.domain.intents import intent_id_for
from trading_brain.engine import registry
from trading_brain.engine.scan import scan_bar_time
from trading_brain.settings import Home
from trading_brain_tests.defs.conftest import NOW, SYMBOLS, resource, write_home

EMA_CROSS = STRATEGIES_ROOT / "ema_cross" / "v1.py"
STEP = timedelta(minutes=5)


@dataclass(frozen=True)
class Trip:
    symbol: str
    entry: datetime  # open time of the bar ema_cross enters on
    exit: datetime  # open time of the bar it exits on (entry + 5 min)


@cache
def _round_trip(seed: int) -> Trip:
    """The first one-bar ema_cross round trip after NOW with no other symbol entering near it."""
    end = NOW + timedelta(hours=24)
    market = SimMarket(SYMBOLS, seed=seed, clock=SimClock(end))
    src = InProcessStrategy(EMA_CROSS)
    acts = []
    for sym in SYMBOLS:
        bars = market.candles(sym, "5m", NOW - timedelta(days=5), end)
        sig = src.generate(bars).filter((pl.col("ts") > NOW) & (pl.col("action") != "hold"))
        acts += [(ts, sym, a) for ts, a in sig.select("ts", "action").rows()]
    acts.sort()
    for ts, sym, action in acts:
        if action != "enter" or (ts + STEP, sym, "exit") not in acts:
            continue
        near = [a for a in acts if ts - 2 * STEP <= a[0] <= ts + 3 * STEP and a[2] == "enter"]
        if near == [(ts, sym, "enter")]:
            return Trip(sym, ts, ts + STEP)
    raise AssertionError("no one-bar ema_cross round trip in 24 sim hours")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Home, Trip]:
    """A sim home bootstrapped ten minutes before the trip's entry, ema_cross@1 deployed."""
    home = write_home(tmp_path_factory.mktemp("e2e") / "home")
    trip = _round_trip(build_runtime(home.root).settings.sim.seed)
    with dg.instance_for_test() as inst:
        res = defs.resolve_job_def("bootstrap_job").execute_in_process(
            instance=inst, resources={"tb": resource(home, trip.entry - 2 * STEP)},
            run_config={"ops": {"bootstrap_history_op": {"config": {
                "days_5m": 5, "days_1h": 2, "days_1d": 5}}}})
    assert res.success
    store, rt = Store.open(home.warehouse), build_runtime(home.root)
    register_files(store, rt.settings, [EMA_CROSS], "released")
    registry.deploy(store, "ema_cross", 1, reason="e2e test")
    return home, trip


@pytest.fixture
def loop(template, tmp_path) -> tuple[Home, Trip, Store]:
    shutil.copytree(template[0].root, tmp_path / "home")
    home = Home(tmp_path / "home")
    return home, template[1], Store.open(home.warehouse)


def scan_run(home: Home, instance, now: datetime) -> dg.ExecuteInProcessResult:
    """One real scan_job run deciding on the bars closed at ``now``."""
    return defs.resolve_job_def("scan_job").execute_in_process(
        partition_key=scan_bar_time(now).strftime("%Y-%m-%d"), instance=instance,
        resources={"tb": resource(home, now)}, raise_on_error=False)


def tick(home: Home, instance, now: datetime) -> dict[str, list[dict]]:
    """One executor_sensor evaluation at ``now``: asset key -> metadata of its events (empty
    states already announced; no previous portfolio event, so each tick has one)."""
    with dg.build_sensor_context(instance=instance, resources={"tb": resource(home, now)},
                                 definitions=defs, cursor='{"announced": true}') as ctx:
        result = executor_sensor(ctx)
    assert not (result.skip_reason or "").startswith("tick skipped"), result.skip_reason
    out: dict[str, list[dict]] = {}
    for e in result.asset_events:
        out.setdefault(e.asset_key.to_user_string(), []).append(
            {k: v.value for k, v in e.metadata.items()})
    return out


def intent_meta(res: dg.ExecuteInProcessResult) -> dict:
    [m] = [m.materialization for m in res.get_asset_materialization_events()
           if m.asset_key.to_user_string() == "order_intents"]
    return {k: v.value for k, v in m.metadata.items()}


def count(store: Store, sql: str) -> int:
    return store.execute(f"SELECT count(*) FROM {sql}")[0][0]


def test_scan_runs_and_sensor_ticks_trade_a_round_trip(loop, instance):
    home, trip, store = loop
    enter_id = intent_id_for("ema_cross", 1, "active", trip.symbol, trip.entry, "enter")
    exit_id = intent_id_for("ema_cross", 1, "active", trip.symbol, trip.exit, "exit")
    events = []
    for k in (1, 2, 3):  # scans deciding on the entry bar, the exit bar, and the bar after
        now = trip.entry + k * STEP + timedelta(seconds=30)
        res = scan_run(home, instance, now)
        assert res.success and intent_meta(res)["new_intents"] == (1 if k < 3 else 0)
        assert {e.check_name: e.passed for e in res.get_asset_check_evaluations()}[
            "scan_strategies_ran"]
        events += [tick(home, instance, now + timedelta(seconds=15)),
                   tick(home, instance, now + timedelta(seconds=150))]
    assert len(instance.get_runs()) == 3  # real runs, recorded in the instance

    intents = {i.intent_id: i for i in store.intents()}
    assert set(intents) == {enter_id, exit_id}
    assert [intents[enter_id].action, intents[exit_id].action] == ["enter", "exit"]
    assert {i.status for i in intents.values()} == {"done"}
    orders = store.frame("SELECT intent_id, purpose, side, state, filled_qty, reason "
                         "FROM orders ORDER BY created_at, purpose")
    rows = {(r["intent_id"], r["purpose"]): r for r in orders.iter_rows(named=True)}
    # one stop-loss per position; the take-profit is an exit (a row only when it happens)
    assert orders.height == 3 and set(rows) == {(enter_id, "entry"), (enter_id, "stop_loss"),
                                                (exit_id, "exit")}
    assert rows[(enter_id, "entry")]["state"] == rows[(exit_id, "exit")]["state"] == "filled"
    assert rows[(enter_id, "stop_loss")]["state"] == "canceled"  # cancelled once flat
    assert rows[(enter_id, "stop_loss")]["reason"] == "position_closed"
    fills = store.frame("SELECT f.symbol, f.side, f.qty, f.price, f.fee, f.ts, o.intent_id "
                        "FROM fills f JOIN orders o USING (client_order_id) ORDER BY f.ts")
    assert fills["side"].to_list() == ["buy", "sell"]
    assert fills["intent_id"].to_list() == [enter_id, exit_id]
    assert set(fills["symbol"]) == {trip.symbol} and fills["qty"][0] == fills["qty"][1]
    # a market order fills at the open of the first 1m bar after its placement tick
    assert fills["ts"].to_list() == [trip.entry + STEP + timedelta(minutes=1),
                                     trip.exit + STEP + timedelta(minutes=1)]
    [pos] = store.positions("active", status=None)
    assert pos.position_id == enter_id and pos.status == "closed" and pos.quantity == 0
    assert pos.exit_reason == "signal" and pos.sold_qty == fills["qty"][0]

    ledger = store.frame("SELECT cause, amount, balance_after FROM cash_ledger ORDER BY seq")
    assert ledger["cause"].to_list() == ["deposit", "buy", "fee", "sell", "fee"]
    buy, sell = (f["qty"] * f["price"] for f in fills.iter_rows(named=True))
    assert ledger["amount"][0] == Decimal(10000)
    assert abs(ledger["amount"][1] + buy) < Decimal("1e-9") > abs(ledger["amount"][3] - sell)
    assert sum(ledger["amount"]) == ledger["balance_after"][-1] == store.cash_balance("active")
    assert -(ledger["amount"][2] + ledger["amount"][4]) == sum(fills["fee"])
    snaps = store.frame("SELECT ts, equity, cash, exposure FROM portfolio_snapshots ORDER BY ts")
    assert snaps.height == 6 and snaps["exposure"][1] > 0 and snaps["exposure"][-1] == 0
    assert snaps["cash"][-1] == snaps["equity"][-1] == store.cash_balance("active")

    # asset events of the sensor, tick by tick
    placed = [next((m["placed"] for m in e.get("orders", []) if "placed" in m), 0)
              for e in events]
    assert placed == [1, 1, 1, 0, 0, 0]  # the entry, its stop-loss, the exit
    assert [len(e.get("fills", [])) for e in events] == [0, 1, 0, 0, 1, 0]
    assert events[1]["positions"][0]["opened"] == 1 and events[4]["positions"][0]["closed"] == 1
    assert all(e["portfolio"][0]["invariant_ok"] is True for e in events)
    assert events[-1]["portfolio"][0]["cash"] == pytest.approx(float(snaps["cash"][-1]))


def test_a_rerun_scan_and_repeated_ticks_create_no_duplicate(loop, instance):
    home, trip, store = loop
    decided = trip.entry + STEP  # the entry decision is taken on bars closed at this time
    first = scan_run(home, instance, decided + timedelta(seconds=30))
    assert first.success and intent_meta(first)["new_intents"] == 1
    for dt in (45, 45, 50):  # the order is written once, the repeated ticks find it
        tick(home, instance, decided + timedelta(seconds=dt))
    fill_at = decided + timedelta(minutes=2, seconds=30)
    assert tick(home, instance, fill_at)["fills"][0]["fills"] == 1
    assert "fills" not in tick(home, instance, fill_at)  # the same tick again: nothing new
    again = scan_run(home, instance, decided + timedelta(minutes=4, seconds=50))  # same bar
    assert again.success and intent_meta(again)["new_intents"] == 0
    assert "orders" not in tick(home, instance, decided + timedelta(minutes=4, seconds=55))

    assert len(store.intents()) == 1 and count(store, "scans") == 1
    assert count(store, "signals") == len(SYMBOLS)
    assert count(store, "orders WHERE purpose = 'entry'") == 1
    assert count(store, "fills") == 1 and len(store.positions("active")) == 1
    assert count(store, "cash_ledger") == 3  # deposit, buy, fee


def _child_scan(home_root: str, now: datetime, out) -> None:
    """A scan_job run in a fresh (spawned) process; puts '' on success, else the failure."""
    faulthandler.dump_traceback_later(100, exit=True)  # a hang shows where, then ends
    with dg.instance_for_test() as inst:
        res = defs.resolve_job_def("scan_job").execute_in_process(
            partition_key=scan_bar_time(now).strftime("%Y-%m-%d"), instance=inst,
            resources={"tb": resource(Home(home_root), now)}, raise_on_error=False)
        out.put("" if res.success else "; ".join(
            str(e.event_specific_data.error.to_string())
            for e in res.all_events if e.event_type_value == "STEP_FAILURE"))


def test_concurrent_scan_runs_and_sensor_ticks_share_the_warehouse(loop, instance):
    home, trip, store = loop
    decided = trip.entry + STEP
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_child_scan, args=(str(home.root), decided + timedelta(
        seconds=s), out)) for s in (20, 30)]
    for p in procs:
        p.start()
    ticks, deadline = 0, time.monotonic() + 110
    try:
        while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
            tick(home, instance, decided + timedelta(seconds=40))  # ticks here meanwhile
            ticks += 1
            time.sleep(0.5)  # leave the two cores to the runs
        failures = [out.get(timeout=5) for _ in procs]
    finally:
        for p in procs:
            p.kill()
            p.join()
    assert failures == ["", ""]
    assert ticks >= 2  # the ticks really overlapped the runs
    tick(home, instance, decided + timedelta(seconds=40))  # the intent may have landed last
    tick(home, instance, decided + timedelta(minutes=2, seconds=30))
    assert [(i.symbol, i.action, i.status) for i in store.intents()] == [
        (trip.symbol, "enter", "done")]
    assert count(store, "scans") == 1 and count(store, "signals") == len(SYMBOLS)
    assert count(store, "orders WHERE purpose = 'entry'") == 1 and count(store, "fills") == 1
    assert [p.symbol for p in store.positions("active")] == [trip.symbol]
    assert count(store, "cash_ledger WHERE cause = 'deposit'") == 1
