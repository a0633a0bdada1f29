"""engine.market_sync against the sim market and a real warehouse: omissions, revisions, bad
rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.sim import SimMarket
from trading_brain.engine import market_checks
from trading_brain.engine.market_sync import derive_window, sync_window
from trading_brain_tests.fakes.markets import TamperedMarket

DAY = datetime(2026, 5, 4, tzinfo=UTC)
SYMS = ["BTC/USD", "ETH/USD"]


def _t(minutes: int) -> datetime:
    return DAY + timedelta(minutes=minutes)


def test_incremental_sync_stores_each_closed_bar_once(store):
    clock = SimClock(_t(62))
    market = SimMarket(SYMS, seed=3, clock=clock)
    rep = sync_window(market, store, SYMS, "5m", DAY, DAY + timedelta(days=1), now=clock.now())
    assert rep.stored == 2 * 12 and rep.latest["BTC/USD"] == _t(55)
    clock.set(_t(67, ))
    rep2 = sync_window(market, store, SYMS, "5m", DAY, DAY + timedelta(days=1), now=clock.now())
    assert rep2.fetched == 2 * 2  # one bar of overlap + the new one, per symbol
    stored = store.read_candles(SYMS, "5m")
    assert stored.height == 2 * 13
    assert stored.equals(market.candles("BTC/USD", "5m", DAY, _t(65)).vstack(
        market.candles("ETH/USD", "5m", DAY, _t(65))))


def test_venue_omissions_are_tolerated_but_lost_bars_are_gaps(store):
    clock = SimClock(_t(60))
    market = TamperedMarket(SimMarket(SYMS, seed=3, clock=clock), drop={_t(20)})
    rep = sync_window(market, store, ["BTC/USD"], "5m", DAY, DAY + timedelta(days=1),
                      now=clock.now())
    assert rep.omitted == 1
    stored = store.read_candles(["BTC/USD"], "5m").select("symbol", "ts")
    omitted = store.read_omissions(["BTC/USD"], "5m")
    assert market_checks.gaps(stored, omitted, "5m", DAY, DAY + timedelta(days=1)).passed
    # a bar the venue did serve but we then lost is a real gap
    store.execute("DELETE FROM candles WHERE ts = ?", [_t(30)])
    stored = store.read_candles(["BTC/USD"], "5m").select("symbol", "ts")
    out = market_checks.gaps(stored, omitted, "5m", DAY, DAY + timedelta(days=1))
    assert not out.passed and out.metadata["missing_bars"] == 1
    # when the venue later delivers the omitted bar, the omission mark goes away
    honest = SimMarket(SYMS, seed=3, clock=clock)
    sync_window(honest, store, ["BTC/USD"], "5m", DAY, DAY + timedelta(days=1), now=clock.now(),
                incremental=False)
    assert store.read_omissions(["BTC/USD"], "5m").is_empty()


def test_corrupt_rows_are_quarantined_and_revisions_replace(store):
    clock = SimClock(_t(30))
    market = TamperedMarket(SimMarket(SYMS, seed=3, clock=clock), corrupt={_t(10)})
    rep = sync_window(market, store, ["BTC/USD"], "5m", DAY, DAY + timedelta(days=1),
                      now=clock.now())
    assert rep.quarantined == 1 and rep.stored == 5 and rep.omitted == 0
    assert sum(rep.reasons.values()) == 1
    q = store.frame("SELECT ts, reason FROM candles_quarantine")
    assert q["ts"].to_list() == [_t(10)]
    assert _t(10) not in store.read_candles(["BTC/USD"], "5m")["ts"].to_list()
    # the venue revises its last bar: the overlap re-fetch replaces it, no duplicate
    new_close = store.read_candles(["BTC/USD"], "5m")["close"][-1] * 1.001
    revised = TamperedMarket(SimMarket(SYMS, seed=3, clock=clock), revise={_t(25): new_close})
    sync_window(revised, store, ["BTC/USD"], "5m", DAY, DAY + timedelta(days=1), now=clock.now())
    last = store.read_candles(["BTC/USD"], "5m").filter(pl.col("ts") == _t(25))
    assert last.height == 1 and last["close"][0] == new_close


def test_derived_hours_from_complete_buckets_else_fetched(store):
    clock = SimClock(_t(185))
    market = SimMarket(SYMS, seed=3, clock=clock)
    day_end = DAY + timedelta(days=1)
    sync_window(market, store, ["BTC/USD"], "5m", _t(60), day_end, now=clock.now())  # 5m from 01:00
    five = store.read_candles(["BTC/USD"], "5m", DAY, day_end)
    rep = derive_window(market, store, ["BTC/USD"], "1h", DAY, day_end, now=clock.now(),
                        five_minute=five)
    assert rep.derived == 2  # 01:00 and 02:00 from 5m; 00:00 fetched directly; 03:00 not closed
    hours = store.read_candles(["BTC/USD"], "1h")
    assert hours["ts"].to_list() == [_t(0), _t(60), _t(120)]
    direct = market.candles("BTC/USD", "1h", DAY, _t(180))
    for col in ("open", "high", "low", "close"):
        assert hours[col].to_list() == direct[col].to_list()
    assert hours["volume"].to_numpy() == __import__("pytest").approx(
        direct["volume"].to_numpy(), rel=1e-12)


def test_a_lone_outlier_print_in_a_short_tail_is_quarantined(store):
    clock = SimClock(_t(600))
    honest = SimMarket(SYMS, seed=3, clock=clock)
    sync_window(honest, store, ["BTC/USD"], "5m", DAY, DAY + timedelta(days=1), now=clock.now())
    clock.set(_t(610))
    last = honest.candles("BTC/USD", "5m", _t(600), _t(605))["close"][0]
    spiky = TamperedMarket(SimMarket(SYMS, seed=3, clock=clock), revise={_t(605): last * 3})
    rep = sync_window(spiky, store, ["BTC/USD"], "5m", DAY, DAY + timedelta(days=1),
                      now=clock.now())
    assert rep.quarantined == 1 and set(rep.reasons) <= {"outlier_close", "outlier_wick"}
    assert _t(605) not in store.read_candles(["BTC/USD"], "5m")["ts"].to_list()
