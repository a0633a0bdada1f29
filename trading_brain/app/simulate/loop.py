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
  bars (``_MinuteBars``). Its store stays the warehouse; the loop's trading store
  (``_Loop.store``: the book, or the warehouse) is handed to the scan and the ticks.
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.duckdb.connection import transaction
from trading_brain.adapters.memory import flush as memory_flush
from trading_brain.adapters.memory.book import MemoryBook
from trading_brain.adapters.paper.exchange import PaperExchange
from trading_brain.app.runtime import Runtime, build_market, build_runtime, executor_slots
from trading_brain.app.scan import PrimedSource, scan_once
from trading_brain.app.scan_inputs import CachedInputs
from trading_brain.app.simulate.day import boot_worker, sync_day, worker_for
from trading_brain.app.simulate.plan import DAY, Plan, parse_time, steps_of, summary, window_of
from trading_brain.domain.instruments import AssetPair, parse_symbol
from trading_brain.domain.market import Ticker
from trading_brain.engine.executor.tick import SlotSetup, TickConfig, run_tick
from trading_brain.engine.scan import BAR, INDICATOR_BARS
from trading_brain.errors import ConfigError
from trading_brain.ports import MarketData
from trading_brain.settings import (
    Home,
    ReplaySettings,
    Settings,
    SimSettings,
    load_settings,
    parse_settings,
)

if TYPE_CHECKING:
    from typing import Protocol

    from trading_brain.app.scan_inputs import ScanStore
    from trading_brain.ports import TradingStore

    class LoopStore(TradingStore, ScanStore, Protocol):
        """What the loop hands the scan, the ticks and the paper venues."""

DEFAULT_STRATEGY = "ema_cross@1"
PLAN_KEY, PROGRESS_KEY, RESULT_KEY = "simulate.plan", "simulate.progress", "simulate.result"
PHASES = ("tick0", "scan", "tick1", "tick2")  # one step; its checkpoint names the phase done
CHUNK_STEPS = 288  # steps per commit (a day of bars): a kill loses at most the open chunk
CHUNK_ENV = "TRADING_BRAIN_SIM_CHUNK_STEPS"  # overrides CHUNK_STEPS (tests: kill points)
MINUTE = timedelta(minutes=1)
Progress = Callable[[int, int, str], None]


@dataclass
class _Loop:
    rt: Runtime  # sim clock, minute-bar market; its store is the warehouse
    clock: SimClock
    sync_market: MarketData
    sync_clock: SimClock
    warmup: int
    warehouse: Store
    store: LoopStore  # what the scan and the ticks use: the memory book, or the warehouse
    ticks: int = 0
    source: PrimedSource | None = None
    synced_until: datetime | None = None
    point: str | None = None  # the checkpoint of the last phase done (stored with its chunk)
    inputs: CachedInputs = field(default_factory=CachedInputs)
    known: dict[str, bool] = field(default_factory=dict)  # phase -> busy, derived (see _busy)
    unwritten: list = field(default_factory=list)  # the chunk's (scan, signals), stored at commit
    config: TickConfig = field(default_factory=lambda: TickConfig(local_venues=True))
    memory: bool = False  # ``store`` is the memory book
    book: MemoryBook | None = None  # the memory book while the run holds one (flushed at night)
    venues: dict[str, PaperExchange] = field(default_factory=dict)  # see ``_book_slots``
    evolve: bool = False  # ``--evolve``: nightly cycles, and rollback triggers acted on
    advisor: str | None = None  # ``--advisor`` of the nightly cycles (None: offline)
    shadows: dict[str, PrimedSource] = field(default_factory=dict)  # sha -> primed candidate


def simulate(home: Home, plan: Plan, *, resume: bool = False, progress: Progress | None = None,
             note: Callable[[str], None] | None = None, memory: bool = True,
             chunk_steps: int | None = None) -> dict[str, Any]:
    """Run (or continue) the simulation of ``plan`` in ``home``; return the summary.
    ``memory=False`` runs the loop on the warehouse itself (the equivalence tests' reference)."""
    started = time.monotonic()
    plan = _prepare_home(home, plan, resume)
    rt, loop, plan = _build(home, plan, resume, note or (lambda _m: None))
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


def _prepare_home(home: Home, plan: Plan, resume: bool) -> Plan:
    """Initialise a new home (no bootstrap); on resume, the stored plan replaces ``plan``."""
    if not home.is_initialised():
        if resume:
            raise ConfigError(f"{home.root} holds no simulation to resume")
        from trading_brain.app.home.init import initialise

        initialise(home, market=plan.market, data=list(plan.data) or None, seed=plan.seed,
                   symbols=",".join(plan.symbols) or None, bootstrap=False, strategy=None)
    stored = Store.open(home.warehouse).get_meta(PLAN_KEY)
    if resume:
        if stored is None:
            raise ConfigError(f"{home.root} holds no simulation to resume; run without --resume")
        return Plan.from_json(stored)
    if stored is not None:
        raise ConfigError(f"{home.root} already holds a simulation; continue it with --resume "
                          "or use a new --home")
    return plan


