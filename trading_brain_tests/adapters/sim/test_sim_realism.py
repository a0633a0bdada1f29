"""The sim's stylised facts sit in the same ballpark as real 5-minute crypto candles.

Real data: Binance BTC/USDT and ETH/USDT 5m, 2024-H1, from ``<repo>/../shared/data/candles`` (see
its README). The comparison is loose on purpose (a model, not a replay) but each assertion fails
for a path without the named property: wrong volatility scale, no volatility clustering, no fat
tails, no intraday seasonality.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.sim import SimMarket
from trading_brain_tests.conftest import require_shared

DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "candles"


def _real(base: str) -> pl.DataFrame:
    path = DATA / f"binance_{base}USDT_5m_2024H1.csv.gz"
    require_shared(path, "real candles")
    return pl.read_csv(path, try_parse_dates=True).rename({"timestamp": "ts"})


def _facts(df: pl.DataFrame) -> dict[str, float]:
    r = np.diff(np.log(df["close"].to_numpy()))
    a = np.abs(r) - np.abs(r).mean()
    by_hour = (
        df.group_by(pl.col("ts").dt.hour().alias("hour")).agg(pl.col("volume").mean()).sort("hour")
    )
    return {
        "sd": float(r.std()),
        "range": float(np.log(df["high"] / df["low"]).mean()),
        "abs_acf": float((a[:-1] * a[1:]).sum() / (a * a).sum()),
        "kurtosis": float(((r - r.mean()) ** 4).mean() / r.var() ** 2),
        "busy_hour": float(by_hour["hour"][int(by_hour["volume"].arg_max())]),
    }


@pytest.mark.parametrize(("symbol", "base"), [("BTC/USD", "BTC"), ("ETH/USD", "ETH")])
def test_five_minute_facts_match_real_candles(symbol: str, base: str) -> None:
    real = _facts(_real(base))
    market = SimMarket([symbol], seed=2024, clock=SimClock(datetime(2026, 7, 1, tzinfo=UTC)))
    sim = _facts(
        market.candles(
            symbol, "5m", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
        )
    )
    assert 0.5 < sim["sd"] / real["sd"] < 2.0, (sim, real)
    assert 0.5 < sim["range"] / real["range"] < 2.0, (sim, real)
    assert sim["abs_acf"] > 0.5 * real["abs_acf"] > 0.05, (sim, real)
    assert sim["kurtosis"] > 6 and real["kurtosis"] > 6, (sim, real)  # fat tails in both
    assert 12 <= sim["busy_hour"] <= 17 and 12 <= real["busy_hour"] <= 17, (sim, real)
