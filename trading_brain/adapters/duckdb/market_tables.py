"""Warehouse methods for candle imports, indicators, venue omissions, bootstrap progress, audits.

Mixed into ``Store``; same contract: one short connection per call, idempotent upserts.

``import_candles`` never changes a stored candle silently: each incoming row is ``inserted`` (key
not stored), ``unchanged`` (stored with the same values, within ``SAME_REL``: left untouched) or
``conflicting`` (stored with other values). Conflicts are refused — nothing at all is written,
not even the quarantined rows — unless ``replace=True``, which overwrites them and keeps each old
row in ``candle_revisions``. Everything of one import is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from trading_brain.adapters.duckdb.connection import frame, run, transaction
from trading_brain.domain.candles import CANDLE_KEY, OHLCV, conform
from trading_brain.errors import DataError

INDICATOR_COLUMNS = (
    "ema_9", "ema_21", "ema_50", "sma_20", "sma_50", "rsi_14", "macd", "macd_signal",
    "macd_hist", "bb_upper", "bb_middle", "bb_lower", "atr_14", "volume_ratio", "regime",
)
# Two values are "the same" when they agree to 12 significant digits: float representation noise
# (a file written with fewer digits, a float parsed twice) is not a revision; any real price or
# volume change of a venue (8 decimals at most) is.
SAME_REL = 1e-12
STATUS = ("inserted", "unchanged", "conflicting")


def same_values(a: str, b: str) -> str:
    """SQL: every OHLCV column of rows ``a`` and ``b`` is the same (see ``SAME_REL``)."""
    return " AND ".join(f"abs({a}.{c} - {b}.{c}) <= {SAME_REL} * greatest(abs({a}.{c}), "
                        f"abs({b}.{c}))" for c in OHLCV)


_RETURN_OLD = ", ".join(f"c.{c}" for c in (*CANDLE_KEY, *OHLCV, "source"))
_OLD_NEW = ", ".join([*(f"c.{c} AS old_{c}" for c in OHLCV), "c.source AS old_source",
                      *(f"i.{c} AS new_{c}" for c in OHLCV)])


class MarketTablesMixin:
    """Candle imports, indicators, omissions, bootstrap progress, audits (needs ``self.connect``,
    ``self.session`` and ``self.quarantine_candles``)."""

    if TYPE_CHECKING:  # provided by ``Store``
        def connect(self, *, read_only: bool = False
                    ) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...

        def session(self) -> AbstractContextManager[object]: ...

        def execute(self, sql: str, params: Sequence[Any] | None = None) -> list: ...

        def quarantine_candles(self, df: pl.DataFrame, source: str) -> int: ...

    def import_candles(
        self, df: pl.DataFrame, source: str, *, replace: bool = False,
        quarantine: Sequence[tuple[pl.DataFrame, str]] = (), reason: str = "import --replace",
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Store validated candles without silently overwriting stored ones (module docstring).

        ``quarantine`` holds (rows, source) pairs for ``quarantine_candles``, written in the same
        transaction. Returns ``(counts, conflicts)``: per (symbol, timeframe) the number of rows
        ``inserted``, ``unchanged``, ``conflicting`` and ``replaced`` (0 unless ``replace``), and
        the conflicting rows (key, ``old_*`` stored values and ``old_source``, ``new_*`` values)
        sorted by key. When ``conflicts`` is not empty and ``replace`` is False nothing was
        written. Duplicate keys in ``df`` are a DataError.
        """
        incoming = conform(df)
        if incoming.select(pl.struct(list(CANDLE_KEY)).is_duplicated().any()).item():
            raise DataError("candle batch contains duplicate (symbol, timeframe, ts) keys")
        with self.session(), self.connect() as con:
            con.register("incoming_import", incoming.to_arrow())
            try:
                with transaction(con):
                    diff = _classify(con, incoming)
                    conflicts = diff.filter(pl.col("status") == "conflicting").drop("status")
                    refused = conflicts.height > 0 and not replace
                    if not refused:
                        _write_import(con, diff, conflicts, source, reason)
                        for rows, where in quarantine:
                            self.quarantine_candles(rows, where)
            finally:
                con.unregister("incoming_import")
        counts = diff.group_by(["symbol", "timeframe"]).agg(
            *[(pl.col("status") == s).sum().alias(s) for s in STATUS]
        ).with_columns(
            (pl.col("conflicting") if replace else pl.lit(0, pl.UInt32)).alias("replaced")
        ).sort(["symbol", "timeframe"])
        return counts, conflicts

    def upsert_indicators(self, df: pl.DataFrame) -> int:
        """Insert or replace indicator rows keyed by (symbol, timeframe, ts)."""
        if df.is_empty():
            return 0
        cols = ["symbol", "timeframe", "ts", *INDICATOR_COLUMNS]
        data = df.select(cols)
        lo, hi = data["ts"].min(), data["ts"].max()
        with self.connect() as con:
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
        with self.connect() as con:
            return frame(con, f"SELECT {cols} FROM indicators {sql} ORDER BY symbol, ts", params)

    def record_omissions(self, timeframe: str, omitted: pl.DataFrame) -> int:
        """Remember (symbol, ts) open times the venue returned no bar for (idempotent)."""
        if omitted.is_empty():
            return 0
        data = omitted.select("symbol", pl.col("ts").cast(pl.Datetime("us", "UTC")))
        with self.connect() as con:
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
        with self.connect() as con:
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
        with self.connect() as con:
            return frame(con, f"SELECT symbol, ts FROM candle_omissions {sql} ORDER BY symbol, ts",
                         params)

    def get_bootstrap_progress(self) -> dict[tuple[str, str], tuple[datetime, datetime]]:
        """(symbol, timeframe) -> (start_ts, done_until) of the resumable bootstrap."""
        rows = self.execute(
            "SELECT symbol, timeframe, start_ts, done_until FROM bootstrap_progress")
        return {(s, tf): (a, b) for s, tf, a, b in rows}

    def set_bootstrap_progress(
        self, symbol: str, timeframe: str, start_ts: datetime, done_until: datetime
    ) -> None:
        self.execute(
            """INSERT INTO bootstrap_progress VALUES (?, ?, ?, ?, now())
            ON CONFLICT (symbol, timeframe) DO UPDATE SET start_ts = excluded.start_ts,
            done_until = excluded.done_until, updated_at = excluded.updated_at""",
            [symbol, timeframe, start_ts, done_until])

    def candle_audit(self, timeframe: str, start: datetime, end: datetime) -> dict[str, int]:
        """Counts of stored candles, duplicate keys and invalid OHLC rows in ``[start, end)``."""
        with self.connect() as con:
            rows, dups, invalid = run(con, """SELECT count(*),
                count(*) - count(DISTINCT (symbol, ts)),
                count(*) FILTER (WHERE NOT (low <= least(open, close)
                    AND greatest(open, close) <= high AND low > 0 AND isfinite(open)
                    AND isfinite(high) AND isfinite(low) AND isfinite(close)
                    AND isfinite(volume) AND volume >= 0))
                FROM candles WHERE timeframe = ? AND ts >= ? AND ts < ?""",
                [timeframe, start, end])[0]
            quarantined = run(con, """SELECT count(*) FROM candles_quarantine
                WHERE timeframe = ? AND ts >= ? AND ts < ?""", [timeframe, start, end])[0][0]
        return {"rows": rows, "duplicates": dups, "invalid": invalid, "quarantined": quarantined}


