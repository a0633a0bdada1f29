"""Build the adapters of one home from its settings — the one place the environment is chosen.

``Runtime(home)`` reads ``trading_brain.toml`` and hands out the warehouse store, the clock and
the market adapter the settings name (``sim`` default, ``replay``, ``kraken``). Adapters are
imported lazily so a command pays only for what it uses. ``now`` pins the clock (tests, replays).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cached_property
from pathlib import Path

from trading_brain.adapters.clock import SimClock, SystemClock
from trading_brain.adapters.duckdb import Store
from trading_brain.domain.risk import RiskLimits
from trading_brain.engine.importer import ImportReport, ImportStore, Progress, import_files
from trading_brain.errors import ConfigError
from trading_brain.ports import Clock, MarketData, StrategyWorkers
from trading_brain.settings import Home, Settings, load_settings


class Runtime:
    """Settings, store, clock and market of one home."""

    def __init__(self, home: Home | Path | str | None = None, *, now: datetime | None = None,
                 settings: Settings | None = None) -> None:
        self.home = home if isinstance(home, Home) else Home(home)
        self._settings = settings
        self._now = now

    @cached_property
    def settings(self) -> Settings:
        return self._settings or load_settings(self.home)

    @cached_property
    def clock(self) -> Clock:
        return SimClock(self._now) if self._now is not None else SystemClock()

    @cached_property
    def store(self) -> Store:
        return Store.open(self.home.warehouse)

    @cached_property
    def market(self) -> MarketData:
        return build_market(self.settings, self.home, self.clock)

    @cached_property
    def workers(self) -> StrategyWorkers:
        """The sandbox-worker service (``ports.StrategyWorkers``); its owner closes it."""
        from trading_brain.app.research.register import open_workers

        return open_workers(self.settings)

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

    def store_asset_pairs(self) -> dict:
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
    """``engine.importer.import_files`` wired to the replay file readers (what `import-ohlcv` runs)."""
    from trading_brain.adapters.replay.files import expand, read_candle_file

    return import_files(paths, store, symbol, timeframe, progress,
                        reader=read_candle_file, expand=expand, replace=replace)


def executor_slots(rt: Runtime, pairs: dict) -> dict:
    """The executor's slots: ``active`` always, shadow slots while they have business.

    The active slot trades on the venue ``settings.execution`` names (Kraken only with
    ``allow_live_orders`` and both keys — anything less raises OperationalError); shadow slots
    always trade on paper. In live mode the active slot's capital is the venue's: its first
    tick deposits the venue's USD balance and takes the coins held then as the baseline
    (``SlotSetup.venue_capital``); ``starting_cash`` funds the paper slots only.
    """
    from decimal import Decimal

    from trading_brain.engine.executor.tick import SlotSetup

    capital = Decimal(repr(rt.settings.starting_cash))
    busy = {i.slot for i in rt.store.intents("pending")} | {
        r[0] for r in rt.store.execute(
            "SELECT DISTINCT slot FROM positions WHERE status = 'open' UNION "
            "SELECT DISTINCT slot FROM orders WHERE state NOT IN "
            "('filled', 'canceled', 'rejected', 'expired')")}
    slots = {"active": SlotSetup(build_exchange(rt, "active", pairs), capital,
                                 venue_capital=rt.settings.execution == "kraken")}
    for slot in sorted(busy - {"active"}):
        slots[slot] = SlotSetup(build_exchange(rt, slot, pairs), capital)
    return slots


def build_exchange(rt: Runtime, slot: str, pairs: dict):  # noqa: ANN201 - an ports.Exchange
    """The venue of ``slot``: Kraken for the active slot in live mode, else paper."""
    from decimal import Decimal

    if slot == "active" and rt.settings.execution == "kraken":
        from trading_brain.adapters.kraken.execution import KrakenExecution
        from trading_brain.settings import Secrets

        return KrakenExecution(rt.settings, Secrets.load(rt.home.root), rt.clock)
    from trading_brain.adapters.paper.exchange import PaperExchange

    return PaperExchange(rt.market, rt.clock, rt.store, pairs, account=slot,
                         starting_cash=Decimal(repr(rt.settings.starting_cash)))
