"""The candle frame contract shared by every market adapter, the store and the engines.

A candle frame is a ``polars.DataFrame`` with exactly the columns of ``CANDLE_SCHEMA``:
``symbol`` (e.g. ``"BTC/USD"``), ``timeframe`` (``"5m"|"1h"|"1d"``), ``ts`` (bar open time, UTC,
microseconds) and float64 ``open, high, low, close, volume``. Frames are keyed by
(symbol, timeframe, ts) and sorted by that key. A strategy sees the per-symbol view
``BARS_COLUMNS`` (``ts, open, high, low, close, volume``).
"""

from __future__ import annotations

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")

CANDLE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "timeframe": pl.String(),
    "ts": UTC_TS,
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}
CANDLE_KEY = ("symbol", "timeframe", "ts")
OHLCV = ("open", "high", "low", "close", "volume")
BARS_COLUMNS = ("ts", *OHLCV)


def empty_candles() -> pl.DataFrame:
    """An empty frame with the candle schema."""
    return pl.DataFrame(schema=CANDLE_SCHEMA)


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Select and cast ``df`` to ``CANDLE_SCHEMA`` and sort it by key (no validation)."""
    return df.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()]).sort(list(CANDLE_KEY))
