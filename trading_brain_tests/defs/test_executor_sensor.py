"""executor_sensor ticks (build_sensor_context): write-ahead order, paper fill, asset events, no
dupes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import dagster as dg

from trading_brain.adapters.duckdb import Store
from trading_brain.definitions import defs
from trading_brain.defs.trading.executor import executor_sensor
from trading_brain.domain.intents import OrderIntent, intent_id_for
from trading_brain.engine.scan import scan_bar_time
from trading_brain_tests.defs.conftest import NOW, resource


def _tick(home, now, instance):
    with dg.build_sensor_context(instance=instance, resources={"tb": resource(home, now)},
                                 definitions=defs) as ctx:
        return executor_sensor(ctx)


def test_sensor_places_fills_and_reports_without_duplicates(sim_home, instance):
    assert defs.resolve_job_def("bootstrap_job").execute_in_process(
        instance=instance, resources={"tb": resource(sim_home)},
        run_config={"ops": {"bootstrap_history_op": {"config": {"days_5m": 1}}}}).success
    store = Store.open(sim_home.warehouse)
    bar = scan_bar_time(NOW)  # the newest closed 5m bar: the decision bar of a scan at NOW
    price = store.read_candles(["BTC/USD"], "5m", bar, bar + timedelta(minutes=5))["close"][0]
    intent = OrderIntent(
        intent_id=intent_id_for("ema_cross", 1, "active", "BTC/USD", bar, "enter"), scan_id="s1",
        strategy_id="ema_cross", version=1, symbol="BTC/USD", bar_time=bar, action="enter",
        quantity=Decimal("0.01"), reference_price=Decimal(repr(price)), stop_loss=0.02,
        take_profit=0.04, created_at=NOW)
    scan = dict(scan_id="s1", bar_time=bar, started_at=NOW, duration_ms=1.0, symbols=1,
                signals=1, intents=1, rejected=0, details={})
    assert store.record_scan(scan, [], [intent]) == 1

    first = _tick(sim_home, NOW, instance)
    assert [e.asset_key.to_user_string() for e in first.asset_events][:1] == ["orders"]
    orders = store.frame("SELECT state, client_order_id FROM orders")
    assert orders.height == 1
    assert store.intents("submitted")[0].intent_id == intent.intent_id

    later = NOW + timedelta(minutes=3)
    second = _tick(sim_home, later, instance)
    keys = {e.asset_key.to_user_string() for e in second.asset_events}
    assert {"fills", "positions", "portfolio"} <= keys
    portfolio = next(e for e in second.asset_events if e.asset_key.to_user_string() == "portfolio")
    assert portfolio.metadata["invariant_ok"].value is True
    assert store.frame("SELECT count(*) AS n FROM fills")["n"][0] == 1
    assert store.frame("SELECT status FROM positions")["status"].to_list() == ["open"]

    _tick(sim_home, later, instance)  # a repeated tick at the same time changes nothing
    assert store.frame("SELECT count(*) AS n FROM orders WHERE purpose = 'entry'")["n"][0] == 1
    assert store.frame("SELECT count(*) AS n FROM fills")["n"][0] == 1
