"""Shared test helpers: real candle loading and a small local EMA-cross signal generator."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from trading_brain_tests.conftest import require_shared

_FIVE_MIN = timedelta(minutes=5)
DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "candles"


def load_candles(name: str, rows: int | None = None) -> pl.DataFrame:
    """Bars (ts UTC, OHLCV) of a shared candle file; skip the test when the data is absent."""
    path = require_shared((DATA / name).resolve(), "shared candle data")
    df = pl.read_csv(path, n_rows=rows)
    return df.select(
        pl.col("timestamp").str.to_datetime(time_zone="UTC").dt.cast_time_unit("us").alias("ts"),
        *[pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")],
    )


def ema_cross(
    bars: pl.DataFrame,
    fast: int = 12,
    slow: int = 26,
    size: float = 0.1,
    stop_loss: float | None = 0.02,
    take_profit: float | None = 0.04,
) -> pl.DataFrame:
    """Enter when EMA(fast) crosses above EMA(slow), exit on the opposite cross; hold before
    ``slow``.

    EMAs use span n, adjust=False, seeded with the first close.
    """
    close = bars["close"]
    f = close.ewm_mean(span=fast, adjust=False).to_numpy()
    s = close.ewm_mean(span=slow, adjust=False).to_numpy()
    n = len(f)
    up = np.zeros(n, dtype=bool)
    dn = np.zeros(n, dtype=bool)
    up[1:] = (f[1:] > s[1:]) & (f[:-1] <= s[:-1])
    dn[1:] = (f[1:] < s[1:]) & (f[:-1] >= s[:-1])
    up[:slow] = False
    dn[:slow] = False
    return pl.DataFrame({"ts": bars["ts"], "up": up, "dn": dn}).select(
        "ts",
        pl.when("up")
        .then(pl.lit("enter"))
        .when("dn")
        .then(pl.lit("exit"))
        .otherwise(pl.lit("hold"))
        .alias("action"),
        pl.lit(size, pl.Float64).alias("size"),
        pl.lit(stop_loss, pl.Float64).alias("stop_loss"),
        pl.lit(take_profit, pl.Float64).alias("take_profit"),
        pl.lit("swing").alias("intent"),
        pl.lit(1.0).alias("confidence"),
        pl.lit(None, pl.String).alias("regime"),
    )


def frame(rows: list[tuple[float, float, float, float]], start: str = "2024-01-01") -> pl.DataFrame:
    """Hand-built 5m bars from (open, high, low, close) tuples."""
    t0 = pl.Series([start]).str.to_datetime(time_zone="UTC").dt.cast_time_unit("us")[0]
    o, h, lo, c = ([float(v) for v in x] for x in zip(*rows, strict=True))
    return pl.DataFrame(
        {
            "ts": [t0 + i * _FIVE_MIN for i in range(len(rows))],
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": [1.0] * len(rows),
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )


def signals(
    bars: pl.DataFrame,
    actions: dict[int, str],
    size: float = 1.0,
    stop_loss: float | None = None,
    take_profit: float | None = None,
) -> pl.DataFrame:
    """Signals with ``actions`` (bar index -> enter/exit) and hold elsewhere."""
    n = bars.height
    return pl.DataFrame(
        {
            "ts": bars["ts"],
            "action": [actions.get(i, "hold") for i in range(n)],
            "size": [size] * n,
            "stop_loss": pl.Series([stop_loss] * n, dtype=pl.Float64),
            "take_profit": pl.Series([take_profit] * n, dtype=pl.Float64),
            "intent": ["day"] * n,
            "confidence": [1.0] * n,
            "regime": pl.Series([None] * n, dtype=pl.String),
        }
    )


def assert_same_trades(a: pl.DataFrame, b: pl.DataFrame, rel: float = 1e-9) -> None:
    """Same trades (times, reasons, symbols exactly; prices, quantity, pnl within ``rel``)."""
    assert a.height == b.height, f"{a.height} trades vs {b.height}"
    for col in ("symbol", "entry_time", "exit_time", "exit_reason"):
        assert a[col].to_list() == b[col].to_list(), col
    for col in ("entry_price", "exit_price", "quantity", "pnl", "fees"):
        x, y = a[col].to_numpy(), b[col].to_numpy()
        np.testing.assert_allclose(x, y, rtol=rel, atol=1e-9, err_msg=col)
