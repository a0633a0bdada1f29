"""Benchmark: one 5-minute scan's incremental candle update for 9 symbols on the sim market.

Target (issue "Foundation"): under 200 ms in-process, warm, into a real warehouse holding a day
of history. Printed beside the baseline of the same fetch without the warehouse.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.sim import SimMarket
from trading_brain.domain.instruments import DEFAULT_SYMBOLS
from trading_brain.engine.market_sync import sync_window

T0 = datetime(2026, 3, 2, 0, 0, 30, tzinfo=UTC)


def test_incremental_scan_update_9_symbols(tmp_path):
    clock = SimClock(T0 + timedelta(hours=12))
    market = SimMarket(DEFAULT_SYMBOLS, seed=1, clock=clock)
    store = Store.open(tmp_path / "w.duckdb")
    day = (T0.replace(second=0), T0.replace(second=0) + timedelta(days=1))
    sync_window(market, store, DEFAULT_SYMBOLS, "5m", *day, now=clock.now())  # history
    timings, fetch_only = [], []
    for _ in range(12):
        now = clock.advance(timedelta(minutes=5))
        t = time.perf_counter()
        rep = sync_window(market, store, DEFAULT_SYMBOLS, "5m", *day, now=now)
        timings.append(time.perf_counter() - t)
        assert rep.stored == 2 * 9  # the re-fetched last bar + the new one, per symbol
        t = time.perf_counter()
        for s in DEFAULT_SYMBOLS:
            market.candles(s, "5m", now - timedelta(minutes=10), now)
        fetch_only.append(time.perf_counter() - t)
    med, base = statistics.median(timings[1:]), statistics.median(fetch_only[1:])
    print(f"\nincremental 5m update, 9 symbols: median {med * 1000:.1f} ms "
          f"(max {max(timings[1:]) * 1000:.1f} ms); sim fetch alone {base * 1000:.1f} ms; "
          f"warehouse overhead x{med / base:.1f}")
    assert med < 0.200
