"""`sweep_job`: a parameter sweep fanned out as dynamic outputs that any Dagster executor runs.

Graph: ``sweep_plan`` (pool ``warehouse``: the one step that reads DuckDB; exports the window's
candles to a Parquet snapshot and yields one ``SweepChunk`` per (symbol, block of
``chunk_size`` sets)) -> ``sweep_chunk`` per chunk (no pool, never opens DuckDB: reads the
snapshot with polars, runs its sets in a sandbox worker and the fast engine, returns the rows as
its output) -> ``sweep_write`` (pool ``warehouse``: the one writer; every row into
``backtests`` in one transaction; its output is all rows, ordered by symbol and set).
Use cases in ``app/research/fanout.py``.

Executor: ``TRADING_BRAIN_SWEEP_EXECUTOR`` picks it when the definitions load: ``multiprocess``
(default: Dagster's ``multi_or_in_process_executor``, run config ``execution: config:
multiprocess: max_concurrent: N``; add ``start_method: forkserver: preload_modules:
[trading_brain.defs.research.sweep]`` to fork steps from a process that imported the project:
see benchmarks/bench_sweep_fanout.py), ``k8s`` (``dagster_k8s.k8s_job_executor``: one Kubernetes
Job per step) or ``celery`` (``dagster_celery.celery_executor``); the package must be installed.
``TRADING_BRAIN_SWEEP_EXECUTOR_CONFIG`` (a JSON object, optional) is that executor's config
(``deploy/k8s/values.yaml`` sets both). Step outputs travel through the run's IO manager, so
on several machines it must be shared storage (see deploy/k8s/README.md).
"""

import json
import os
from collections.abc import Iterator

import dagster as dg

from trading_brain.app.research import backtest as bt
from trading_brain.app.research import optimize as opt
from trading_brain.app.research.fanout import (
    ChunkResult,
    SweepChunk,
    SweepRequest,
    best_by,
    collect,
    plan_sweep,
    run_chunk,
    write_results,
)
from trading_brain.defs.resources import WAREHOUSE_POOL, TradingBrainResource
from trading_brain.domain.fees import DEFAULT_TAKER_FEE
from trading_brain.errors import ConfigError
from trading_brain.settings import HOME_ENV, Home, load_settings

EXECUTOR_ENV = "TRADING_BRAIN_SWEEP_EXECUTOR"
EXECUTOR_CONFIG_ENV = "TRADING_BRAIN_SWEEP_EXECUTOR_CONFIG"
EXECUTORS = {"multiprocess": ("dagster", "multi_or_in_process_executor"),
             "k8s": ("dagster_k8s", "k8s_job_executor"),
             "celery": ("dagster_celery", "celery_executor")}


class SweepConfig(dg.Config):
    """What to sweep (empty symbols = the home's; empty start/end = all stored candles)."""

    strategy: str = "ema_cross@1"
    grid_json: str = '{"fast": [5, 9, 12], "slow": [21, 34, 55]}'
    symbols: list[str] = []
    timeframe: str = "5m"
    start: str = ""
    end: str = ""
    chunk_size: int = 100
    cash: float = 10_000.0
    fee: float = DEFAULT_TAKER_FEE
    slippage: float = 0.0005


class SweepWriteConfig(dg.Config):
    objective: str = "sharpe"  # ranks each symbol's best set in the run's metadata


def sweep_executor(env: dict[str, str] | None = None) -> dg.ExecutorDefinition:
    """The executor named by ``TRADING_BRAIN_SWEEP_EXECUTOR`` (see the module docstring)."""
    import importlib

    e = os.environ if env is None else env
    kind = e.get(EXECUTOR_ENV, "") or "multiprocess"
    if kind not in EXECUTORS:
        raise ConfigError(f"{EXECUTOR_ENV}={kind!r}; use one of {', '.join(EXECUTORS)}")
    module, name = EXECUTORS[kind]
    try:
        executor: dg.ExecutorDefinition = getattr(importlib.import_module(module), name)
    except ImportError:
        raise ConfigError(f"{EXECUTOR_ENV}={kind} needs the {module.replace('_', '-')} "
                          "package installed in the code location's image") from None
    raw = e.get(EXECUTOR_CONFIG_ENV, "")
    if raw:
        executor = executor.configured(bt.json_object(raw, EXECUTOR_CONFIG_ENV),
                                       name=f"{executor.name}_sweep")
    return executor


@dg.op(pool=WAREHOUSE_POOL, out=dg.DynamicOut(SweepChunk), tags={"kind": "duckdb"})
def sweep_plan(context: dg.OpExecutionContext, config: SweepConfig,
               tb: TradingBrainResource) -> Iterator[dg.DynamicOutput[SweepChunk]]:
    """Export the candles to Parquet and yield the sweep's chunks."""
    rt = tb.runtime
    costs = bt.Costs(config.cash, config.fee, config.slippage)
    req = SweepRequest.parse(config.strategy, config.grid_json,
                             config.symbols or list(rt.settings.symbols), config.timeframe,
                             config.start, config.end, costs, config.chunk_size)
    plan = plan_sweep(rt.store, rt.home, req)
    context.log.info(f"{plan.ref}: {plan.n_sets} sets x {len(req.symbols)} symbols in "
                     f"{len(plan.chunks)} chunks; candles exported to {plan.snapshot}")
    for chunk in plan.chunks:
        yield dg.DynamicOutput(chunk, mapping_key=chunk.key)


@dg.op(tags={"kind": "sandbox"})
def sweep_chunk(context: dg.OpExecutionContext, chunk: SweepChunk,
                tb: TradingBrainResource) -> ChunkResult:
    """One chunk of sets on one symbol, from the Parquet snapshot (never the warehouse)."""
    home = Home(tb.home or os.environ.get(HOME_ENV) or None)
    result = run_chunk(chunk, load_settings(home))
    context.log.info(f"{chunk.key}: {len(result.rows)} sets of {chunk.ref} on {chunk.symbol} "
                     f"(pid {os.getpid()})")
    return result


@dg.op(pool=WAREHOUSE_POOL, tags={"kind": "duckdb"})
def sweep_write(context: dg.OpExecutionContext, config: SweepWriteConfig,
                results: list[ChunkResult], tb: TradingBrainResource) -> dg.Output[list[dict]]:
    """Collect every chunk's rows and write them to ``backtests`` in one transaction."""
    opt.ranking([], config.objective)
    rows = collect(results)
    written = write_results(tb.runtime.store, results)
    best = best_by(rows, config.objective)
    meta: dict[str, dg.RawMetadataValue] = {
        "sets": len(rows), "written": written,
        "skipped": sum(1 for r in rows if "skipped" in r), "chunks": len(results),
        "objective": config.objective}
    for sym, row in best.items():
        meta[f"best {sym}"] = json.dumps({"params": row["params"],
                                          config.objective: row["metrics"][config.objective]})
    return dg.Output(rows, metadata=meta)


@dg.job(executor_def=sweep_executor(), tags={"kind": "research"},
        description="Parameter sweep fanned out over chunks of sets x symbols; workers read "
                    "a Parquet export, one step writes the results.")
def sweep_job() -> None:
    sweep_write(sweep_plan().map(sweep_chunk).collect())
