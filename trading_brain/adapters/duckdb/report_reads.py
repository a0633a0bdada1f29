"""Reads of the reports (``trading_brain.app.reports``): one period of one slot, in one short
connection.

Contract of ``read_period(store, slot, start, end) -> PeriodRows``:
- every frame covers timestamps in ``[start, end)`` (UTC); decimals come back as DOUBLE
  except ``final_equity``/``opening_equity`` (exact ``Decimal``, as stored);
- ``snapshots``: ts, equity, cash, positions_value, exposure, drawdown, peak_equity (the
  slot's ``portfolio_snapshots`` in the period, oldest first); ``opening_equity`` the newest
  snapshot before ``start`` (else the slot's deposits; None when neither exists);
- ``trades``: the positions entered or exited in the period (symbol, entry/exit time and
  price, quantity bought, fees, net realised P&L, exit reason, status);
- ``fees``: per symbol the fees booked in the cash ledger in the period;
- ``risk_state`` (JSON text or None), ``risk_events`` (kind -> count in the period),
  ``candidates`` (versions with status ``candidate`` and their newest paper test),
  ``cycle`` (the newest evolution cycle whose night is before ``end``, or None);
- ``candles(store, symbols, start, end)``: 5m open time and close, per symbol, in the period.
- ``data_span(store, slot)``: (first, last) snapshot time of the slot, or None.
Read-only: nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from trading_brain.adapters.duckdb.connection import frame, run

if TYPE_CHECKING:
    from trading_brain.adapters.duckdb.store import Store


@dataclass(frozen=True)
class PeriodRows:
    """What the warehouse holds about one slot over one period (see the module contract)."""

    snapshots: pl.DataFrame
    trades: pl.DataFrame
    fees: pl.DataFrame
    opening_equity: Decimal | None
    final_equity: Decimal | None
    risk_state: str | None = None
    risk_events: dict[str, int] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    cycle: dict[str, Any] | None = None


_SNAPSHOTS = """SELECT ts, equity::DOUBLE AS equity, cash::DOUBLE AS cash,
    positions_value::DOUBLE AS positions_value, exposure, drawdown,
    peak_equity::DOUBLE AS peak_equity
    FROM portfolio_snapshots WHERE slot = ? AND ts >= ? AND ts < ? ORDER BY ts"""
_TRADES = """SELECT symbol, status, entry_time, entry_price::DOUBLE AS entry_price,
    CASE WHEN entry_price > 0 THEN (entry_cost / entry_price)::DOUBLE ELSE 0 END AS quantity,
    exit_time, exit_price::DOUBLE AS exit_price, exit_reason,
    (entry_fee + coalesce(exit_fee, 0))::DOUBLE AS fees,
    realized_pnl::DOUBLE AS net_pnl
    FROM positions WHERE slot = ? AND ((entry_time >= ? AND entry_time < ?)
      OR (exit_time >= ? AND exit_time < ?))
    ORDER BY entry_time, symbol"""
_FEES = """SELECT symbol, (-sum(amount))::DOUBLE AS fees FROM cash_ledger
    WHERE slot = ? AND cause = 'fee' AND ts >= ? AND ts < ? GROUP BY symbol ORDER BY symbol"""
_CANDIDATES = """SELECT v.strategy_id || '@' || v.version AS candidate, v.reason,
    t.slot, t.status AS test_status, t.started_at, t.min_until, t.reason AS test_reason
    FROM strategy_versions v LEFT JOIN (
      SELECT * FROM paper_tests QUALIFY row_number() OVER (
        PARTITION BY strategy_id, version ORDER BY started_at DESC) = 1) t
    ON t.strategy_id = v.strategy_id AND t.version = v.version
    WHERE v.status = 'candidate' ORDER BY v.created_at"""
_CYCLE = """SELECT cycle_id, night, status, advisor, decision, error, finished_at
    FROM evolution_cycles WHERE night < ?::DATE + 1 AND started_at < ?
    ORDER BY night DESC, started_at DESC LIMIT 1"""


def read_period(store: Store, slot: str, start: datetime, end: datetime) -> PeriodRows:
    """The rows of one period of ``slot`` (see the module contract), one connection."""
    with store.connect() as con:
        snaps = frame(con, _SNAPSHOTS, [slot, start, end])
        before = run(con, "SELECT equity FROM portfolio_snapshots WHERE slot = ? AND ts < ? "
                          "ORDER BY ts DESC LIMIT 1", [slot, start])
        if before:
            opening: Decimal | None = before[0][0]
        else:
            dep = run(con, "SELECT sum(amount) FROM cash_ledger WHERE slot = ? AND "
                           "cause = 'deposit' AND ts < ?", [slot, end])
            opening = dep[0][0] if dep and dep[0][0] is not None else None
        last = run(con, "SELECT equity FROM portfolio_snapshots WHERE slot = ? AND ts >= ? "
                        "AND ts < ? ORDER BY ts DESC LIMIT 1", [slot, start, end])
        trades = frame(con, _TRADES, [slot, start, end, start, end])
        fees = frame(con, _FEES, [slot, start, end])
        state = run(con, "SELECT state FROM risk_state WHERE slot = ?", [slot])
        events = run(con, "SELECT kind, count(*) FROM risk_events WHERE ts >= ? AND ts < ? "
                          "GROUP BY kind ORDER BY kind", [start, end])
        cands = _dicts(con, _CANDIDATES, [])
        cycle = _dicts(con, _CYCLE, [end.date().isoformat(), end])
    return PeriodRows(snapshots=snaps, trades=trades, fees=fees, opening_equity=opening,
                      final_equity=last[0][0] if last else None,
                      risk_state=state[0][0] if state else None,
                      risk_events={str(k): int(n) for k, n in events}, candidates=cands,
                      cycle=cycle[0] if cycle else None)


def candles(store: Store, symbols: Sequence[str], start: datetime, end: datetime
            ) -> pl.DataFrame:
    """5m (symbol, ts, close) of ``symbols`` with open time in ``[start, end)``."""
    if not symbols:
        return pl.DataFrame(schema={"symbol": pl.String, "ts": pl.Datetime("us", "UTC"),
                                    "close": pl.Float64})
    marks = ", ".join("?" for _ in symbols)
    with store.connect() as con:
        return frame(con, f"SELECT symbol, ts, close FROM candles WHERE timeframe = '5m' AND "
                          f"symbol IN ({marks}) AND ts >= ? AND ts < ? ORDER BY symbol, ts",
                     [*symbols, start, end])


def data_span(store: Store, slot: str) -> tuple[datetime, datetime] | None:
    """(first, last) snapshot time of ``slot``; None when it has none."""
    with store.connect() as con:
        row = run(con, "SELECT min(ts), max(ts) FROM portfolio_snapshots WHERE slot = ?",
                  [slot])
    return (row[0][0], row[0][1]) if row and row[0][0] is not None else None


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]
           ) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
