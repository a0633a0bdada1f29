"""EMA crossover, version 1: the reference strategy (any timeframe; shipped for 5m).

Rules (exactly):
- ema_fast / ema_slow: EMA of close with span n, adjust=False, seeded with the first close;
- enter long on bar t when ema_fast[t] > ema_slow[t] and ema_fast[t-1] <= ema_slow[t-1];
- exit on the opposite cross: ema_fast[t] < ema_slow[t] and ema_fast[t-1] >= ema_slow[t-1];
- no signal before bar index ``slow`` (those rows are "hold");
- every row carries size, stop_loss and take_profit from the params; intent "swing";
  confidence 1.0 on enter/exit rows, 0.0 on hold rows.

WARMUP_BARS: the seeded EMA forgets its seed as (1 - 2/(slow+1))^k; with slow <= 100 (the
space's upper bound) and 1200 bars that is < 4e-11 of the seed's error, so a window of
WARMUP_BARS bars reproduces the full-history decision (floats to ~1e-9 relative).
"""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from trading_brain.engine.indicators import ema

STRATEGY_ID = "ema_cross"
VERSION = 1
WARMUP_BARS = 1200


class Params(BaseModel):
    """Tunable parameters and their search space."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fast: int = Field(9, ge=2, le=50)
    slow: int = Field(21, ge=5, le=100)
    stop_loss: float = Field(0.02, ge=0.005, le=0.1)
    take_profit: float = Field(0.04, ge=0.005, le=0.3)
    size: float = Field(0.1, ge=0.01, le=1.0)

    @model_validator(mode="after")
    def fast_below_slow(self) -> Params:
        """The fast EMA must be shorter than the slow one."""
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be < slow ({self.slow})")
        return self


def generate(bars: pl.DataFrame, params: Params) -> pl.DataFrame:
    """One row per bar: enter on the up-cross, exit on the down-cross, else hold."""
    fast = ema(pl.col("close"), params.fast)
    slow = ema(pl.col("close"), params.slow)
    fast_prev, slow_prev = fast.shift(1), slow.shift(1)
    started = pl.int_range(pl.len()) >= params.slow
    action = (
        pl.when(started & (fast > slow) & (fast_prev <= slow_prev))
        .then(pl.lit("enter"))
        .when(started & (fast < slow) & (fast_prev >= slow_prev))
        .then(pl.lit("exit"))
        .otherwise(pl.lit("hold"))
    )
    return bars.select(action.alias("action")).with_columns(
        pl.lit(params.size).alias("size"),
        pl.lit(params.stop_loss).alias("stop_loss"),
        pl.lit(params.take_profit).alias("take_profit"),
        pl.lit("swing").alias("intent"),
        pl.when(pl.col("action") == "hold").then(0.0).otherwise(1.0).alias("confidence"),
    )
