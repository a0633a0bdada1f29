"""`trading-brain simulate`: the live trading loop, offline, on a simulated clock (DESIGN §6).

Contract of ``simulate(home, plan, resume=False, progress=None, note=None) -> dict``:
- the home: an initialised home is used as is; a directory that is not a home yet is initialised
  WITHOUT bootstrap (config from ``plan``: market, replay data, seed). The simulation writes to
  that home's warehouse exactly as live would (candles, indicators, scans, signals, intents,
  orders, fills, positions, cash ledger, snapshots, risk events and states), so use a dedicated
  home. If no strategy version is active, the shipped strategies are registered and
  ``ema_cross@1`` is deployed (``note`` is told so).
- the window: decision bars with open time in ``[start, end)``. ``sim`` market: ``start`` given
  or midnight UTC ``days`` days before today, ``end = start + days``. ``replay``: the whole data
  (from the first bar + the strategy's warm-up to the last bar) unless ``start``/``days`` narrow it.
- per 5-minute step with bar close ``T`` (= decision bar open + 5m), the live code path: clock
  to ``T``; executor tick (fills of orders placed a step earlier, stops); ``scan_once``;
  executor tick (places the new intents); clock to ``T + 1m``; executor tick (a market order
  fills at the open of the first 1-minute bar at/after it, once that bar closed; replayed files
  without 1m bars fill at the next bar's open, like the backtest). A tick with nothing to do is
  skipped (tick0 without open orders or positions, tick1 without pending intents, tick2 without
  open orders), and tick2 runs only in a step whose tick1 ran: it is there to fill what tick1
  placed. Without it, resting orders (stop-loss/take-profit legs) are settled by the next tick0
  from the same bars at the same prices and times (fills are bar-timed), only recorded up to 4
  minutes later, as a live sensor that missed a tick would. Batching (bars are known offline;
  ``app.simulate.day``): candles are synced one day at a time ahead of the steps
  (``sync_window``), the 5m indicators computed for that day, and the active strategy runs once
  per symbol and day (``app.scan.PrimedSource``); the scans read the day's candles and
  indicators, the version rows and pairs from memory (``scan_inputs.CachedInputs``: the same
  rows as the warehouse), and their scan and signal rows are written once per chunk (nothing in
  the loop reads them; intents, risk events and states are written at once); an executor phase
  known to be idle is skipped without a count query (``_busy``; else ``open_counts``). The scan
  and the executor still only see bars closed at the clock's ``now`` (the scan reads open times
  <= its decision bar, a decision row depends only on bars <= it; the venue asks the market with
  the sim clock).
- one warehouse connection is held for the whole run (a connection costs ~25 ms): the home's
  warehouse is locked for other processes while a simulation runs.
- the runtime: the home's (``runtime.build_runtime``) with the plan's market settings, derived
  with ``dataclasses.replace`` (nothing is patched): the sim clock and the market with minute
  bars (``setup.MinuteBars``). Its store stays the warehouse; the loop's trading store
  (``SimLoop.store``: the book, or the warehouse) is handed to the scan and the ticks.
- the trading tables live in a write-behind ``adapters.memory.book.MemoryBook`` while the loop
  runs (``memory=True``, the default): loaded from the warehouse at start/resume, it answers the
  scans', the executor's and the paper venue's store calls with the warehouse's semantics, and
  its changed rows are flushed (``adapters.memory.flush``) inside each chunk's transaction,
  before the checkpoint; the scans, ticks and paper venues are handed the book (candles,
  indicators, scans, strategy versions and ``system_meta`` go to the warehouse).
  ``memory=False`` runs the loop on the warehouse itself: the same rows
  (trading_brain_tests/test_simulate_memory.py).
- checkpoints: the run's plan is stored in ``system_meta`` (``simulate.plan``). The steps run in
  chunks of ``CHUNK_STEPS`` (a day; ``chunk_steps`` or the ``TRADING_BRAIN_SIM_CHUNK_STEPS``
  environment variable override it), each ONE warehouse transaction (the store's own
  transactions nest into it) committed together with ``simulate.progress`` = ``T|phase|ticks``
  of the chunk's last phase done; ``progress`` is told about a step only once its chunk is
  committed. A kill loses the open chunk entirely (rolled back), ``resume=True`` continues after
  the last committed checkpoint (every phase is idempotent and deterministic, so the lost steps
  are redone identically), and the final summary equals that of an uninterrupted run. Starting a
  new run in a home that already holds one raises ``ConfigError``.
- ``plan.evolve`` (``simulate --evolve``): before the first step of each simulated day but the
  first, the nightly evolution runs at that midnight (``_night`` ->
  ``app.promotion_reviews.run_night``: paper tests judged, the cycle, tonight's promotion, free
  shadow slots to candidates, due reviews; the cycle's advisor is ``plan.advisor``, offline when
  None) after the book is flushed; the scans then run the
  shadow slots' candidates beside the active slot (primed per day like it, ``day.prime``), on
  paper with their own ledgers, and every executor tick acts on a pending rollback trigger
  (``app.promotion.auto_rollback``). The summary gains ``evolution`` (counts, from the
  warehouse). Without it, nothing of this runs and the summary is unchanged.
- the result (also stored as ``simulate.result``): ``days, symbols, ticks, trades, orders, fills,
  final_equity, cash, positions_value, fees_paid, max_drawdown, halts, elapsed_s`` for the
  ``active`` slot; ``trades`` counts positions opened (closed or still open). Same plan (seed,
  start, days, data) -> the same result except ``elapsed_s``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from trading_brain.adapters.duckdb.connection import transaction
from trading_brain.adapters.memory import flush as memory_flush
from trading_brain.adapters.paper.exchange import PaperExchange
from trading_brain.app.runtime import Runtime, executor_slots
from trading_brain.app.scan import scan_once
from trading_brain.app.simulate.day import boot_worker, sync_day, worker_for
from trading_brain.app.simulate.plan import Plan, parse_time, steps_of, summary
from trading_brain.app.simulate.setup import (
    DEFAULT_STRATEGY,
    PLAN_KEY,
    SimLoop,
    build,
    prepare_home,
)
from trading_brain.domain.instruments import AssetPair
from trading_brain.engine.executor.tick import SlotSetup, run_tick
from trading_brain.engine.scan import BAR
from trading_brain.settings import Home

__all__ = ["CHUNK_ENV", "DEFAULT_STRATEGY", "PLAN_KEY", "PROGRESS_KEY", "RESULT_KEY", "Plan",
           "simulate"]

PROGRESS_KEY, RESULT_KEY = "simulate.progress", "simulate.result"
PHASES = ("tick0", "scan", "tick1", "tick2")  # one step; its checkpoint names the phase done
CHUNK_STEPS = 288  # steps per commit (a day of bars): a kill loses at most the open chunk
CHUNK_ENV = "TRADING_BRAIN_SIM_CHUNK_STEPS"  # overrides CHUNK_STEPS (tests: kill points)
MINUTE = timedelta(minutes=1)
Progress = Callable[[int, int, str], None]


def simulate(home: Home, plan: Plan, *, resume: bool = False, progress: Progress | None = None,
             note: Callable[[str], None] | None = None, memory: bool = True,
             chunk_steps: int | None = None) -> dict[str, Any]:
    """Run (or continue) the simulation of ``plan`` in ``home``; return the summary.
    ``memory=False`` runs the loop on the warehouse itself (the equivalence tests' reference)."""
    started = time.monotonic()
    plan = prepare_home(home, plan, resume)
    rt, loop, plan = build(home, plan, resume, note or (lambda _m: None))
    start, end = parse_time(plan.start), parse_time(plan.end)
    done = _checkpoint(rt)
    loop.ticks = done[2] if done is not None else 0
    loop.evolve = plan.evolve
    loop.advisor = plan.advisor
    steps = steps_of(start, end)
    todo = [(i, t) for i, t in enumerate(steps, 1) if done is None or t >= done[0]]
    chunk_steps = chunk_steps or int(os.environ.get(CHUNK_ENV) or CHUNK_STEPS)
    warehouse = loop.warehouse
    try:
        boot_worker(loop)
        with warehouse.session(), warehouse.connect() as con:
            book = memory_flush.load(warehouse) if memory else None
            if book is not None:  # scans, ticks and venue talk to the book
                loop.store, loop.memory, loop.book = book, True, book
            for k in range(0, len(todo), chunk_steps):
                chunk = todo[k:k + chunk_steps]
                with transaction(con):  # the chunk's steps and its checkpoint: one commit
                    for i, step_end in chunk:
                        if plan.evolve and i > 1 and _midnight(step_end):
                            _night(loop, step_end - BAR)
                        sync_day(loop, step_end)
                        skip = done[1] if done is not None and step_end == done[0] else None
                        _step(loop, step_end, skip)
                    if book is not None:  # the chunk's trading rows, before its checkpoint
                        memory_flush.flush(book)
                    warehouse.record_scans(loop.unwritten)
                    loop.unwritten.clear()
                    if loop.point is not None:
                        warehouse.set_meta(PROGRESS_KEY, loop.point)
                if progress is not None:  # reported once durable
                    for i, step_end in chunk:
                        progress(i, len(steps), f"{step_end:%Y-%m-%d %H:%M}")
            out = summary(warehouse, rt.settings, plan, loop.ticks)
            if plan.evolve:
                from trading_brain.app.promotion_reviews import evolution_summary

                out["evolution"] = evolution_summary(warehouse)
    finally:
        loop.store, loop.memory, loop.book = warehouse, False, None
        rt.workers.close()
    warehouse.set_meta(RESULT_KEY, json.dumps(out))
    return out | {"elapsed_s": round(time.monotonic() - started, 3)}


def _checkpoint(rt: Runtime) -> tuple[datetime, str, int] | None:
    """(bar close, last phase done, executor ticks so far) of the last durable phase."""
    raw = rt.store.get_meta(PROGRESS_KEY)
    if raw is None:
        return None
    t, phase, ticks = raw.split("|")
    return parse_time(t), phase, int(ticks)


def _step(loop: SimLoop, close: datetime, done_phase: str | None) -> None:
    """One 5-minute step (see the module docstring); phases up to ``done_phase`` are skipped."""
    rt = loop.rt
    first = PHASES.index(done_phase) + 1 if done_phase in PHASES else 0
    placed = done_phase == "tick1"  # tick1 ran in this step (a checkpoint names a phase that ran)
    for phase in PHASES[first:]:
        if phase == "tick2" and not placed:  # nothing new to fill: the next tick0 settles the rest
            continue
        at = close + MINUTE if phase == "tick2" else close
        loop.clock.set(max(loop.clock.now(), at))
        if phase == "scan":
            scan_once(rt, close, worker=worker_for(loop), inputs=loop.inputs,
                      unwritten=loop.unwritten, store=loop.store)
        elif _busy(loop, phase):
            _tick(loop)
            placed = placed or phase == "tick1"
        else:  # an idle phase changes nothing: no checkpoint needed
            continue
        loop.point = f"{close.isoformat()}|{phase}|{loop.ticks}"


def _midnight(step_end: datetime) -> bool:
    """The step's decision bar opens at a UTC midnight (the first step of a day)."""
    bar = step_end - BAR
    return bar == bar.replace(hour=0, minute=0, second=0, microsecond=0)


def _night(loop: SimLoop, at: datetime) -> None:
    """``simulate --evolve``: the nightly evolution at the simulated midnight ``at``
    (``app.promotion_reviews.run_night``: paper tests judged, the cycle, tonight's promotion,
    free slots to candidates, reviews), with the trading rows flushed first so the cycle reads
    the day's ledger; the scans then read the versions and shadow slots afresh."""
    from trading_brain.app.promotion_reviews import run_night

    if loop.book is not None:
        memory_flush.flush(loop.book)
    loop.clock.set(max(loop.clock.now(), at))
    run_night(loop.rt, at, loop.store, advisor_name=loop.advisor or "offline")
    loop.inputs.forget_versions()
    loop.known.clear()


def _busy(loop: SimLoop, phase: str) -> bool:
    """Whether an executor tick has anything to do: ``tick0`` with open orders or positions,
    ``tick1`` with pending intents, ``tick2`` (asked only after ``tick1`` ran) with open orders
    (an idle tick changes nothing but a snapshot of an unchanged, all-cash portfolio).

    An answer known without a count (only the scan, which places no order, ran since the last
    count): the next ``tick0`` is busy exactly when an idle ``tick2``'s count found open
    positions."""
    known = loop.known.pop(phase, None)
    if known is not None:
        return known
    orders, positions, pending = loop.store.open_counts()
    if phase == "tick1":
        return bool(pending)
    if phase == "tick0":
        return bool(orders or positions)
    if not orders:  # tick2 idle: the next tick0 sees these same counts
        loop.known["tick0"] = bool(positions)
    return bool(orders)


def _tick(loop: SimLoop) -> None:
    rt = loop.rt
    loop.known.clear()  # a tick may open or close anything
    pairs = loop.inputs.asset_pairs(loop.store)
    slots = _book_slots(loop, pairs) if loop.memory else executor_slots(rt, pairs)
    run_tick(loop.store, slots, rt.market, rt.clock, pairs, rt.risk_limits,
             loop.config)
    loop.ticks += 1
    if loop.evolve:  # as the executor's use case does after each tick (app.execute)
        from trading_brain.app.promotion import auto_rollback

        if auto_rollback(rt, rt.clock.now(), loop.store) is not None:
            loop.inputs.forget_versions()


def _book_slots(loop: SimLoop, pairs: Mapping[str, AssetPair]) -> dict[str, SlotSetup]:
    """``runtime.executor_slots`` answered from the memory book (simulate trades on paper):
    ``active`` always, other slots while they have pending intents, open positions or orders.
    A slot's paper venue is kept across ticks (``loop.venues``) while ``PaperExchange.renew()``
    says it still holds the book's state (same store, market, clock and pairs): a new venue per
    tick would re-parse the whole paper book every tick."""
    rt, store, venues = loop.rt, loop.store, loop.venues

    def venue(slot: str) -> PaperExchange:
        v = venues.get(slot)
        if v is None or v.store is not store \
                or v.market is not rt.market or v.clock is not rt.clock or v.pairs != pairs \
                or not v.renew():
            v = venues[slot] = PaperExchange(
                rt.market, rt.clock, store, pairs, account=slot,
                starting_cash=Decimal(repr(rt.settings.starting_cash)))
        return v

    capital = Decimal(repr(rt.settings.starting_cash))
    slots = {"active": SlotSetup(venue("active"), capital)}
    for slot in sorted(store.busy_slots() - {"active"}):
        slots[slot] = SlotSetup(venue(slot), capital)
    return slots
