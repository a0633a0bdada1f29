"""What `trading-brain bootstrap` runs: backfill candle history from the configured market.

``backfill(rt, days, progress)``: ``days`` maps a timeframe (``1d``, ``1h``, ``5m``) to the
days to hold, a missing or None entry meaning the home's ``[history]`` setting; resumes where a
previous run stopped (``engine.bootstrap.bootstrap_history``), then reports the day partitions
now holding candles to the home's Dagster instance (``init.tell_dagster``). Returns, per
timeframe, the bars fetched, stored, quarantined and omitted by the venue.

``import_reported(home, paths, …)`` is what `trading-brain import-ohlcv` runs: the files
imported (``runtime.import_candle_files``), then, when rows were inserted or replaced, the day
partitions now holding candles of the configured symbols reported the same way (so the UI and
a backfill see imported history as materialized). Returns the import report and what was told
to Dagster (empty when nothing changed; ``error`` when the instance was absent or busy: the
import itself stands).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from trading_brain.app.runtime import Runtime
from trading_brain.engine.importer import ImportReport, Progress
from trading_brain.settings import Home


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


def import_reported(home: Home, paths: Sequence[Path | str], *, symbol: str | None = None,
                    timeframe: str | None = None, progress: Progress | None = None,
                    replace: bool = False) -> tuple[ImportReport, dict[str, object]]:
    """Import candle files into the home, then tell Dagster (see the module docstring)."""
    from trading_brain.app.home.init import tell_dagster
    from trading_brain.app.runtime import build_runtime, import_candle_files
    from trading_brain.app.warehouse import require_store

    store = require_store(home)
    report = import_candle_files(list(paths), store, symbol=symbol, timeframe=timeframe,
                                 progress=progress, replace=replace)
    if not (report.inserted or report.replaced):
        return report, {}
    return report, tell_dagster(build_runtime(home, store=store), candles=True, versions=False)
