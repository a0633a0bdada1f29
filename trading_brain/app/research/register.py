"""Research services shared by the CLI and the Dagster research assets.

Wires the sandbox worker, the registry engine and candle files together:
- ``open_workers(settings)``: a sandbox-worker service (``ports.StrategyWorkers``) for code
  without a runtime; every strategy source runs in one of its workers;
- ``sample_bars()``: deterministic sim bars used to validate a version before it is recorded;
- ``load_bars(paths, symbol, timeframe)``: candle files → validated per-symbol bar frames
  (one-line ``DataError`` for empty data; invalid rows are dropped and counted);
- ``strategy_source(ref, store)``: the source of ``ID[@V]`` from the registry or ``strategies/``;
- ``register_files(..., catalog=...)``: registration also tells the home's Dagster catalog
  (``VersionCatalog``: one ``backtests`` partition per version, a ``strategy_versions`` event),
  so ``backtest_job`` knows every registered version without a Dagster run; ``home_catalog``
  opens the home's (None when ``var/dagster`` was never prepared). A busy or broken catalog
  is a logged warning, never a failed registration.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from trading_brain.domain.candles import BARS_COLUMNS
from trading_brain.engine.registry import RegistryStore, parse_ref
from trading_brain.errors import ConfigError, DataError, TemporaryError
from trading_brain.ports import StrategyWorkers
from trading_brain.settings import Home, Settings

log = logging.getLogger(__name__)


class VersionCatalog(Protocol):
    """Where registered versions are announced (``adapters.dagster_catalog.DagsterCatalog``)."""

    def versions_registered(self, keys: Sequence[str], registered_now: int,
                            table_md: str | None = None) -> list[str]: ...


@contextmanager
def home_catalog(home: Home, source: str) -> Iterator[VersionCatalog | None]:
    """The Dagster catalog of ``home`` (``var/dagster``), None when it was never prepared or
    cannot be opened (a warning)."""
    if not (home.dagster_home / "dagster.yaml").is_file():
        yield None
        return
    from trading_brain.adapters.dagster_catalog import DagsterCatalog

    with ExitStack() as stack:
        try:
            catalog = stack.enter_context(DagsterCatalog.open(home.dagster_home, source))
        except TemporaryError as e:
            log.warning("%s; versions not announced to Dagster", e)
            catalog = None
        yield catalog


SAMPLE_SEED = 7
SAMPLE_BARS = 4000


def open_workers(settings: Settings) -> StrategyWorkers:
    """A sandbox-worker service of ``settings.sandbox`` (the caller closes it)."""
    from trading_brain.adapters.sandbox.pool import SandboxWorkers

    return SandboxWorkers(settings)


def sample_bars(n: int = SAMPLE_BARS, symbol: str = "BTC/USD") -> pl.DataFrame:
    """``n`` deterministic closed 5m bars of the sim market (validation fixture)."""
    from trading_brain.adapters.clock import SimClock
    from trading_brain.adapters.sim import SimMarket

    end = datetime(2025, 6, 1, tzinfo=UTC)
    market = SimMarket([symbol], seed=SAMPLE_SEED, clock=SimClock(end))
    return market.candles(symbol, "5m", end - timedelta(minutes=5 * n), end).select(BARS_COLUMNS)


def load_bars(paths: list[str], symbol: str | None = None,
              timeframe: str | None = None) -> dict[str, pl.DataFrame]:
    """Validated bars per symbol from candle files (a file or a folder each)."""
    from trading_brain.adapters.replay.files import read_candles
    from trading_brain.engine.candles import validate

    raw = read_candles(paths, symbol=symbol, timeframe=timeframe)
    good, _bad = validate(raw)
    if good.is_empty():
        raise DataError(f"no valid candles in {', '.join(paths)}")
    tfs = good["timeframe"].unique().to_list()
    if len(tfs) > 1:
        raise DataError(f"mixed timeframes {sorted(tfs)} in {', '.join(paths)}; pass --timeframe "
                        "or one timeframe's files")
    return {s: part.sort("ts").select(BARS_COLUMNS)
            for (s,), part in good.partition_by("symbol", as_dict=True).items()}


def strategy_source(ref: str, store: RegistryStore | None = None,
                    root: Path | None = None) -> tuple[str, int, str, str | None]:
    """(strategy_id, version, source, path) of ``ID[@V]`` (newest version when V is omitted)."""
    from trading_brain.app.research.strategy_files import STRATEGIES_ROOT, find_strategies

    sid, ver = parse_ref(ref)
    if store is not None:
        rows = store.strategy_versions(sid)
        row = (next((r for r in rows if r["version"] == ver), None) if ver
               else (rows[-1] if rows else None))
        if row is not None:
            return row["strategy_id"], row["version"], row["source"], row["path"]
    refs = [r for r in find_strategies(root or STRATEGIES_ROOT) if r.strategy_id == sid]
    if ver is not None:
        refs = [r for r in refs if r.version == ver]
    if not refs:
        known = sorted({r.strategy_id for r in find_strategies(root or STRATEGIES_ROOT)})
        raise ConfigError(f"unknown strategy {ref!r}; known: {', '.join(known)}")
    r = max(refs, key=lambda r: r.version)
    return r.strategy_id, r.version, r.path.read_text(encoding="utf-8"), str(r.path)


def register_files(store: RegistryStore, settings: Settings, files: list[Path] | None,
                   reason: str, *, workers: StrategyWorkers | None = None,
                   catalog: VersionCatalog | None = None) -> list[dict[str, Any]]:
    """Validate and record strategy files (default: all of ``strategies/``), oldest first; each
    in a fresh worker of ``workers`` (``validate``; default: a service of its own, closed
    after). ``catalog`` then learns every registered version (its partitions)."""
    from trading_brain.app.research.strategy_files import find_strategies
    from trading_brain.engine.registry import register

    paths = files if files is not None else [r.path for r in find_strategies()]
    service = workers or open_workers(settings)
    bars, out = sample_bars(), []
    try:
        for path in paths:
            row, created = register(store, path.read_text(encoding="utf-8"), service.validate,
                                    bars, path=str(path), reason=reason)
            out.append({"strategy": row["strategy_id"], "version": row["version"],
                        "created": created, "status": row["status"]})
    finally:
        if workers is None:
            service.close()
    if catalog is not None:
        keys = [f"{r['strategy_id']}@{r['version']}" for r in store.strategy_versions()]
        try:
            catalog.versions_registered(keys, sum(bool(r["created"]) for r in out))
        except TemporaryError as e:
            log.warning("%s; versions not announced to Dagster", e)
    return out
