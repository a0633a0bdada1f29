"""Retention deletes only expired 5m/1h bars, once per day, never 1d."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from trading_brain.engine.retention import apply_retention
from trading_brain_tests.conftest import make_candles

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_retention_once_per_day_keeps_recent_and_daily(store):
    old = NOW - timedelta(days=120)
    store.upsert_candles(pl.concat([
        make_candles(timeframe="5m", n=10, start=old),
        make_candles(timeframe="5m", n=10, start=NOW - timedelta(days=1)),
        make_candles(timeframe="1h", n=5, start=NOW - timedelta(days=2000)),
        make_candles(timeframe="1h", n=5, start=NOW - timedelta(days=10)),
        make_candles(timeframe="1d", n=5, start=datetime(2015, 1, 1, tzinfo=UTC)),
    ]), "t")
    removed = apply_retention(store, NOW, days_5m=90, days_1h=1095)
    assert removed == {"5m": 10, "1h": 5}
    counts = {tf: n for _, tf, n, _, _ in store.candle_summary().iter_rows()}
    assert counts == {"5m": 10, "1h": 5, "1d": 5}
    assert apply_retention(store, NOW + timedelta(hours=1), 90, 1095) == {}  # same day: no-op
    assert apply_retention(store, NOW + timedelta(days=1), 90, 1095) == {"5m": 0, "1h": 0}