def _classify(con: duckdb.DuckDBPyConnection, incoming: pl.DataFrame) -> pl.DataFrame:
    """``incoming_import`` rows with their stored twin's values and a ``status``."""
    lo, hi = incoming["ts"].min(), incoming["ts"].max()
    return frame(con, f"""SELECT i.symbol, i.timeframe, i.ts, {_OLD_NEW},
            CASE WHEN c.ts IS NULL THEN 'inserted' WHEN {same_values('c', 'i')} THEN 'unchanged'
                 ELSE 'conflicting' END AS status
        FROM incoming_import i LEFT JOIN candles c ON c.ts BETWEEN ? AND ?
          AND c.symbol = i.symbol AND c.timeframe = i.timeframe AND c.ts = i.ts
        ORDER BY i.symbol, i.timeframe, i.ts""", [lo, hi])


def _write_import(con: duckdb.DuckDBPyConnection, diff: pl.DataFrame, conflicts: pl.DataFrame,
                  source: str, reason: str) -> None:
    """Insert the new rows; revise (old values to ``candle_revisions``) the conflicting ones."""
    if conflicts.height:
        con.register("revised", conflicts.select(CANDLE_KEY).to_arrow())
        try:
            old = run(con, f"""DELETE FROM candles c USING revised r WHERE c.ts BETWEEN ? AND ?
                AND c.symbol = r.symbol AND c.timeframe = r.timeframe AND c.ts = r.ts
                RETURNING {_RETURN_OLD}""", [conflicts["ts"].min(), conflicts["ts"].max()])
        finally:
            con.unregister("revised")
        new = conflicts.select(*CANDLE_KEY, *(pl.col(f"new_{c}").alias(c) for c in OHLCV))
        record_revisions(con, old, new, source, reason)
    if diff.height > (diff["status"] == "unchanged").sum():  # every key not stored (any more)
        run(con, f"""INSERT INTO candles SELECT i.symbol, i.timeframe, i.ts,
            {', '.join(f'i.{c}' for c in OHLCV)}, ?, now() FROM incoming_import i
            ANTI JOIN candles c ON c.ts BETWEEN ? AND ? AND c.symbol = i.symbol
              AND c.timeframe = i.timeframe AND c.ts = i.ts""",
            [source, diff["ts"].min(), diff["ts"].max()])


