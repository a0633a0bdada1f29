"""The day-level preparation of ``app.simulate.loop.simulate`` (see its module docstring):
each simulated day's 5m candles and indicators are synced and held in memory ahead of its
steps, and the active strategy is primed for the day in one sandbox call per symbol batch.

``loop`` is ``app.simulate.setup.SimLoop`` (runtime, sync market and clock, warm-up, cached
inputs, primed source). Workers come from the runtime's service (``rt.workers``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from trading_brain.app.scan import PrimedSource, Worker, version_worker
from trading_brain.app.simulate.plan import DAY
from trading_brain.domain.timeframes import floor_time
from trading_brain.engine.indicators import compute_indicators
from trading_brain.engine.market_sync import sync_window
from trading_brain.engine.scan import BAR, INDICATOR_BARS
from trading_brain.errors import ConfigError, DataError
from trading_brain.ports import SignalSource

if TYPE_CHECKING:
    from trading_brain.app.simulate.setup import SimLoop


def sync_day(loop: SimLoop, step_end: datetime) -> None:
    """Store the 5m candles and indicators of the day ``step_end`` is in (plus, the first time,
    the warm-up candles before it) and prime the strategy for that day, ahead of its steps."""
    if loop.synced_until is not None and step_end <= loop.synced_until:
        return
    store, symbols = loop.warehouse, loop.rt.settings.symbols
    day_start = floor_time(step_end - BAR, "1d")
    day_end = day_start + DAY
    begin = day_start - BAR * (2 * loop.warmup + 288) if loop.synced_until is None else day_start
    loop.sync_clock.set(max(loop.sync_clock.now(), day_end))
    sync_window(loop.sync_market, store, symbols, "5m", begin, day_end, now=day_end)
    # the day's scans read their bars and indicators from memory: the same warehouse rows
    # (nothing else writes 5m candles or indicators while the day's steps run)
    held_from = day_start - BAR * (2 * _scan_warmup(loop) + 288)
    held = store.read_candles(symbols, "5m", held_from, day_end)
    loop.inputs.hold_candles(held, symbols, held_from, day_end)
    # like the `indicators` asset: the day's rows from a fixed look-back (a resumed run computes
    # exactly the same values)
    candles = held.filter(pl.col("ts") >= day_start - BAR * INDICATOR_BARS)
    if candles.height:
        try:
            ind = compute_indicators(candles)
        except ValueError as e:  # the indicator library may only raise builtins
            raise DataError(f"indicators for 5m: {e}") from e
        store.upsert_indicators(ind.filter(pl.col("ts") >= day_start))
    ind_from = day_start - BAR * 12
    loop.inputs.hold_indicators(store.read_indicators(symbols, "5m", ind_from, day_end),
                                symbols, ind_from, day_end)
    loop.synced_until = day_end
    prime(loop, day_start, day_end, held)


def _scan_warmup(loop: SimLoop) -> int:
    """The warm-up the day's scans read (``app.scan.load_inputs``: the largest of the active
    version's and, with ``--evolve``, the shadow slots' candidates'), so the held span covers
    every scan of the day (a candidate with a longer warm-up would otherwise read each step's
    bars from the warehouse)."""
    if not loop.evolve:
        return loop.warmup
    rows = [_active_row(loop)] + [loop.inputs.strategy_version(loop.store, sid, ver)
                                  for _slot, sid, ver in loop.inputs.shadow_slots(loop.rt.store)]
    return max([loop.warmup, *(int(r["warmup_bars"]) for r in rows if r is not None)])


def boot_worker(loop: SimLoop) -> None:
    """Ask the runtime's worker service for the active version's worker: it boots in the
    background (~0.6 s, in its own process) while this thread syncs the first day; the first
    call on it (``prime``) waits for that boot and raises what it raised."""
    rt = loop.rt
    version_worker(rt, _active_row(loop))


def prime(loop: SimLoop, day_start: datetime, day_end: datetime, held: pl.DataFrame) -> None:
    """Run the active strategy (with ``--evolve``, also each shadow slot's candidate) once per
    symbol over the day (plus its warm-up bars)."""
    rt = loop.rt
    row = _active_row(loop)
    inner = version_worker(rt, row)
    if loop.source is None or loop.source.sha != row["sha256"]:
        loop.source = PrimedSource(inner, row["sha256"])
    _prime_one(loop.source, day_start, held, row)
    if loop.evolve:
        shadows: dict[str, PrimedSource] = {}
        for _slot, sid, ver in loop.inputs.shadow_slots(rt.store):
            cand = loop.inputs.strategy_version(loop.store, sid, ver)
            if cand is None or cand["sha256"] in shadows:
                continue
            src = loop.shadows.get(cand["sha256"]) or PrimedSource(version_worker(rt, cand),
                                                                   cand["sha256"])
            _prime_one(src, day_start, held, cand)
            shadows[cand["sha256"]] = src
        loop.shadows = shadows


def _prime_one(src: PrimedSource, day_start: datetime, held: pl.DataFrame,
               row: dict[str, Any]) -> None:
    frames = held.filter(pl.col("ts") >= day_start - BAR * src.warmup_bars)
    src.prime({s: f for (s,), f in frames.partition_by(
        "symbol", as_dict=True, include_key=False).items()}, row["params_default"])


def _active_row(loop: SimLoop) -> dict[str, Any]:
    """The ``strategy_versions`` row of the active version (simulate deployed one)."""
    store = loop.store
    active = loop.inputs.active_version(store)
    row = loop.inputs.strategy_version(store, *active) if active is not None else None
    if row is None:
        raise ConfigError("no active strategy version")
    return row


def worker_for(loop: SimLoop) -> Worker:
    """The scan's worker choice: the day-primed source for the active version (or a shadow
    slot's candidate), else the runtime's worker service."""

    def pick(row: dict[str, Any]) -> SignalSource:
        src = loop.source
        if src is not None and src.sha == row["sha256"]:
            return src
        return loop.shadows.get(row["sha256"]) or version_worker(loop.rt, row)

    return pick
