"""The read-only frames the analysis modules receive (``analyses/README.md``, "Input frames").

``analysis_frames(con, since, as_of)`` returns ``{"candles", "signals", "trades"}`` as polars
frames with the columns and types the README lists (timestamps ``Datetime("us", "UTC")``, money
``Float64``), each possibly empty. The SQL is the README's, verbatim in meaning.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from trading_brain.adapters.duckdb.connection import frame

CANDLES = """SELECT symbol, ts, open, high, low, close, volume FROM candles
WHERE timeframe = '5m' AND ts >= ? AND ts < ? ORDER BY symbol, ts"""
SIGNALS = """SELECT slot, strategy_id, version, symbol, bar_time, action, risk_decision,
  risk_reason, regime FROM signals WHERE bar_time >= ? AND bar_time <= ?
ORDER BY bar_time, symbol"""
TRADES = """SELECT position_id, slot, strategy_id, version, symbol, entry_time, exit_time,
  CAST(entry_cost / sold_qty AS DOUBLE) AS entry_price,
  CAST(exit_value / sold_qty AS DOUBLE) AS exit_price, CAST(sold_qty AS DOUBLE) AS quantity,
  CAST(realized_pnl AS DOUBLE) AS net_pnl,
  CAST(realized_pnl + entry_fee + exit_fee AS DOUBLE) AS gross_pnl,
  CAST(entry_fee + exit_fee AS DOUBLE) AS fees, exit_reason
FROM positions WHERE status = 'closed' AND exit_time >= ? AND exit_time <= ?
ORDER BY exit_time, position_id"""


def _utc(df: pl.DataFrame) -> pl.DataFrame:
    casts = [pl.col(c).cast(pl.Datetime("us", "UTC")) for c, t in df.schema.items()
             if isinstance(t, pl.Datetime)]
    floats = [pl.col(c).cast(pl.Float64) for c, t in df.schema.items() if isinstance(t, pl.Decimal)]
    return df.with_columns(*casts, *floats) if casts or floats else df


def analysis_frames(con: duckdb.DuckDBPyConnection, since: datetime,
                    as_of: datetime) -> dict[str, pl.DataFrame]:
    """The README's frames over ``[since, as_of]`` (candles: ``[since, as_of)``)."""
    return {name: _utc(frame(con, sql, [since, as_of]))
            for name, sql in (("candles", CANDLES), ("signals", SIGNALS), ("trades", TRADES))}