def _build(home: Home, plan: Plan, resume: bool, note: Callable[[str], None]
           ) -> tuple[Runtime, _Loop, Plan]:
    """The runtime (sim clock, minute-bar market, overridden market settings) and the loop
    state; completes and stores ``plan`` on a fresh run."""
    probe = SimClock(datetime.now(UTC) + 3650 * DAY)
    if plan.market == "replay" and not plan.symbols:  # default: every symbol of the data
        symbols = _replay_symbols(build_market(_settings(home, plan), home, probe))
        plan = Plan(**{**asdict(plan), "symbols": tuple(symbols)})
    settings = _settings(home, plan)
    home_rt = build_runtime(home, settings=settings)
    _ensure_strategy(home_rt, note)
    warmup = _warmup(home_rt)
    if not resume:
        plan = window_of(plan, build_market(settings, home, probe), settings.symbols, warmup,
                         probe)
        home_rt.store.set_meta(PLAN_KEY, json.dumps(asdict(plan)))
    start = parse_time(plan.start)
    clock = SimClock(start)
    rt = replace(home_rt, clock=clock, market=_MinuteBars(build_market(settings, home, clock)))
    sync_clock = SimClock(start)
    sync_market = build_market(settings, home, sync_clock)
    pairs = sync_market.asset_pairs(settings.symbols)
    rt.store.upsert_asset_pairs(sync_market.name, list(pairs.values()))
    return rt, _Loop(rt, clock, sync_market, sync_clock, warmup, rt.store, rt.store), plan


def _replay_symbols(market: MarketData) -> tuple[str, ...]:
    from trading_brain.adapters.replay import ReplayMarket

    if not isinstance(market, ReplayMarket):  # build_market of market = "replay"
        raise ConfigError("the replay plan did not build a replay market")
    return market.symbols


def _settings(home: Home, plan: Plan) -> Settings:
    settings = load_settings(home)
    update: dict[str, Any] = {"market": plan.market, "execution": "paper"}
    if plan.seed is not None:
        update["sim"] = SimSettings(seed=plan.seed)
    if plan.data:
        update["replay"] = ReplaySettings(data=list(plan.data))
    if plan.symbols:
        update["symbols"] = [parse_symbol(x) for x in plan.symbols]
    return parse_settings({**settings.model_dump(), **update})  # validated, as a loaded file is


def _ensure_strategy(rt: Runtime, note: Callable[[str], None]) -> None:
    """Register (sandbox gates) and deploy ``ema_cross@1`` when no version is active."""
    if rt.store.active_version() is not None:
        return
    from trading_brain.app.research.register import register_files
    from trading_brain.app.research.strategy_files import find_strategies
    from trading_brain.engine.registry import deploy, parse_ref

    sid, ver = parse_ref(DEFAULT_STRATEGY)
    if ver is None:
        raise ConfigError(f"DEFAULT_STRATEGY {DEFAULT_STRATEGY!r} names no version")
    note(f"no active strategy: registering and deploying {DEFAULT_STRATEGY}")
    if rt.store.strategy_version(sid, ver) is None:
        paths = [r.path for r in find_strategies() if (r.strategy_id, r.version) == (sid, ver)]
        register_files(rt.store, rt.settings, paths, "released")
    deploy(rt.store, sid, ver, "deployed by simulate")


def _warmup(rt: Runtime) -> int:
    active = rt.store.active_version()
    if active is None:
        raise ConfigError("no active strategy version")
    sid, ver = active
    row = rt.store.strategy_version(sid, ver)
    if row is None:
        raise ConfigError(f"the active version {sid}@{ver} is not registered")
    return max(INDICATOR_BARS, int(row["warmup_bars"]))


def _checkpoint(rt: Runtime) -> tuple[datetime, str, int] | None:
    """(bar close, last phase done, executor ticks so far) of the last durable phase."""
    raw = rt.store.get_meta(PROGRESS_KEY)
    if raw is None:
        return None
    t, phase, ticks = raw.split("|")
    return parse_time(t), phase, int(ticks)


def _step(loop: _Loop, close: datetime, done_phase: str | None) -> None:
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


def _night(loop: _Loop, at: datetime) -> None:
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


def _busy(loop: _Loop, phase: str) -> bool:
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


def _tick(loop: _Loop) -> None:
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


def _book_slots(loop: _Loop, pairs: Mapping[str, AssetPair]) -> dict[str, SlotSetup]:
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


class _MinuteBars:
    """A market whose "1m" bars fall back to its finest timeframe (replayed 5m files have no
    minutes): the paper venue then fills at the open of the next bar, as the backtest does."""

    def __init__(self, market: MarketData) -> None:
        self._m: Any = market  # a replay market also answers ``timeframes(symbol)``
        self.name = market.name

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - the wrapped market's attribute
        return getattr(self._m, name)

    def asset_pairs(self, symbols: Sequence[str]) -> dict[str, AssetPair]:
        return self._m.asset_pairs(symbols)

    def tickers(self, symbols: Sequence[str]) -> dict[str, Ticker]:
        return self._m.tickers(symbols)

    def candles(self, symbol: str, timeframe: str, start: datetime, end: datetime
                ) -> pl.DataFrame:
        if timeframe == "1m" and hasattr(self._m, "timeframes") \
                and "1m" not in self._m.timeframes(symbol):
            timeframe = self._m.timeframes(symbol)[0]
        return self._m.candles(symbol, timeframe, start, end)
