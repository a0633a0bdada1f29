"""Benchmark: compute_indicators on 9 symbols x 1 year of 5m bars vs a pandas groupby baseline.

Run: .venv/bin/python -m pytest -o addopts='' -s trading_brain_tests/benchmarks/bench_indicators.py
Target: < 1 s for ~946k rows (best of 5), and faster than the same indicators computed with
pandas ewm/rolling per group in the same process; both results must agree.
"""

from __future__ import annotations

import os
import time

import numpy as np
import polars as pl

from trading_brain.engine.indicators import INDICATOR_COLUMNS, compute_indicators
from trading_brain_tests.engine.test_indicators import pandas_indicators

SYMBOLS = 9
BARS = 365 * 288  # one year of 5m bars


def year_of_5m(seed: int = 11) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = pl.datetime(2024, 1, 1, time_zone="UTC")
    ts = pl.datetime_range(start, start + pl.duration(minutes=5 * (BARS - 1)), "5m", eager=True)
    ts = ts.cast(pl.Datetime("us", "UTC"))
    frames = []
    for i in range(SYMBOLS):
        vol = 0.002 * np.exp(np.cumsum(rng.normal(0, 0.02, BARS)).clip(-1.5, 1.5))
        close = 100.0 * (i + 1) * np.exp(np.cumsum(rng.normal(0, vol)))
        open_ = np.r_[close[0], close[:-1]]
        frames.append(pl.DataFrame({
            "symbol": f"SYM{i}/USD", "timeframe": "5m", "ts": ts, "open": open_,
            "high": np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, BARS)),
            "low": np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, BARS)),
            "close": close, "volume": rng.uniform(1, 100, BARS),
        }))  # fmt: skip
    return pl.concat(frames)


def best_of(n: int, fn) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def test_bench_compute_indicators_vs_pandas() -> None:
    candles = year_of_5m()
    polars_s, got = best_of(5, lambda: compute_indicators(candles))
    frame = candles.to_pandas()
    pandas_s, expected = best_of(1, lambda: pandas_indicators(frame))
    print(
        f"\nindicators: {candles.height:,} rows ({SYMBOLS} symbols x {BARS:,} 5m bars): "
        f"polars {polars_s:.3f} s (best of 5), pandas groupby {pandas_s:.3f} s, "
        f"speed-up x{pandas_s / polars_s:.1f}; load average {os.getloadavg()[0]:.1f}"
    )
    # agreement, scaled by the price level: pandas' running rolling std drifts ~2e-9 relative over a
    # year (polars matches a direct numpy window there), and MACD crosses zero.
    scale = np.maximum(candles.sort("symbol", "timeframe", "ts")["close"].to_numpy(), 1.0)
    for col in INDICATOR_COLUMNS:
        if col == "regime":
            exp = [x if isinstance(x, str) else None for x in expected[col].tolist()]
            agree = np.mean(
                np.array(got[col].to_list(), dtype=object) == np.array(exp, dtype=object)
            )
            assert agree > 0.9999, f"regime agrees on {agree:.6f} of rows"
            continue
        a, e = got[col].to_numpy().astype(float), expected[col].to_numpy().astype(float)
        assert np.array_equal(np.isnan(a), np.isnan(e)), col
        m = ~np.isnan(e)
        err = np.abs(a[m] - e[m]) / np.maximum(np.abs(e[m]), scale[m])
        assert err.max() < 1e-8, f"{col}: max scaled difference {err.max():.2e}"
    assert polars_s < 1.0, f"compute_indicators took {polars_s:.3f} s (target < 1 s)"
    assert pandas_s / polars_s > 1.5, f"speed-up only x{pandas_s / polars_s:.2f}"
