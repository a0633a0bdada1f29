"""The exact engine: replay bars one by one through engine/fills.py and engine/portfolio.py.

Contract: ``bars`` per symbol are polars frames with ``ts`` (UTC) and ``open, high, low, close``,
sorted and unique by ``ts``; ``signals`` per symbol have one row per bar (``ts`` optional and, when
present, equal to the bars'), with ``action``/``size``/``stop_loss``/``take_profit`` as in
domain/strategy.py. A decision on bar t is executed on that symbol's next bar (fill rules in
engine/fills.py). Symbols share one cash pool; on each open time they are processed in the order
given (sorted by name by default), the same order vectorbt uses for columns with cash sharing.
Signals are precomputed (the strategy passed the look-ahead check, so batch evaluation is allowed).

``step`` is the per-bar function the paper executor calls on each tick with its own clock
("next open" = first price after the decision).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import polars as pl

from trading_brain.domain.fees import DEFAULT_TAKER_FEE
from trading_brain.domain.instruments import AssetPair
from trading_brain.engine import fills
from trading_brain.engine.backtest.metrics import BacktestResult, make_result
from trading_brain.engine.portfolio import Portfolio, Position, Trade
from trading_brain.errors import DataError


@dataclass(frozen=True, slots=True)
class Decision:
    """A pending order decided on a bar: ``enter`` or ``exit`` (``hold`` is no decision)."""

    action: str
    size: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None


class SettableClock(Protocol):
    """A ``ports.Clock`` the replay can move (e.g. adapters.clock.SimClock)."""

    def now(self) -> datetime: ...

    def set(self, t: datetime) -> None: ...


def step(
    pf: Portfolio,
    symbol: str,
    time: datetime,
    open_: float,
    high: float,
    low: float,
    pending: Decision | None,
    fee: float,
    slippage: float,
    pair: AssetPair | None = None,
    enforce_minimums: bool = False,
) -> Trade | Position | None:
    """Apply one bar (or tick) of ``symbol`` to ``pf``: stops first, then the pending decision.

    Returns the trade closed or the position opened on this bar, or None.
    """
    pos = pf.positions.get(symbol)
    if pos is not None:
        hit = fills.stop_exit(open_, high, low, pos.sl_level, pos.tp_level)
        if hit is not None:
            return pf.exit(symbol, time, hit[0], fee, hit[1])
        if pending is not None and pending.action == "exit":
            return pf.exit(symbol, time, fills.sell_price(open_, slippage), fee, "signal")
        return None
    if pending is not None and pending.action == "enter":
        price = fills.buy_price(open_, slippage)
        return pf.enter(
            symbol,
            time,
            price,
            pending.size,
            fee,
            pending.stop_loss,
            pending.take_profit,
            pair,
            enforce_minimums,
        )
    return None


def decisions(bars: pl.DataFrame, signals: pl.DataFrame) -> list[Decision | None]:
    """One entry per bar: the Decision taken on it, or None for ``hold``."""
    _check_aligned(bars, signals)
    out: list[Decision | None] = [None] * bars.height
    rows = signals.with_row_index("_i").filter(pl.col("action") != "hold")
    for i, action, size, sl, tp in rows.select(
        "_i", "action", "size", "stop_loss", "take_profit"
    ).iter_rows():
        out[i] = Decision(action, _opt(size) or 0.0, _opt(sl), _opt(tp))
    return out


def _opt(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _check_aligned(bars: pl.DataFrame, signals: pl.DataFrame) -> None:
    if signals.height != bars.height:
        raise DataError(f"signals have {signals.height} rows for {bars.height} bars")
    if "ts" in signals.columns and not signals["ts"].cast(pl.Int64).equals(
        bars["ts"].cast(pl.Int64)
    ):
        raise DataError("signals 'ts' does not match the bars")
    check_sorted(bars)


def check_sorted(bars: pl.DataFrame) -> None:
    """Raise DataError unless ``bars.ts`` is strictly increasing."""
    if bars.height < 2:
        return
    smallest = bars["ts"].cast(pl.Int64).diff().min()  # an int, or None for null times
    if not (isinstance(smallest, int) and smallest > 0):
        raise DataError("bars must be sorted by ts without duplicates")


def run_exact(
    bars: pl.DataFrame,
    signals: pl.DataFrame,
    cash: float = 10_000.0,
    fee: float = DEFAULT_TAKER_FEE,
    slippage: float = 0.0005,
    pair: AssetPair | None = None,
    enforce_minimums: bool = False,
    symbol: str | None = None,
    clock: SettableClock | None = None,
) -> BacktestResult:
    """Replay one symbol; see ``run_exact_portfolio``."""
    name = symbol or (pair.symbol if pair else None) or _symbol_of(bars)
    return run_exact_portfolio(
        {name: bars},
        {name: signals},
        cash,
        fee,
        slippage,
        {name: pair} if pair else None,
        enforce_minimums,
        clock,
    )


def _symbol_of(bars: pl.DataFrame) -> str:
    return str(bars["symbol"][0]) if "symbol" in bars.columns and bars.height else "?"


def run_exact_portfolio(
    bars: Mapping[str, pl.DataFrame],
    signals: Mapping[str, pl.DataFrame],
    cash: float = 10_000.0,
    fee: float = DEFAULT_TAKER_FEE,
    slippage: float = 0.0005,
    pairs: Mapping[str, AssetPair] | None = None,
    enforce_minimums: bool = False,
    clock: SettableClock | None = None,
    order: Sequence[str] | None = None,
) -> BacktestResult:
    """Replay several symbols sharing one cash pool, bar by bar, in a deterministic order.

    ``pairs`` (optional) gives each symbol's lot precision and minimums: counted as would-be
    rejections, or enforced (round down + reject) with ``enforce_minimums`` as in paper trading.
    """
    symbols = list(order) if order is not None else sorted(bars)
    if not symbols:
        raise DataError("no bars to replay")
    frames = [bars[s].sort("ts") for s in symbols]
    pending = [decisions(f, signals[s]) for f, s in zip(frames, symbols, strict=True)]
    schedule, ts_all = _schedule(frames)
    pf = Portfolio(cash=float(cash))
    cols = [[f[c].to_list() for c in ("ts", "open", "high", "low", "close")] for f in frames]
    pair_of = [(pairs or {}).get(s) for s in symbols]
    marks: dict[str, float] = {}
    equity = np.empty(len(ts_all))
    in_market = np.zeros(len(ts_all), dtype=bool)
    for k, group in enumerate(schedule):
        for j, i in group:
            t, o, h, lo, c = (col[i] for col in cols[j])
            if clock is not None:
                clock.set(t)
            prev = pending[j][i - 1] if i > 0 else None
            step(pf, symbols[j], t, o, h, lo, prev, fee, slippage, pair_of[j], enforce_minimums)
            marks[symbols[j]] = c
        equity[k] = pf.equity(marks)
        in_market[k] = bool(pf.positions)
    return _result(pf, marks, ts_all, equity, in_market)


def _schedule(frames: list[pl.DataFrame]) -> tuple[list[list[tuple[int, int]]], np.ndarray]:
    """Group (symbol index, bar index) by open time, symbols in the given order."""
    if len(frames) == 1:
        ts = frames[0]["ts"].cast(pl.Int64).to_numpy()
        return [[(0, i)] for i in range(len(ts))], ts
    allrows = pl.concat(
        [
            f.select(pl.col("ts").cast(pl.Int64)).with_columns(
                pl.lit(j, pl.Int64).alias("j"), pl.int_range(pl.len(), dtype=pl.Int64).alias("i")
            )
            for j, f in enumerate(frames)
        ]
    ).sort("ts", "j")
    groups: list[list[tuple[int, int]]] = []
    ts_out: list[int] = []
    last = None
    for t, j, i in allrows.iter_rows():
        if t != last:
            groups.append([])
            ts_out.append(t)
            last = t
        groups[-1].append((j, i))
    return groups, np.asarray(ts_out, dtype=np.int64)


def _result(
    pf: Portfolio,
    marks: dict[str, float],
    ts: np.ndarray,
    equity: np.ndarray,
    in_market: np.ndarray,
) -> BacktestResult:
    trades = pf.trades + pf.open_trades(marks)
    frame = pl.DataFrame(
        [
            {
                "symbol": t.symbol,
                "entry_time": t.entry_time,
                "exit_time": t.exit_time,
                "entry_price": t.entry_price,
                "exit_price": t.exit_price,
                "quantity": t.quantity,
                "pnl": t.pnl,
                "fees": t.fees,
                "exit_reason": t.exit_reason,
            }
            for t in trades
        ],
        schema={
            "symbol": pl.String,
            "entry_time": pl.Datetime("us", "UTC"),
            "exit_time": pl.Datetime("us", "UTC"),
            "entry_price": pl.Float64,
            "exit_price": pl.Float64,
            "quantity": pl.Float64,
            "pnl": pl.Float64,
            "fees": pl.Float64,
            "exit_reason": pl.String,
        },
    )
    exposure = float(in_market.mean()) if len(in_market) else 0.0
    return make_result(ts, equity, frame, pf.fees_paid, exposure, pf.rejections)
