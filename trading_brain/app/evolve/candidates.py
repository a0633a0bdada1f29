"""Step 3 of the cycle: write a candidate version and run its gates (DESIGN §8, issue 11).

``plan(ctx, decision)`` turns a ``create_candidate`` decision into a ``Plan`` (the new source,
its family/version, parent, tier and reason): tier 1 re-writes the parent's ``Params`` defaults
(``candidate.derive_source``; params equal to a non-active parent's defaults make the parent
itself the candidate); tiers 2/3 take the decision's ``source`` as is. ``StrategyError`` for a
plan that cannot be made (unknown params, out of the space, no change). The cycle stores the
plan before acting, so a re-run after a crash re-uses it (same version, no second candidate).

``run_gates(...)`` then, in order, each a ``GateResult`` (asset checks in ``defs/evolution``):

1. ``registration``: the registry's ``register`` (static gate, sandbox, determinism,
   look-ahead, warm-up) with a FRESH worker (``workers.validate``); the source is recorded in
   ``strategy_versions`` with parent and reason and written to
   ``<home>/var/candidates/<family>/v<N>.py``. An existing version with the same source is
   accepted only while ``registered`` (never tried) or already this plan's candidate;
2. ``walk_forward``: candidate vs the active version on the same recent history and costs
   (``evidence.walk_forward_gate``: fast-engine split, exact-engine confirmation);
3. ``oos_edge``, ``dsr``, ``pbo``: the over-fitting guard (``guard.overfit_guard``) over the
   night's sweep (``offline.sweep_plan``) plus the candidate's own run, N =
   ``variant_count(family)`` after tonight's variants are recorded.

Gates 2 and 3 run whenever gate 1 passed, so the table is complete; the candidate passes only
when every gate passed. ``Outcome.status``: ``candidate`` or ``rejected``.

An advisor that writes code (``advisors.CodeAdvisor``, the anthropic one) adds two steps:

- ``repair(...)``: after a tier 2/3 registration failure, at most ``max_repairs`` times, the
  coder gets its failed source and the gate's EXACT message (``Repair``); its new source is
  re-validated (``parse_decision``), re-planned (same family/version) and re-registered; each
  repaired plan is saved (``save(plan, n)``: thought ``candidate``/n, the newest is re-used on a
  re-run). Walk-forward and over-fitting failures are never repaired (that would be fitting
  the gates). A coder that cannot deliver ends the candidate with its reason in the gate row;
- ``review_gate(...)``: after every gate passed, the reviewer reads the diff against the
  parent and the gate table; ``reject`` (or an unusable reply / budget stop) is a failed
  ``review`` gate whose reason carries the concerns; the verdict is stored as thought
  ``review``/0 (role host) and re-used on a re-run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trading_brain.adapters.anthropic.wire import Repair, ReviewRequest
from trading_brain.app.evolve.advisors import CodeAdvisor
from trading_brain.app.evolve.lab import Lab
from trading_brain.app.research.register import sample_bars
from trading_brain.engine.backtest.metrics import BacktestResult
from trading_brain.engine.evolution.candidate import changes, derive_source, read_identity
from trading_brain.engine.evolution.context import EvolutionContext, VersionInfo
from trading_brain.engine.evolution.decision import Decision, parse_decision
from trading_brain.engine.evolution.evidence import walk_forward_gate
from trading_brain.engine.evolution.gates import GateResult
from trading_brain.engine.evolution.guard import overfit_guard
from trading_brain.engine.evolution.offline import evaluate_plan, sweep_plan
from trading_brain.engine.evolution.search import diff, variant_hash
from trading_brain.engine.registry import RegistryStore, register, sha256
from trading_brain.errors import AdvisorOutputRejected, StrategyError, TradingBrainError
from trading_brain.ports import EvolutionRecords, StrategyWorkers

Fault = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """The candidate a decision asks for (stored before anything is written)."""

    family: str
    version: int
    source: str
    parent: str
    tier: int
    reason: str

    @property
    def ref(self) -> str:
        return f"{self.family}@{self.version}"

    def as_json(self) -> dict[str, Any]:
        return {"family": self.family, "version": self.version, "source": self.source,
                "parent": self.parent, "tier": self.tier, "reason": self.reason}


@dataclass
class Outcome:
    """What happened to a planned candidate."""

    ref: str
    status: str
    gates: list[GateResult] = field(default_factory=list)
    reason: str = ""
    curves: dict[str, BacktestResult] = field(default_factory=dict)


def plan(ctx: EvolutionContext, decision: Decision) -> Plan:
    """The ``Plan`` of a ``create_candidate`` decision (module docstring)."""
    parent = ctx.version(decision.target or ctx.active.ref)
    if parent is None:
        raise StrategyError(f"unknown parent version {decision.target!r}")
    tier = int(decision.tier or 1)
    head = f"tier {tier}: from {parent.ref} by {ctx.cycle_id}"
    if tier == 1:
        wanted = dict(decision.params or {})
        changed = diff(wanted, parent.defaults)
        if not changed:
            if parent.ref == ctx.active.ref:
                raise StrategyError(f"the params equal {parent.ref}'s defaults: no change")
            return Plan(parent.family, parent.version, parent.source, parent.ref, tier,
                        f"{head} (as released)")
        version = ctx.next_version(parent.family)
        source = derive_source(parent.source, changed, space=parent.space, new_version=version,
                               note=f"{parent.family}@{version}: {head}; "
                                    f"{changes(parent.defaults, changed)}")
        return Plan(parent.family, version, source, parent.ref, tier,
                    f"{head}; {changes(parent.defaults, changed)}")
    source = decision.source or ""
    family, version = read_identity(source)
    return Plan(family, version, source, parent.ref, tier, f"{head}; new source")


def _write(root: Path, p: Plan) -> Path:
    path = root / p.family / f"v{p.version}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(p.source, encoding="utf-8")
    os.replace(tmp, path)
    return path


def registration_gate(store: RegistryStore, workers: StrategyWorkers, p: Plan, root: Path, *,
                      resumed: bool) -> GateResult:
    """Gate 1 (module docstring); ``resumed``: this plan was stored by an earlier run."""
    path = root / p.family / f"v{p.version}.py"
    parent_family, _, parent_version = p.parent.partition("@")
    same_family = parent_family == p.family and p.version != int(parent_version)
    try:
        row, created = register(store, p.source, workers.validate, sample_bars(),
                                path=str(path) if created_here(p) else None, reason=p.reason,
                                parent_version=int(parent_version) if same_family else None)
    except TradingBrainError as e:
        return GateResult("registration", "fail", {"sha256": sha256(p.source)[:12]}, str(e))
    metrics: dict[str, Any] = {"created": created, "status_before": row["status"],
                               "sha256": row["sha256"][:12],
                               "warmup_bars": int(row["warmup_bars"])}
    validation = row.get("validation") or {}
    if isinstance(validation, dict):
        look = validation.get("lookahead") or {}
        warm = validation.get("warmup") or {}
        metrics |= {"smoke_rows": validation.get("smoke_rows", 0),
                    "lookahead_passed": bool(look.get("passed", False)),
                    "warmup_passed": bool(warm.get("passed", False))}
    again = resumed and row["status"] in ("candidate", "rejected")
    if not (created or row["status"] == "registered" or again):
        return GateResult("registration", "fail", metrics,
                          f"{p.ref} already exists as {row['status']}: not a new candidate")
    if created_here(p):
        _write(root, p)
    return GateResult("registration", "pass", metrics,
                      "static gate, sandbox, determinism, look-ahead and warm-up passed")


def created_here(p: Plan) -> bool:
    """A plan that writes a new version (not an existing one made a candidate)."""
    return not p.reason.endswith("(as released)")


def backtest_gates(ctx: EvolutionContext, lab: Lab, cand: VersionInfo, *, n_trials: Callable[
        [], int], fault: Fault) -> tuple[list[GateResult], dict[str, BacktestResult]]:
    """Gates 2 and 3 for the registered candidate ``cand`` against the active version."""
    k = ctx.knobs
    active = ctx.active
    cand_run = lab.evaluate(cand, [dict(cand.defaults)])[0]
    inc_run = lab.evaluate(active, [dict(active.defaults)])[0]
    if cand_run is None or inc_run is None:
        who = cand.ref if cand_run is None else active.ref
        return [GateResult("walk_forward", "fail", {}, f"{who} could not be backtested")], {}
    cand_sig = lab.signals(cand.ref, cand.source, dict(cand.defaults))
    inc_sig = lab.signals(active.ref, active.source, dict(active.defaults))
    wf, curves = walk_forward_gate(lab.bars, cand_sig, inc_sig, cand_run, inc_run,
                                   train=k.train_fraction, costs=lab.costs,
                                   min_trades=k.min_trades)
    fault("backtest")
    cols = [c for c in evaluate_plan(sweep_plan(ctx), lab.evaluate)
            if (c.version.family, variant_hash(c.params))
            != (cand.family, variant_hash(cand.defaults))]
    runs = [c.run for c in cols] + [cand_run]
    incumbent = next((i for i, c in enumerate(cols) if c.version.ref == active.ref
                      and c.params == dict(active.defaults)), None)
    if incumbent is None:
        runs.append(inc_run)
        incumbent = len(runs) - 1
    guard = overfit_guard(runs, len(cols), incumbent,
                          candidate_oos=float(wf.metrics.get("candidate_oos_return", 0.0)),
                          incumbent_oos=float(wf.metrics.get("incumbent_oos_return", 0.0)),
                          n_trials=n_trials(), knobs=k.guard)
    fault("overfit")
    return [wf, *guard], curves


def repair(store: RegistryStore, workers: StrategyWorkers, ctx: EvolutionContext,
           decision: Decision, p: Plan, g1: GateResult, coder: CodeAdvisor, root: Path,
           save: Callable[[Plan, int], None]) -> tuple[Plan, GateResult]:
    """The bounded repair loop after a registration failure (module docstring)."""
    request = coder.pending_code
    if g1.passed or p.tier not in (2, 3) or request is None:
        return p, g1
    raw = decision.model_dump(mode="json")
    for attempt in range(1, coder.max_repairs + 1):
        try:
            source = coder.write_code(request, Repair(p.source, (g1.reason,)))
            fixed = plan(ctx, parse_decision(raw | {"source": source},
                                             known_versions=ctx.known_versions, now=ctx.now))
        except (AdvisorOutputRejected, StrategyError) as e:
            return p, GateResult("registration", "fail", g1.metrics | {"repairs": attempt},
                                 f"{g1.reason}; repair {attempt} failed: {e}")
        p = Plan(fixed.family, fixed.version, fixed.source, fixed.parent, fixed.tier,
                 f"{fixed.reason} (repair {attempt})")
        save(p, attempt)
        g1 = registration_gate(store, workers, p, root, resumed=False)
        g1 = GateResult(g1.name, g1.status, g1.metrics | {"repairs": attempt}, g1.reason)
        if g1.passed:
            break
    return p, g1


def review_gate(store: EvolutionRecords, ctx: EvolutionContext, p: Plan,
                gates: list[GateResult], coder: CodeAdvisor, brief: str) -> GateResult:
    """The reviewer's verdict as a gate (module docstring)."""
    stored = store.evolution_rows("ai_thoughts", {"cycle_id": ctx.cycle_id, "step": "review",
                                                  "seq": 0})
    if stored:
        return GateResult(**json.loads(stored[0]["content"]))
    parent = ctx.version(p.parent)
    request = ReviewRequest(p.ref, p.source, p.parent, parent.source if parent else "",
                            {"gates": [g.as_row() for g in gates]}, brief)
    try:
        r = coder.review(request)
    except AdvisorOutputRejected as e:
        gate = GateResult("review", "fail", {"verdict": "none"}, f"reviewer: {e}")
    else:
        said = "; ".join(r.concerns)
        gate = (GateResult("review", "pass", {"verdict": r.verdict, "concerns": len(r.concerns)},
                           f"approved{': ' + said if said else ''}")
                if r.verdict == "approve" else
                GateResult("review", "fail", {"verdict": r.verdict, "concerns": len(r.concerns)},
                           f"the reviewer rejected it: {said or 'no reason given'}"))
    store.save_evolution_row("ai_thoughts", {
        "cycle_id": ctx.cycle_id, "step": "review", "seq": 0, "role": "host",
        "content": json.dumps({"name": gate.name, "status": gate.status,
                               "metrics": gate.metrics, "reason": gate.reason}),
        "created_at": ctx.now})
    return gate
