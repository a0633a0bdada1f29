"""Bulk write of sweep results into ``backtests`` (the ``sweep_job``'s collecting step).

Contract: ``save_backtest_rows(store, rows)`` inserts or replaces many ``backtests`` rows
(the columns of ``Store.save_backtest``'s row; dict/list values stored as JSON) and drops any
trades stored under the same ids, in ONE transaction on one connection: either every row is
written or, on any failure, the tables are left as they were. Rows with the same id (a set
listed twice) are written once. Returns the number of distinct rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from trading_brain.adapters.duckdb.connection import run, transaction

if TYPE_CHECKING:
    from trading_brain.adapters.duckdb.store import Store

COLUMNS = ("backtest_id", "strategy_id", "version", "engine", "params", "symbols", "start_ts",
           "end_ts", "cash", "fee", "slippage", "metrics", "created_at")


def save_backtest_rows(store: Store, rows: Sequence[dict[str, Any]]) -> int:
    """Upsert ``rows`` into ``backtests`` in one transaction (see the module docstring)."""
    if not rows:
        return 0
    data = pl.DataFrame([{c: json.dumps(r[c]) if isinstance(r[c], dict | list) else r[c]
                          for c in COLUMNS} for r in rows]
                        ).unique("backtest_id", keep="last", maintain_order=True)
    cols = ", ".join(COLUMNS)
    with store.connect() as con:
        con.register("sweep_rows", data.to_arrow())
        try:
            with transaction(con):
                run(con, "DELETE FROM backtest_trades WHERE backtest_id IN "
                         "(SELECT backtest_id FROM sweep_rows)")
                run(con, "DELETE FROM backtests WHERE backtest_id IN "
                         "(SELECT backtest_id FROM sweep_rows)")
                run(con, f"INSERT INTO backtests ({cols}) SELECT {cols} FROM sweep_rows")
        finally:
            con.unregister("sweep_rows")
    return data.height
