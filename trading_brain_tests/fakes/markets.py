"""Test doubles around real markets: a sim market whose venue stopped delivering bars."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from pydantic import PrivateAttr

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.sim import SimMarket
from trading_brain.app.runtime import Runtime, build_runtime
from trading_brain.defs.resources import TradingBrainResource


class FrozenMarketResource(TradingBrainResource):
    """The home's runtime, but its sim market's clock stopped at ``frozen_at`` (a silent venue)."""

    frozen_at: str
    _frozen: Runtime | None = PrivateAttr(default=None)

    @property
    def runtime(self) -> Runtime:
        if self._frozen is None:
            rt = build_runtime(self.home, now=datetime.fromisoformat(self.now))
            self._frozen = replace(rt, market=SimMarket(
                rt.settings.symbols, seed=rt.settings.sim.seed,
                clock=SimClock(datetime.fromisoformat(self.frozen_at))))
        return self._frozen


class TamperedMarket:
    """Wraps a real market: drops bars (venue omissions), corrupts bars, or revises a close."""

    def __init__(self, inner, drop: set | None = None, corrupt: set | None = None,
                 revise: dict | None = None) -> None:
        self.inner, self.name = inner, inner.name
        self.drop, self.corrupt, self.revise = drop or set(), corrupt or set(), revise or {}

    def asset_pairs(self, symbols):
        return self.inner.asset_pairs(symbols)

    def tickers(self, symbols):
        return self.inner.tickers(symbols)

    def candles(self, symbol, timeframe, start, end):
        import polars as pl

        df = self.inner.candles(symbol, timeframe, start, end)
        df = df.filter(~pl.col("ts").is_in(list(self.drop)))
        if self.corrupt:  # high below low: must be quarantined, never stored
            df = df.with_columns(pl.when(pl.col("ts").is_in(list(self.corrupt)))
                                 .then(pl.col("low") * 0.5).otherwise(pl.col("high")).alias("high"))
        for ts, close in self.revise.items():
            df = df.with_columns(pl.when(pl.col("ts") == ts).then(close)
                                 .otherwise(pl.col("close")).alias("close"))
            df = df.with_columns(pl.max_horizontal("high", "close").alias("high"),
                                 pl.min_horizontal("low", "close").alias("low"))
        return df
