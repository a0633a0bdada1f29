"""Benchmarks of the sim market: a year of 1-minute data for 9 symbols, and the warm live fetch.

Run: .venv/bin/python -m pytest -o addopts='' -s trading_brain_tests/benchmarks/bench_sim.py
Baseline: drawing as many normal variates with numpy as the model draws random words per day, in
the same process, so the printed ratio says what the model costs on top of its raw randomness.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.sim import SimMarket
from trading_brain.adapters.sim.intraday import RAW_PER_DAY
from trading_brain.domain.instruments import DEFAULT_SYMBOLS
from trading_brain.domain.timeframes import floor_time

YEAR_END = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_START = YEAR_END - timedelta(days=365)


def _baseline_seconds(days: int) -> float:
    t = time.perf_counter()
    g = np.random.default_rng(0)
    for _ in range(days):
        g.standard_normal(RAW_PER_DAY)
    return time.perf_counter() - t


def test_one_year_of_minutes_for_nine_symbols() -> None:
    days = 365 * len(DEFAULT_SYMBOLS)
    base = _baseline_seconds(days)
    market = SimMarket(DEFAULT_SYMBOLS, seed=1, clock=SimClock(YEAR_END))
    t = time.perf_counter()
    rows = sum(market.candles(s, "1m", YEAR_START, YEAR_END).height for s in DEFAULT_SYMBOLS)
    elapsed = time.perf_counter() - t
    assert rows == 365 * 1440 * len(DEFAULT_SYMBOLS)
    hourly = SimMarket(DEFAULT_SYMBOLS, seed=2, clock=SimClock(YEAR_END))
    t = time.perf_counter()
    for s in DEFAULT_SYMBOLS:
        hourly.candles(s, "1h", YEAR_START, YEAR_END)
    elapsed_1h = time.perf_counter() - t
    print(
        f"\n[bench_sim] 1y x 9 symbols: 1m frames {elapsed:.2f} s ({rows:,} rows, "
        f"{elapsed / days * 1e3:.2f} ms/symbol-day), 1h frames {elapsed_1h:.2f} s; "
        f"numpy baseline (same draw count) {base:.2f} s, ratio {elapsed / base:.1f}x"
    )
    assert elapsed < 20.0, "a year of 1m data for 9 symbols should take seconds, not minutes"


def test_warm_incremental_fetch_of_the_last_three_5m_bars() -> None:
    start = datetime(2026, 3, 14, 10, 0, 7, tzinfo=UTC)
    clock = SimClock(start)
    market = SimMarket(DEFAULT_SYMBOLS, seed=3, clock=clock)

    def scan() -> float:
        newest = floor_time(clock.now(), "5m") - timedelta(minutes=5)
        t = time.perf_counter()
        for s in DEFAULT_SYMBOLS:
            df = market.candles(s, "5m", newest - timedelta(minutes=10), clock.now())
            assert df.height == 3
        return time.perf_counter() - t

    cold = scan()
    warm = []
    for _ in range(100):
        clock.advance(timedelta(minutes=5))
        warm.append(scan())
    clock.set(datetime(2026, 3, 15, 0, 0, 7, tzinfo=UTC))
    new_day = scan()  # the first scan of a new UTC day generates that day for every symbol
    median, worst = statistics.median(warm), max(warm)
    print(
        f"\n[bench_sim] last 3 closed 5m bars x 9 symbols: cold {cold * 1e3:.1f} ms, "
        f"warm median {median * 1e3:.2f} ms / max {worst * 1e3:.2f} ms, "
        f"first scan of a new day {new_day * 1e3:.1f} ms"
    )
    assert median < 0.1 and new_day < 0.5
