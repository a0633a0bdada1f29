"""Warm-up run of the sandbox worker before lockdown (trusted code).

Contract: ``warm_up()`` exercises the library paths strategy code commonly hits (polars rolling/ewm/
group_by_dynamic, named time zones, Arrow IPC, numpy, pydantic schemas, dataclasses) so that every
lazily imported module and lazily read data file is loaded while the worker can still read them.
After the uid drop and Landlock, a lazy import from a root-only interpreter directory would fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import statistics
import zoneinfo
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

ZONES = ("UTC", "Europe/Berlin", "Europe/London", "America/New_York", "Asia/Tokyo")


class _P(BaseModel):
    model_config = ConfigDict(frozen=True)
    fast: int = Field(default=5, ge=2, le=50)
    mode: Literal["a", "b"] = "a"
    thr: float = Field(default=0.5, json_schema_extra={"space": [0.1, 0.9]})


@dataclasses.dataclass(frozen=True)
class _D:
    x: float = 1.0


def _frame() -> pl.DataFrame:
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    ts = pl.datetime_range(start, start + dt.timedelta(hours=99), "1h", eager=True, time_unit="us")
    close = np.cumsum(np.linspace(-1.0, 1.0, 100)) + 100.0
    return pl.DataFrame({"ts": ts, "close": close, "volume": np.ones(100)})


def warm_up() -> None:
    """Run the common code paths once (results discarded)."""
    df = _frame()
    buf = io.BytesIO()
    df.write_ipc_stream(buf)
    df = pl.read_ipc_stream(io.BytesIO(buf.getvalue()))
    c = pl.col("close")
    out = df.with_columns(
        c.rolling_mean(5).alias("a"),
        c.rolling_std(5).alias("b"),
        c.ewm_mean(span=5).alias("e"),
        c.pct_change().alias("p"),
        c.diff().shift(1).alias("d"),
        c.rolling_max(3).alias("mx"),
        pl.when(c > c.shift(1)).then(pl.lit("enter")).otherwise(pl.lit("hold")).alias("w"),
        pl.col("ts").dt.convert_time_zone("Europe/Berlin").dt.hour().alias("h"),
    )
    out.group_by("h").agg(c.mean().alias("m"), c.len().alias("n")).sort("h")
    out.group_by_dynamic("ts", every="1d").agg(c.last())
    out.select(
        pl.col("ts")
        .dt.replace_time_zone(None)
        .dt.replace_time_zone("Europe/Berlin", ambiguous="earliest")
    )
    for z in ZONES:
        df["ts"].dt.convert_time_zone(z).to_list()[:2]
        zoneinfo.ZoneInfo(z)
    arr = out["close"].to_numpy().copy()
    arr[0] = 1.0
    np.convolve(arr, np.ones(3) / 3, mode="same")
    np.where(arr > arr.mean(), 1.0, 0.0)
    np.nan_to_num(np.log(np.abs(arr)), nan=0.0)
    pl.Series("x", arr).cum_sum().to_list()
    statistics.fmean(arr.tolist()[:10])
    _P().model_json_schema()
    _P(fast=7).model_dump(mode="json")
    dataclasses.asdict(_D())
    out.to_dicts()[:1]
    for obj in (arr, np.arange(3.0), out, out["close"], out.lazy(), pl.col("close")):
        str(obj), repr(obj), f"{obj}"  # numpy/polars import their printers lazily
    f"{arr[0]:.3f} {np.float64(1.5)!r} {dt.date(2024, 1, 1):%Y-%m-%d}"
