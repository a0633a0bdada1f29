"""Warehouse methods for strategy versions, deployments and backtests (mixed into ``Store``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from trading_brain.adapters.duckdb.connection import frame, run, transaction

_VERSION_COLS = ("strategy_id", "version", "source", "sha256", "path", "parent_version", "reason",
                 "warmup_bars", "params_default", "param_space", "status", "validation",
                 "created_at", "deployed_at", "retired_at", "status_reason", "status_changed_at")


class ResearchTablesMixin:
    """strategy_versions, deployments_log, backtests, backtest_trades (needs ``self.connect``)."""

    if TYPE_CHECKING:  # provided by ``Store``
        def connect(self, *, read_only: bool = False
                    ) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...

        def execute(self, sql: str, params: Sequence[Any] | None = None) -> list: ...

    def insert_strategy_version(self, row: dict[str, Any]) -> None:
        """Record a new version (caller checked it does not exist; PK refuses duplicates)."""
        cols = [c for c in _VERSION_COLS if c in row]
        vals = [json.dumps(row[c]) if c in ("params_default", "param_space", "validation")
                and row[c] is not None else row[c] for c in cols]
        self.execute(
            f"INSERT INTO strategy_versions ({', '.join(cols)}) VALUES "
            f"({', '.join('?' for _ in cols)})", vals)

    def strategy_versions(self, strategy_id: str | None = None) -> list[dict[str, Any]]:
        """All versions (of one family), oldest first, JSON columns decoded."""
        where, params = ("WHERE strategy_id = ?", [strategy_id]) if strategy_id else ("", [])
        with self.connect() as con:
            df = frame(con, f"SELECT {', '.join(_VERSION_COLS)} FROM strategy_versions {where} "
                            "ORDER BY strategy_id, version", params)
        rows = df.to_dicts()
        for r in rows:
            for c in ("params_default", "param_space", "validation"):
                r[c] = json.loads(r[c]) if r[c] is not None else None
        return rows

    def strategy_version(self, strategy_id: str, version: int) -> dict[str, Any] | None:
        rows = [r for r in self.strategy_versions(strategy_id) if r["version"] == version]
        return rows[0] if rows else None

    def set_active_version(self, strategy_id: str, version: int, action: str, reason: str,
                           at: datetime | None = None) -> None:
        """Make ``strategy_id@version`` the one active version; log the action, stamped ``at``
        (the caller's clock: simulated time in a simulation; the wall clock when None)."""
        with self.connect() as con, transaction(con):
            run(con, """UPDATE strategy_versions SET status = 'registered'
                WHERE status = 'active'""")
            run(con, """UPDATE strategy_versions SET status = 'active',
                deployed_at = coalesce(?::TIMESTAMPTZ, now())
                WHERE strategy_id = ? AND version = ?""", [at, strategy_id, version])
            seq = run(con, "SELECT coalesce(max(seq), 0) + 1 FROM deployments_log")[0][0]
            run(con, "INSERT INTO deployments_log VALUES (?, ?, ?, ?, ?, "
                     "coalesce(?::TIMESTAMPTZ, now()))", [seq, strategy_id, version, action,
                                                          reason, at])

    def deployment_history(self) -> list[tuple[str, int, str, str]]:
        """(strategy_id, version, action, reason) oldest first."""
        rows = self.execute(
            "SELECT strategy_id, version, action, reason FROM deployments_log ORDER BY seq")
        return [tuple(r) for r in rows]

    def active_version(self) -> tuple[str, int] | None:
        rows = self.execute(
            "SELECT strategy_id, version FROM strategy_versions WHERE status = 'active'")
        return (rows[0][0], rows[0][1]) if rows else None

    def save_backtest(self, row: dict[str, Any], trades: Sequence[dict[str, Any]]) -> None:
        """Insert or replace one backtest and its trades (keyed by ``backtest_id``)."""
        cols = list(row)
        vals = [json.dumps(v) if isinstance(v, dict | list) else v for v in row.values()]
        with self.connect() as con, transaction(con):
            run(con, "DELETE FROM backtest_trades WHERE backtest_id = ?", [row["backtest_id"]])
            run(con, "DELETE FROM backtests WHERE backtest_id = ?", [row["backtest_id"]])
            run(con, f"INSERT INTO backtests ({', '.join(cols)}) VALUES "
                     f"({', '.join('?' for _ in cols)})", vals)
            if trades:
                data = pl.DataFrame([{"backtest_id": row["backtest_id"], "seq": i, **t}
                                     for i, t in enumerate(trades)])
                con.register("bt_trades", data.to_arrow())
                try:
                    run(con, """INSERT INTO backtest_trades SELECT backtest_id, seq, symbol,
                        entry_time, exit_time, entry_price, exit_price, quantity, pnl, fees,
                        exit_reason FROM bt_trades""")
                finally:
                    con.unregister("bt_trades")
