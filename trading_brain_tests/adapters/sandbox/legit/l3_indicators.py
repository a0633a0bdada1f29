"""Legit: the project's indicator library (rsi, atr, ema) inside the sandbox."""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from trading_brain.engine.indicators import atr, ema, rsi

STRATEGY_ID = "legit_indicators"
VERSION = 1
WARMUP_BARS = 200


class Params(BaseModel):
    model_config = ConfigDict(frozen=True)

    rsi_n: int = Field(default=14, ge=2, le=50)
    oversold: float = Field(default=30.0, ge=5.0, le=50.0)
    overbought: float = Field(default=70.0, ge=50.0, le=95.0)


def generate(bars: pl.DataFrame, params: Params) -> pl.DataFrame:
    r = rsi(pl.col("close"), params.rsi_n)
    a = atr(pl.col("high"), pl.col("low"), pl.col("close"), 14)
    trend = pl.col("close") > ema(pl.col("close"), 50)
    action = (
        pl.when(trend & (r < params.oversold)).then(pl.lit("enter"))
        .when(r > params.overbought).then(pl.lit("exit"))
        .otherwise(pl.lit("hold"))
    )
    stop = (2 * a / pl.col("close")).clip(0.001, 0.2)
    return bars.select(
        action.alias("action"),
        pl.lit(0.5).alias("size"),
        stop.fill_null(0.02).alias("stop_loss"),
        pl.lit(None, pl.Float64).alias("take_profit"),
        pl.lit("swing").alias("intent"),
        (r.fill_null(50.0) / 100.0).alias("confidence"),
    )
