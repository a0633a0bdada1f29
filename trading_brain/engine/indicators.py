"""The indicator library: vectorised polars expressions plus the per-symbol ``indicators`` table.

This module is also imported by strategy code running in the sandbox, so it imports only
``polars``, ``numpy`` and ``math`` (never another project module) and has no side effects.

Expression helpers work on ONE symbol's bars sorted by ``ts`` (use them inside
``df.with_columns(...)``; wrap in ``.over(...)`` yourself for multi-symbol frames):

- ``ema(x, n)``: exponential mean with span ``n`` (alpha = 2/(n+1)), ``adjust=False``, seeded with
  the first value: ``e[0] = x[0]``, ``e[t] = e[t-1] + alpha * (x[t] - e[t-1])``. Values exist from
  row 0 (no warm-up mask); the seed's influence decays as ``(1-alpha)^t``.
- ``sma(x, n)``: simple rolling mean; null for the first ``n-1`` rows.
- ``wilder_mean(x, n, offset)``: Wilder smoothing (alpha = 1/n) seeded with the simple mean of the
  first ``n`` values after ``offset`` leading rows (TA-Lib convention); first value at row
  ``offset + n - 1``.
- ``rsi(close, n=14)``: Wilder RSI over close-to-close changes, first value at row ``n``.
  ``avg_loss == 0`` gives 100 (or 50 when ``avg_gain`` is 0 too), so it is never NaN.
- ``true_range(h, l, c)`` (row 0: high - low) and ``atr(h, l, c, n=14)``: Wilder mean of the true
  range of rows 1..n, first value at row ``n`` (TA-Lib convention).
- ``macd(close, 12, 26, 9)``: line = ema(fast) - ema(slow), null before row ``slow-1``; signal =
  ema(span 9) of the line seeded with its first value, null for its first 8 values (row 33);
  hist = line - signal. Same convention as ``vbt.MACD(macd_ewm=True, signal_ewm=True,
  adjust=False)``.
- ``bollinger(close, 20, 2.0)``: sma ± k * rolling POPULATION std (ddof=0, as TA-Lib and vbt).
- ``volume_ratio(volume, 20)``: volume / rolling mean of the last 20 volumes (current bar
  included); null when that mean is 0.

``compute_indicators(candles)`` takes a multi-symbol candle frame (``domain.candles.CANDLE_SCHEMA``)
and returns per (symbol, timeframe, ts) exactly ``INDICATOR_COLUMNS`` (the ``indicators`` table of
migration 0001). Warm-up rows are null (EMA columns are masked for their first ``n-1`` rows), and
every float is finite or null, never NaN/inf.

Regime rule (``regime`` column), evaluated per bar, first match wins:

1. ``"volatile"``: atr_14/close > ``REGIME_VOL_MULT`` (1.5) x its mean over the last
   ``REGIME_VOL_WINDOW`` (100) bars;
2. ``"trend_up"``: ema_9 > ema_21 > ema_50 and close > ema_50;
3. ``"trend_down"``: ema_9 < ema_21 < ema_50 and close < ema_50;
4. ``"range"``: otherwise. Null while any input is null (first 113 rows of a symbol).
"""

from __future__ import annotations

import polars as pl

KEY = ("symbol", "timeframe", "ts")
INDICATOR_COLUMNS = (
    "ema_9", "ema_21", "ema_50", "sma_20", "sma_50", "rsi_14", "macd", "macd_signal",
    "macd_hist", "bb_upper", "bb_middle", "bb_lower", "atr_14", "volume_ratio", "regime",
)  # fmt: skip
REGIMES = ("trend_up", "trend_down", "range", "volatile")
REGIME_VOL_WINDOW = 100
REGIME_VOL_MULT = 1.5
_INPUT = ("symbol", "timeframe", "ts", "high", "low", "close", "volume")


def _row() -> pl.Expr:
    return pl.int_range(pl.len())


def ema(x: pl.Expr, n: int) -> pl.Expr:
    """EMA, span ``n``, adjust=False, seeded with the first value (no warm-up mask)."""
    return x.ewm_mean(span=n, adjust=False)


def sma(x: pl.Expr, n: int) -> pl.Expr:
    """Simple rolling mean over ``n`` rows; null for the first ``n-1`` rows."""
    return x.rolling_mean(n)


def wilder_mean(x: pl.Expr, n: int, offset: int = 0) -> pl.Expr:
    """Wilder smoothing (alpha 1/n) seeded with the mean of rows ``offset..offset+n-1``."""
    seed_row = offset + n - 1
    seeded = (
        pl.when(_row() > seed_row)
        .then(x)
        .when(_row() == seed_row)
        .then(x.slice(offset, n).mean())
        .otherwise(None)
    )
    return seeded.ewm_mean(alpha=1.0 / n, adjust=False)


def rsi(close: pl.Expr, n: int = 14) -> pl.Expr:
    """Wilder RSI in [0, 100]; first value at row ``n``; never NaN."""
    change = close.diff()
    gain = wilder_mean(change.clip(lower_bound=0.0), n, offset=1)
    loss = wilder_mean((-change).clip(lower_bound=0.0), n, offset=1)
    return (
        pl.when(loss == 0)
        .then(pl.when(gain == 0).then(50.0).otherwise(100.0))
        .otherwise(100.0 - 100.0 / (1.0 + gain / loss))
    )


