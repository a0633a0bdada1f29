"""The setup of ``app.simulate.loop.simulate`` (see its module docstring): the home prepared
(initialised without bootstrap, the stored plan checked or re-used), the runtime derived from the
home's (sim clock, ``MinuteBars`` market, the plan's market settings), the default strategy
registered and deployed when none is active, and the loop state ``SimLoop``. With
``--evolve`` the runtime's sandbox-worker pool holds ``EVOLVE_WORKERS`` workers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.memory.book import MemoryBook
from trading_brain.adapters.paper.exchange import PaperExchange
from trading_brain.adapters.sandbox.pool import SandboxWorkers
from trading_brain.app.runtime import Runtime, build_market, build_runtime
from trading_brain.app.scan import PrimedSource
from trading_brain.app.scan_inputs import CachedInputs
from trading_brain.app.simulate.plan import DAY, Plan, parse_time, window_of
from trading_brain.domain.instruments import AssetPair, parse_symbol
from trading_brain.domain.market import Ticker
from trading_brain.engine.executor.tick import TickConfig
from trading_brain.engine.scan import INDICATOR_BARS
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
PLAN_KEY = "simulate.plan"
# ``--evolve``: workers kept warm across the nights and days — the active version, three shadow
# slots, the night's search over the other shipped families and the new candidate (the default
# pool of 4 evicted and re-booted several workers every night)
EVOLVE_WORKERS = 10


@dataclass
class SimLoop:
    """The loop's state (``loop.simulate``; ``day`` prepares its days)."""

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


def prepare_home(home: Home, plan: Plan, resume: bool) -> Plan:
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


def build(home: Home, plan: Plan, resume: bool, note: Callable[[str], None]
           ) -> tuple[Runtime, SimLoop, Plan]:
    """The runtime (sim clock, minute-bar market, overridden market settings) and the loop
    state; completes and stores ``plan`` on a fresh run."""
    probe = SimClock(datetime.now(UTC) + 3650 * DAY)
    if plan.market == "replay" and not plan.symbols:  # default: every symbol of the data
        symbols = _replay_symbols(build_market(_settings(home, plan), home, probe))
        plan = Plan(**{**asdict(plan), "symbols": tuple(symbols)})
    settings = _settings(home, plan)
    workers = SandboxWorkers(settings, max_workers=EVOLVE_WORKERS) if plan.evolve else None
    home_rt = build_runtime(home, settings=settings, workers=workers)
    _ensure_strategy(home_rt, note)
    warmup = _warmup(home_rt)
    if not resume:
        plan = window_of(plan, build_market(settings, home, probe), settings.symbols, warmup,
                         probe)
        home_rt.store.set_meta(PLAN_KEY, json.dumps(asdict(plan)))
    start = parse_time(plan.start)
    clock = SimClock(start)
    rt = replace(home_rt, clock=clock, market=MinuteBars(build_market(settings, home, clock)))
    sync_clock = SimClock(start)
    sync_market = build_market(settings, home, sync_clock)
    pairs = sync_market.asset_pairs(settings.symbols)
    rt.store.upsert_asset_pairs(sync_market.name, list(pairs.values()))
    return rt, SimLoop(rt, clock, sync_market, sync_clock, warmup, rt.store, rt.store), plan


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


class MinuteBars:
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
