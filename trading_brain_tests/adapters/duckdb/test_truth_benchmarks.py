"""Truth benchmarks (``benchmark_sql.compute``) on a hand-built ledger with known answers, and on
a real simulated home (values finite, the trade count equal to the summary's)."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.duckdb.benchmark_sql import compute
from trading_brain.engine.evolution.benchmarks import BenchmarkRow, nested, readings
from trading_brain.engine.evolution.returns import sharpe_ratio, sortino_ratio

D0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
AS_OF = D0 + 96 * H
R365 = math.sqrt(365)


def _pos(store: Store, pid: str, ver: int, sym: str, entry: datetime, exit_: datetime | None,
         pnl: float | None, fee_in: float, fee_out: float | None) -> None:
    store.execute(
        """INSERT INTO positions (position_id, symbol, slot, strategy_id, version, intent_type,
        status, quantity, entry_price, entry_fee, entry_time, max_adverse_excursion, exit_fee,
        exit_time, realized_pnl, updated_at) VALUES (?, ?, 'active', 'a', ?, 'swing', ?, 1, 100,
        ?, ?, 0, ?, ?, ?, ?)""",
        [pid, sym, ver, "open" if exit_ is None else "closed", fee_in, entry, fee_out, exit_,
         pnl, exit_ or entry])


def _signal(store: Store, k: int, ver: int, sym: str, at: datetime, action: str,
            decision: str | None, reason: str | None, errors: list[dict] | None = None) -> None:
    store.execute("INSERT INTO scans VALUES (?, ?, ?, 1, 2, 1, 0, 0, ?)",
                  [f"s{k}", at, at + 5 * H / 60, json.dumps({"errors": errors or []})])
    store.execute("INSERT INTO signals VALUES (?, 'a', ?, 'active', ?, ?, ?, 0.1, NULL, NULL, "
                  "'swing', 1, NULL, ?, ?)", [f"s{k}", ver, sym, at, action, decision, reason])


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Store:
    store = Store.open(tmp_path_factory.mktemp("bench") / "w.duckdb")
    # closed trades, in exit order: net -10, +30, -5 (a@1), -7 (a@2); one open (a@2, Y)
    _pos(store, "p1", 1, "X/USD", D0, D0 + 2 * H, -10, 1, 1)
    _pos(store, "p2", 1, "Y/USD", D0 + H, D0 + 4 * H, 30, 2, 2)
    _pos(store, "p3", 1, "X/USD", D0 + 5 * H, D0 + 6 * H, -5, 0.5, 0.5)
    _pos(store, "p4", 2, "X/USD", D0 + 48 * H, D0 + 49 * H, -7, 1, 1)
    _pos(store, "p5", 2, "Y/USD", D0 + 50 * H, None, None, 1, None)
    for ts, equity, exposure in ((0, 1000, 0), (12, 1100, 0.5), (24, 990, 0.2), (36, 1045, 0),
                                 (54, 1045, 1.0)):  # nothing on day 3: its mark is carried
        store.execute("INSERT INTO portfolio_snapshots VALUES (?, 'active', ?, 0, 0, ?, 0, 0, "
                      "0, 0, 0, 0)", [D0 + ts * H, equity, exposure])
    err = [{"slot": "active", "symbol": "X/USD", "error": "stale"}]
    other = [{"slot": "candidate_1", "symbol": "X/USD", "error": "x"}]
    _signal(store, 1, 1, "X/USD", D0, "enter", "approved", "ok", other)
    _signal(store, 2, 1, "Y/USD", D0 + 6 * H, "enter", "rejected", "max_positions")
    _signal(store, 3, 1, "X/USD", D0 + 12 * H, "hold", None, None)
    _signal(store, 4, 2, "X/USD", D0 + 24 * H, "exit", "approved", "ok")
    _signal(store, 5, 2, "Y/USD", D0 + 48 * H, "enter", "resized", "probation")
    _signal(store, 6, 2, "X/USD", D0 + 54 * H, "enter", "rejected", "cooldown", err)
    _signal(store, 7, 2, "Y/USD", D0 + 72 * H, "hold", None, None)
    for sym, last in (("X/USD", AS_OF - 10 * H / 60), ("Y/USD", AS_OF - 5 * H / 60),
                      ("Y/USD", AS_OF)):  # Y's bar at as_of is not closed yet: ignored
        store.execute("INSERT INTO candles VALUES (?, '5m', ?, 1, 1, 1, 1, 1, 't', now())",
                      [sym, last])
    return store


def _bench(store: Store, since: datetime | None = None) -> dict:
    with store.connect() as con:
        rows = compute(con, AS_OF, since)
    assert all(r.value is None or math.isfinite(r.value) for r in rows)
    return nested(rows)["active"]


def test_trade_metrics_per_slot_version_and_symbol(ledger):
    b = _bench(ledger)
    slot, v1, x = b["slot"], b["version"]["a@1"], b["symbol"]["X/USD"]
    assert (slot["trades"], slot["wins"], slot["losses"], slot["win_rate"]) == (4, 1, 3, 0.25)
    assert (slot["net_pnl"], slot["gross_pnl"], slot["fees_paid"]) == (8, 17, 9)
    assert slot["expectancy"] == 2 and slot["fees_pct_of_gross"] == pytest.approx(900 / 34)
    assert slot["profit_factor"] == pytest.approx(30 / 22)
    assert slot["avg_hold_hours"] == pytest.approx((2 + 3 + 1 + 1) / 4)
    # exits: -10, +30, -5, -7 -> streak of 2 at the end; cum -10, 20, 15, 8 under peak 0/20
    assert (slot["consecutive_losses"], slot["max_consecutive_losses"]) == (2, 2)
    assert slot["pnl_max_drawdown"] == 12
    assert (slot["positions_opened"], slot["open_positions"]) == (5, 1)
    assert (v1["trades"], v1["net_pnl"], v1["gross_pnl"], v1["fees_paid"]) == (3, 15, 22, 7)
    assert v1["profit_factor"] == 2 and v1["consecutive_losses"] == 1
    assert v1["pnl_max_drawdown"] == 10 and v1["open_positions"] == 0
    assert (x["trades"], x["wins"], x["losses"], x["win_rate"]) == (3, 0, 3, 0)
    assert x["profit_factor"] == 0 and x["fees_pct_of_gross"] is None
    assert (x["consecutive_losses"], x["max_consecutive_losses"]) == (3, 3)
    assert b["symbol"]["Y/USD"]["profit_factor"] is None  # no loser: undefined
    assert "sharpe" not in x  # equity metrics exist for slots and versions only


def test_equity_metrics_from_daily_marks(ledger):
    slot = _bench(ledger)["slot"]
    # marks: 1000 (first), 1100 (< D1), 1045 (< D2), 1045 (< D3), 1045 carried (< D4)
    r = [0.1, 1045 / 1100 - 1, 0.0, 0.0]
    assert slot["daily_returns"] == 4
    assert slot["sharpe"] == pytest.approx(statistics.mean(r) / statistics.stdev(r) * R365)
    down = math.sqrt(sum(min(v, 0) ** 2 for v in r) / len(r))
    assert slot["sortino"] == pytest.approx(statistics.mean(r) / down * R365)
    assert slot["sharpe"] == pytest.approx(sharpe_ratio(r))  # the engine's convention
    assert slot["sortino"] == pytest.approx(sortino_ratio(r))
    assert slot["max_drawdown"] == pytest.approx(0.1)
    assert slot["current_drawdown"] == pytest.approx(1 - 1045 / 1100)
    assert (slot["equity"], slot["period_return"]) == (1045, pytest.approx(0.045))
    # exposure held 12, 12, 12, 18 and 42 hours (the last snapshot until as_of)
    assert slot["exposure"] == pytest.approx((0.5 * 12 + 0.2 * 12 + 1.0 * 42) / 96)


def test_version_tenure_and_strategy_age(ledger):
    b = _bench(ledger)
    v2 = b["version"]["a@2"]  # tenure D1 00:00 .. D3 00:05: snapshots 990, 1045, 1045
    assert v2["equity"] == 1045 and v2["period_return"] == pytest.approx(1045 / 990 - 1)
    assert v2["max_drawdown"] == 0 and v2["daily_returns"] == 2
    assert v2["sharpe"] is not None and v2["sortino"] is None  # no negative day
    assert (v2["is_current"], v2["age_days"]) == (1, 3)
    assert (b["version"]["a@1"]["is_current"], b["version"]["a@1"]["age_days"]) == (0, 4)
    assert b["slot"]["strategy_version"] == "a@2" and b["slot"]["strategy_age_days"] == 3


def test_signal_scan_and_freshness_metrics(ledger):
    b = _bench(ledger)
    slot, v1, x = b["slot"], b["version"]["a@1"], b["symbol"]["X/USD"]
    assert (slot["signals_generated"], slot["signals_acted"], slot["rejections"]) == (5, 3, 2)
    assert (slot["rejections:max_positions"], slot["rejections:cooldown"]) == (1, 1)
    assert (v1["signals_generated"], v1["signals_acted"], v1["rejections"]) == (2, 1, 1)
    assert (x["signals_generated"], x["signals_acted"], x["rejections:cooldown"]) == (3, 2, 1)
    assert "rejections:max_positions" not in x
    assert (slot["scan_count"], slot["scan_errors"]) == (7, 1)  # candidate_1's error not ours
    assert slot["scan_success_rate"] == pytest.approx(6 / 7)
    assert slot["uptime"] == pytest.approx(7 / (96 * 12))
    assert (x["data_freshness_min"], b["symbol"]["Y/USD"]["data_freshness_min"]) == (5, 0)
    assert slot["data_freshness_min"] == 5


def test_a_window_counts_only_its_rows(ledger):
    b = _bench(ledger, since=D0 + 24 * H)
    slot = b["slot"]
    assert (slot["trades"], slot["net_pnl"], slot["positions_opened"]) == (1, -7, 2)
    assert (slot["signals_generated"], slot["scan_count"]) == (3, 4)
    assert slot["uptime"] == pytest.approx(4 / (72 * 12))  # expected from the window start
    assert "a@1" not in b["version"]  # no signal or trade of a@1 in the window
    assert slot["daily_returns"] == 3  # 990 -> 1045 -> 1045 -> 1045


def test_an_empty_ledger_has_no_rows_and_readings_pick_the_subject(tmp_path):
    store = Store.open(tmp_path / "empty.duckdb")
    with store.connect() as con:
        assert compute(con, AS_OF) == []
    rows = [BenchmarkRow("active", "slot", "", "trades", 4.0),
            BenchmarkRow("active", "slot", "", "win_rate", 0.25),
            BenchmarkRow("active", "version", "a@2", "win_rate", 0.0),
            BenchmarkRow("active", "version", "a@2", "trades", 1.0),
            BenchmarkRow("candidate_1", "version", "a@2", "win_rate", 0.5),
            BenchmarkRow("candidate_1", "version", "a@2", "trades", 6.0)]
    store.save_benchmarks(AS_OF, rows, computed_at=AS_OF)
    got = readings(store.benchmarks(), "active", "win_rate")
    assert [(g.as_of, g.value, g.trades) for g in got] == [(AS_OF, 0.25, 4)]
    [v] = readings(store.benchmarks(), "a@2", "win_rate")  # the slot with more trades
    assert (v.value, v.trades) == (0.5, 6) and readings(store.benchmarks(), "a@2", "x") == []


def test_on_a_simulated_home(tmp_path: Path):
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-c", "from trading_brain.cli import main; main()", "--home", str(home),
         "simulate", "--days", "1", "--seed", "7", "--start", "2026-10-01T00:00:00Z", "--json"],
        capture_output=True, text=True, timeout=600, check=True)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    store = Store.open(home / "var" / "warehouse.duckdb")
    as_of = datetime(2026, 10, 2, tzinfo=UTC)
    with store.connect() as con:
        rows = compute(con, as_of)
    slot = nested(rows)["active"]["slot"]
    assert slot["positions_opened"] == summary["trades"] > 0
    assert slot["trades"] + slot["open_positions"] == summary["trades"]
    assert slot["max_drawdown"] == pytest.approx(summary["max_drawdown"], abs=1e-6)
    assert slot["equity"] == pytest.approx(summary["final_equity"], abs=0.01)
    assert slot["net_pnl"] == pytest.approx(slot["gross_pnl"] - slot["fees_paid"])
    assert slot["scan_count"] == 288 and slot["uptime"] == 1
    assert slot["strategy_version"] == "ema_cross@1"
    assert all(r.value is None or math.isfinite(r.value) for r in rows)
    per_symbol = nested(rows)["active"]["symbol"].values()
    assert sum(v["trades"] for v in per_symbol) == slot["trades"]
