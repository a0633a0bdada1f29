"""The one Dagster resource: a handle on a Trading Brain home (settings, store, market, clock)."""

from __future__ import annotations

import os
from datetime import datetime

import dagster as dg
from pydantic import PrivateAttr

from trading_brain.app.runtime import Runtime
from trading_brain.settings import HOME_ENV

WAREHOUSE_POOL = "warehouse"  # the Dagster pool (one slot) of every step that opens the warehouse


class TradingBrainResource(dg.ConfigurableResource):
    """Opens the home at ``home`` (``TRADING_BRAIN_HOME`` or the CWD when empty).

    ``now`` (ISO-8601) pins the clock — for tests and replays; empty means the wall clock.
    """

    home: str = ""
    now: str = ""
    _runtime: Runtime | None = PrivateAttr(default=None)

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            pinned = datetime.fromisoformat(self.now.replace("Z", "+00:00")) if self.now else None
            self._runtime = Runtime(self.home or os.environ.get(HOME_ENV) or None, now=pinned)
        return self._runtime
