"""Legit: polars rolling/ewm/group_by, a named time zone, regime labels, a lazy import in
generate."""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

STRATEGY_ID = "legit_polars"
VERSION = 2
WARMUP_BARS = 100


class Params(BaseModel):
    model_config = ConfigDict(frozen=True)

    span: int = Field(default=12, ge=2, le=200)
    window: int = Field(default=24, ge=2, le=500)
    session_start: int = Field(default=8, json_schema_extra={"space": [6, 7, 8, 9]})


def generate(bars: pl.DataFrame, params: Params) -> pl.DataFrame:
    import math
    from datetime import timedelta

    local = pl.col("ts").dt.convert_time_zone("Europe/Berlin")
    df = bars.with_columns(
        ema=pl.col("close").ewm_mean(span=params.span, adjust=False),
        vol=pl.col("close").pct_change().rolling_std(params.window),
        hour=local.dt.hour(),
        day=local.dt.date(),
    )
    daily = df.group_by("day").agg(pl.col("volume").sum().alias("day_volume"))
    df = df.join(daily, on="day", how="left").sort("ts")
    in_session = pl.col("hour") >= params.session_start
    up = pl.col("close") > pl.col("ema")
    action = (
        pl.when(in_session & up & ~up.shift(1).fill_null(True)).then(pl.lit("enter"))
        .when(~up & up.shift(1).fill_null(False)).then(pl.lit("exit"))
        .otherwise(pl.lit("hold"))
    )
    step = timedelta(minutes=5).total_seconds() / 300.0
    return df.select(
        pl.col("ts"),
        action.alias("action"),
        pl.lit(0.2 * step).alias("size"),
        (pl.col("vol").fill_null(0.01) * 2 + 0.001).clip(0.001, 0.5).alias("stop_loss"),
        pl.lit(math.e / 100).alias("take_profit"),
        pl.lit("day").alias("intent"),
        pl.when(up).then(0.7).otherwise(0.3).alias("confidence"),
        pl.when(pl.col("vol") > 0.002).then(pl.lit("volatile")).otherwise(pl.lit("calm"))
        .alias("regime"),
    )
