"""Evolution tables (migration 0008): every write is idempotent, a re-run adds no second row."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.duckdb.evolution_tables import VERSION_STATUSES, cycle_id_for
from trading_brain.engine.evolution.benchmarks import BenchmarkRow
from trading_brain.errors import DataError

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store.open(tmp_path / "w.duckdb")


def _count(store: Store, table: str) -> int:
    return store.execute(f"SELECT count(*) FROM {table}")[0][0]


def test_cycle_id_is_deterministic_per_night_and_home():
    a = cycle_id_for(date(2026, 3, 1), "/home/a")
    assert a == cycle_id_for(date(2026, 3, 1), "/home/a")
    assert a.startswith("cycle-2026-03-01-") and len(a) == len("cycle-2026-03-01-") + 8
    assert a != cycle_id_for(date(2026, 3, 2), "/home/a")
    assert a != cycle_id_for(date(2026, 3, 1), "/home/b")


def test_a_rerun_cycle_creates_no_second_row(store):
    cid = cycle_id_for(date(2026, 3, 1), "/h")
    assert store.start_cycle(cid, date(2026, 3, 1), "/h", "offline", T0) is True
    assert store.start_cycle(cid, date(2026, 3, 1), "/h", "offline", T0 + timedelta(1)) is False
    store.finish_cycle(cid, status="done", finished_at=T0 + timedelta(minutes=1),
                       decision={"action": "no_change", "tier": 1}, tokens=12, cost_usd=0.5)
    [row] = store.evolution_cycles()
    assert row["started_at"] == T0 and row["status"] == "done" and row["tokens"] == 12
    assert row["decision"] == {"action": "no_change", "tier": 1} and row["cost_usd"] == 0.5
    assert store.evolution_cycles(cid)[0]["cycle_id"] == cid
    assert store.evolution_cycles("nope") == []


def test_benchmarks_of_one_as_of_are_replaced_whole(store):
    rows = [BenchmarkRow("active", "slot", "", "trades", 3.0),
            BenchmarkRow("active", "slot", "", "strategy_version", 1.0, "ema_cross@1"),
            BenchmarkRow("active", "symbol", "BTC/USD", "sharpe", None)]
    assert store.save_benchmarks(T0, rows, computed_at=T0, cycle_id="c1") == 3
    assert store.save_benchmarks(T0, rows[:2], computed_at=T0, cycle_id="c1") == 2
    store.save_benchmarks(T0 + timedelta(1), rows, computed_at=T0)
    assert _count(store, "truth_benchmarks") == 5
    got = store.benchmarks(as_of=T0)
    assert [(r["metric"], r["value"], r["text"]) for r in got] == [
        ("strategy_version", 1.0, "ema_cross@1"), ("trades", 3.0, None)]
    assert store.benchmarks(metric="sharpe")[0]["value"] is None
    assert store.save_benchmarks(T0, [], computed_at=T0) == 0
    assert store.benchmarks(as_of=T0) == []


def test_insert_once_tables_keep_the_first_write(store):
    thought = {"cycle_id": "c", "step": "decision", "seq": 0, "role": "assistant",
               "content": "first", "created_at": T0}
    assert store.save_evolution_row("ai_thoughts", thought) is True
    assert store.save_evolution_row("ai_thoughts", {**thought, "content": "again"}) is False
    assert store.evolution_rows("ai_thoughts", {"cycle_id": "c"})[0]["content"] == "first"
    trial = {"family": "ema_cross", "variant_hash": "h1", "kind": "params", "tried_at": T0,
             "params": {"fast": 5}}
    assert store.save_evolution_row("variant_trials", trial)
    assert not store.save_evolution_row("variant_trials", {**trial, "cycle_id": "c2"})
    store.save_evolution_row("variant_trials", {**trial, "variant_hash": "h2"})
    store.save_evolution_row("variant_trials", {**trial, "family": "other"})
    assert store.variant_count("ema_cross") == 2 and store.variant_count("none") == 0
    assert store.evolution_rows("variant_trials", {"family": "other"})[0]["params"] == {"fast": 5}
    obs = {"observation_id": "c:0", "cycle_id": "c", "content": "fees eat it", "created_at": T0}
    assert store.save_evolution_row("observations", obs)
    assert not store.save_evolution_row("observations", obs)
    use = {"call_id": "k1", "cycle_id": "c", "role": "analyst", "model": "m", "input_tokens": 10,
           "output_tokens": 5, "cache_read_tokens": 3, "cost_usd": 0.25, "created_at": T0}
    assert store.save_evolution_row("token_usage", use)
    assert not store.save_evolution_row("token_usage", use)
    later = {**use, "call_id": "k2", "created_at": T0 + timedelta(1)}
    store.save_evolution_row("token_usage", later)
    assert store.token_totals() == {"calls": 2.0, "input_tokens": 20.0, "output_tokens": 10.0,
                                    "cache_write_tokens": 0.0, "cache_read_tokens": 6.0,
                                    "cost_usd": 0.5}
    assert store.token_totals(T0 + timedelta(hours=1))["calls"] == 1.0


def test_upserts_overwrite_reports_and_reviews(store):
    rep = {"analysis_id": "market_analysis", "version": 1, "as_of": T0, "status": "error",
           "error": "boom", "created_at": T0}
    assert store.save_evolution_row("analysis_reports", rep) is True
    ok = {**rep, "status": "ok", "error": None, "report": {"regimes": {"range": 0.5}}}
    assert store.save_evolution_row("analysis_reports", ok) is False
    [row] = store.evolution_rows("analysis_reports")
    assert row["status"] == "ok" and row["report"] == {"regimes": {"range": 0.5}}
    review = {"promotion_id": "p1", "strategy_id": "a", "version": 2,
              "incumbent_strategy_id": "a", "incumbent_version": 1, "promoted_at": T0,
              "verdict": "pending"}
    store.save_evolution_row("promotion_reviews", review)
    store.save_evolution_row("promotion_reviews", {**review, "verdict": "won", "edge": 0.02,
                                                   "details": {"bars": 10}})
    [got] = store.evolution_rows("promotion_reviews")
    assert got["verdict"] == "won" and got["edge"] == 0.02 and got["details"] == {"bars": 10}


def test_predictions_are_graded_once_and_only_with_a_grade(store):
    p = {"prediction_id": "c:0", "cycle_id": "c", "subject": "active", "claim": "fewer fees",
         "metric": "fees_paid", "comparator": "<", "threshold": 10.0,
         "deadline": T0 + timedelta(days=3), "created_at": T0}
    assert store.save_evolution_row("predictions", p)
    assert store.evolution_rows("predictions", {"status": "open"})[0]["prediction_id"] == "c:0"
    with pytest.raises(DataError, match="prediction grade"):
        store.grade_prediction("c:0", "pending", T0, 1.0, "x")
    assert store.grade_prediction("c:0", "confirmed", T0 + timedelta(4), 8.0, "8 < 10")
    assert not store.grade_prediction("c:0", "refuted", T0 + timedelta(5), 20.0, "late")
    [row] = store.evolution_rows("predictions")
    assert (row["status"], row["graded_value"], row["grade_reason"]) == ("confirmed", 8.0,
                                                                          "8 < 10")


def test_paper_tests_finish_once(store):
    t = {"test_id": "a@2:candidate_1", "strategy_id": "a", "version": 2, "slot": "candidate_1",
         "tier": 1, "started_at": T0, "min_until": T0 + timedelta(1), "min_trades": 5,
         "status": "running", "updated_at": T0}
    assert store.save_evolution_row("paper_tests", t)
    assert not store.save_evolution_row("paper_tests", {**t, "tier": 3})
    with pytest.raises(DataError):
        store.finish_paper_test(t["test_id"], "running", T0, "x")
    assert store.finish_paper_test(t["test_id"], "inconclusive", T0 + timedelta(2), "2 trades",
                                   {"trades": 2})
    assert not store.finish_paper_test(t["test_id"], "passed", T0 + timedelta(3), "late")
    [row] = store.evolution_rows("paper_tests")
    assert row["status"] == "inconclusive" and row["metrics"] == {"trades": 2}
    assert row["tier"] == 1


def test_version_statuses_and_bad_input(store):
    store.insert_strategy_version({
        "strategy_id": "a", "version": 1, "source": "x", "sha256": "s", "reason": "r",
        "warmup_bars": 1, "params_default": {}, "param_space": {}, "status": "registered",
        "created_at": T0})
    for status in VERSION_STATUSES:
        store.set_version_status("a", 1, status, f"to {status}", T0)
    row = store.execute("SELECT status, status_reason, status_changed_at, retired_at "
                        "FROM strategy_versions")[0]
    assert row == ("rejected", "to rejected", T0, T0)  # retired_at kept from 'retired'
    with pytest.raises(DataError, match="strategy status"):
        store.set_version_status("a", 1, "deleted", "x", T0)
    with pytest.raises(DataError, match="unknown strategy version"):
        store.set_version_status("a", 9, "retired", "x", T0)
    with pytest.raises(DataError):
        store.save_evolution_row("strategy_versions", {"x": 1})
    with pytest.raises(DataError):
        store.evolution_rows("ai_thoughts", order="seq; DROP TABLE x")
    assert json.loads(json.dumps(store.evolution_rows("ai_thoughts", order="seq DESC"))) == []
