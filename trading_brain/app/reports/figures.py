"""The numbers of a report, computed from the period's rows (pure: no I/O).

Contract of ``figures(rows) -> Figures``:
- ``final_equity``: the slot's newest snapshot in the period, exactly as stored, rounded to
  cents; ``opening_equity``: the newest snapshot before the period (else the deposits);
  ``return_pct`` = final / opening - 1, in percent;
- ``max_drawdown``: the deepest stored drawdown (from the persisted peak) in the period;
- ``trades_opened`` / ``trades_closed``: positions entered / exited in the period; ``wins`` the
  closed ones with a positive net P&L;
- per symbol (``by_symbol``, most traded first): closed trades, gross P&L (before fees) and net
  P&L of the positions closed in the period, and the fees booked in the period (every fill,
  also of positions still open); ``gross_pnl``, ``net_pnl`` and ``fees`` are their totals;
- ``exposure_mean`` / ``exposure_max``: positions value / equity over the period's snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl

from trading_brain.adapters.duckdb.report_reads import PeriodRows

CENT = Decimal("0.01")


@dataclass(frozen=True)
class SymbolFigures:
    symbol: str
    closed: int
    gross_pnl: float
    fees: float
    net_pnl: float


@dataclass(frozen=True)
class Figures:
    opening_equity: float | None
    final_equity: float | None
    return_pct: float | None
    max_drawdown: float
    trades_opened: int
    trades_closed: int
    wins: int
    gross_pnl: float
    fees: float
    net_pnl: float
    exposure_mean: float
    exposure_max: float
    by_symbol: tuple[SymbolFigures, ...]

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.trades_closed if self.trades_closed else None


def cents(x: Decimal | None) -> float | None:
    return None if x is None else float(x.quantize(CENT, rounding=ROUND_HALF_EVEN))


def figures(rows: PeriodRows, start: datetime) -> Figures:
    """The figures of the period starting at ``start`` (see the module contract)."""
    snaps, trades = rows.snapshots, rows.trades
    closed = trades.filter(pl.col("exit_time").is_not_null() & (pl.col("exit_time") >= start)
                           & (pl.col("status") == "closed"))
    opened = trades.filter(pl.col("entry_time") >= start).height
    per = _by_symbol(closed, rows.fees)
    final, opening = cents(rows.final_equity), cents(rows.opening_equity)
    ret = round((final / opening - 1) * 100, 4) if final is not None and opening else None
    return Figures(
        opening_equity=opening, final_equity=final, return_pct=ret,
        max_drawdown=_stat(snaps, "drawdown", "max"),
        trades_opened=opened, trades_closed=closed.height,
        wins=closed.filter(pl.col("net_pnl") > 0).height if closed.height else 0,
        gross_pnl=sum(s.gross_pnl for s in per), fees=sum(s.fees for s in per),
        net_pnl=sum(s.net_pnl for s in per),
        exposure_mean=_stat(snaps, "exposure", "mean"),
        exposure_max=_stat(snaps, "exposure", "max"),
        by_symbol=tuple(per))


def _stat(df: pl.DataFrame, col: str, how: str) -> float:
    if not df.height:
        return 0.0
    expr = pl.col(col).max() if how == "max" else pl.col(col).mean()
    value = df.select(expr).item()
    return float(value) if value is not None else 0.0


def _by_symbol(closed: pl.DataFrame, fees: pl.DataFrame) -> list[SymbolFigures]:
    stats: dict[str, list[float]] = {}  # symbol -> [closed, gross, fees, net]
    if closed.height:
        agg = closed.group_by("symbol").agg(
            pl.len().alias("n"), pl.col("net_pnl").fill_null(0).sum().alias("net"),
            (pl.col("net_pnl").fill_null(0) + pl.col("fees")).sum().alias("gross"))
        for r in agg.iter_rows(named=True):
            stats[r["symbol"]] = [r["n"], r["gross"], 0.0, r["net"]]
    for r in fees.iter_rows(named=True):
        stats.setdefault(r["symbol"] or "?", [0, 0.0, 0.0, 0.0])[2] = float(r["fees"] or 0.0)
    out = [SymbolFigures(s, int(v[0]), float(v[1]), float(v[2]), float(v[3]))
           for s, v in stats.items()]
    return sorted(out, key=lambda s: (-s.closed, -abs(s.net_pnl), s.symbol))
