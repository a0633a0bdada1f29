"""Market snapshots that are not candles."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Ticker(BaseModel):
    """Best bid/ask and last trade price of one symbol at ``ts`` (UTC)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    bid: float = Field(gt=0)
    ask: float = Field(gt=0)
    last: float = Field(gt=0)
    ts: datetime
