"""engine/indicators.py against independent implementations (vectorbt, pandas, hand loops)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from trading_brain.engine import indicators as ind
from trading_brain.engine.indicators import INDICATOR_COLUMNS, compute_indicators
from trading_brain_tests.conftest import require_shared

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "candles"
FLOATS = [c for c in INDICATOR_COLUMNS if c != "regime"]


def synthetic(symbols: int = 2, n: int = 600, seed: int = 7) -> pl.DataFrame:
    """Random-walk candles in CANDLE_SCHEMA; each symbol has a volatile stretch near the end."""
    rng = np.random.default_rng(seed)
    start = pl.datetime(2024, 1, 1, time_zone="UTC")
    ts = pl.datetime_range(start, start + pl.duration(minutes=5 * (n - 1)), "5m", eager=True)
    frames = []
    for i in range(symbols):
        vol = np.where(np.arange(n) > n - 80, 0.02, 0.003)
        close = 100.0 * (i + 1) * np.exp(np.cumsum(rng.normal(0, vol)))
        open_ = np.r_[close[0], close[:-1]]
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.003, n))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.003, n))
        volume = rng.uniform(1, 100, n)
        volume[5:40] = 0.0 if i == 0 else volume[5:40]  # a dead stretch for the zero-mean rule
        frames.append(
            pl.DataFrame({
                "symbol": f"S{i}/USD", "timeframe": "5m", "ts": ts.cast(pl.Datetime("us", "UTC")),
                "open": open_, "high": high, "low": low, "close": close, "volume": volume,
            })
        )  # fmt: skip
    return pl.concat(frames)


def real_btc(rows: int = 3000) -> pl.DataFrame:
    path = DATA / "binance_BTCUSDT_5m_2024H1.csv.gz"
    require_shared(path)
    df = pl.read_csv(path, n_rows=rows)
    return df.select(
        pl.lit("BTC/USDT").alias("symbol"), pl.lit("5m").alias("timeframe"),
        pl.col("timestamp").str.to_datetime(time_zone="UTC").cast(pl.Datetime("us", "UTC"))
        .alias("ts"),
        "open", "high", "low", "close", "volume",
    )  # fmt: skip


# ---- independent implementations -------------------------------------------------------------


def wilder_loop(x: list[float], n: int, offset: int) -> list[float]:
    """Textbook Wilder smoothing: SMA seed of x[offset:offset+n], then (prev*(n-1)+x)/n."""
    out = [math.nan] * len(x)
    if len(x) < offset + n:
        return out
    avg = sum(x[offset : offset + n]) / n
    out[offset + n - 1] = avg
    for t in range(offset + n, len(x)):
        avg = (avg * (n - 1) + x[t]) / n
        out[t] = avg
    return out


def rsi_loop(close: list[float], n: int = 14) -> list[float]:
    change = [0.0] + [close[t] - close[t - 1] for t in range(1, len(close))]
    gain = wilder_loop([max(c, 0.0) for c in change], n, 1)
    loss = wilder_loop([max(-c, 0.0) for c in change], n, 1)
    out = []
    for g, lo in zip(gain, loss, strict=True):
        if math.isnan(g):
            out.append(math.nan)
        elif lo == 0:
            out.append(50.0 if g == 0 else 100.0)
        else:
            out.append(100.0 - 100.0 / (1.0 + g / lo))
    return out


def atr_loop(high: list[float], low: list[float], close: list[float], n: int = 14) -> list[float]:
    tr = [high[0] - low[0]] + [
        max(high[t] - low[t], abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        for t in range(1, len(close))
    ]
    return wilder_loop(tr, n, 1)


def pandas_one(g: pd.DataFrame) -> pd.DataFrame:
    """The same indicators with pandas ewm/rolling (benchmark baseline and test oracle)."""
    c, h, lo, v = g["close"], g["high"], g["low"], g["volume"]
    out = pd.DataFrame(index=g.index)
    for n in (9, 21, 50):
        out[f"ema_{n}"] = c.ewm(span=n, adjust=False, min_periods=n).mean()
    out["sma_20"], out["sma_50"] = c.rolling(20).mean(), c.rolling(50).mean()

    def wilder(x: pd.Series, n: int) -> pd.Series:
        seeded = x.copy()
        seeded.iloc[: n + 1] = np.nan
        if len(x) > n:
            seeded.iloc[n] = x.iloc[1 : n + 1].mean()
        return seeded.ewm(alpha=1 / n, adjust=False).mean()

    d = c.diff()
    gain, loss = wilder(d.clip(lower=0), 14), wilder((-d).clip(lower=0), 14)
    rsi = 100 - 100 / (1 + gain / loss)
    rsi = rsi.where(loss != 0, np.where(gain == 0, 50.0, 100.0)).where(gain.notna())
    out["rsi_14"] = rsi
    fast, slow = c.ewm(span=12, adjust=False).mean(), c.ewm(span=26, adjust=False).mean()
    line = (fast - slow).where(np.arange(len(c)) >= 25)
    out["macd"] = line
    out["macd_signal"] = line.ewm(span=9, adjust=False, min_periods=9).mean()
    out["macd_hist"] = out["macd"] - out["macd_signal"]
    std = c.rolling(20).std(ddof=0)
    out["bb_upper"], out["bb_middle"] = out["sma_20"] + 2 * std, out["sma_20"]
    out["bb_lower"] = out["sma_20"] - 2 * std
    prev = c.shift(1)
    tr = pd.concat([h - lo, (h - prev).abs(), (lo - prev).abs()], axis=1).max(axis=1)
    out["atr_14"] = wilder(tr, 14)
    mean_v = v.rolling(20).mean()
    out["volume_ratio"] = (v / mean_v).where(mean_v > 0)
    atr_pct = out["atr_14"] / c
    base = atr_pct.rolling(ind.REGIME_VOL_WINDOW).mean()
    e9, e21, e50 = out["ema_9"], out["ema_21"], out["ema_50"]
    label = np.select(
        [atr_pct > ind.REGIME_VOL_MULT * base, (e9 > e21) & (e21 > e50) & (c > e50),
         (e9 < e21) & (e21 < e50) & (c < e50)],
        ["volatile", "trend_up", "trend_down"], default="range",
    )  # fmt: skip
    out["regime"] = pd.Series(label, index=g.index).where(base.notna() & e50.notna())
    return out


def pandas_indicators(df: pd.DataFrame) -> pd.DataFrame:
    """Group-wise pandas baseline over a multi-symbol candle frame (sorted by symbol, ts)."""
    df = df.sort_values(["symbol", "timeframe", "ts"]).reset_index(drop=True)
    parts = [pandas_one(g) for _, g in df.groupby(["symbol", "timeframe"], sort=True)]
    return pd.concat([df[["symbol", "timeframe", "ts"]], pd.concat(parts)], axis=1)


def assert_close(actual: pl.Series, expected: np.ndarray, rtol: float = 1e-9) -> None:
    a = actual.to_numpy().astype(float)
    e = np.asarray(expected, dtype=float)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=f"{actual.name}: null pattern")
    mask = ~np.isnan(e)
    np.testing.assert_allclose(a[mask], e[mask], rtol=rtol, atol=1e-9, err_msg=actual.name)


# ---- tests --------------------------------------------------------------------------------------


def on(values: list[float], fn: object) -> list[float | None]:
    """Apply an expression builder ``fn(pl.col("x"))`` to a one-column frame."""
    return pl.DataFrame({"x": values}).select(fn(pl.col("x"))).to_series().to_list()  # type: ignore[operator]


def test_ema_hand_checked_series_and_seed() -> None:
    got = on([1.0, 2, 3, 4, 5], lambda x: ind.ema(x, 3))
    assert got == [1.0, 1.5, 2.25, 3.125, 4.0625]


def test_rsi_hand_checked_small_series() -> None:
    # changes +1 +1 -1 +2, n=2: seed (1+1)/2 / 0 -> 100; then 0.5/0.5 -> 50; then 1.25/0.25 -> 83.33
    got = on([1.0, 2, 3, 2, 4], lambda x: ind.rsi(x, 2))
    assert got[:2] == [None, None]
    assert got[2] == 100.0 and got[3] == pytest.approx(50.0, abs=1e-12)
    assert got[4] == pytest.approx(100 - 100 / 6, abs=1e-12)


def test_rsi_flat_series_is_50_not_nan() -> None:
    got = on([5.0] * 20, lambda x: ind.rsi(x, 14))
    assert got == [None] * 14 + [50.0] * 6


def test_single_series_helpers_match_loops_on_real_data() -> None:
    bars = real_btc(2000)
    c, h, lo = (bars[x].to_list() for x in ("close", "high", "low"))
    out = bars.select(
        ind.rsi(pl.col("close"), 14).alias("rsi"),
        ind.atr(pl.col("high"), pl.col("low"), pl.col("close"), 14).alias("atr"),
    )
    assert_close(out["rsi"], np.array(rsi_loop(c)))
    assert_close(out["atr"], np.array(atr_loop(h, lo, c)))


def test_matches_vectorbt_where_conventions_match() -> None:
    import vectorbt as vbt  # slow import (~5 s): only when this test runs

    bars = real_btc(3000)
    got = compute_indicators(bars)
    close = bars["close"].to_pandas()
    for n in (9, 21, 50):
        expected = vbt.MA.run(close, n, ewm=True, adjust=False).ma.to_numpy()
        assert_close(got[f"ema_{n}"], expected)
    for n in (20, 50):
        assert_close(got[f"sma_{n}"], vbt.MA.run(close, n, ewm=False).ma.to_numpy())
    macd = vbt.MACD.run(close, 12, 26, 9, macd_ewm=True, signal_ewm=True, adjust=False)
    assert_close(got["macd"], macd.macd.to_numpy())
    assert_close(got["macd_signal"], macd.signal.to_numpy())
    assert_close(got["macd_hist"], (macd.macd - macd.signal).to_numpy())
    bb = vbt.BBANDS.run(close, 20, alpha=2.0, ewm=False, ddof=0)
    assert_close(got["bb_upper"], bb.upper.to_numpy())
    assert_close(got["bb_middle"], bb.middle.to_numpy())
    assert_close(got["bb_lower"], bb.lower.to_numpy())


def test_matches_pandas_multi_symbol_including_regime() -> None:
    candles = synthetic(symbols=3, n=700)
    got = compute_indicators(candles.sample(fraction=1.0, shuffle=True, seed=1))  # unsorted input
    expected = pandas_indicators(candles.to_pandas())
    assert got.columns == ["symbol", "timeframe", "ts", *INDICATOR_COLUMNS]
    assert got.select("symbol", "ts").rows() == candles.select("symbol", "ts").rows()
    for col in FLOATS:
        assert_close(got[col], expected[col].to_numpy())
    exp_regime = [x if isinstance(x, str) else None for x in expected["regime"].tolist()]
    assert got["regime"].to_list() == exp_regime
    assert set(got["regime"].drop_nulls().unique()) == set(ind.REGIMES)  # all four occur


def test_symbols_are_independent() -> None:
    candles = synthetic(symbols=2, n=400)
    both = compute_indicators(candles)
    alone = compute_indicators(candles.filter(pl.col("symbol") == "S1/USD"))
    assert both.filter(pl.col("symbol") == "S1/USD").equals(alone)


def test_warmup_rows_are_null_and_nothing_is_nan_or_inf() -> None:
    got = compute_indicators(synthetic(symbols=2, n=300))
    first = {"ema_9": 8, "ema_21": 20, "ema_50": 49, "sma_20": 19, "sma_50": 49, "rsi_14": 14,
             "macd": 25, "macd_signal": 33, "macd_hist": 33, "bb_upper": 19, "atr_14": 14,
             "regime": 113}  # fmt: skip
    one = got.filter(pl.col("symbol") == "S1/USD")
    for col, row in first.items():
        s = one[col]
        assert s.head(row).null_count() == row, col
        assert s[row] is not None, col
    for col in FLOATS:
        assert not got[col].drop_nulls().is_nan().any(), col
        assert not got[col].drop_nulls().is_infinite().any(), col


def test_zero_volume_gives_null_ratio_not_inf() -> None:
    got = compute_indicators(synthetic(symbols=1, n=200))
    ratio = got["volume_ratio"]
    assert ratio.slice(24, 16).null_count() == 16  # the 20-bar mean is 0 inside the dead stretch
    assert ratio.slice(80, 50).null_count() == 0


def test_missing_column_and_empty_input() -> None:
    with pytest.raises(ValueError, match="missing column"):
        compute_indicators(synthetic(1, 50).drop("volume"))
    empty = compute_indicators(synthetic(1, 50).head(0))
    assert empty.height == 0 and empty.columns == ["symbol", "timeframe", "ts", *INDICATOR_COLUMNS]
