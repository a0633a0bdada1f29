"""The work behind `trading-brain init` (kept out of the click layer so tests call it directly).

Every refusal comes before anything is written: invalid settings (``settings.parse_settings``:
strict switches, bounded numbers, at most 50 symbols, sim symbols from the sim universe) and,
for ``market = "kraken"`` with a bootstrap, symbols missing from the venue's AssetPairs (one
public call; ``--no-bootstrap`` stays offline and the check happens at the first bootstrap).

What init wrote outside Dagster is then told to the home's Dagster instance (``var/dagster``,
``adapters.dagster_catalog``): one runless materialization per day partition of
``candles_5m/1h/1d`` holding candles, the ``strategy_version`` partitions of ``backtest_job`` and a
``strategy_versions`` materialization. Nothing to tell (``--no-bootstrap`` and no strategy)
opens no instance. A busy or broken Dagster storage does not fail init: the summary's
``dagster_catalog`` says what was reported, or why not.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from trading_brain.app.home.config_file import render
from trading_brain.errors import ConfigError
from trading_brain.settings import Home, Settings, load_settings, parse_settings

if TYPE_CHECKING:
    from trading_brain.adapters.dagster_catalog import DagsterCatalog
    from trading_brain.app.runtime import Runtime

DEFAULT_STRATEGY = "ema_cross@1"


def initialise(
    home: Home, *, market: str | None = None, symbols: str | None = None,
    data: list[str] | None = None, seed: int | None = None, bootstrap: bool = True,
    force: bool = False, progress: Callable[[int, int, str], None] | None = None,
    strategy: str | None = DEFAULT_STRATEGY,
) -> dict:
    """Create or complete the home; return a summary. Existing config is kept unless ``force``."""
    overrides = {k: v for k, v in {
        "market": market,
        "symbols": [s for s in symbols.split(",") if s.strip()] if symbols else None,
        "replay": {"data": [str(Path(p).resolve()) for p in data]} if data else None,
        "sim": {"seed": seed} if seed is not None else None,
    }.items() if v is not None}
    if home.config_file.exists() and not force:
        if overrides:
            raise ConfigError(f"{home.config_file} exists; pass --force to overwrite it")
        settings = load_settings(home)
    else:
        settings = parse_settings(overrides)
    if settings.market == "replay" and not settings.replay.data:
        raise ConfigError("--market replay needs --data PATH (files or folders of candles)")
    if bootstrap and settings.market == "kraken":
        _check_kraken_symbols(settings)
    home.root.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(render(settings), encoding="utf-8")
    for d in (home.var, home.logs, home.dagster_home):
        d.mkdir(parents=True, exist_ok=True)
    from trading_brain.app.runtime import build_runtime
    from trading_brain.app.serve import prepare_dagster_home

    prepare_dagster_home(home)
    rt = build_runtime(home, settings=settings)
    stored = 0
    if bootstrap:
        from trading_brain.engine.bootstrap import bootstrap_history

        h = settings.history
        rt.store_asset_pairs()
        reports = bootstrap_history(rt.market, rt.store, settings.symbols,
                                    {"1d": h.days_1d, "1h": h.days_1h, "5m": h.days_5m},
                                    now=rt.clock.now(), progress=progress)
        stored = sum(r.stored for r in reports.values())
    registering = strategy is not None and rt.store.active_version() is None
    active = _deploy_default(rt, strategy)
    out = {"home": str(home.root), "market": settings.market, "symbols": settings.symbols,
           "schema_version": rt.store.schema_version(), "candles_stored": stored,
           "active_strategy": active}
    if bootstrap or registering:
        out["dagster_catalog"] = tell_dagster(rt, candles=bootstrap, versions=registering)
    return out


def candle_days(rt: Runtime, timeframe: str) -> dict[str, int]:
    """Stored candles of ``timeframe`` per UTC day (``YYYY-MM-DD`` -> rows)."""
    import polars as pl

    ts = rt.store.read_candles(rt.settings.symbols, timeframe).select("ts")
    if ts.is_empty():
        return {}
    days = ts.group_by(pl.col("ts").dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d")
                       .alias("day")).len()
    return {d: int(n) for d, n in days.iter_rows()}


def report_history(rt: Runtime, catalog: DagsterCatalog) -> dict[str, int]:
    """Materialize the candle day partitions the catalog does not show yet (per timeframe:
    events reported)."""
    from trading_brain.adapters.dagster_catalog import CANDLE_ASSETS

    return {tf: catalog.candle_days(tf, candle_days(rt, tf)) for tf in CANDLE_ASSETS}


def tell_dagster(rt: Runtime, *, candles: bool, versions: bool) -> dict[str, object]:
    """Report candles and versions to the home's Dagster instance (see the module docstring);
    also after ``trading-brain bootstrap``. A home whose ``var/dagster`` was never prepared
    (by ``init`` or ``up``) is left alone."""
    from trading_brain.adapters.dagster_catalog import DagsterCatalog, version_key
    from trading_brain.errors import TemporaryError

    out: dict[str, object] = {}
    if not (rt.home.dagster_home / "dagster.yaml").is_file():
        return {"error": f"no Dagster instance at {rt.home.dagster_home}"}
    try:
        with DagsterCatalog.open(rt.home.dagster_home, "by trading-brain init") as catalog:
            if candles:
                out["candle_partitions_reported"] = report_history(rt, catalog)
            if versions:
                keys = [version_key(r["strategy_id"], r["version"])
                        for r in rt.store.strategy_versions()]
                out["version_partitions_added"] = catalog.versions_registered(keys, len(keys))
    except TemporaryError as e:
        out["error"] = str(e)
    return out


def _check_kraken_symbols(settings: Settings) -> None:
    """Raise ConfigError naming every symbol Kraken's AssetPairs does not list."""
    from trading_brain.adapters.clock import SystemClock
    from trading_brain.adapters.kraken import KrakenMarket

    market = KrakenMarket(settings.kraken, clock=SystemClock())
    try:
        market.asset_pairs(settings.symbols)
    finally:
        market.close()


def _deploy_default(rt: Runtime, strategy: str | None) -> str | None:
    """Register the shipped strategies (sandbox gates) and deploy ``strategy`` unless a version
    is already active; returns the active ``ID@V`` (None when ``strategy`` is None)."""
    current = rt.store.active_version()
    if current is not None or strategy is None:
        return f"{current[0]}@{current[1]}" if current else None
    from trading_brain.app.research.register import register_files
    from trading_brain.engine.registry import deploy, parse_ref

    register_files(rt.store, rt.settings, None, "released")
    sid, ver = parse_ref(strategy)
    rows = rt.store.strategy_versions(sid)
    if not rows:
        raise ConfigError(f"unknown strategy {strategy!r} for init --strategy")
    version = ver or rows[-1]["version"]
    deploy(rt.store, sid, version, "deployed by init")
    return f"{sid}@{version}"
