"""Warehouse methods for indicators, venue omissions, bootstrap progress and candle audits.

Mixed into ``Store``; same contract: one short connection per call, idempotent upserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from trading_brain.adapters.duckdb.connection import frame, run, transaction

INDICATOR_COLUMNS = (
    "ema_9", "ema_21", "ema_50", "sma_20", "sma_50", "rsi_14", "macd", "macd_signal",
    "macd_hist", "bb_upper", "bb_middle", "bb_lower", "atr_14", "volume_ratio", "regime",
)


class MarketTablesMixin:
    """Indicators, omissions, bootstrap progress, audits (needs ``self.connect``)."""

    def upsert_indicators(self, df: pl.DataFrame) -> int:
        """Insert or replace indicator rows keyed by (symbol, timeframe, ts)."""
        if df.is_empty():
            return 0
        cols = ["symbol", "timeframe", "ts", *INDICATOR_COLUMNS]
        data = df.select(cols)
        lo, hi = data["ts"].min(), data["ts"].max()
        with self.connect() as con:  # type: ignore[attr-defined]
            con.register("incoming_ind", data.to_arrow())
            try:
                with transaction(con):
                    run(con, """DELETE FROM indicators x USING incoming_ind i
                        WHERE x.ts BETWEEN ? AND ? AND x.symbol = i.symbol
                          AND x.timeframe = i.timeframe AND x.ts = i.ts""", [lo, hi])
                    run(con, f"INSERT INTO indicators ({', '.join(cols)}, computed_at) "
                             f"SELECT {', '.join(cols)}, now() FROM incoming_ind")
            finally:
                con.unregister("incoming_ind")
        return data.height

    def read_indicators(
        self, symbols: Sequence[str] | None, timeframe: str,
        start: datetime | None = None, end: datetime | None = None,
    ) -> pl.DataFrame:
        sql, params = _window("indicators", symbols, timeframe, start, end)
        cols = ", ".join(["symbol", "timeframe", "ts", *INDICATOR_COLUMNS])
        with self.connect() as con:  # type: ignore[attr-defined]
            return frame(con, f"SELECT {cols} FROM indicators {sql} ORDER BY symbol, ts", params)

    def record_omissions(self, timeframe: str, omitted: pl.DataFrame) -> int:
        """Remember (symbol, ts) open times the venue returned no bar for (idempotent)."""
        if omitted.is_empty():
            return 0
        data = omitted.select("symbol", pl.col("ts").cast(pl.Datetime("us", "UTC")))
        with self.connect() as con:  # type: ignore[attr-defined]
            con.register("omitted", data.to_arrow())
            try:
                run(con, """INSERT INTO candle_omissions SELECT symbol, ?, ts, now() FROM omitted
                    ON CONFLICT DO NOTHING""", [timeframe])
            finally:
                con.unregister("omitted")
        return data.height

    def forget_omissions(self, timeframe: str, arrived: pl.DataFrame) -> None:
        """Drop omission marks for (symbol, ts) bars that have since arrived."""
        if arrived.is_empty():
            return
        data = arrived.select("symbol", pl.col("ts").cast(pl.Datetime("us", "UTC")))
        with self.connect() as con:  # type: ignore[attr-defined]
            con.register("arrived", data.to_arrow())
            try:
                run(con, """DELETE FROM candle_omissions o USING arrived a
                    WHERE o.timeframe = ? AND o.symbol = a.symbol AND o.ts = a.ts""", [timeframe])
            finally:
                con.unregister("arrived")

    def read_omissions(
        self, symbols: Sequence[str] | None, timeframe: str,
        start: datetime | None = None, end: datetime | None = None,
    ) -> pl.DataFrame:
        sql, params = _window("candle_omissions", symbols, timeframe, start, end)
        with self.connect() as con:  # type: ignore[attr-defined]
            return frame(con, f"SELECT symbol, ts FROM candle_omissions {sql} ORDER BY symbol, ts",
                         params)

    def get_bootstrap_progress(self) -> dict[tuple[str, str], tuple[datetime, datetime]]:
        """(symbol, timeframe) -> (start_ts, done_until) of the resumable bootstrap."""
        rows = self.execute(  # type: ignore[attr-defined]
            "SELECT symbol, timeframe, start_ts, done_until FROM bootstrap_progress")
        return {(s, tf): (a, b) for s, tf, a, b in rows}

    def set_bootstrap_progress(
        self, symbol: str, timeframe: str, start_ts: datetime, done_until: datetime
    ) -> None:
        self.execute(  # type: ignore[attr-defined]
            """INSERT INTO bootstrap_progress VALUES (?, ?, ?, ?, now())
            ON CONFLICT (symbol, timeframe) DO UPDATE SET start_ts = excluded.start_ts,
            done_until = excluded.done_until, updated_at = excluded.updated_at""",
            [symbol, timeframe, start_ts, done_until])

    def candle_audit(self, timeframe: str, start: datetime, end: datetime) -> dict[str, int]:
        """Counts of stored candles, duplicate keys and invalid OHLC rows in ``[start, end)``."""
        with self.connect() as con:  # type: ignore[attr-defined]
            rows, dups, invalid = run(con, """SELECT count(*),
                count(*) - count(DISTINCT (symbol, ts)),
                count(*) FILTER (WHERE NOT (low <= least(open, close) AND greatest(open, close) <= high
                    AND low > 0 AND isfinite(open) AND isfinite(high) AND isfinite(low)
                    AND isfinite(close) AND isfinite(volume) AND volume >= 0))
                FROM candles WHERE timeframe = ? AND ts >= ? AND ts < ?""",
                [timeframe, start, end])[0]
            quarantined = run(con, """SELECT count(*) FROM candles_quarantine
                WHERE timeframe = ? AND ts >= ? AND ts < ?""", [timeframe, start, end])[0][0]
        return {"rows": rows, "duplicates": dups, "invalid": invalid, "quarantined": quarantined}


def _window(
    table: str, symbols: Sequence[str] | None, timeframe: str,
    start: datetime | None, end: datetime | None,
) -> tuple[str, list[Any]]:
    where, params = ["timeframe = ?"], [timeframe]
    if symbols is not None:
        where.append(f"symbol IN ({', '.join('?' for _ in symbols) or 'NULL'})")
        params.extend(symbols)
    if start is not None:
        where.append("ts >= ?")
        params.append(start)
    if end is not None:
        where.append("ts < ?")
        params.append(end)
    return "WHERE " + " AND ".join(where), params
