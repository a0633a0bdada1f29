"""Shared helpers of the analysis tests: load a module by path, build frames."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import polars as pl

ROOT = Path(__file__).resolve().parents[2] / "analyses"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
FIVE = timedelta(minutes=5)
TS = pl.Datetime("us", "UTC")


def load(analysis_id: str, version: int = 1) -> ModuleType:
    """The module ``analyses/<analysis_id>/v<version>.py`` loaded from its file."""
    path = ROOT / analysis_id / f"v{version}.py"
    spec = importlib.util.spec_from_file_location(f"_analysis_{analysis_id}_v{version}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def candles(symbol: str, closes: list[float], *, start: datetime = T0,
            step: timedelta = FIVE) -> pl.DataFrame:
    """Bars with open = high = low = close (override columns after) and volume 1."""
    n = len(closes)
    return pl.DataFrame({
        "symbol": [symbol] * n, "ts": [start + i * step for i in range(n)],
        "open": closes, "high": closes, "low": closes, "close": closes, "volume": [1.0] * n,
    }).with_columns(pl.col("ts").cast(TS))


def warehouse_frames(path: Path) -> dict[str, pl.DataFrame]:
    """The frames of analyses/README.md read from a warehouse file (the whole history)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone='UTC'")
        return {
            "candles": con.sql("SELECT symbol, ts, open, high, low, close, volume FROM candles "
                               "WHERE timeframe = '5m' ORDER BY symbol, ts").pl(),
            "signals": con.sql("SELECT slot, strategy_id, version, symbol, bar_time, action, "
                               "risk_decision, risk_reason, regime FROM signals "
                               "ORDER BY bar_time, symbol").pl(),
            "trades": con.sql("""SELECT position_id, slot, strategy_id, version, symbol,
                entry_time, exit_time, CAST(entry_cost / sold_qty AS DOUBLE) AS entry_price,
                CAST(exit_value / sold_qty AS DOUBLE) AS exit_price,
                CAST(sold_qty AS DOUBLE) AS quantity, CAST(realized_pnl AS DOUBLE) AS net_pnl,
                CAST(realized_pnl + entry_fee + exit_fee AS DOUBLE) AS gross_pnl,
                CAST(entry_fee + exit_fee AS DOUBLE) AS fees, exit_reason
                FROM positions WHERE status = 'closed' ORDER BY exit_time, position_id""").pl(),
        }
    finally:
        con.close()
