"""Optimise a strategy version: grid sweep, ranking and anchored walk-forward (fast engine).

Contract (the ``optimize`` command's service; see ``backtesting`` for inputs and data rules):
- ``grid_sets(grid, defaults)``: the cartesian product of a ``{param: [values]}`` grid over the
  defaults (a ConfigError names a malformed entry);
- ``sweep``: fast-engine metrics of each signal set; ``ranking`` orders them by ``OBJECTIVES``
  (higher is better except max_drawdown; non-finite/NaN last; ties keep grid order);
- ``walk_forward`` (anchored): the bars after the first ``train`` fraction are cut into ``folds``
  equal test windows; fold i picks the best set by the objective on every bar before its window
  (in-sample) and scores that set on the window (out-of-sample, fresh cash). The report gives each
  fold's metrics and the mean in-sample minus out-of-sample objective (``gap``): large = over-fit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from trading_brain.app.research.backtest import (
    METRIC_KEYS,
    Bars,
    Costs,
    json_metrics,
    require_aligned,
)
from trading_brain.errors import ConfigError, DataError

OBJECTIVES = {"sharpe": 1.0, "sortino": 1.0, "total_return": 1.0, "final_equity": 1.0,
              "profit_factor": 1.0, "win_rate": 1.0, "max_drawdown": -1.0}  # sign: higher=better


def grid_sets(grid: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the grid's value lists over the defaults, in grid order."""
    if not grid:
        raise ConfigError("--grid must name at least one parameter with a list of values")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"--grid value for {key!r} must be a non-empty JSON list")
    keys = list(grid)
    return [{**defaults, **dict(zip(keys, combo, strict=True))}
            for combo in itertools.product(*(grid[k] for k in keys))]


def sweep(bars: Bars, signal_sets: Sequence[Bars], costs: Costs) -> list[dict[str, float]]:
    """Fast-engine metrics of each signal set (one dict per set, input order)."""
    if len(bars) == 1:
        from trading_brain.engine.backtest.sweep import run_sweep

        (sym,) = bars
        table = run_sweep(bars[sym], [s[sym] for s in signal_sets], costs.cash, costs.fee,
                          costs.slippage)
        return table.select(METRIC_KEYS).to_dicts()
    require_aligned(bars)
    from dataclasses import asdict

    from trading_brain.engine.backtest.fast import run_fast_portfolio

    return [asdict(run_fast_portfolio(bars, s, costs.cash, costs.fee, costs.slippage,
                                      order=sorted(bars)).metrics) for s in signal_sets]


def ranking(metrics: Sequence[Mapping[str, float]], objective: str) -> list[int]:
    """Indices best first by ``objective`` (NaN last, ties in input order)."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    sign = OBJECTIVES[objective]

    def key(i: int) -> tuple[bool, float]:
        v = float(metrics[i][objective])
        return (math.isnan(v), -sign * v if not math.isnan(v) else 0.0)

    return sorted(range(len(metrics)), key=key)


def walk_forward(bars: Bars, signal_sets: Sequence[Bars], params: Sequence[dict[str, Any]],
                 costs: Costs, objective: str, train: float = 0.7,
                 folds: int = 1) -> dict[str, Any]:
    """Anchored walk-forward over ``folds`` test windows after the first ``train`` fraction."""
    check_walk_forward(train, folds)
    times = np.unique(np.concatenate([b["ts"].cast(pl.Int64).to_numpy() for b in bars.values()]))
    cuts = np.linspace(int(len(times) * train), len(times), folds + 1).astype(int)
    if np.any(np.diff(cuts) < 2) or cuts[0] < 2:
        raise DataError(f"too few bars ({len(times)}) for {folds} walk-forward fold(s)")
    out, gaps = [], []
    for lo, hi in itertools.pairwise(cuts):
        fold = _fold(bars, signal_sets, params, costs, objective, int(times[lo]),
                     int(times[hi]) if hi < len(times) else None)
        out.append(fold)
        gi, go = fold["in_sample"][objective], fold["out_of_sample"][objective]
        gaps.append(gi - go if gi is not None and go is not None else math.nan)
    gap = float(np.mean(gaps))
    return {"objective": objective, "train_fraction": train, "anchored": True, "folds": out,
            "gap": gap if math.isfinite(gap) else None}


def check_walk_forward(train: float, folds: int) -> None:
    """ConfigError unless 0.1 <= train <= 0.9 and 1 <= folds <= 50."""
    if not (0.1 <= train <= 0.9) or not (1 <= folds <= 50):
        raise ConfigError(f"--train must be in [0.1, 0.9] and --folds in [1, 50], got "
                          f"{train} and {folds}")


def _fold(bars: Bars, signal_sets: Sequence[Bars], params: Sequence[dict[str, Any]],
          costs: Costs, objective: str, test_start: int, test_end: int | None) -> dict[str, Any]:
    def part(lo: int | None, hi: int | None) -> Callable[[pl.DataFrame], pl.DataFrame]:
        ts = pl.col("ts").cast(pl.Int64)
        cond = (ts >= lo if lo is not None else pl.lit(True)) & (
            ts < hi if hi is not None else pl.lit(True))
        return lambda f: f.filter(cond)

    train_f, test_f = part(None, test_start), part(test_start, test_end)
    train_bars = {s: f for s, b in bars.items() if (f := train_f(b)).height >= 2}
    test_bars = {s: f for s, b in bars.items() if (f := test_f(b)).height >= 2}
    if not train_bars or not test_bars:
        raise DataError("a walk-forward window has no bars for any symbol")
    ins = sweep(train_bars, [{s: train_f(sig[s]) for s in train_bars} for sig in signal_sets],
                costs)
    best = ranking(ins, objective)[0]
    oos = sweep(test_bars, [{s: test_f(signal_sets[best][s]) for s in test_bars}], costs)[0]
    return {"train": _span(train_bars), "test": _span(test_bars), "best_params": params[best],
            "in_sample": json_metrics(ins[best]), "out_of_sample": json_metrics(oos)}


def _span(bars: Bars) -> dict[str, Any]:
    lo = min(b.get_column("ts")[0] for b in bars.values())  # bars are sorted by ts
    hi = max(b.get_column("ts")[-1] for b in bars.values())
    return {"start": _iso(lo), "end": _iso(hi), "bars": max(b.height for b in bars.values())}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
