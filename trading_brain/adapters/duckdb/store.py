"""``Store``: the warehouse behind one DuckDB file (market part; later issues add their tables).

Contract:
- every method opens a short connection and closes it before returning (``connector``: a
  ``connection.Connector``, by default ``connection.opener(path)``; under Dagster the warehouse
  resource's ``get_connection``);
  nothing here holds the file across calls — except inside ``with store.session():``, where the
  calls of one unit of work share one connection (a DuckDB connect costs ~25 ms). A session
  must never span an exchange, network or AI call;
- ``migrate()`` runs at every start (``Store.open``) and is a no-op when up to date;
- writes are idempotent upserts keyed as documented per table, inside one transaction, so a
  failed write leaves the table as it was;
- frames returned use the schemas of ``domain.candles`` (UTC microsecond timestamps).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from trading_brain.adapters.duckdb import migrations
from trading_brain.adapters.duckdb.connection import (
    DEFAULT_LOCK_BUDGET_S,
    Connector,
    frame,
    opener,
    run,
    transaction,
)
from trading_brain.adapters.duckdb.evolution_tables import EvolutionTablesMixin
from trading_brain.adapters.duckdb.ledger_tables import LedgerTablesMixin
from trading_brain.adapters.duckdb.market_tables import (
    MarketTablesMixin,
    _window,
    record_revisions,
)
from trading_brain.adapters.duckdb.research_tables import ResearchTablesMixin
from trading_brain.adapters.duckdb.summary_tables import SummaryTablesMixin
from trading_brain.adapters.duckdb.trading_tables import TradingTablesMixin
from trading_brain.domain.candles import CANDLE_KEY, CANDLE_SCHEMA, conform, empty_candles
from trading_brain.domain.instruments import AssetPair
from trading_brain.errors import DataError

_MIGRATED: set[str] = set()


class Store(MarketTablesMixin, ResearchTablesMixin, TradingTablesMixin, LedgerTablesMixin,
            SummaryTablesMixin, EvolutionTablesMixin):
    """The DuckDB warehouse at ``path``."""

    def __init__(self, path: Path | str, *, lock_budget_s: float = DEFAULT_LOCK_BUDGET_S,
                 connector: Connector | None = None) -> None:
        self.path = Path(path)
        self.lock_budget_s = lock_budget_s
        self._connector = connector or opener(self.path)
        self._local = threading.local()

    @classmethod
    def open(cls, path: Path | str, *, lock_budget_s: float = DEFAULT_LOCK_BUDGET_S,
             connector: Connector | None = None) -> Store:
        """Return a store for ``path`` with migrations applied (once per process and file)."""
        store = cls(path, lock_budget_s=lock_budget_s, connector=connector)
        key = str(store.path.resolve())
        if key not in _MIGRATED:
            store.migrate()
            _MIGRATED.add(key)
        return store

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short connection to the warehouse (closed on exit; the session's, if one is open)."""
        shared = getattr(self._local, "con", None)
        if shared is not None:
            yield shared
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connector(read_only=read_only, lock_budget_s=self.lock_budget_s) as con:
            yield con

    @contextmanager
    def session(self) -> Iterator[Store]:
        """Share one connection among the calls made inside the block (this thread only)."""
        if getattr(self._local, "con", None) is not None:
            yield self
            return
        with self.connect() as con:
            self._local.con = con
            try:
                yield self
            finally:
                self._local.con = None

    def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied."""
        with self.connect() as con:
            return migrations.migrate(con)

    def schema_version(self) -> int:
        with self.connect() as con:
            return migrations.current_version(con)

    # -- generic helpers for later modules -------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list:
        """Run one statement in its own connection; return its rows."""
        with self.connect() as con:
            return run(con, sql, params)

    def frame(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """Run one query in its own connection; return a polars frame."""
        with self.connect() as con:
            return frame(con, sql, params)

    # -- system_meta -----------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        rows = self.execute("SELECT value FROM system_meta WHERE key = ?", [key])
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO system_meta VALUES (?, ?, now()) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value, updated_at = excluded.updated_at",
            [key, value],
        )

    # -- candles ---------------------------------------------------------------------------
    def upsert_candles(self, df: pl.DataFrame, source: str = "unknown",
                       reason: str = "sync") -> int:
        """Insert or replace candles keyed by (symbol, timeframe, ts); return rows written.

        The market sync's path: a bar the venue revised (its one-bar overlap) replaces the stored
        one, whose old values are kept in ``candle_revisions`` with ``reason`` (only rows whose
        values changed; the old rows come back from the DELETE itself, so this costs nothing
        extra when no stored bar is replaced). Imports use ``import_candles``, which refuses
        conflicts instead. ``df`` must already be validated (``engine.candles.validate``);
        duplicate keys inside ``df`` are a DataError and nothing is written.
        """
        if df.is_empty():
            return 0
        incoming = conform(df)
        if incoming.select(pl.struct(list(CANDLE_KEY)).is_duplicated().any()).item():
            raise DataError("candle batch contains duplicate (symbol, timeframe, ts) keys")
        lo, hi = incoming["ts"].min(), incoming["ts"].max()
        with self.connect() as con:
            con.register("incoming_candles", incoming.to_arrow())
            try:
                with transaction(con):
                    old = run(con, """DELETE FROM candles c USING incoming_candles i
                        WHERE c.ts BETWEEN ? AND ? AND c.symbol = i.symbol
                          AND c.timeframe = i.timeframe AND c.ts = i.ts
                        RETURNING c.symbol, c.timeframe, c.ts, c.open, c.high, c.low, c.close,
                          c.volume, c.source""", [lo, hi])
                    run(con, "INSERT INTO candles SELECT symbol, timeframe, ts, open, high, low, "
                             "close, volume, ?, now() FROM incoming_candles", [source])
                    if old:
                        record_revisions(con, old, incoming, source, reason)
            finally:
                con.unregister("incoming_candles")
        return incoming.height

    def read_candles(
        self,
        symbols: Sequence[str] | None,
        timeframe: str,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pl.DataFrame:
        """Candles of ``timeframe`` with open time in ``[start, end)``, sorted by symbol, ts."""
        if symbols is not None and not symbols:
            return empty_candles()
        where, params = _window("candles", symbols, timeframe, start, end)
        sql = ("SELECT symbol, timeframe, ts, open, high, low, close, volume FROM candles "
               f"{where} ORDER BY symbol, ts")
        df = self.frame(sql, params)
        return conform(df) if df.height else empty_candles()

    def candle_summary(self) -> pl.DataFrame:
        """Per (symbol, timeframe): count, first and last open time."""
        return self.frame("""SELECT symbol, timeframe, count(*) AS candles, min(ts) AS first_ts,
            max(ts) AS last_ts FROM candles GROUP BY ALL ORDER BY symbol, timeframe""")

    def latest_candle_ts(self, timeframe: str) -> dict[str, datetime]:
        rows = self.execute(
            "SELECT symbol, max(ts) FROM candles WHERE timeframe = ? GROUP BY symbol", [timeframe]
        )
        return {s: t for s, t in rows}

    def delete_candles_before(self, timeframe: str, cutoff: datetime) -> int:
        """Retention: drop ``timeframe`` candles opened before ``cutoff``; return rows removed."""
        with self.connect() as con:
            n = run(con, "SELECT count(*) FROM candles WHERE timeframe = ? AND ts < ?",
                    [timeframe, cutoff])[0][0]
            run(con, "DELETE FROM candles WHERE timeframe = ? AND ts < ?", [timeframe, cutoff])
        return n

    def quarantine_candles(self, df: pl.DataFrame, source: str) -> int:
        """Keep rejected rows (with a ``reason`` column) for inspection; return rows stored."""
        if df.is_empty():
            return 0
        cols = [c for c in CANDLE_SCHEMA if c in df.columns]
        data = df.select([*[pl.col(c).cast(CANDLE_SCHEMA[c], strict=False) for c in cols],
                          pl.col("reason").cast(pl.String)])
        with self.connect() as con:
            con.register("bad_rows", data.to_arrow())
            try:
                # re-importing the same bad rows must not pile up copies
                run(con, """DELETE FROM candles_quarantine q USING bad_rows b
                    WHERE q.source = ? AND q.symbol IS NOT DISTINCT FROM b.symbol
                      AND q.timeframe IS NOT DISTINCT FROM b.timeframe
                      AND q.ts IS NOT DISTINCT FROM b.ts AND q.reason = b.reason""", [source])
                run(con, f"INSERT INTO candles_quarantine ({', '.join(cols)}, source, reason, "
                         f"quarantined_at) SELECT {', '.join(cols)}, ?, reason, now() "
                         "FROM bad_rows", [source])
            finally:
                con.unregister("bad_rows")
        return data.height

    # -- asset pairs -----------------------------------------------------------------------
    def upsert_asset_pairs(self, market: str, pairs: Sequence[AssetPair]) -> int:
        with self.connect() as con, transaction(con):
            for p in pairs:
                run(con, """INSERT INTO asset_pairs VALUES (?, ?, ?, now())
                    ON CONFLICT (symbol) DO UPDATE SET market = excluded.market,
                    pair = excluded.pair, updated_at = excluded.updated_at""",
                    [p.symbol, market, p.model_dump_json()])
                run(con, """INSERT INTO fee_schedule
                    SELECT ?, ?, ?, ?, now() WHERE NOT EXISTS (
                      SELECT 1 FROM fee_schedule f WHERE f.symbol = ? AND f.market = ?
                      AND f.valid_from = (SELECT max(valid_from) FROM fee_schedule g
                                          WHERE g.symbol = ? AND g.market = ?)
                      AND f.fee_taker = ? AND f.fee_maker = ?)""",
                    [p.symbol, market, p.fee_taker, p.fee_maker, p.symbol, market,
                     p.symbol, market, p.fee_taker, p.fee_maker])
        return len(pairs)

    def read_asset_pairs(self) -> dict[str, AssetPair]:
        rows = self.execute("SELECT symbol, pair FROM asset_pairs ORDER BY symbol")
        return {s: AssetPair.model_validate(json.loads(p)) for s, p in rows}
