"""The ``backtests`` asset's use case: backtest a registered version over the warehouse.

``run_version_backtest(rt, "ID@V", config)`` reads the version's source from
``strategy_versions`` and the candles of ``config`` (symbols, timeframe, start, end) from the
warehouse, runs it in the runtime's sandbox worker (``backtest.VersionWorker`` over
``rt.workers``) with a look-ahead check on the same data, stores the result
(``Store.save_backtest``) and returns it with the sandbox validation verdict. Kept apart from
``register`` so that ``backtest`` -> ``register`` is the only edge between them (no cycle).
"""

from __future__ import annotations

from typing import Any

from trading_brain.app.research import backtest as bt
from trading_brain.app.runtime import Runtime
from trading_brain.domain.candles import BARS_COLUMNS
from trading_brain.engine.lookahead import check_lookahead
from trading_brain.engine.registry import parse_ref
from trading_brain.errors import ConfigError, DataError


def run_version_backtest(rt: Runtime, key: str, config: dict[str, Any]) -> dict[str, Any]:
    """Backtest the registered version ``key`` (``ID@V``) over the warehouse's candles.

    Returns the backtest JSON, the equity curve, the look-ahead report on the same data and the
    sandbox validation verdict; saves the result with ``Store.save_backtest``.
    """
    sid, ver = parse_ref(key)
    row = rt.store.strategy_version(sid, ver or 0)
    if row is None:
        raise ConfigError(f"{key} is not registered; materialise strategy_versions first")
    start = bt.parse_time(config["start"] or None, "start")
    end = bt.parse_time(config["end"] or None, "end")
    symbols = config["symbols"] or rt.settings.symbols
    candles = rt.store.read_candles(symbols, config["timeframe"], start, end)
    if candles.is_empty():
        raise DataError(f"no {config['timeframe']} candles for {', '.join(symbols)} "
                        "in the warehouse")
    bars = {s: p.sort("ts").select(BARS_COLUMNS)
            for (s,), p in candles.partition_by("symbol", as_dict=True).items()}
    bt.check_gaps(bars)
    costs = bt.Costs(config["cash"], config["fee"], config["slippage"])
    with bt.VersionWorker(rt.workers, key, row["source"]) as worker:
        schema, defaults = worker.defaults()
        overrides = bt.json_object(config["params_json"] or None, "params_json")
        bt.check_params(overrides, schema, key)
        params = {**defaults, **overrides}
        signals = worker.signals(bars, params)
        first = sorted(bars)[0]
        look = check_lookahead(worker.worker, bars[first], cut_points=10, params=params)
        missing = worker.worker.missing_layers()
    result = bt.run_backtest(bars, signals, config["engine"], costs)
    out = bt.backtest_json(key, config["engine"], params, result)
    record, trades = bt.backtest_record(out, result, row["sha256"], bars, costs)
    rt.store.save_backtest(record, trades)
    gates = (row.get("validation") or {}).get("lookahead", {}).get("passed", False)
    valid = {"passed": bool(gates) and not missing,
             "summary": ("registration gates passed; worker enforced seccomp and Landlock"
                         if gates and not missing else
                         f"registration gates passed={gates}; missing layers: {missing or 'none'}")}
    return {"json": out, "equity": result.equity, "backtest_id": record["backtest_id"],
            "symbols": sorted(bars), "lookahead": look.to_metadata(), "validation": valid}
