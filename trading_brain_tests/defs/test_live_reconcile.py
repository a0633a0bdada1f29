"""``portfolio_reconciled`` on a live home against the fake Kraken: the coins the account held
before the bot's first tick (the baseline) are not a mismatch; a later change of the account is."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.definitions import defs
from trading_brain.defs.trading.executor import executor_sensor
from trading_brain.engine import venue_fees as vf
from trading_brain_tests.defs.conftest import resource
from trading_brain_tests.defs.test_trading_checks import run_checks
from trading_brain_tests.fakes.kraken_live import LiveWorld, write_live_home

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_process() -> Iterator[None]:
    vf.forget_process_state()
    yield
    vf.forget_process_state()


def test_the_baseline_is_not_a_mismatch_but_a_later_change_is(tmp_path, fk, monkeypatch):
    home = write_live_home(tmp_path / "live", fk, monkeypatch)
    store = Store.open(home.warehouse)
    account = dict(fk.state.private.balances)  # the captured account (LiveWorld resets it)
    pairs = LiveWorld(tmp_path / "w.duckdb", fk).market.asset_pairs(["BTC/USD"])
    store.upsert_asset_pairs("kraken", list(pairs.values()))
    with fk.state.lock:
        fk.state.private.balances = dict(account)
    held = {k: v for k, v in account.items() if v}
    assert held["XXBT"] > 0 and held["ZUSD"] > 0  # the account holds coins before the bot

    with dg.instance_for_test() as instance:
        before = run_checks(home, NOW, instance)["portfolio_reconciled"]
        assert before.passed  # no live book yet: nothing to compare
        with dg.build_sensor_context(instance=instance, resources={"tb": resource(home, NOW)},
                                     definitions=defs) as ctx:
            executor_sensor(ctx)  # the first tick deposits the USD balance, baselines the coins
        assert store.starting_capital("active") == held["ZUSD"]
        ok = run_checks(home, NOW + timedelta(minutes=1), instance)["portfolio_reconciled"]
        assert ok.passed, ok.description
        with fk.state.lock:
            fk.state.private.balances["XXBT"] += Decimal("0.25")  # someone moved coins in
        bad = run_checks(home, NOW + timedelta(minutes=2), instance)["portfolio_reconciled"]
        assert not bad.passed
        assert "BTC" in (bad.description or "") or "XBT" in (bad.description or "")


def test_ambiguous_placements_are_warnings_in_the_log_and_events_in_the_ui(
        tmp_path, fk, monkeypatch, caplog):
    """Issue 15: an ambiguous AddOrder (``EService`` after the venue took it) showed only as
    text in the ``portfolio`` event's ``errors``; it is now a WARNING and an ``orders`` event."""
    import logging

    home = write_live_home(tmp_path / "live", fk, monkeypatch)
    w = LiveWorld(home.warehouse, fk)
    w.store.upsert_asset_pairs("kraken", list(w.market.asset_pairs(["BTC/USD"]).values()))
    w.intent("enter", "0.01")
    fk.state.add_fault("AddOrder", errors=["EService:Unavailable"], after_handler=True)
    now = datetime.now(UTC)
    with dg.instance_for_test() as instance, caplog.at_level(logging.WARNING):
        with dg.build_sensor_context(instance=instance, resources={"tb": resource(home, now)},
                                     definitions=defs) as ctx:
            result = executor_sensor(ctx)
    (obs,) = [e for e in result.asset_events if isinstance(e, dg.AssetObservation)]
    assert obs.asset_key == dg.AssetKey("orders")
    assert "unresolved" in obs.metadata["warnings"].value
    assert "EService:Unavailable" in obs.metadata["warnings"].value
    (portfolio,) = [e for e in result.asset_events if e.asset_key == dg.AssetKey("portfolio")
                    and isinstance(e, dg.AssetMaterialization)]  # its checks travel with it
    assert "unresolved" in portfolio.metadata["warnings"].value
    assert any(r.levelno == logging.WARNING and "unresolved" in r.getMessage()
               for r in caplog.records)
