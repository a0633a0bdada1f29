"""The day-level preparation of ``simulation.simulate`` (see its module docstring): each
simulated day's 5m candles and indicators are synced and held in memory ahead of its steps, and
the active strategy is primed for the day in one sandbox call per symbol batch.

``loop`` is ``simulation._Loop`` (runtime, sync market and clock, warm-up, cached inputs, primed
source, the worker boot thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import polars as pl

from trading_brain.app.scan import PrimedSource
from trading_brain.app.simulate.plan import DAY
from trading_brain.domain.timeframes import floor_time
from trading_brain.engine.indicators import compute_indicators
from trading_brain.engine.market_sync import sync_window
from trading_brain.engine.scan import BAR, INDICATOR_BARS
from trading_brain.errors import DataError


def sync_day(loop: Any, step_end: datetime) -> None:
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
    held_from = day_start - BAR * (2 * loop.warmup + 288)
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


def boot_worker(loop: Any) -> None:
    """Start the active version's sandbox worker on a thread: it boots (~0.6 s, in its own
    process) while this thread syncs the first day; ``booted`` joins it before first use."""
    from trading_brain.app.scan import strategy_worker

    rt = loop.rt
    sid, ver = loop.inputs.active_version(rt.store)
    row = loop.inputs.strategy_version(rt.store, sid, ver)
    error: list[BaseException] = []

    def boot() -> None:
        try:
            worker = strategy_worker(rt.settings, row)
            getattr(worker, "start", lambda: None)()
        except BaseException as e:  # re-raised on the loop's thread by booted
            error.append(e)

    thread = threading.Thread(target=boot, name="sandbox-boot", daemon=True)
    thread.start()
    loop.booting = [thread, error]


def booted(loop: Any, *, raise_error: bool = True) -> None:
    """Wait for ``boot_worker``'s thread (once); raise what it raised."""
    if not loop.booting:
        return
    thread, error = loop.booting
    thread.join()
    loop.booting = []
    if error and raise_error:
        raise error[0]


def prime(loop: Any, day_start: datetime, day_end: datetime, held: pl.DataFrame) -> None:
    """Run the active strategy once per symbol over the day (plus its warm-up bars)."""
    from trading_brain.app.scan import strategy_worker

    booted(loop)
    rt, inputs = loop.rt, loop.inputs
    sid, ver = inputs.active_version(rt.store)
    row = inputs.strategy_version(rt.store, sid, ver)
    inner = strategy_worker(rt.settings, row)
    if loop.source is None or loop.source.inner is not inner:
        loop.source = PrimedSource(inner, row["sha256"])
    frames = held.filter(pl.col("ts") >= day_start - BAR * loop.source.warmup_bars)
    loop.source.prime({s: f for (s,), f in frames.partition_by(
        "symbol", as_dict=True, include_key=False).items()}, row["params_default"])


def worker_for(loop: Any) -> Callable[[Any, dict[str, Any]], Any]:
    """The scan's worker factory: the day-batched source for the active version."""
    from trading_brain.app.scan import strategy_worker

    def pick(settings: Any, row: dict[str, Any]) -> Any:
        src = loop.source
        return src if src is not None and src.sha == row["sha256"] \
            else strategy_worker(settings, row)

    return pick