def record_revisions(con: duckdb.DuckDBPyConnection, old_rows: list[tuple],
                     incoming: pl.DataFrame, source: str, reason: str) -> int:
    """Keep in ``candle_revisions`` each replaced stored row (``old_rows``: key, OHLCV, source)
    whose values differ from its ``incoming`` twin; return how many were recorded."""
    old = pl.DataFrame(old_rows, orient="row", schema={
        **{c: incoming.schema[c] for c in CANDLE_KEY}, **{f"old_{c}": pl.Float64 for c in OHLCV},
        "old_source": pl.String})
    pairs = old.join(incoming.rename({c: f"new_{c}" for c in OHLCV}), on=list(CANDLE_KEY))
    same = pl.all_horizontal([
        (pl.col(f"old_{c}") - pl.col(f"new_{c}")).abs()
        <= SAME_REL * pl.max_horizontal(pl.col(f"old_{c}").abs(), pl.col(f"new_{c}").abs())
        for c in OHLCV])
    changed = pairs.filter(~same)
    if changed.height:
        con.register("revised_rows", changed.to_arrow())
        try:
            run(con, f"""INSERT INTO candle_revisions SELECT symbol, timeframe, ts,
                {', '.join(f'old_{c}' for c in OHLCV)}, old_source,
                {', '.join(f'new_{c}' for c in OHLCV)}, ?, ?, now() FROM revised_rows""",
                [source, reason])
        finally:
            con.unregister("revised_rows")
    return changed.height


def _window(
    table: str, symbols: Sequence[str] | None, timeframe: str,
    start: datetime | None, end: datetime | None,
) -> tuple[str, list[Any]]:
    where: list[str] = ["timeframe = ?"]
    params: list[Any] = [timeframe]  # SQL parameters: text, timestamps
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
