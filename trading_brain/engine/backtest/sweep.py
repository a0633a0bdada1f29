"""Parameter sweeps on the fast engine, using both cores.

Contract: ``run_sweep(bars, signal_sets)`` backtests every signal set (the caller runs the
strategy's ``generate`` once per distinct parameter set) over the same bars with the fill model of
engine/fills.py and returns one metrics row per set, in input order (column ``set``). A frame
object given several times is simulated once (its rows repeat). All sets of a chunk run in ONE
kernel call (one column per set). Columns are
split into ``workers`` chunks simulated in threads: vectorbt-rust releases the GIL inside the
simulation (measured: a Python loop keeps full speed while it runs), and each thread gets its own
vectorbt call so no mutable array is shared between them. Metrics are computed for all columns at
once from the order records (same definitions as metrics.py; ``run_fast`` on one set gives the
full trade list).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from trading_brain.domain.fees import DEFAULT_TAKER_FEE
from trading_brain.engine.backtest.fast import Bars, shifted_orders, simulate
from trading_brain.engine.backtest.metrics import day_ends, equity_stats, trade_stats

DEFAULT_WORKERS = 2


def run_sweep(
    bars: pl.DataFrame,
    signal_sets: Sequence[pl.DataFrame],
    cash: float = 10_000.0,
    fee: float = DEFAULT_TAKER_FEE,
    slippage: float = 0.0005,
    workers: int = DEFAULT_WORKERS,
) -> pl.DataFrame:
    """Metrics of each signal set: set, final_equity, total_return, sharpe, sortino, max_drawdown,
    win_rate, n_trades, fees_paid, exposure, profit_factor."""
    if not signal_sets:
        return pl.DataFrame()
    first: dict[int, int] = {}  # the same frame object given twice is simulated once
    unique: list[pl.DataFrame] = []
    of = []
    for sig in signal_sets:
        if id(sig) not in first:
            first[id(sig)] = len(unique)
            unique.append(sig)
        of.append(first[id(sig)])
    k = len(unique)
    b = Bars.of(bars)
    chunks = [c for c in np.array_split(np.arange(k), max(1, min(workers, k))) if len(c)]

    def job(cols: np.ndarray) -> pl.DataFrame:
        return _chunk(bars, b, [unique[i] for i in cols], cols, cash, fee, slippage)

    if len(chunks) == 1:
        parts = [job(chunks[0])]
    else:
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            parts = list(pool.map(job, chunks))
    out = pl.concat(parts).sort("set")
    if k < len(signal_sets):
        out = out.select(pl.all().gather(of)).with_columns(
            pl.Series("set", np.arange(len(of), dtype=np.int64)))
    return out.select("set", *[c for c in out.columns if c != "set"])


def _chunk(
    bars: pl.DataFrame,
    b: Bars,
    sets: list[pl.DataFrame],
    cols: np.ndarray,
    cash: float,
    fee: float,
    slippage: float,
) -> pl.DataFrame:
    rec = simulate(b, shifted_orders(bars, sets), cash, fee, slippage)
    return _metrics_table(rec, b, len(cols), cash).with_columns(
        pl.Series("set", cols.astype(np.int64))
    )


def _metrics_table(rec: np.ndarray, b: Bars, k: int, cash: float) -> pl.DataFrame:
    """Metrics of each of ``k`` columns, one contiguous column at a time (cache friendly)."""
    rec = rec[np.lexsort((rec["idx"], rec["col"]))]
    bounds = np.searchsorted(rec["col"], np.arange(k + 1))
    ends = day_ends(b.ts)
    rows = [_column(rec[bounds[j] : bounds[j + 1]], b, cash, ends) for j in range(k)]
    return pl.DataFrame(rows, schema=COLUMNS, orient="row")


COLUMNS = {
    "final_equity": pl.Float64,
    "total_return": pl.Float64,
    "sharpe": pl.Float64,
    "sortino": pl.Float64,
    "max_drawdown": pl.Float64,
    "win_rate": pl.Float64,
    "n_trades": pl.Int64,
    "fees_paid": pl.Float64,
    "exposure": pl.Float64,
    "profit_factor": pl.Float64,
}


def _column(r: np.ndarray, b: Bars, cash: float, ends: np.ndarray) -> tuple:
    """Metrics of one column from its order records sorted by bar (as metrics.build_metrics)."""
    n = len(b.ts)
    buy = r["side"] == 0
    idx = r["idx"]
    # Cash and position are constant between orders (one order per bar at most), so their
    # running sums are repeated over the bars of each segment instead of summed bar by bar:
    # the same additions in the same order, hence the same bits as a cumsum over all bars.
    runs = np.diff(idx, prepend=0, append=n)
    flows = np.where(buy, -(r["size"] * r["price"] + r["fees"]), r["size"] * r["price"] - r["fees"])
    equity = np.repeat(np.concatenate(([0.0], np.cumsum(flows))) + cash, runs)
    held = np.concatenate(([0.0], np.cumsum(np.where(buy, r["size"], -r["size"]))))
    pos = np.repeat(held, runs)
    exposed = int(runs[held > 0.0].sum())  # a sell is exactly the position: flat is exactly 0.0
    pos *= b.close
    equity += pos
    s = equity_stats(equity, ends)
    sell = np.flatnonzero(~buy)  # with accumulate=False each sell follows its buy
    pnl = (
        (r["price"][sell] - r["price"][sell - 1]) * r["size"][sell - 1]
        - r["fees"][sell]
        - r["fees"][sell - 1]
    )
    win_rate, pf = trade_stats(pnl)
    return (
        float(s["final_equity"][0]),
        float(s["total_return"][0]),
        float(s["sharpe"][0]),
        float(s["sortino"][0]),
        float(s["max_drawdown"][0]),
        win_rate,
        len(sell),
        float(r["fees"].sum()),
        exposed / n if n else float("nan"),
        pf,
    )
