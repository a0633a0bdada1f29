"""Backtest evidence for the evolution gates: sweep runs and the walk-forward split (pure).

The data: ``bars`` per symbol over the recent history, ALIGNED (``align`` keeps the open times
every symbol has, so the fast engine can run all symbols in one cash pool, as the live slot
trades them). A parameter set's signals are computed once over the whole history (registered
versions pass the look-ahead check, so any later window is a slice of them).

- ``run_set(bars, signals, costs)``: the fast engine over all symbols sharing one cash pool; a
  ``Run`` keeps the hourly equity marks (the last bar of each UTC hour) and their simple
  returns, the closed trades, fees and the total return.
- The walk-forward split is anchored and single-fold: the first ``train`` fraction of the hours
  is in-sample (the search selects there), the rest out-of-sample. ``split_return(run, cut)``
  gives the compounded return on each side of the cut.
- ``walk_forward_gate(...)``: the exact engine replays the out-of-sample window (bars and
  signals sliced at the cut, fresh cash) for the candidate and the incumbent, and the fast
  engine does the same as a cross-check. Pass when the exact engine confirms the fast one
  (final equities within ``PARITY_TOLERANCE`` relative), the candidate beats the incumbent
  out of sample (exact returns, strictly) and it closed at least ``min_trades`` trades over the
  history. Its metrics carry every number (returns, trades, fees, the cut, the parity gap).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from trading_brain.domain.fees import DEFAULT_TAKER_FEE
from trading_brain.engine.backtest.exact import run_exact_portfolio
from trading_brain.engine.backtest.fast import run_fast_portfolio
from trading_brain.engine.backtest.metrics import BacktestResult
from trading_brain.engine.evolution.gates import GateResult, Metric
from trading_brain.errors import DataError

Frames = Mapping[str, pl.DataFrame]
HOUR_US = 3_600_000_000
PARITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Costs:
    """Starting cash and per-fill costs (taker fee, slippage on market orders)."""

    cash: float = 10_000.0
    fee: float = DEFAULT_TAKER_FEE
    slippage: float = 0.0005


@dataclass(frozen=True)
class Run:
    """One parameter set's full-history fast-engine run, reduced to what the gates need."""

    hours: np.ndarray  # int64 µs: the open time of each hour holding a mark
    marks: np.ndarray  # equity at the last bar of each hour
    trades: int  # closed trades
    fees: float
    total_return: float

    @property
    def returns(self) -> np.ndarray:
        """Simple hourly returns (one fewer than the marks)."""
        return self.marks[1:] / self.marks[:-1] - 1.0


def align(bars: Frames) -> dict[str, pl.DataFrame]:
    """Each symbol's bars restricted to the open times every symbol has (sorted)."""
    if not bars:
        raise DataError("no bars to evaluate")
    common: set[int] | None = None
    for b in bars.values():
        ts = set(b["ts"].cast(pl.Int64).to_list())
        common = ts if common is None else common & ts
    keep = pl.DataFrame({"_k": sorted(common or ())}, schema={"_k": pl.Int64})
    out = {s: b.with_columns(pl.col("ts").cast(pl.Int64).alias("_k")).join(keep, on="_k")
           .drop("_k").sort("ts") for s, b in sorted(bars.items())}
    if min(b.height for b in out.values()) < 2:
        raise DataError("the symbols share fewer than 2 bar times")
    return out


def _run(bars: Frames, signals: Frames, costs: Costs) -> BacktestResult:
    return run_fast_portfolio(bars, signals, costs.cash, costs.fee, costs.slippage,
                              order=sorted(bars))


