"""Hourly trend pullback with ATR-based stops, version 1 (expects 5m bars; resamples to 1h itself).

Hourly bars: the 5m bars are grouped by the hour they fall in (open = first, high = max,
low = min, close = last). The first hour is dropped when the history does not start on the hour
(it would be partial; its close still serves as the previous close of the next hour's true
range). An hour H becomes usable on the 5m bar that opens at H + 55 min (its last bar, i.e.
once the hour is complete) or, if that bar is missing, on the next bar after it; earlier bars never see it, so the strategy has no look-ahead. It assumes
5m input bars (``BAR_MINUTES``): on other timeframes the availability rule is wrong.

Rules, evaluated on the 5m bar where hour H becomes usable (all other bars are "hold"):
- uptrend: close_H > sma_trend_H (SMA of hourly closes over ``trend_len``) and sma_trend_H >
  sma_trend 5 hours earlier;
- enter when uptrend and the hour pulled back to the fast mean and closed above it:
  low_H <= sma_fast_H < close_H (sma_fast = SMA of hourly closes over ``fast_len``);
- exit on the first completed hour that closes below sma_trend;
- stops from the hourly ATR (simple mean of the true range over ``atr_len`` hours):
  stop_loss = sl_atr * ATR / close, take_profit = tp_atr * ATR / close, capped at 0.5 / 1.0
  (null while the ATR is not ready or zero).

Every hourly feature has finite memory, so WARMUP_BARS = 1500 5m bars (125 hours) is exact for
trend_len <= 100: one partial hour + 100 hours of SMA + 5 hours of slope < 125 hours.
"""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from trading_brain.engine.indicators import true_range

STRATEGY_ID = "trend_pullback"
VERSION = 1
WARMUP_BARS = 1500
BAR_MINUTES = 5
SLOPE_HOURS = 5


class Params(BaseModel):
    """Tunable parameters and their search space."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trend_len: int = Field(50, ge=20, le=100)
    fast_len: int = Field(20, ge=5, le=50)
    atr_len: int = Field(14, ge=5, le=30)
    sl_atr: float = Field(2.0, ge=0.5, le=5.0)
    tp_atr: float = Field(4.0, ge=1.0, le=10.0)
    size: float = Field(0.1, ge=0.01, le=1.0)

    @model_validator(mode="after")
    def fast_below_trend(self) -> Params:
        """The pullback mean must be shorter than the trend mean."""
        if self.fast_len >= self.trend_len:
            raise ValueError(f"fast_len ({self.fast_len}) must be < trend_len ({self.trend_len})")
        return self


def _hourly(bars: pl.DataFrame, params: Params) -> pl.DataFrame:
    hours = (
        bars.with_columns(pl.col("ts").dt.truncate("1h").alias("hour"))
        .group_by("hour", maintain_order=True)
        .agg(
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("ts").min().alias("first_ts"),
        )  # fmt: skip
        # the true range needs the previous close: a partial first hour still has the right close
        .with_columns(true_range(pl.col("high"), pl.col("low"), pl.col("close")).alias("tr"))
        .filter((pl.int_range(pl.len()) > 0) | (pl.col("first_ts") == pl.col("hour")))
    )
    close, trend = pl.col("close"), pl.col("close").rolling_mean(params.trend_len)
    fast = close.rolling_mean(params.fast_len)
    atr_h = pl.col("tr").rolling_mean(params.atr_len)
    uptrend = (close > trend) & (trend > trend.shift(SLOPE_HOURS))
    below = (close < trend).fill_null(False)
    return hours.select(
        (pl.col("hour") + pl.duration(minutes=60 - BAR_MINUTES)).alias("usable_from"),
        pl.col("hour").alias("h_hour"),
        (uptrend & (pl.col("low") <= fast) & (fast < close)).fill_null(False).alias("h_enter"),
        (below & ~below.shift(1, fill_value=False)).alias("h_exit"),
        uptrend.fill_null(False).alias("h_uptrend"),
        _stop(params.sl_atr * atr_h / close, 0.5).alias("h_sl"),
        _stop(params.tp_atr * atr_h / close, 1.0).alias("h_tp"),
    )


def _stop(dist: pl.Expr, cap: float) -> pl.Expr:
    return pl.when(dist > 0).then(dist.clip(upper_bound=cap))


def generate(bars: pl.DataFrame, params: Params) -> pl.DataFrame:
    """One row per 5m bar; decisions only on the bar where a completed hour becomes usable."""
    hourly = _hourly(bars, params)
    joined = bars.select("ts").join_asof(
        hourly, left_on="ts", right_on="usable_from", strategy="backward"
    )
    fresh = pl.col("h_hour").is_not_null() & pl.col("h_hour").ne_missing(pl.col("h_hour").shift(1))
    action = (
        pl.when(fresh & pl.col("h_enter"))
        .then(pl.lit("enter"))
        .when(fresh & pl.col("h_exit"))
        .then(pl.lit("exit"))
        .otherwise(pl.lit("hold"))
    )
    return joined.select(
        action.alias("action"),
        pl.lit(params.size).alias("size"),
        pl.col("h_sl").alias("stop_loss"),
        pl.col("h_tp").alias("take_profit"),
        pl.lit("swing").alias("intent"),
        pl.when(action == "enter").then(0.6).when(action == "exit").then(1.0).otherwise(0.0)
        .alias("confidence"),
        pl.when(pl.col("h_hour").is_null()).then(None)
        .when(pl.col("h_uptrend")).then(pl.lit("trend_up")).otherwise(pl.lit("no_trend"))
        .alias("regime"),
    )  # fmt: skip
