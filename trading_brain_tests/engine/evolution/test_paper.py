"""engine/evolution/paper.py: slots, verdicts, the shell's consent, review grades (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trading_brain.domain.risk import Halt, RiskState, RollbackTrigger
from trading_brain.engine.evolution import paper
from trading_brain.engine.evolution.gates import PaperStats

T0 = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = {1: 1.0, 2: 2.0, 3: 7.0}


def test_holding_and_free_slots() -> None:
    tests = [{"test_id": "a@2:shadow1", "strategy_id": "a", "version": 2, "slot": "shadow1",
              "status": "running", "started_at": T0},
             {"test_id": "b@1:shadow2", "strategy_id": "b", "version": 1, "slot": "shadow2",
              "status": "passed", "started_at": T0},
             {"test_id": "c@1:shadow3", "strategy_id": "c", "version": 1, "slot": "shadow3",
              "status": "failed", "started_at": T0}]
    statuses = {("a", 2): "candidate", ("b", 1): "candidate", ("c", 1): "candidate"}
    held = paper.holding(tests, statuses)
    assert sorted(held) == ["shadow1", "shadow2"] and held["shadow1"].ref == "a@2"
    assert paper.free_slots(held, set(), 3) == ["shadow3"]
    assert paper.free_slots(held, {"shadow3"}, 3) == []  # leftovers of a previous tenant
    assert paper.free_slots({}, set(), 2) == ["shadow1", "shadow2"]
    promoted = paper.holding(tests, {**statuses, ("b", 1): "active"})
    assert sorted(promoted) == ["shadow1"]


def test_new_test_row() -> None:
    row = paper.new_test("a", 2, "shadow1", 3, T0, min_days=DAYS, min_trades=5,
                         incumbent="e@1", start_equity={"active": 9000.0, "shadow1": 1e4})
    assert row["test_id"] == "a@2:shadow1" and row["min_until"] == T0 + timedelta(days=7)
    assert row["metrics"] == {"incumbent": "e@1",
                              "start_equity": {"active": 9000.0, "shadow1": 1e4}}


def stats(trades: int, ret: float) -> PaperStats:
    return PaperStats(started_at=T0, closed_trades=trades, net_return=ret)


def judge(cand: PaperStats, act: PaperStats, days: float, now_inc: str | None = "e@1"
          ) -> paper.Verdict:
    return paper.verdict(cand, act, tier=1, now=T0 + timedelta(days=days), min_days=DAYS,
                         min_trades=5, stale_days=7, incumbent_then="e@1",
                         incumbent_now=now_inc)


@pytest.mark.parametrize(("cand", "act", "days", "status"), [
    (stats(5, 0.02), stats(9, 0.01), 1.0, "passed"),
    (stats(5, 0.01), stats(9, 0.01), 1.0, "failed"),  # a tie does not beat it
    (stats(5, -0.02), stats(9, 0.0), 1.5, "failed"),
    (stats(9, 0.05), stats(9, 0.0), 0.5, None),  # too early: still running
    (stats(4, 0.05), stats(9, 0.0), 7.9, None),  # too few trades: still running
    (stats(4, 0.05), stats(9, 0.0), 8.0, "failed"),  # ... until min days + stale days
])
def test_verdicts(cand: PaperStats, act: PaperStats, days: float, status: str | None) -> None:
    assert judge(cand, act, days).status == status


def test_a_changed_incumbent_is_inconclusive() -> None:
    v = judge(stats(9, 0.05), stats(9, 0.0), 2, now_inc="e@2")
    assert v.status == "inconclusive" and "e@1 -> e@2" in v.reason


def test_slot_return() -> None:
    assert paper.slot_return(T0, 3, 150.0, 10_000.0).net_return == pytest.approx(0.015)
    assert paper.slot_return(T0, None, None, None) == stats(0, 0.0)


def test_the_shell_agrees_only_without_halt_kill_or_trigger() -> None:
    assert paper.shell_agrees({"active": RiskState(), "shadow1": None}) == (
        True, "no halt, kill switch or rollback pending")
    halted = RiskState(halts={"drawdown": Halt(reason="dd 40%", since=T0)})
    ok, why = paper.shell_agrees({"active": halted})
    assert not ok and "drawdown" in why
    trig = RiskState(rollback=RollbackTrigger(reason="daily_drop", since=T0, detail="x"))
    assert not paper.shell_agrees({"shadow1": trig})[0]
    killed = RiskState(kill_switch=Halt(reason="kill", since=T0))
    assert "kill switch" in paper.shell_agrees({"active": killed})[1]


def test_review_verdict_and_adds_value() -> None:
    assert paper.review_verdict(0.03, 0.01) == (pytest.approx(0.02), "won")
    assert paper.review_verdict(0.0, 0.01)[1] == "lost"
    assert paper.review_verdict(0.01, 0.01)[1] == "tie"

    def rev(i: int, v: str) -> dict:
        return {"promotion_id": f"p{i}", "promoted_at": T0 + timedelta(days=i), "verdict": v,
                "edge": 0.01 if v == "won" else -0.01}

    assert paper.adds_value([]).passed
    assert paper.adds_value([rev(0, "pending")]).metrics == {"graded": 0}
    assert not paper.adds_value([rev(0, "lost"), rev(1, "lost"), rev(2, "won")]).passed
    assert paper.adds_value([rev(0, "lost"), rev(1, "won"), rev(2, "tie")]).passed
    old_losses = [rev(i, "lost") for i in range(5)] + [rev(5 + i, "won") for i in range(5)]
    assert paper.adds_value(old_losses).passed  # only the most recent 5 count
