"""A parameter sweep cut into chunks that any Dagster executor can run (``sweep_job``).

Contract (no Dagster here; every failure is a one-line ConfigError / DataError / StrategyError):
- ``SweepRequest.parse`` checks the inputs before any work (strategy ref, ``grid_json``: a
  ``{param: [values]}`` object, symbols, window, costs, ``chunk_size`` >= 1).
- ``plan_sweep(store, home, req)`` is the ONE step that reads the warehouse: it resolves the
  version's source (registry, else ``strategies/``), exports the window's candles to a Parquet
  snapshot (``parquet_export``, under ``<home>/var/exports/candles``) and cuts the grid's sets
  (``optimize.grid_sets``, in grid order; set ``i`` is the i-th combination) into chunks of at
  most ``chunk_size`` sets per symbol: ``SweepChunk``s, plain picklable values.
- ``run_chunk(chunk, settings)`` never opens DuckDB: it reads its symbol's bars from the
  snapshot (checksum checked), starts ONE sandbox worker for the version (``VersionWorker``;
  defaults overlaid by each set, every value checked against the strategy's schema), generates
  the signals of all its sets in one round trip and runs them through the fast engine
  (``optimize.sweep``). Per set: its metrics (``backtest.json_metrics``) or the one-line reason
  the strategy's ``Params`` refused it.
- ``sweep_in_process`` is the reference: the same sets in one process and one worker per
  symbol, bars read from the warehouse directly; its rows equal the chunks' rows.
- ``write_results(store, results)`` (the collecting step, the warehouse's one writer) stores
  every valid set as a ``backtests`` row (engine ``fast``, one symbol, no trades) in ONE
  transaction, keyed by a digest of strategy, source, params, costs, symbol and data; a re-run
  replaces the same rows. Returns the rows written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from trading_brain.app.research import backtest as bt
from trading_brain.app.research import optimize as opt
from trading_brain.app.research.parquet_export import export_candles, read_export
from trading_brain.errors import ConfigError, DataError

if TYPE_CHECKING:
    from trading_brain.adapters.duckdb import Store
    from trading_brain.settings import Home, Settings

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SweepRequest:
    """What to sweep: ``ref`` (``ID@V``) over ``grid`` on ``symbols``' bars in the window."""

    ref: str
    grid: dict[str, list[Any]]
    symbols: tuple[str, ...]
    timeframe: str
    start: datetime | None
    end: datetime | None
    costs: bt.Costs
    chunk_size: int

    @classmethod
    def parse(cls, ref: str, grid_json: str, symbols: Sequence[str], timeframe: str,
              start: str, end: str, costs: bt.Costs, chunk_size: int) -> SweepRequest:
        """Validate raw values (see the module docstring)."""
        from trading_brain.engine.registry import parse_ref

        parse_ref(ref)
        grid = bt.json_object(grid_json, "grid_json")
        opt.grid_sets(grid, {})
        if not symbols:
            raise ConfigError("a sweep needs at least one symbol")
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
        return cls(ref, grid, tuple(symbols), timeframe, bt.parse_time(start, "start"),
                   bt.parse_time(end, "end"), costs, chunk_size)


@dataclass(frozen=True, slots=True)
class SweepChunk:
    """One unit of fan-out work: ``sets`` ((grid index, overrides)) of ``ref`` on ``symbol``."""

    key: str
    ref: str
    source: str
    symbol: str
    snapshot: str
    data_sha256: str
    first_ts: str
    last_ts: str
    sets: tuple[tuple[int, dict[str, Any]], ...]
    costs: bt.Costs


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """The rows of one chunk (``{set, symbol, params, metrics}`` or ``{..., skipped}``)."""

    chunk: SweepChunk
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class SweepPlan:
    ref: str
    snapshot: str
    n_sets: int
    chunks: tuple[SweepChunk, ...]


def plan_sweep(store: Store, home: Home, req: SweepRequest) -> SweepPlan:
    """Export the candles and cut the sweep into chunks (see the module docstring)."""
    from trading_brain.app.research.register import strategy_source

    sid, ver, source, _path = strategy_source(req.ref, store)
    ref = f"{sid}@{ver}"
    exp = export_candles(store, home.var / "exports" / "candles", req.symbols, req.timeframe,
                         req.start, req.end)
    sets = opt.grid_sets(req.grid, {})
    chunks = []
    for sym in req.symbols:
        entry = exp.entry(sym)
        for lo in range(0, len(sets), req.chunk_size):
            part = tuple((i, sets[i]) for i in range(lo, min(lo + req.chunk_size, len(sets))))
            key = f"{sym.replace('/', '_')}_{lo // req.chunk_size:04d}"
            chunks.append(SweepChunk(key, ref, source, sym, str(exp.path), entry["sha256"],
                                     entry["first_ts"], entry["last_ts"], part, req.costs))
    return SweepPlan(ref, str(exp.path), len(sets), tuple(chunks))