def hourly(ts_us: np.ndarray, equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hour open times, equity at the last bar of each hour)."""
    hour = ts_us // HOUR_US
    last = np.flatnonzero(np.append(hour[1:] != hour[:-1], True))
    return hour[last] * HOUR_US, equity[last]


def run_set(bars: Frames, signals: Frames, costs: Costs) -> Run:
    """The fast engine over all symbols of ``bars`` (aligned) with one cash pool."""
    res = _run(bars, signals, costs)
    ts = res.equity["ts"].cast(pl.Int64).to_numpy()
    hours, marks = hourly(ts, res.equity["equity"].to_numpy().astype(np.float64))
    return Run(hours=hours, marks=marks, trades=int(res.metrics.n_trades),
               fees=float(res.metrics.fees_paid), total_return=float(res.metrics.total_return))


def cut_index(n_marks: int, train: float) -> int:
    """Index of the first out-of-sample mark: ``train`` of the marks are in-sample (>= 2)."""
    if n_marks < 4:
        raise DataError(f"{n_marks} hourly marks are too few for a walk-forward split")
    return min(max(int(n_marks * train), 2), n_marks - 2)


def split_return(run: Run, cut: int) -> tuple[float, float]:
    """(in-sample, out-of-sample) compounded return around mark index ``cut``."""
    return float(run.marks[cut - 1] / run.marks[0] - 1.0), float(run.marks[-1]
                                                                 / run.marks[cut - 1] - 1.0)


def _slice(frames: Frames, start_us: int) -> dict[str, pl.DataFrame]:
    cond = pl.col("ts").cast(pl.Int64) >= start_us
    return {s: f.filter(cond) for s, f in frames.items()}


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")


def oos_replay(bars: Frames, signals: Frames, start_us: int, costs: Costs
               ) -> tuple[BacktestResult, BacktestResult]:
    """(exact, fast) results over the bars from ``start_us`` on, fresh cash."""
    b, s = _slice(bars, start_us), _slice_signals(bars, signals, start_us)
    exact = run_exact_portfolio(b, s, costs.cash, costs.fee, costs.slippage, order=sorted(b))
    return exact, _run(b, s, costs)


def _slice_signals(bars: Frames, signals: Frames, start_us: int) -> dict[str, pl.DataFrame]:
    out = {}
    for sym, sig in signals.items():
        keep = (bars[sym]["ts"].cast(pl.Int64) >= start_us).to_numpy()
        out[sym] = sig.filter(pl.Series(keep))
    return out


def walk_forward_gate(bars: Frames, candidate: Frames, incumbent: Frames, cand_run: Run,
                      inc_run: Run, *, train: float, costs: Costs, min_trades: int
                      ) -> tuple[GateResult, dict[str, BacktestResult]]:
    """Gate 2 (module docstring); also returns the exact OOS results (``candidate``,
    ``incumbent``) for the report's equity chart."""
    cut = cut_index(len(cand_run.marks), train)
    start = int(cand_run.hours[cut - 1]) + HOUR_US  # the first bar after the last IS mark
    cand_exact, cand_fast = oos_replay(bars, candidate, start, costs)
    inc_exact, inc_fast = oos_replay(bars, incumbent, start, costs)
    parity = max(_gap(cand_exact, cand_fast), _gap(inc_exact, inc_fast))
    ce, ie = cand_exact.metrics, inc_exact.metrics
    is_c, oos_c = split_return(cand_run, cut)
    is_i, oos_i = split_return(inc_run, cut)
    metrics: dict[str, Metric] = {
        "oos_start": _iso(start), "train_fraction": train, "in_sample_hours": cut,
        "oos_hours": len(cand_run.marks) - cut,
        "candidate_is_return": is_c, "incumbent_is_return": is_i,
        "candidate_oos_return_fast": oos_c, "incumbent_oos_return_fast": oos_i,
        "candidate_oos_return": float(ce.total_return),
        "incumbent_oos_return": float(ie.total_return),
        "candidate_oos_trades": int(ce.n_trades), "incumbent_oos_trades": int(ie.n_trades),
        "candidate_oos_fees": float(ce.fees_paid), "incumbent_oos_fees": float(ie.fees_paid),
        "candidate_trades": cand_run.trades, "incumbent_trades": inc_run.trades,
        "min_trades": min_trades, "exact_fast_gap": parity,
    }
    curves = {"candidate": cand_exact, "incumbent": inc_exact}
    if parity > PARITY_TOLERANCE:
        return GateResult("walk_forward", "fail", metrics,
                          f"the exact engine does not confirm the fast one (gap {parity:.2e})"
                          ), curves
    if cand_run.trades < min_trades:
        return GateResult("walk_forward", "fail", metrics,
                          f"{cand_run.trades} closed trades over the history, fewer than "
                          f"{min_trades}"), curves
    verdict = (f"out of sample (exact) {ce.total_return:+.3%} vs incumbent "
               f"{ie.total_return:+.3%}")
    if ce.total_return > ie.total_return:
        return GateResult("walk_forward", "pass", metrics, verdict), curves
    return GateResult("walk_forward", "fail", metrics, verdict + ": no better"), curves


def _gap(a: BacktestResult, b: BacktestResult) -> float:
    x, y = float(a.metrics.final_equity), float(b.metrics.final_equity)
    return abs(x - y) / max(abs(x), 1e-12)
