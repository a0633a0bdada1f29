"""What the cycle does with a validated decision (the shell disposes; see ``cycle``).

- ``remember``: the decision's observation (``<cycle>:0``) and predictions (``<cycle>:<i>``),
  written once;
- ``record_trials``: every variant evaluated tonight into ``variant_trials`` (N of the DSR);
- ``act``: ``create_candidate`` → plan (stored as thought ``candidate``/0 and re-used on a
  re-run), gates (``candidates``), status ``candidate`` or ``rejected`` (a version that existed
  before as ``registered`` keeps that status when it fails: one bad night does not poison a
  shipped version); ``cancel_candidate`` → ``cancelled`` (and its running paper test);
  ``promote_candidate`` → recorded for the deployments step; analysis updates → recorded, not
  applied. A target that is not in status ``candidate`` is refused: the cycle ends ``rejected``
  with the reason and nothing changes.
- with a code-writing advisor (``coder``): a tier 2/3 registration failure goes through
  ``candidates.repair`` (each repaired plan stored as thought ``candidate``/n; a re-run re-uses
  the newest), and a candidate that passed every gate through ``candidates.review_gate``;
  analysis updates are stored as new analysis versions (``analysis_update``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from trading_brain.adapters.duckdb import Store
from trading_brain.app.evolve import candidates as cands
from trading_brain.app.evolve.advisors import CodeAdvisor
from trading_brain.app.evolve.analysis_update import store_analysis
from trading_brain.app.evolve.context import version_info
from trading_brain.app.evolve.lab import Lab
from trading_brain.app.runtime import Runtime
from trading_brain.engine.backtest.metrics import BacktestResult
from trading_brain.engine.evolution.context import EvolutionContext
from trading_brain.engine.evolution.decision import Decision
from trading_brain.engine.evolution.gates import GateResult
from trading_brain.engine.evolution.search import Params, variant_hash
from trading_brain.engine.registry import parse_ref
from trading_brain.errors import StrategyError

Fault = Callable[[str], None]


class LabSource(Protocol):
    lab: Lab | None

    def get(self) -> Lab: ...


@dataclass
class Acted:
    status: str = "done"
    candidate: str | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = ""
    error: str | None = None
    curves: dict[str, BacktestResult] = field(default_factory=dict)


def remember(store: Store, cycle_id: str, d: Decision, now: datetime) -> None:
    if d.observation.strip():
        store.save_evolution_row("observations", {
            "observation_id": f"{cycle_id}:0", "cycle_id": cycle_id, "subject": "active",
            "content": d.observation, "created_at": now})
    for i, p in enumerate(d.predictions):
        store.save_evolution_row("predictions", {
            "prediction_id": f"{cycle_id}:{i}", "cycle_id": cycle_id, "subject": p.subject,
            "claim": p.claim, "metric": p.metric, "comparator": p.comparator,
            "threshold": p.threshold, "deadline": p.deadline, "created_at": now})


def record_trials(store: Store, cycle_id: str, tried: Sequence[tuple[str, Params]],
                  now: datetime) -> int:
    """Store each (family, variant) not stored yet (first write wins); the number stored.
    Variants already in ``variant_trials`` (most of a night's sweep: the same sets every
    night) are skipped after one read per family instead of one refused insert each."""
    fresh: dict[tuple[str, str], Params] = {}
    for family, params in tried:
        fresh.setdefault((family, variant_hash(params)), params)
    for family in {f for f, _ in fresh}:
        for r in store.evolution_rows("variant_trials", {"family": family}):
            fresh.pop((family, str(r["variant_hash"])), None)
    return sum(store.save_evolution_row("variant_trials", {
        "family": family, "variant_hash": vh, "kind": "params", "cycle_id": cycle_id,
        "tried_at": now, "params": params}) for (family, vh), params in fresh.items())


def _candidate_row(store: Store, ref: str) -> dict[str, Any] | None:
    sid, ver = parse_ref(ref)
    return store.strategy_version(sid, ver or 0)


def _refuse(why: str) -> Acted:
    return Acted(status="rejected", outcome="refused", error=why)


def act(rt: Runtime, ctx: EvolutionContext, d: Decision, lab: LabSource,
        step: Fault, coder: CodeAdvisor | None = None) -> Acted:
    if d.action == "no_change":
        return Acted(outcome="no change")
    if d.action in ("update_market_analysis", "update_trade_analysis"):
        ref, gate = store_analysis(rt, ctx, d)
        return Acted(candidate=ref, gates=[gate.as_row()], outcome=(
            f"analysis {ref} stored" if gate.passed else "analysis update refused"))
    if d.action == "create_candidate":
        return create(rt, ctx, d, lab, step, coder)
    target = d.target or ""
    row = _candidate_row(rt.store, target)
    if row is None or row["status"] != "candidate":
        state = row["status"] if row else "unknown"
        return _refuse(f"{d.action}: {target} is {state}, not a candidate")
    if d.action == "cancel_candidate":
        rt.store.set_version_status(row["strategy_id"], row["version"], "cancelled",
                                    d.reasoning[:500], ctx.now)
        for t in rt.store.evolution_rows("paper_tests", {"strategy_id": row["strategy_id"],
                                                         "version": row["version"]}):
            rt.store.finish_paper_test(t["test_id"], "cancelled", ctx.now, "cancelled by "
                                       f"{ctx.cycle_id}")
        return Acted(candidate=target, outcome="cancelled")
    return Acted(candidate=target, outcome="promotion requested (the deployments step "
                                           "promotes it when the risk shell agrees)")


def _stored_plan(rt: Runtime, cycle_id: str) -> cands.Plan | None:
    rows = rt.store.evolution_rows("ai_thoughts", {"cycle_id": cycle_id, "step": "candidate"},
                                   order="seq DESC")
    return cands.Plan(**json.loads(rows[0]["content"])) if rows else None


def _save_plan(rt: Runtime, cycle_id: str, now: datetime) -> Callable[[cands.Plan, int], None]:
    def save(plan: cands.Plan, seq: int) -> None:
        rt.store.save_evolution_row("ai_thoughts", {
            "cycle_id": cycle_id, "step": "candidate", "seq": seq, "role": "host",
            "content": json.dumps(plan.as_json()), "created_at": now})
    return save


def create(rt: Runtime, ctx: EvolutionContext, d: Decision, lab: LabSource,
           step: Fault, coder: CodeAdvisor | None = None) -> Acted:
    plan = _stored_plan(rt, ctx.cycle_id)
    resumed = plan is not None
    if plan is None:
        try:
            plan = cands.plan(ctx, d)
        except StrategyError as e:
            gate = GateResult("registration", "fail", {}, f"no candidate: {e}")
            return Acted(status="done", outcome="rejected", gates=[gate.as_row()])
        _save_plan(rt, ctx.cycle_id, ctx.now)(plan, 0)
    step("plan")
    root = rt.home.var / "candidates"
    g1 = cands.registration_gate(rt.store, rt.workers, plan, root, resumed=resumed)
    if coder is not None:
        plan, g1 = cands.repair(rt.store, rt.workers, ctx, d, plan, g1, coder, root,
                                _save_plan(rt, ctx.cycle_id, ctx.now))
    step("registration")
    gates, curves = [g1], {}
    row = rt.store.strategy_version(plan.family, plan.version)
    if g1.passed and row is not None:
        cand = version_info(row)
        try:
            the_lab = lab.get()
            record_trials(rt.store, ctx.cycle_id, [(cand.family, dict(cand.defaults))], ctx.now)
            more, curves = cands.backtest_gates(
                ctx, the_lab, cand, n_trials=lambda: rt.store.variant_count(cand.family),
                fault=step)
            record_trials(rt.store, ctx.cycle_id, the_lab.tried, ctx.now)
        except (StrategyError, ValueError) as e:
            more = [GateResult("walk_forward", "fail", {}, f"backtest failed: {e}")]
        gates += more
    passed = all(g.passed for g in gates)
    if passed and coder is not None:
        brief = coder.pending_code.brief if coder.pending_code else d.reasoning
        gates.append(cands.review_gate(rt.store, ctx, plan, gates, coder, brief))
        passed = gates[-1].passed
    new_version = row is not None and cands.created_here(plan)
    if row is not None and (passed or new_version):
        failed = "; ".join(f"{g.name}: {g.reason}" for g in gates if not g.passed)
        rt.store.set_version_status(plan.family, plan.version,
                                    "candidate" if passed else "rejected",
                                    plan.reason + (f"; failed {failed}" if failed else ""),
                                    ctx.now)
    step("status")
    return Acted(candidate=plan.ref, gates=[g.as_row() for g in gates], curves=curves,
                 outcome="candidate (waiting for a shadow paper-test slot)" if passed
                 else "rejected by the gates")
