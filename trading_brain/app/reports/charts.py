"""The charts of a report, as PNG bytes (matplotlib's Agg canvas: no display, no pyplot state,
safe in threads and Dagster steps).

Contract: each function takes frames or figures of one period and returns one PNG (``bytes``);
none reads or writes anything. ``trades_chart`` draws one small panel per symbol (at most
``MAX_TRADE_PANELS``, the given order), the 5m closes with entries (▲) and exits (▼) of the
period; a symbol without candles gets its markers only.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime

import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from trading_brain.app.reports.figures import SymbolFigures

DPI = 80
MAX_TRADE_PANELS = 4
GREEN, RED, BLUE, GREY = "#2e7d32", "#c62828", "#1565c0", "#9e9e9e"


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})
    return buf.getvalue()


def _dates(ax: Axes, start: datetime, end: datetime) -> None:
    ax.set_xlim(start, end)  # type: ignore[arg-type] # matplotlib converts datetimes (units)
    loc = AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))


def equity_chart(snaps: pl.DataFrame, opening: float | None, start: datetime, end: datetime
                 ) -> bytes:
    """Equity (with the opening equity dashed) above, drawdown from the peak below."""
    fig = Figure(figsize=(8, 4.8))
    fig.subplots_adjust(left=0.12, right=0.96, top=0.93, bottom=0.11, hspace=0.08)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ts = snaps["ts"].to_list()
    top.plot(ts, snaps["equity"].to_list(), color=BLUE, linewidth=1.2, label="equity")
    if opening is not None:
        top.axhline(opening, color=GREY, linestyle="--", linewidth=0.8, label="opening")
    top.set_ylabel("equity")
    top.legend(loc="best", fontsize=8, frameon=False)
    top.grid(alpha=0.3)
    dd = [-x for x in snaps["drawdown"].to_list()]
    bottom.fill_between(ts, dd, 0, color=RED, alpha=0.35, linewidth=0)
    bottom.plot(ts, dd, color=RED, linewidth=0.8)
    bottom.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    bottom.set_ylabel("drawdown")
    bottom.grid(alpha=0.3)
    _dates(bottom, start, end)
    top.set_title("Equity and drawdown", fontsize=11)
    return _png(fig)


def pnl_chart(per: Sequence[SymbolFigures]) -> bytes:
    """Net P&L of the positions closed in the period, per symbol."""
    height = 0.9 + 0.35 * max(len(per), 1)
    fig = Figure(figsize=(8, height))
    fig.subplots_adjust(left=0.14, right=0.97, top=1 - 0.35 / height, bottom=0.5 / height)
    ax = fig.subplots()
    names = [s.symbol for s in per][::-1]
    values = [s.net_pnl for s in per][::-1]
    ax.barh(names, values, color=[GREEN if v >= 0 else RED for v in values])
    ax.axvline(0, color=GREY, linewidth=0.8)
    ax.set_xlabel("net P&L of closed trades (after fees)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("P&L per symbol", fontsize=11)
    return _png(fig)


def fees_chart(per: Sequence[SymbolFigures]) -> bytes:
    """Gross P&L (before fees) against the fees paid, per symbol and in total."""
    fig = Figure(figsize=(8, 3.6))
    fig.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.2)
    ax = fig.subplots()
    names = [s.symbol for s in per] + ["total"]
    gross = [s.gross_pnl for s in per] + [sum(s.gross_pnl for s in per)]
    fees = [s.fees for s in per] + [sum(s.fees for s in per)]
    x = list(range(len(names)))
    ax.bar([i - 0.2 for i in x], gross, width=0.4, label="gross P&L",
           color=[GREEN if g >= 0 else RED for g in gross])
    ax.bar([i + 0.2 for i in x], fees, width=0.4, label="fees", color=GREY)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, names, rotation=30, fontsize=8)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Fees against gross profit", fontsize=11)
    return _png(fig)


def exposure_chart(snaps: pl.DataFrame, start: datetime, end: datetime) -> bytes:
    """Positions value / equity over the period."""
    fig = Figure(figsize=(8, 2.6))
    fig.subplots_adjust(left=0.09, right=0.95, top=0.87, bottom=0.22)
    ax = fig.subplots()
    ts = snaps["ts"].to_list()
    ex = snaps["exposure"].to_list()
    ax.fill_between(ts, ex, 0, color=BLUE, alpha=0.25, linewidth=0)
    ax.plot(ts, ex, color=BLUE, linewidth=0.9)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    _dates(ax, start, end)
    ax.set_title("Exposure (positions value / equity)", fontsize=11)
    return _png(fig)


def trades_chart(candles: pl.DataFrame, trades: pl.DataFrame, symbols: Sequence[str],
                 start: datetime, end: datetime) -> bytes:
    """One panel per symbol: closes, entries (▲) and exits (▼) inside ``[start, end)``."""
    shown = list(symbols)[:MAX_TRADE_PANELS]
    cols = 2 if len(shown) > 1 else 1
    rows = (len(shown) + cols - 1) // cols
    height = 2.5 * rows + 0.4
    fig = Figure(figsize=(8, height))
    fig.subplots_adjust(left=0.08, right=0.96, top=1 - 0.6 / height, bottom=0.45 / height,
                        hspace=0.45, wspace=0.22)
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(shown):
            ax.set_visible(False)
            continue
        sym = shown[k]
        c = candles.filter(pl.col("symbol") == sym)
        ax.plot(c["ts"].to_list(), c["close"].to_list(), color=GREY, linewidth=0.8)
        t = trades.filter(pl.col("symbol") == sym)
        ins = t.filter((pl.col("entry_time") >= start) & (pl.col("entry_time") < end))
        outs = t.filter(pl.col("exit_time").is_not_null() & (pl.col("exit_time") >= start)
                        & (pl.col("exit_time") < end))
        ax.scatter(ins["entry_time"].to_list(), ins["entry_price"].to_list(), marker="^",
                   color=GREEN, s=28, zorder=3, label="entry")
        ax.scatter(outs["exit_time"].to_list(), outs["exit_price"].to_list(), marker="v",
                   color=RED, s=28, zorder=3, label="exit")
        ax.set_title(f"{sym}: {ins.height} in, {outs.height} out", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        _dates(ax, start, end)
    axes.flat[0].legend(fontsize=7, frameon=False, loc="best")
    fig.suptitle("Trades on price", fontsize=11)
    return _png(fig)
