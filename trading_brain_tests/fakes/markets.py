"""Test doubles around real markets: a sim market whose venue stopped delivering bars."""

from __future__ import annotations

from datetime import datetime

from pydantic import PrivateAttr

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.sim import SimMarket
from trading_brain.defs.resources import TradingBrainResource
from trading_brain.runtime import Runtime


class FrozenMarketResource(TradingBrainResource):
    """The home's runtime, but its sim market's clock stopped at ``frozen_at`` (a silent venue)."""

    frozen_at: str
    _frozen: Runtime | None = PrivateAttr(default=None)

    @property
    def runtime(self) -> Runtime:
        if self._frozen is None:
            rt = Runtime(self.home, now=datetime.fromisoformat(self.now))
            rt.market = SimMarket(rt.settings.symbols, seed=rt.settings.sim.seed,
                                  clock=SimClock(datetime.fromisoformat(self.frozen_at)))
            self._frozen = rt
        return self._frozen
