"""Backtest metrics and the ``BacktestResult`` both engines return.

Definitions (equity sampled at each bar's close):

- ``total_return`` = final / initial equity - 1; ``max_drawdown`` = max(1 - equity/running peak),
  a positive fraction (0.25 = -25 %).
- ``sharpe`` and ``sortino`` are DAILY ratios annualised with √365, exactly as the truth
  benchmarks compute them (``engine.evolution.returns``: ``sharpe_ratio``, ``sortino_ratio``):
  ``r`` = simple returns of the daily marks ``[initial equity, equity at the last bar of each
  UTC day]`` (``day_ends``; a day without bars repeats the previous mark, a 0 return; the last,
  possibly partial, day counts). Sharpe = mean(r) / std(r, ddof=1) × √365, Sortino = mean(r) /
  sqrt(mean(min(r, 0)²)) × √365. Where ``returns`` calls a ratio undefined (fewer than 2 daily
  returns, no dispersion, no losing day) the metric is 0.
- ``win_rate``, ``profit_factor`` (gross profit / gross loss; inf when there is no loss, 0 with no
  trades) and ``n_trades`` count *closed* trades; ``fees_paid`` sums every fill's fee (open
  positions included); ``exposure`` = fraction of bars ending with an open position.

Everything is vectorised over columns so a sweep computes metrics for many runs at once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from trading_brain.engine.evolution.returns import sharpe_ratio, sortino_ratio

DAY_US = 86_400_000_000
TRADE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "entry_time": pl.Datetime("us", "UTC"),
    "exit_time": pl.Datetime("us", "UTC"),
    "entry_price": pl.Float64(),
    "exit_price": pl.Float64(),
    "quantity": pl.Float64(),
    "pnl": pl.Float64(),
    "fees": pl.Float64(),
    "exit_reason": pl.String(),
}


@dataclass(frozen=True, slots=True)
class Metrics:
    """Summary figures of one backtest (see the module docstring for definitions)."""

    final_equity: float
    total_return: float
    sharpe: float
    sortino: float
    max_drawdown: float
    win_rate: float
    n_trades: int
    fees_paid: float
    exposure: float
    profit_factor: float


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Metrics, trades (``TRADE_SCHEMA``; open positions have null exit_time) and the equity curve.

    ``equity`` has columns ``ts`` (UTC) and ``equity``; ``rejections`` counts entries the venue
    would have refused (lot rounding, ordermin, costmin) when a pair was given.
    """

    metrics: Metrics
    trades: pl.DataFrame
    equity: pl.DataFrame
    rejections: int = 0

    def closed_trades(self) -> pl.DataFrame:
        """Trades with an exit."""
        return self.trades.filter(pl.col("exit_time").is_not_null())

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict: metrics (non-finite -> None) and trades with ISO-8601 UTC times."""
        metrics = {k: _json_num(v) for k, v in asdict(self.metrics).items()}
        trades = [
            {k: _json_val(v) for k, v in row.items()} for row in self.trades.iter_rows(named=True)
        ]
        return {"metrics": metrics, "trades": trades}


def _json_num(v: float | int) -> float | int | None:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _json_val(v: object) -> object:
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, float):
        return _json_num(v)
    return v


def day_ends(ts_us: np.ndarray) -> np.ndarray:
    """Bar indices whose equity marks the end of each UTC day, from the first bar's day to the
    last's (``ts_us``: sorted open times in µs); a day without bars repeats the previous index."""
    if len(ts_us) == 0:
        return np.zeros(0, dtype=np.int64)
    day = np.asarray(ts_us).astype(np.int64) // DAY_US
    last = np.flatnonzero(np.append(day[1:] != day[:-1], True))
    days = np.arange(day[0], day[-1] + 1)
    return last[np.searchsorted(day[last], days, side="right") - 1]


def daily_ratios(marks: np.ndarray) -> tuple[float, float]:
    """(Sharpe, Sortino) of one column of daily equity marks, √365-annualised; 0 if undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = marks[1:] / marks[:-1] - 1.0
    if not np.all(np.isfinite(r)):
        return 0.0, 0.0
    return sharpe_ratio(r) or 0.0, sortino_ratio(r) or 0.0


def equity_stats(equity: np.ndarray, ends: np.ndarray) -> dict[str, np.ndarray]:
    """Equity-based metrics for each column of ``equity`` (n bars x k runs); ``ends`` =
    ``day_ends`` of the bars' open times."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.ndim == 1:
        eq = eq[:, None]
    marks = np.vstack([eq[:1], eq[ends]])
    ratios = np.array([daily_ratios(marks[:, j]) for j in range(eq.shape[1])]).reshape(-1, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = np.maximum.accumulate(eq, axis=0)
        np.divide(eq, peak, out=peak)
        mdd = 1.0 - np.nanmin(peak, axis=0)
    return {
        "final_equity": eq[-1],
        "total_return": eq[-1] / eq[0] - 1.0,
        "sharpe": ratios[:, 0],
        "sortino": ratios[:, 1],
        "max_drawdown": mdd,
    }


def trade_stats(pnl: np.ndarray) -> tuple[float, float]:
    """(win_rate, profit_factor) of closed-trade P&Ls."""
    if len(pnl) == 0:
        return 0.0, 0.0
    gain = float(pnl[pnl > 0].sum())
    loss = float(-pnl[pnl < 0].sum())
    pf = gain / loss if loss > 0 else (math.inf if gain > 0 else 0.0)
    return float((pnl > 0).mean()), pf


def build_metrics(
    equity: np.ndarray, closed_pnl: np.ndarray, fees_paid: float, exposure: float, ends: np.ndarray
) -> Metrics:
    """Metrics of one run from its equity curve (``ends``: ``day_ends`` of its bars' open times)
    and its closed trades' P&L."""
    s = equity_stats(equity, ends)
    win_rate, pf = trade_stats(np.asarray(closed_pnl, dtype=np.float64))
    return Metrics(
        final_equity=float(s["final_equity"][0]),
        total_return=float(s["total_return"][0]),
        sharpe=float(s["sharpe"][0]),
        sortino=float(s["sortino"][0]),
        max_drawdown=float(s["max_drawdown"][0]),
        win_rate=win_rate,
        n_trades=len(closed_pnl),
        fees_paid=float(fees_paid),
        exposure=float(exposure),
        profit_factor=pf,
    )


def make_result(
    ts_us: np.ndarray,
    equity: np.ndarray,
    trades: pl.DataFrame,
    fees_paid: float,
    exposure: float,
    rejections: int = 0,
) -> BacktestResult:
    """Assemble a ``BacktestResult`` from an equity curve (per bar) and a trades frame."""
    if trades.schema != pl.Schema(TRADE_SCHEMA):
        trades = trades.select([pl.col(c).cast(t) for c, t in TRADE_SCHEMA.items()])
    if trades["symbol"].n_unique() > 1:
        trades = trades.sort("entry_time", "symbol", maintain_order=True)
    closed = trades.filter(pl.col("exit_time").is_not_null())["pnl"].to_numpy()
    metrics = build_metrics(equity, closed, fees_paid, exposure, day_ends(ts_us))
    curve = pl.DataFrame(
        {"ts": pl.Series(ts_us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")), "equity": equity}
    )
    return BacktestResult(metrics=metrics, trades=trades, equity=curve, rejections=rejections)
