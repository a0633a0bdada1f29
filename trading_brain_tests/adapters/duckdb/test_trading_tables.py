"""Scans and signals written in batches (``Store.record_scans``): the same rows as one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trading_brain.adapters.duckdb import Store

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _scan(k: int) -> tuple[dict, list[dict]]:
    bar = T0 + timedelta(minutes=5 * k)
    scan = {"scan_id": f"scan-{k}", "bar_time": bar, "started_at": bar + timedelta(minutes=5),
            "duration_ms": 1.5 + k, "symbols": 3, "signals": 1, "intents": 0, "rejected": 1,
            "details": {"bar_time": bar.isoformat(), "k": k}}
    signals = [{"scan_id": f"scan-{k}", "strategy_id": "s", "version": 2, "slot": "active",
                "symbol": sym, "bar_time": bar, "action": act, "size": size,
                "stop_loss": stop, "take_profit": None, "intent": "swing", "confidence": 0.25,
                "regime": reg, "risk_decision": dec, "risk_reason": why}
               for sym, act, size, stop, reg, dec, why in (
                   ("BTC/USD", "hold", 0.0, None, None, None, None),
                   ("ETH/USD", "enter", 0.1, 0.02, "trend_up", "rejected", "max_positions"),
                   ("SOL/USD", "hold", 0.0, None, "range", None, "stale_data: x"))]
    return scan, signals


def test_batched_scans_store_every_value_and_ignore_reruns(tmp_path):
    store = Store.open(tmp_path / "w.duckdb")
    batch = [_scan(k) for k in range(250)]  # more than one statement's worth of rows
    store.record_scans(batch)
    store.record_scans(batch[:3])  # a redone chunk: nothing new, nothing changed
    assert store.record_intents([]) == 0
    rows = store.frame("SELECT * FROM signals ORDER BY bar_time, symbol").to_dicts()
    want = sorted((s for _, sigs in batch for s in sigs),
                  key=lambda s: (s["bar_time"], s["symbol"]))
    assert rows == want
    scans = store.frame("SELECT * FROM scans ORDER BY bar_time").to_dicts()
    assert len(scans) == 250 and scans[7]["duration_ms"] == 8.5
    assert scans[7]["details"] == '{"bar_time": "2024-03-01T00:35:00+00:00", "k": 7}'
    assert {k: scans[7][k] for k in ("scan_id", "bar_time", "started_at", "symbols")} == {
        "scan_id": "scan-7", "bar_time": T0 + timedelta(minutes=35),
        "started_at": T0 + timedelta(minutes=40), "symbols": 3}
    one = Store.open(tmp_path / "one.duckdb")
    for scan, sigs in batch[:5]:
        one.record_scan(scan, sigs, [])
    assert one.frame("SELECT * FROM signals ORDER BY bar_time, symbol").to_dicts() == rows[:15]
