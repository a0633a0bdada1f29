"""The candle export cleans up after an export that was killed mid-way."""

from __future__ import annotations

import os
import time
from pathlib import Path

from trading_brain.adapters.duckdb import Store
from trading_brain.app.research.parquet_export import STALE_TMP_S, export_candles
from trading_brain_tests.conftest import make_candles


def test_a_killed_exports_folder_is_removed_once_stale_and_a_live_one_is_kept(
        tmp_path: Path) -> None:
    store = Store.open(tmp_path / "w.duckdb")
    store.upsert_candles(make_candles("BTC/USD", "5m", n=50, seed=1, price=100.0))
    root = tmp_path / "exports"
    killed, live = root / ".tmp-killed", root / ".tmp-live"
    for d in (killed, live):
        d.mkdir(parents=True)
        (d / "BTC-USD_5m.parquet").write_bytes(b"half")
    old = time.time() - STALE_TMP_S - 60
    os.utime(killed, (old, old))
    exp = export_candles(store, root, ["BTC/USD"], "5m", None, None)
    assert sorted(p.name for p in root.iterdir()) == sorted([".tmp-live", exp.snapshot_id])
