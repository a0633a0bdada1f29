"""Faults of the Messages API inside a real nightly cycle (issue 12, Safety): a reply that is
refused, cut off at ``max_tokens``, timed out or overloaded past the SDK's retries is retried
within limits, then rejected with the reason recorded, and nothing deployed changes, whichever
role it hits: the analyst (the cycle is ``rejected``), the coder in the cycle's repair loop (the
registration gate fails with the reason) or the reviewer (the review gate fails, the candidate
is rejected). Same simulated home and loopback fake as ``test_evolve_anthropic``; the
adapter-level modes (one bad reply then a good one) are in
``trading_brain_tests/adapters/anthropic/test_replies.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trading_brain.app.evolve import candidates as cands
from trading_brain.app.evolve.cycle import run_cycle
from trading_brain.app.runtime import build_runtime
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.app.test_evolve_anthropic import (
    AHEAD,
    DOCUMENT,
    NOW,
    TIER2,
    fa,  # noqa: F401 - the fake with the key in the environment
    make_home,
    passing_backtests,
    steps,
    v2,
    versions,
)
from trading_brain_tests.conftest import register_released, two_day_sim
from trading_brain_tests.fakes.anthropic_server import (
    FakeAnthropic,
    Scripted,
    ok,
    overloaded,
    refusal,
    slow,
    text,
    truncated,
)


@pytest.fixture(scope="module")
def sim_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """test_evolve_anthropic's simulated home (2 days, 3 symbols, the shipped strategies
    registered), its simulation shared with other modules (``conftest.two_day_sim``)."""
    home = two_day_sim(tmp_path_factory, tmp_path_factory.mktemp("advisor_faults") / "home",
                       ("BTC/USD", "ETH/USD", "SOL/USD"))
    register_released(home)
    return home


class Script:
    """The fake's responder: per role, scripted answers in order (the last one repeats)."""

    def __init__(self, analyst: list[Scripted], coder: list[Scripted] | None = None,
                 reviewer: list[Scripted] | None = None) -> None:
        self.queues = {"analyst": analyst, "coder": coder or [ok(h.code(v2()))],
                       "reviewer": reviewer or [ok(h.review())]}

    def __call__(self, body: dict[str, Any]) -> Scripted:
        role = h.role_of(body)
        if role == "analyst" and '"document"' in json.dumps(body.get("output_config") or {}):
            return ok({"document": DOCUMENT})
        queue = self.queues[role]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def run(home: Path, fa: FakeAnthropic, script: Script) -> tuple[Any, Any]:  # noqa: F811
    fa.state.responder = script
    rt = build_runtime(home, now=NOW)
    try:
        return rt, run_cycle(rt, advisor_name="anthropic")
    finally:
        rt.workers.close()


def hosts(rt: Any, cycle_id: str, step: str) -> list[str]:
    return [t["content"] for t in rt.store.evolution_rows(
        "ai_thoughts", {"cycle_id": cycle_id, "step": step, "role": "host"}, order="seq")]


NEVER = [refusal(), truncated(), refusal()]  # three attempts (max_reply_retries = 2)


@pytest.mark.parametrize("replies, reason, costed", [
    (NEVER, "analyst: the model refused to answer (after 3 attempts)", 3),
    ([truncated()], "analyst: the reply was cut off at max_tokens (8000) (after 3 attempts)", 3),
    ([slow(2.0, ok(h.decision()))], "analyst: the request timed out", 0),
    ([overloaded(0.01)], "analyst: HTTP 529 overloaded_error", 0),
], ids=["refused", "cut-off", "timeout", "overloaded"])
def test_an_analyst_that_cannot_answer_rejects_the_night_and_changes_nothing(
        sim_home: Path, tmp_path: Path, fa: FakeAnthropic,  # noqa: F811
        replies: list[Scripted], reason: str, costed: int) -> None:
    home = make_home(sim_home, tmp_path, fa, timeout_s=0.5, max_retries=1)
    rt, res = run(home, fa, Script(list(replies)))
    assert res.status == "rejected" and reason in str(res.error)
    [stored] = rt.store.evolution_cycles(res.cycle_id)
    assert stored["status"] == "rejected" and reason in str(stored["error"])
    assert versions(rt)["ema_cross@1"] == "active" and "ema_cross@2" not in versions(rt)
    assert [d[2] for d in rt.store.deployment_history()] == ["deploy"]
    assert len(rt.store.evolution_rows("token_usage", {"cycle_id": res.cycle_id})) == costed
    assert len(hosts(rt, res.cycle_id, "analyst.1")) == max(costed, 1)  # each reason recorded
    assert ("decision", 1, "host") in steps(rt, res.cycle_id)
    if costed == 0:  # the SDK retried the HTTP call itself: one attempt per retry, no re-ask
        assert len(fa.calls()) == 2


@pytest.mark.parametrize("replies, reason", [
    (NEVER, "reviewer: the model refused to answer (after 3 attempts)"),
    ([overloaded(0.01)], "reviewer: HTTP 529 overloaded_error"),
], ids=["refused", "overloaded"])
def test_a_reviewer_that_cannot_answer_rejects_the_candidate(
        sim_home: Path, tmp_path: Path, fa: FakeAnthropic,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, replies: list[Scripted], reason: str) -> None:
    monkeypatch.setattr(cands, "backtest_gates", passing_backtests)
    home = make_home(sim_home, tmp_path, fa)
    rt, res = run(home, fa, Script([ok(TIER2)], reviewer=list(replies)))
    review = res.gates[-1]
    assert (review["gate"], review["status"]) == ("review", "fail")
    assert review["reason"].startswith("reviewer: ") and reason in review["reason"]
    assert versions(rt)["ema_cross@2"] == "rejected" and versions(rt)["ema_cross@1"] == "active"
    assert res.outcome == "rejected by the gates"
    assert [d[2] for d in rt.store.deployment_history()] == ["deploy"]


@pytest.mark.slow
def test_a_repair_cut_off_at_max_tokens_fails_registration_and_registers_nothing(
        sim_home: Path, tmp_path: Path, fa: FakeAnthropic) -> None:  # noqa: F811
    """Registration runs the real sandbox gates (look-ahead): ~10 s."""
    home = make_home(sim_home, tmp_path, fa, max_repairs=1)
    coder = [ok(h.code(v2(AHEAD))), truncated(), truncated(), text("still not JSON")]
    rt, res = run(home, fa, Script([ok(TIER2)], coder=coder))
    gate = res.gates[0]
    assert (gate["gate"], gate["status"], gate["repairs"]) == ("registration", "fail", 1)
    assert "lookahead check failed" in gate["reason"]
    assert "repair 1 failed: advisor output rejected: coder: not the JSON of the schema" \
        in gate["reason"]
    assert rt.store.strategy_version("ema_cross", 2) is None
    assert versions(rt)["ema_cross@1"] == "active"
    rejected = hosts(rt, res.cycle_id, "coder")
    assert [r.split(":")[0] for r in rejected] == [
        "rejected (attempt 1)", "rejected (attempt 2)", "rejected (attempt 3)"]
    assert "cut off at max_tokens" in rejected[0]