def true_range(high: pl.Expr, low: pl.Expr, close: pl.Expr) -> pl.Expr:
    """max(high-low, |high-prev close|, |low-prev close|); high-low on the first row."""
    prev = close.shift(1)
    return pl.max_horizontal(high - low, (high - prev).abs(), (low - prev).abs())


def atr(high: pl.Expr, low: pl.Expr, close: pl.Expr, n: int = 14) -> pl.Expr:
    """Wilder ATR over the true ranges of rows 1..; first value at row ``n``."""
    return wilder_mean(true_range(high, low, close), n, offset=1)


def macd(
    close: pl.Expr, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(line, signal, hist); line from row ``slow-1``, signal/hist from row ``slow+signal-2``."""
    line = pl.when(_row() >= slow - 1).then(ema(close, fast) - ema(close, slow))
    sig = line.ewm_mean(span=signal, adjust=False, min_samples=signal)
    return line, sig, line - sig


def bollinger(close: pl.Expr, n: int = 20, k: float = 2.0) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(upper, middle, lower) = sma ± k * population std (ddof=0) over ``n`` rows."""
    mid = sma(close, n)
    std = close.rolling_std(n, ddof=0)
    return mid + k * std, mid, mid - k * std


def volume_ratio(volume: pl.Expr, n: int = 20) -> pl.Expr:
    """volume / mean(volume over the last ``n`` rows incl. this one); null if that mean is 0."""
    mean = volume.rolling_mean(n)
    return pl.when(mean > 0).then(volume / mean)


def regime(
    close: pl.Expr, ema_9: pl.Expr, ema_21: pl.Expr, ema_50: pl.Expr, atr_14: pl.Expr
) -> pl.Expr:
    """Regime label per the rule in the module docstring (null while inputs are null)."""
    atr_pct = atr_14 / close
    base = atr_pct.rolling_mean(REGIME_VOL_WINDOW)
    ready = base.is_not_null() & ema_50.is_not_null()
    up = (ema_9 > ema_21) & (ema_21 > ema_50) & (close > ema_50)
    down = (ema_9 < ema_21) & (ema_21 < ema_50) & (close < ema_50)
    return (
        pl.when(~ready)
        .then(pl.lit(None, pl.String))
        .when(atr_pct > REGIME_VOL_MULT * base)
        .then(pl.lit("volatile"))
        .when(up)
        .then(pl.lit("trend_up"))
        .when(down)
        .then(pl.lit("trend_down"))
        .otherwise(pl.lit("range"))
    )


def _masked_ema(x: pl.Expr, n: int) -> pl.Expr:
    return pl.when(_row() >= n - 1).then(ema(x, n))


def _one_series(lf: pl.LazyFrame) -> pl.LazyFrame:
    c, h, lo, v = pl.col("close"), pl.col("high"), pl.col("low"), pl.col("volume")
    line, sig, hist = macd(c)
    upper, mid, lower = bollinger(c)
    lf = lf.with_columns(
        _masked_ema(c, 9).alias("ema_9"),
        _masked_ema(c, 21).alias("ema_21"),
        _masked_ema(c, 50).alias("ema_50"),
        mid.alias("sma_20"),
        sma(c, 50).alias("sma_50"),
        rsi(c).alias("rsi_14"),
        line.alias("macd"),
        sig.alias("macd_signal"),
        hist.alias("macd_hist"),
        upper.alias("bb_upper"),
        mid.alias("bb_middle"),
        lower.alias("bb_lower"),
        atr(h, lo, c).alias("atr_14"),
        volume_ratio(v).alias("volume_ratio"),
    )
    floats = [pl.col(k) for k in INDICATOR_COLUMNS if k != "regime"]
    lf = lf.with_columns([pl.when(f.is_finite()).then(f).name.keep() for f in floats])
    return lf.with_columns(
        regime(c, pl.col("ema_9"), pl.col("ema_21"), pl.col("ema_50"), pl.col("atr_14")).alias(
            "regime"
        )
    ).select([*KEY, *INDICATOR_COLUMNS])


def _empty() -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {
        "symbol": pl.String(), "timeframe": pl.String(), "ts": pl.Datetime("us", "UTC"),
    }  # fmt: skip
    schema.update({k: pl.Float64() for k in INDICATOR_COLUMNS if k != "regime"})
    schema["regime"] = pl.String()
    return pl.DataFrame(schema=schema)


def compute_indicators(candles: pl.DataFrame) -> pl.DataFrame:
    """Indicators per (symbol, timeframe, ts) for a multi-symbol candle frame.

    Each (symbol, timeframe) series is computed independently on its rows sorted by ``ts``.
    Raises ValueError when a required candle column is missing (callers map it to DataError).
    """
    missing = [col for col in _INPUT if col not in candles.columns]
    if missing:
        raise ValueError(f"candles frame is missing column(s): {', '.join(missing)}")
    if candles.height == 0:
        return _empty()
    frame = candles.select(
        pl.col("symbol"), pl.col("timeframe"), pl.col("ts"),
        *[pl.col(x).cast(pl.Float64) for x in ("high", "low", "close", "volume")],
    )  # fmt: skip
    parts = frame.partition_by(["symbol", "timeframe"], maintain_order=True)
    parts.sort(key=lambda p: (p["symbol"][0], p["timeframe"][0]))
    parts = [p if p["ts"].is_sorted() else p.sort("ts") for p in parts]
    out = pl.collect_all([_one_series(p.lazy()) for p in parts], engine="in-memory")
    return pl.concat(out, how="vertical")
