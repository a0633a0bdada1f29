"""Gate 4 and after (trading_brain/app/promotion.py): shadow slots, paper tests, promotion,
cancel, automatic rollback — on a real simulated home (real warehouse, sandbox workers).

One short ``simulate`` (2 symbols, 2 days, ema_cross@1, Oct 1-3) makes the ledger (built once
per run, shared with test_promotion_reviews: ``conftest.built_once``); each test copies that
home. The candidate slot's ledger is hand-built (closed positions with known P&L)
after the simulated window, so the active slot's return over the test is 0 and every verdict
has a known answer.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from trading_brain.adapters.paper.exchange import PaperExchange
from trading_brain.app import promotion
from trading_brain.app.research.register import register_files
from trading_brain.app.runtime import Runtime, build_exchange, build_runtime, executor_slots
from trading_brain.app.scan import shadow_slots
from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.intents import OrderIntent, intent_id_for
from trading_brain.domain.records import PositionRecord
from trading_brain.domain.risk import Halt, RiskState, RollbackTrigger
from trading_brain.engine.executor.tick import TickConfig, run_tick
from trading_brain.errors import ConfigError
from trading_brain.ports import Exchange
from trading_brain.settings import Home
from trading_brain_tests.conftest import built_once

START = datetime(2026, 10, 3, 0, 0, tzinfo=UTC)  # the paper test starts where the sim ended
CAND = ("ema_rsi_volume", 1)
REF = "ema_rsi_volume@1"


PROMO_HOME = "sim-2d-btc-eth-registered"  # also test_promotion_reviews' home


def build_promo_home(home: Path) -> None:
    """The simulated home (2 symbols, 2 days, ema_cross@1) with the shipped strategies
    registered."""
    from trading_brain.app.simulate.loop import Plan, simulate

    simulate(Home(home), Plan(market="sim", days=2, seed=7, start="2026-10-01T00:00:00+00:00",
                              symbols=("BTC/USD", "ETH/USD")))
    rt = build_runtime(home)
    register_files(rt.store, rt.settings, None, "released", workers=rt.workers)
    rt.workers.close()


@pytest.fixture(scope="module")
def sim_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_once(tmp_path_factory, PROMO_HOME, build_promo_home)


@pytest.fixture
def home(sim_home: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "home"
    shutil.copytree(sim_home, dst)
    return dst


def rt_at(home: Path, now: datetime) -> Runtime:
    return build_runtime(home, now=now)


def make_candidate(rt: Runtime, tier: int = 1) -> None:
    rt.store.set_version_status(*CAND, "candidate", f"tier {tier}: from ema_cross@1 by test",
                                START - timedelta(hours=1))


def started(home: Path, tier: int = 1) -> Runtime:
    rt = rt_at(home, START)
    make_candidate(rt, tier)
    tests = promotion.start_paper_tests(rt, START)
    assert [t["test_id"] for t in tests] == [f"{REF}:shadow1"]
    return rt


def closed(slot: str, n: int, pnl: str, at: datetime) -> list[PositionRecord]:
    """``n`` closed BTC trades of the candidate in ``slot``, each with net ``pnl``."""
    return [PositionRecord(
        position_id=f"test-{slot}-{i}", symbol="BTC/USD", slot=slot, strategy_id=CAND[0],
        version=CAND[1], intent_type="day", status="closed", quantity=Decimal(0),
        cost_basis=Decimal(0), entry_fee=Decimal(1), entry_time=at + timedelta(minutes=10 * i),
        updated_at=at + timedelta(minutes=10 * i + 5), sold_qty=Decimal("0.01"),
        exit_value=Decimal(1000), exit_fee=Decimal(1), entry_cost=Decimal(1000),
        exit_time=at + timedelta(minutes=10 * i + 5), exit_reason="signal",
        realized_pnl=Decimal(pnl)) for i in range(n)]


def test_a_free_slot_takes_the_candidate_and_the_scan_runs_it(home: Path) -> None:
    rt = started(home, tier=2)
    test = rt.store.evolution_rows("paper_tests")[0]
    assert test["slot"] == "shadow1" and test["tier"] == 2 and test["status"] == "running"
    assert test["min_until"] == START + timedelta(days=2)
    assert test["min_trades"] == rt.settings.evolution.min_trades
    assert test["metrics"]["incumbent"] == "ema_cross@1"
    assert test["metrics"]["start_equity"]["shadow1"] == rt.settings.starting_cash
    assert shadow_slots(rt) == [("shadow1", *CAND)]
    assert promotion.start_paper_tests(rt, START + timedelta(hours=1)) == []  # no second test


def test_at_most_max_candidates_slots(home: Path) -> None:
    rt = rt_at(home, START)
    settings = rt.settings.model_copy(update={"evolution": rt.settings.evolution.model_copy(
        update={"max_candidates": 1})})
    rt = replace(rt, settings=settings)
    for sid in ("ema_rsi_volume", "trend_pullback"):
        rt.store.set_version_status(sid, 1, "candidate", "tier 1: x", START)
    assert len(promotion.start_paper_tests(rt, START)) == 1
    assert len(shadow_slots(rt)) == 1


class Untouchable:
    """The live venue of the active slot: any use fails the test."""

    name = "kraken"

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - any attribute is a failure
        raise AssertionError(f"the live venue was used: {name}")


def test_a_shadow_slot_trades_on_paper_even_in_live_mode(home: Path) -> None:
    rt = started(home)
    live = rt.settings.model_copy(update={"execution": "kraken"})

    def venues(r: Runtime, slot: str, pairs: Any) -> Exchange:
        spy: Any = Untouchable()
        return spy if slot == "active" else build_exchange(r, slot, pairs)

    rt = replace(rt, settings=live, exchanges=venues)
    pairs: dict[str, AssetPair] = rt.store.read_asset_pairs()
    assert isinstance(build_exchange(rt, "shadow1", pairs), PaperExchange)
    rt.store.ensure_deposit("shadow1", Decimal(10_000), START)
    price = Decimal(repr(float(rt.store.read_candles(["BTC/USD"], "5m")["close"][-1])))
    intent = OrderIntent(
        intent_id=intent_id_for(*CAND, "shadow1", "BTC/USD", START, "enter"), scan_id="t",
        strategy_id=CAND[0], version=CAND[1], slot="shadow1", symbol="BTC/USD", bar_time=START,
        action="enter", quantity=Decimal("0.001"), reference_price=price, created_at=START)
    rt.store.record_intents([intent])
    slots = executor_slots(rt, pairs)
    assert isinstance(slots["shadow1"].exchange, PaperExchange)
    shadow = {"shadow1": slots["shadow1"]}
    for minutes in (0, 6, 12):
        clock = rt.clock
        clock.set(START + timedelta(minutes=minutes))  # type: ignore[attr-defined]  # SimClock
        run_tick(rt.store, shadow, rt.market, rt.clock, pairs, rt.risk_limits,
                 TickConfig(local_venues=True))
    orders = rt.store.orders("shadow1")
    assert orders and all(o.slot == "shadow1" for o in orders)
    assert rt.store.positions("shadow1")  # filled on paper, its own ledger
    assert rt.store.cash_balance("shadow1") < Decimal(10_000)  # the active venue: untouched


def judge(home: Path, now: datetime) -> dict[str, Any]:
    rt = rt_at(home, now)
    out = promotion.evaluate_paper_tests(rt, now)
    assert len(out) <= 1
    return rt.store.evolution_rows("paper_tests")[0]


def test_paper_test_passes_when_the_candidate_beats_the_active_slot(home: Path) -> None:
    rt = started(home)
    rt.store.save_positions(closed("shadow1", 5, "20", START + timedelta(hours=2)))
    assert judge(home, START + timedelta(hours=12))["status"] == "running"  # < 1 day
    test = judge(home, START + timedelta(days=1, hours=1))
    assert test["status"] == "passed", test["reason"]
    assert test["metrics"]["candidate_return"] == pytest.approx(0.01)
    assert test["metrics"]["active_return"] == 0.0 and test["metrics"]["trades"] == 5
    assert shadow_slots(rt) == [("shadow1", *CAND)]  # holds its slot until promoted/cancelled


def test_paper_test_fails_when_it_loses(home: Path) -> None:
    rt = started(home)
    rt.store.save_positions(closed("shadow1", 5, "-20", START + timedelta(hours=2)))
    test = judge(home, START + timedelta(days=1, hours=1))
    assert test["status"] == "failed" and "did not beat" in test["reason"]
    assert shadow_slots(rt) == []  # the slot is free at once


def test_too_few_trades_keeps_running_then_fails_at_the_limit(home: Path) -> None:
    rt = started(home)
    rt.store.save_positions(closed("shadow1", 2, "50", START + timedelta(hours=2)))
    assert judge(home, START + timedelta(days=2))["status"] == "running"
    limit = 1 + rt.settings.evolution.stale_days
    test = judge(home, START + timedelta(days=limit, hours=1))
    assert test["status"] == "failed" and "2 of 5 closed trades" in test["reason"]


def test_a_changed_incumbent_makes_it_inconclusive(home: Path) -> None:
    rt = started(home)
    rt.store.save_positions(closed("shadow1", 5, "20", START + timedelta(hours=2)))
    rt.store.set_active_version("trend_pullback", 1, "deploy", "manual")
    test = judge(home, START + timedelta(days=1, hours=1))
    assert test["status"] == "inconclusive" and "active version changed" in test["reason"]


def test_a_rollback_trigger_in_the_candidate_slot_fails_it(home: Path) -> None:
    rt = started(home)
    trig = RollbackTrigger(reason="consecutive_losses", since=START, detail="5 in a row")
    rt.store.save_risk_state("shadow1", RiskState(rollback=trig), START)
    test = judge(home, START + timedelta(hours=3))
    assert test["status"] == "failed" and "rollback trigger" in test["reason"]
    state = rt.store.load_risk_state("shadow1")
    assert state is not None and state.rollback is None


def passed(home: Path) -> Runtime:
    started(home)
    rt = rt_at(home, START)
    rt.store.save_positions(closed("shadow1", 5, "20", START + timedelta(hours=2)))
    assert judge(home, START + timedelta(days=1, hours=1))["status"] == "passed"
    rt.store.save_risk_state("active", RiskState(), START)  # the sim left a trigger pending
    return rt_at(home, START + timedelta(days=1, hours=2))


def _last_logged_at(rt: Runtime) -> object:
    return rt.store.execute("SELECT logged_at FROM deployments_log ORDER BY seq DESC LIMIT 1")[0][0]


def _versions(rt: Runtime) -> dict[str, str]:
    return {f"{r['strategy_id']}@{r['version']}": r["status"]
            for r in rt.store.strategy_versions()}


def test_promotion_goes_through_deployments_and_retires_the_old_version(home: Path) -> None:
    rt = passed(home)
    now = rt.clock.now()
    p = promotion.promote(rt, REF, now)
    assert (p.ref, p.incumbent, p.slot) == (REF, "ema_cross@1", "shadow1")
    v = _versions(rt)
    assert v[REF] == "active" and v["ema_cross@1"] == "retired"
    assert rt.store.strategy_version("ema_cross", 1) is not None  # never deleted
    assert rt.store.deployment_history()[-1][:3] == (*CAND, "promote")
    assert _last_logged_at(rt) == now  # the caller's (simulated) clock, not the wall clock
    row = rt.store.strategy_version(*CAND)
    assert row is not None and row["deployed_at"] == now
    review = rt.store.evolution_rows("promotion_reviews")[0]
    assert review["promotion_id"] == REF and review["verdict"] == "pending"
    assert review["incumbent_strategy_id"] == "ema_cross" and review["promoted_at"] == now
    assert shadow_slots(rt) == []
    with pytest.raises(ConfigError, match="is active, not a candidate"):
        promotion.promote(rt, REF, now)


def test_the_promoted_version_does_not_inherit_the_incumbents_losing_streak(home: Path) -> None:
    rt = passed(home)
    rt.store.save_risk_state("active", RiskState(consecutive_losses=3), START)
    promotion.promote(rt, REF, rt.clock.now())
    state = rt.store.load_risk_state("active")
    assert state is not None and state.consecutive_losses == 0 and state.rollback is None
    kinds = [r[0] for r in rt.store.execute(
        "SELECT kind FROM risk_events WHERE details->>'slot' = 'active' AND kind = 'deployment'")]
    assert kinds == ["deployment"]


def test_the_risk_shell_can_refuse_a_promotion(home: Path) -> None:
    rt = passed(home)
    halt = {"drawdown": Halt(reason="drawdown 41%", since=START)}
    rt.store.save_risk_state("active", RiskState(halts=halt), START)
    with pytest.raises(ConfigError, match="risk shell refuses.*drawdown"):
        promotion.promote(rt, REF, rt.clock.now())
    assert _versions(rt)["ema_cross@1"] == "active"


def test_only_a_passed_test_promotes(home: Path) -> None:
    rt = started(home)
    with pytest.raises(ConfigError, match="paper test is running"):
        promotion.promote(rt, REF, START)
    with pytest.raises(ConfigError, match="not a candidate"):
        promotion.promote(rt, "trend_pullback@1", START)
    assert _versions(rt)["ema_cross@1"] == "active"


def test_tonights_promote_decision_is_applied_by_deployments(home: Path) -> None:
    from trading_brain.adapters.duckdb.evolution_tables import cycle_id_for
    from trading_brain.app.evolve.cycle import night_of

    rt = passed(home)
    now = rt.clock.now()
    cid = cycle_id_for(night_of(now, rt.settings.evolution), str(rt.home.root))
    rt.store.start_cycle(cid, now.date(), str(rt.home.root), "offline", now)
    rt.store.finish_cycle(cid, status="done", finished_at=now, decision={
        "action": "promote_candidate", "target": REF, "reasoning": "it passed"})
    out = promotion.apply_decision(rt, now)
    assert out["promoted"] == REF and _versions(rt)[REF] == "active"
    assert promotion.apply_decision(rt, now)["promoted"] is None  # refused, not raised


def test_cancel_frees_the_slot_and_flattens_it(home: Path) -> None:
    rt = started(home)
    open_pos = replace(closed("shadow1", 1, "0", START)[0], position_id="open-1",
                       status="open", quantity=Decimal("0.01"), cost_basis=Decimal(500),
                       sold_qty=Decimal(0), exit_value=Decimal(0), exit_time=None,
                       exit_reason=None, realized_pnl=None)
    rt.store.save_positions([open_pos])
    exits = promotion.cancel(rt, REF, START + timedelta(hours=1), "not good")
    assert len(exits) == 1
    assert _versions(rt)[REF] == "cancelled"
    assert rt.store.evolution_rows("paper_tests")[0]["status"] == "cancelled"
    assert shadow_slots(rt) == []
    pending = rt.store.intents("pending", "shadow1")
    assert [(i.action, i.symbol, i.quantity) for i in pending] == [
        ("exit", "BTC/USD", Decimal("0.01"))]


def test_a_rollback_trigger_reverts_records_clears_and_alerts(home: Path) -> None:
    rt = passed(home)
    promotion.promote(rt, REF, rt.clock.now())
    at = rt.clock.now() + timedelta(hours=3)
    trig = RollbackTrigger(reason="consecutive_losses", since=at, detail="4 losing trades")
    rt.store.save_risk_state("active", RiskState(rollback=trig, consecutive_losses=4), at)
    done = promotion.auto_rollback(rt, at)
    assert done is not None and "reverted ema_rsi_volume@1 to ema_cross@1" in done
    v = _versions(rt)
    assert v["ema_cross@1"] == "active" and v[REF] == "rolled_back"
    row = rt.store.strategy_version(*CAND)
    assert row is not None and "consecutive_losses" in str(row["status_reason"])
    assert rt.store.deployment_history()[-1][:3] == ("ema_cross", 1, "auto_rollback")
    assert _last_logged_at(rt) == at
    state = rt.store.load_risk_state("active")
    assert state is not None and state.rollback is None and state.consecutive_losses == 0
    kinds = [r[0] for r in rt.store.execute("SELECT kind FROM notifications")]
    assert "rollback" in kinds
    assert promotion.auto_rollback(rt, at) is None  # cleared: nothing more to do


def test_the_executor_use_case_acts_on_the_trigger(home: Path) -> None:
    from trading_brain.app.execute import execute_once

    rt = passed(home)
    promotion.promote(rt, REF, rt.clock.now())
    trig = RollbackTrigger(reason="daily_drop", since=rt.clock.now(), detail="-16% today")
    rt.store.save_risk_state("active", RiskState(rollback=trig), rt.clock.now())
    out = execute_once(rt)
    assert out.rollback is not None and "to ema_cross@1" in out.rollback
    assert _versions(rt)["ema_cross@1"] == "active"


def test_a_trigger_with_nothing_to_revert_to_is_cleared_and_said(home: Path) -> None:
    rt = rt_at(home, START)
    trig = RollbackTrigger(reason="daily_drop", since=START, detail="-16% today")
    rt.store.save_risk_state("active", RiskState(rollback=trig), START)
    done = promotion.auto_rollback(rt, START)
    assert done is not None and "not reverted" in done
    assert _versions(rt)["ema_cross@1"] == "active"
    state = rt.store.load_risk_state("active")
    assert state is not None and state.rollback is None


def test_a_slot_left_with_positions_by_the_cycles_cancel_is_flattened_not_reused(
        home: Path) -> None:
    rt = started(home)
    open_pos = replace(closed("shadow1", 1, "0", START)[0], position_id="open-2",
                       status="open", quantity=Decimal("0.02"), cost_basis=Decimal(1000),
                       sold_qty=Decimal(0), exit_value=Decimal(0), exit_time=None,
                       exit_reason=None, realized_pnl=None)
    rt.store.save_positions([open_pos])
    later = START + timedelta(days=1)
    # the cycle's own cancel (app/evolve/acts.py) changes the status and the test only
    rt.store.set_version_status(*CAND, "cancelled", "cycle cancel", later)
    rt.store.finish_paper_test(f"{REF}:shadow1", "cancelled", later, "cycle cancel")
    rt.store.set_version_status("trend_pullback", 1, "candidate", "tier 1: next", later)
    [test] = promotion.start_paper_tests(rt, later)
    assert test["slot"] == "shadow2"  # shadow1 still holds the old tenant's position
    assert [i.quantity for i in rt.store.intents("pending", "shadow1")] == [Decimal("0.02")]
    assert shadow_slots(rt) == [("shadow2", "trend_pullback", 1)]
