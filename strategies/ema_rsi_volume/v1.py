"""EMA 9/21 trend with RSI and volume filters, version 1 (designed for 5m bars).

Rules, per bar t (all from the project's indicator library, nothing after bar t):
- trend: ema_fast[t] > ema_slow[t] (EMA of close, span n, adjust=False, seeded with the first close);
- setup: trend and rsi_low <= RSI(14, Wilder)[t] <= rsi_high and volume_ratio(20)[t] >= volume_min
  (volume / mean volume of the last 20 bars including t);
- enter on the first bar of a setup (setup[t] and not setup[t-1]);
- exit on the first bar of: ema_fast < ema_slow, or RSI > rsi_exit (exhaustion);
- no signal before bar index ``max(slow, 20)``; stops are fixed fractions from the params;
- confidence: enter = min(1, volume_ratio / (2 * volume_min)), exit = 1, hold = 0;
- regime: the indicator library's regime label (null during its warm-up).

WARMUP_BARS = 1200: EMA (span <= 60) and Wilder RSI forget their seed as at most (59/61)^k and
(13/14)^k, i.e. < 1e-17 after 1200 bars; the volume mean and regime have finite memory (<= 113).
"""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from trading_brain.engine.indicators import atr, ema, regime, rsi, volume_ratio

STRATEGY_ID = "ema_rsi_volume"
VERSION = 1
WARMUP_BARS = 1200


class Params(BaseModel):
    """Tunable parameters and their search space."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fast: int = Field(9, ge=3, le=30)
    slow: int = Field(21, ge=10, le=60)
    rsi_low: float = Field(50.0, ge=30.0, le=60.0)
    rsi_high: float = Field(70.0, ge=60.0, le=85.0)
    rsi_exit: float = Field(78.0, ge=65.0, le=95.0)
    volume_min: float = Field(1.5, ge=1.0, le=4.0)
    stop_loss: float = Field(0.015, ge=0.003, le=0.1)
    take_profit: float = Field(0.03, ge=0.005, le=0.3)
    size: float = Field(0.1, ge=0.01, le=1.0)

    @model_validator(mode="after")
    def consistent(self) -> Params:
        """fast < slow and rsi_low < rsi_high < rsi_exit."""
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be < slow ({self.slow})")
        if not self.rsi_low < self.rsi_high < self.rsi_exit:
            raise ValueError("need rsi_low < rsi_high < rsi_exit")
        return self


def _edge(cond: pl.Expr) -> pl.Expr:
    """True on the first bar where ``cond`` holds (nulls count as False)."""
    now = cond.fill_null(False)
    return now & ~now.shift(1, fill_value=False)


def generate(bars: pl.DataFrame, params: Params) -> pl.DataFrame:
    """One row per bar: enter on a fresh filtered uptrend setup, exit on trend loss/exhaustion."""
    close = pl.col("close")
    feats = bars.with_columns(
        ema(close, params.fast).alias("ema_fast"),
        ema(close, params.slow).alias("ema_slow"),
        rsi(close, 14).alias("rsi"),
        volume_ratio(pl.col("volume"), 20).alias("vol_ratio"),
        regime(
            close, ema(close, 9), ema(close, 21), ema(close, 50),
            atr(pl.col("high"), pl.col("low"), close, 14),
        ).alias("regime"),
    )  # fmt: skip
    started = pl.int_range(pl.len()) >= max(params.slow, 20)
    trend = pl.col("ema_fast") > pl.col("ema_slow")
    setup = (
        trend
        & (pl.col("rsi") >= params.rsi_low)
        & (pl.col("rsi") <= params.rsi_high)
        & (pl.col("vol_ratio") >= params.volume_min)
    )
    leave = (pl.col("ema_fast") < pl.col("ema_slow")) | (pl.col("rsi") > params.rsi_exit)
    action = (
        pl.when(started & _edge(setup))
        .then(pl.lit("enter"))
        .when(started & _edge(leave))
        .then(pl.lit("exit"))
        .otherwise(pl.lit("hold"))
    )
    confidence = (
        pl.when(pl.col("action") == "enter")
        .then((pl.col("vol_ratio") / (2.0 * params.volume_min)).clip(upper_bound=1.0))
        .when(pl.col("action") == "exit")
        .then(1.0)
        .otherwise(0.0)
    )
    return (
        feats.with_columns(action.alias("action"))
        .with_columns(
            pl.lit(params.size).alias("size"),
            pl.lit(params.stop_loss).alias("stop_loss"),
            pl.lit(params.take_profit).alias("take_profit"),
            pl.lit("day").alias("intent"),
            confidence.alias("confidence"),
        )
        .select("action", "size", "stop_loss", "take_profit", "intent", "confidence", "regime")
    )
