"""Legit: dataclasses, typing, collections, functools, itertools, statistics, math, numpy item
assignment."""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from functools import reduce
from itertools import accumulate
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

STRATEGY_ID = "legit_numpy"
VERSION = 1
WARMUP_BARS = 40


class Params(BaseModel):
    model_config = ConfigDict(frozen=True)

    lookback: int = Field(default=20, ge=5, le=100)
    band: float = Field(default=1.0, ge=0.1, le=3.0)
    intent: Literal["day", "swing"] = "swing"


@dataclass(frozen=True)
class Band:
    lo: float
    hi: float
    notes: list[str] = field(default_factory=list)


def _zscores(x: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros_like(x)
    window: deque[float] = deque(maxlen=n)
    for i, v in enumerate(x):
        window.append(float(v))
        if len(window) == n:
            sd = statistics.pstdev(window)
            out[i] = 0.0 if sd == 0 else (v - statistics.fmean(window)) / sd
    return out


def generate(bars: pl.DataFrame, params: Params) -> pl.DataFrame:
    close = bars["close"].to_numpy()
    z = _zscores(close, params.lookback)
    band = Band(-params.band, params.band)
    action = np.array(["hold"] * len(close), dtype="<U5")
    action[z < band.lo] = "enter"
    action[z > band.hi] = "exit"
    total = reduce(lambda a, b: a + b, [1.0, 2.0, 3.0])
    steps = list(accumulate(range(4)))
    conf = np.clip(np.abs(z) / (total + steps[-1]), 0.0, 1.0)
    conf[0] = 0.0
    label = f"z0={str(np.round(z[:1], 1))} {band.hi!r}"  # numpy printing inside the sandbox
    return pl.DataFrame({
        "action": action.tolist(),
        "size": np.full(len(close), 0.25),
        "stop_loss": [0.03] * len(close),
        "take_profit": [None if math.isnan(v) else 0.06 for v in np.zeros(len(close))],
        "intent": [params.intent] * len(close),
        "confidence": conf,
        "regime": [label] * len(close),
    }, schema_overrides={"take_profit": pl.Float64})
