"""The composition root: the ports of one home, built from its settings in one place. ``Runtime``
is a frozen dataclass of ports — ``home``, ``settings``, ``store`` (the warehouse), ``market``
(``MarketData``), ``clock`` (``Clock``), ``workers`` (``StrategyWorkers``, the sandbox-worker
service; whoever built the runtime closes it), ``notifier`` (``Notifier``) and ``exchanges``,
the factory behind ``exchange_for(slot, pairs)`` (it receives the runtime, so a derived
runtime's venues use the derived store, market and clock). ``build_runtime(home, now=…)`` builds
it from ``trading_brain.toml``: the market the settings name (``sim`` default, ``replay``,
``kraken``; built on first use, so a command that never prices anything never reads replay files
or opens a client), the store opened and migrated, a ``SimClock`` pinned at ``now`` (tests,
replays) or the system clock. A use case needing other ports derives its own runtime with
``dataclasses.replace`` (``simulate``: the sim clock and a minute-bar market);
nothing is patched. Adapters are imported lazily so a command pays only for what it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trading_brain.adapters.clock import SimClock, SystemClock
from trading_brain.adapters.duckdb import Store
from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.market import Ticker
from trading_brain.domain.risk import RiskLimits
from trading_brain.domain.timeframes import Timeframe
from trading_brain.engine.importer import ImportReport, ImportStore, Progress, import_files
from trading_brain.errors import ConfigError
from trading_brain.ports import Clock, Exchange, MarketData, Notifier, StrategyWorkers
from trading_brain.settings import Home, Settings, load_settings

if TYPE_CHECKING:
    import polars as pl

    from trading_brain.engine.executor.tick import SlotSetup

ExchangeFactory = Callable[["Runtime", str, Mapping[str, AssetPair]], Exchange]


@dataclass(frozen=True)
class Runtime:
    """Settings and ports of one home (see the module docstring)."""

    home: Home
    settings: Settings
    store: Store
    market: MarketData
    clock: Clock
    workers: StrategyWorkers
    notifier: Notifier
    exchanges: ExchangeFactory

    def exchange_for(self, slot: str, pairs: Mapping[str, AssetPair]) -> Exchange:
        """The venue of ``slot`` (``build_exchange`` unless the runtime was built with another)."""
        return self.exchanges(self, slot, pairs)

    @property
    def risk_limits(self) -> RiskLimits:
        return self.settings.risk

    @property
    def market_is_local(self) -> bool:
        """The market does no network I/O (sim, replay): a tick may share one connection."""
        return self.settings.market in ("sim", "replay")

    @property
    def market_is_live(self) -> bool:
        """Live markets produce new candles with the wall clock; replayed files do not."""
        return self.settings.market != "replay"

    def store_asset_pairs(self) -> dict[str, AssetPair]:
        """Fetch the configured symbols' pairs from the market and store them; return them.

        The market only knows the public (tier-0) fee schedule: when orders go to Kraken, the
        account's tier read by the executor (``engine.venue_fees``) is laid over it, so this
        writer never flips ``fee_schedule`` back to the public rates.
        """
        pairs = self.market.asset_pairs(self.settings.symbols)
        if self.settings.execution == "kraken":
            from trading_brain.engine.venue_fees import overlay_venue_fees

            pairs = overlay_venue_fees(self.store, pairs)
        self.store.upsert_asset_pairs(self.market.name, list(pairs.values()))
        return pairs


def build_runtime(home: Home | Path | str | None = None, *, now: datetime | None = None,
                  settings: Settings | None = None, store: Store | None = None,
                  workers: StrategyWorkers | None = None, notifier: Notifier | None = None
                  ) -> Runtime:
    """The runtime of ``home`` from its settings (``settings`` given: those instead of the
    file); ``now`` pins the clock; ``store``/``workers``/``notifier`` replace the defaults
    (the warehouse, a sandbox-worker service of its own — its owner closes it — the log)."""
    from trading_brain.app.notify import LogNotifier
    from trading_brain.app.research.register import open_workers

    home = home if isinstance(home, Home) else Home(home)
    settings = settings or load_settings(home)
    clock: Clock = SimClock(now) if now is not None else SystemClock()
    return Runtime(
        home=home, settings=settings, store=store or Store.open(home.warehouse),
        market=LazyMarket(settings.market, lambda: build_market(settings, home, clock)),
        clock=clock, workers=workers or open_workers(settings),
        notifier=notifier or LogNotifier(),
        exchanges=build_exchange)


class LazyMarket:
    """A ``MarketData`` built on first use (a replay market reads its files when built, a Kraken
    market opens a client); other attributes (``symbols``, ``clock``…) pass through."""

    def __init__(self, name: str, build: Callable[[], MarketData]) -> None:
        self.name = name
        self._build = build

    @cached_property
    def inner(self) -> MarketData:
        return self._build()

    def asset_pairs(self, symbols: Sequence[str]) -> dict[str, AssetPair]:
        return self.inner.asset_pairs(symbols)

    def candles(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
                ) -> pl.DataFrame:
        return self.inner.candles(symbol, timeframe, start, end)

    def tickers(self, symbols: Sequence[str]) -> dict[str, Ticker]:
        return self.inner.tickers(symbols)

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - the built market's attribute
        if name.startswith("__") or name in ("inner", "_build"):
            raise AttributeError(name)
        return getattr(self.inner, name)


def build_market(settings: Settings, home: Home, clock: Clock) -> MarketData:
    """The MarketData adapter for ``settings.market``."""
    if settings.market == "sim":
        from trading_brain.adapters.sim import SimMarket

        return SimMarket(settings.symbols, seed=settings.sim.seed, clock=clock)
    if settings.market == "replay":
        from trading_brain.adapters.replay import ReplayMarket

        if not settings.replay.data:
            raise ConfigError("market = 'replay' needs replay.data = [files or folders]")
        paths = [p if Path(p).is_absolute() else str(home.root / p) for p in settings.replay.data]
        return ReplayMarket(paths, clock=clock)
    from trading_brain.adapters.kraken import KrakenMarket

    return KrakenMarket(settings.kraken, clock=clock)


def import_candle_files(
    paths: Path | str | Iterable[Path | str], store: ImportStore, symbol: str | None = None,
    timeframe: str | None = None, progress: Progress | None = None, *, replace: bool = False,
) -> ImportReport:
    """``engine.importer.import_files`` wired to the replay file readers (`import-ohlcv`)."""
    from trading_brain.adapters.replay.files import expand, read_candle_file

    return import_files(paths, store, symbol, timeframe, progress,
                        reader=read_candle_file, expand=expand, replace=replace)


def executor_slots(rt: Runtime, pairs: Mapping[str, AssetPair]) -> dict[str, SlotSetup]:
    """The executor's slots: ``active`` always, shadow slots while they have business
    (pending intents, open positions or orders not finished: ``store.busy_slots``).

    The active slot trades on the venue ``settings.execution`` names (Kraken only with
    ``allow_live_orders`` and both keys — anything less raises OperationalError); shadow slots
    always trade on paper. In live mode the active slot's capital is the venue's: its first
    tick deposits the venue's USD balance and takes the coins held then as the baseline
    (``SlotSetup.venue_capital``); ``starting_cash`` funds the paper slots only.
    """
    from trading_brain.engine.executor.tick import SlotSetup

    capital = Decimal(repr(rt.settings.starting_cash))
    slots = {"active": SlotSetup(rt.exchange_for("active", pairs), capital,
                                 venue_capital=rt.settings.execution == "kraken")}
    for slot in sorted(rt.store.busy_slots() - {"active"}):
        slots[slot] = SlotSetup(rt.exchange_for(slot, pairs), capital)
    return slots


def build_exchange(rt: Runtime, slot: str, pairs: Mapping[str, AssetPair]) -> Exchange:
    """The venue of ``slot``: Kraken for the active slot in live mode, else paper."""
    if slot == "active" and rt.settings.execution == "kraken":
        from trading_brain.adapters.kraken.execution import KrakenExecution
        from trading_brain.settings import Secrets

        return KrakenExecution(rt.settings, Secrets.load(rt.home.root), rt.clock)
    from trading_brain.adapters.paper.exchange import PaperExchange

    return PaperExchange(rt.market, rt.clock, rt.store, pairs, account=slot,
                         starting_cash=Decimal(repr(rt.settings.starting_cash)))