def run_chunk(chunk: SweepChunk, settings: Settings) -> ChunkResult:
    """Metrics of the chunk's sets on its symbol, from the Parquet snapshot (never DuckDB)."""
    from trading_brain.app.research.parquet_export import open_export

    exp = open_export(chunk.snapshot)
    if exp.entry(chunk.symbol)["sha256"] != chunk.data_sha256:
        raise DataError(f"candle export {chunk.snapshot} changed since the sweep was planned")
    bars = {chunk.symbol: read_export(exp, chunk.symbol)}
    bt.check_gaps(bars)
    with bt.VersionWorker.open(settings, chunk.ref, chunk.source) as worker:
        rows = _sweep_sets(worker, bars, chunk.sets, chunk.costs)
    return ChunkResult(chunk, tuple(rows))


def sweep_in_process(store: Store, settings: Settings, req: SweepRequest) -> list[Row]:
    """The reference: every set in one process, bars straight from the warehouse."""
    from trading_brain.app.research.data import warehouse_bars
    from trading_brain.app.research.register import strategy_source

    sid, ver, source, _path = strategy_source(req.ref, store)
    bars = warehouse_bars(store, req.symbols, req.timeframe, req.start, req.end)
    bt.check_gaps(bars)
    sets = tuple(enumerate(opt.grid_sets(req.grid, {})))
    rows: list[Row] = []
    with bt.VersionWorker.open(settings, f"{sid}@{ver}", source) as worker:
        for sym in req.symbols:
            rows += _sweep_sets(worker, {sym: bars[sym]}, sets, req.costs)
    return sorted(rows, key=_order)


def collect(results: Sequence[ChunkResult]) -> list[Row]:
    """Every chunk's rows, ordered by (symbol, set)."""
    return sorted((r for res in results for r in res.rows), key=_order)


def write_results(store: Store, results: Sequence[ChunkResult]) -> int:
    """Store every valid set as a ``backtests`` row, all in one transaction."""
    from trading_brain.adapters.duckdb.sweep_results import save_backtest_rows
    from trading_brain.engine.registry import parse_ref, sha256

    now = datetime.now(UTC)
    out = []
    for res in results:
        c = res.chunk
        sid, ver = parse_ref(c.ref)
        for r in res.rows:
            if "metrics" not in r:
                continue
            inputs = {"strategy": c.ref, "source_sha256": sha256(c.source), "params": r["params"],
                      "engine": "fast", "cash": c.costs.cash, "fee": c.costs.fee,
                      "slippage": c.costs.slippage, "symbol": c.symbol, "data": c.data_sha256}
            bid = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
            out.append({"backtest_id": bid, "strategy_id": sid, "version": ver or 0,
                        "engine": "fast", "params": r["params"], "symbols": [c.symbol],
                        "start_ts": datetime.fromisoformat(c.first_ts),
                        "end_ts": datetime.fromisoformat(c.last_ts), "cash": c.costs.cash,
                        "fee": c.costs.fee, "slippage": c.costs.slippage,
                        "metrics": r["metrics"], "created_at": now})
    return save_backtest_rows(store, out)


def best_by(rows: Sequence[Row], objective: str) -> dict[str, Row]:
    """Per symbol, the valid row ranked first by ``objective`` (``optimize.ranking``)."""
    best: dict[str, Row] = {}
    for sym in sorted({r["symbol"] for r in rows}):
        ok = [r for r in rows if r["symbol"] == sym and "metrics" in r]
        if ok:
            vals = [{k: (float("nan") if v is None else v) for k, v in r["metrics"].items()}
                    for r in ok]
            best[sym] = ok[opt.ranking(vals, objective)[0]]
    return best


def _sweep_sets(worker: bt.VersionWorker, bars: dict[str, pl.DataFrame],
                sets: Sequence[tuple[int, dict[str, Any]]], costs: bt.Costs) -> list[Row]:
    (sym,) = bars
    schema, defaults = worker.defaults()
    for _, overrides in sets:
        for key, value in overrides.items():
            bt.check_params({key: value}, schema, worker.ref)
    full = [{**defaults, **overrides} for _, overrides in sets]
    got = worker.signal_sets(bars, full)
    ok = [j for j, g in enumerate(got) if not isinstance(g, ConfigError)]
    signals = [g for g in got if not isinstance(g, ConfigError)]
    metrics = opt.sweep(bars, signals, costs) if signals else []
    rows: list[Row] = [{"set": sets[j][0], "symbol": sym, "params": full[j],
                        "skipped": str(g)} for j, g in enumerate(got)
                       if isinstance(g, ConfigError)]
    rows += [{"set": sets[j][0], "symbol": sym, "params": full[j],
              "metrics": bt.json_metrics(m)} for j, m in zip(ok, metrics, strict=True)]
    return sorted(rows, key=_order)


def _order(r: Row) -> tuple[str, int]:
    return (r["symbol"], r["set"])
