"""What `trading-brain bootstrap` runs: backfill candle history from the configured market.

``backfill(rt, days, progress)``: ``days`` maps a timeframe (``1d``, ``1h``, ``5m``) to the
days to hold, a missing or None entry meaning the home's ``[history]`` setting; resumes where a
previous run stopped (``engine.bootstrap.bootstrap_history``), then reports the day partitions
now holding candles to the home's Dagster instance (``init.tell_dagster``). Returns, per
timeframe, the bars fetched, stored, quarantined and omitted by the venue.
"""

from __future__ import annotations

from collections.abc import Mapping

from trading_brain.app.runtime import Runtime
from trading_brain.engine.importer import Progress


def backfill(rt: Runtime, days: Mapping[str, int | None], progress: Progress | None = None
             ) -> dict[str, dict[str, int]]:
    """Backfill each timeframe's history (see the module docstring)."""
    from trading_brain.engine.bootstrap import bootstrap_history

    h = rt.settings.history
    wanted = {"1d": days.get("1d") or h.days_1d, "1h": days.get("1h") or h.days_1h,
              "5m": days.get("5m") or h.days_5m}
    reports = bootstrap_history(rt.market, rt.store, rt.settings.symbols, wanted,
                                now=rt.clock.now(), progress=progress)
    from trading_brain.app.home.init import tell_dagster

    tell_dagster(rt, candles=True, versions=False)  # the UI shows the day partitions filled
    return {tf: {"fetched": r.fetched, "stored": r.stored, "quarantined": r.quarantined,
                 "venue_omitted": r.omitted} for tf, r in reports.items()}
