"""The nightly evolution cycle: context → decision → act, every step recorded (DESIGN §8).

``run_cycle(rt, advisor_name="offline", advisor=None, now=None, fault=None) -> CycleResult``:

- the cycle id is ``cycle-<night>-<home hash>`` (``evolution_tables.cycle_id_for``; the night is
  the local date of ``now`` in ``[evolution] timezone``). A cycle already ``done`` or
  ``rejected`` is not run again: its stored result is returned. A cycle killed at any step is
  re-run from the start and every step is idempotent: benchmarks are replaced, reports
  upserted, thoughts/observations/predictions/variant trials inserted once (first write wins),
  the stored decision and the stored candidate plan are re-used (same version: no second
  candidate), statuses set again;
- steps (``fault(step)`` is called after each, for tests that kill the cycle there):
  ``start``, ``context`` (``context.py``), ``decision`` (the advisor's ``Decision``, re-validated
  by ``parse_decision``; rejected output ends the cycle with status ``rejected`` and the reason,
  nothing else changes), ``memory`` (observation, predictions), ``trials`` (variants tried),
  then by action: ``create_candidate`` → ``plan``, ``registration``, ``backtest``,
  ``overfit``, ``status`` (``candidates.py``); ``cancel_candidate`` → the candidate is
  ``cancelled`` and its running paper test too; ``promote_candidate`` is recorded for the
  deployments step (another helper); analysis updates are recorded, not applied; then
  ``finish``;
- thoughts (``ai_thoughts``): ``context``/0 (digest), ``decision``/0 (the decision, role
  assistant) or ``decision``/1 (the rejection, role host), ``candidate``/0 (the plan; /n the
  n-th repaired plan), ``review``/0 (the reviewer's verdict), ``gates``/0 (the gate table and
  outcome); the anthropic advisor adds each role's prompts and replies (``analyst.N``,
  ``panel``, ``coder``, ``reviewer``, ``budget``, ``system.<role>``);
- the advisor: ``advisor`` when given, else ``advisors.advisor_for(advisor_name, …)``
  (``advisor_name=None``: ``advisors.chosen_kind`` from settings and secrets). One that writes
  code (``advisors.CodeAdvisor``) repairs tier 2/3 registration failures and reviews
  candidates (``acts``/``candidates``); its ``begin(cycle_id, now)`` is called first so a
  re-run can still repair or review;
- once per ISO week (the first cycle of the week) the weekly reflection runs after the
  decision's memory (``reflection.reflect``: grades, the strategy document, observations);
- ``tokens``: every token of the cycle's calls (input, output, cache write and cache read,
  from ``token_usage``), ``cost_usd`` their cost; ``votes`` the panel's votes and ``review``
  the reviewer's verdict (for the Dagster metadata; not stored beyond the thoughts).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from trading_brain.adapters.duckdb.evolution_tables import cycle_id_for
from trading_brain.app.alerts import notify_cycle
from trading_brain.app.evolve import acts
from trading_brain.app.evolve.advisors import advisor_for, chosen_kind, code_advisor
from trading_brain.app.evolve.context import (
    build_context,
    grade_open_predictions,
    refresh_benchmarks,
    register_shipped,
    run_analyses,
)
from trading_brain.app.evolve.lab import Lab
from trading_brain.app.evolve.reflection import reflect, strategy_document
from trading_brain.app.runtime import Runtime
from trading_brain.engine.backtest.metrics import BacktestResult
from trading_brain.engine.evolution.context import Knobs
from trading_brain.engine.evolution.decision import Decision, parse_decision
from trading_brain.engine.evolution.evidence import Costs
from trading_brain.engine.evolution.guard import GuardSettings
from trading_brain.errors import AdvisorOutputRejected
from trading_brain.ports import Advisor
from trading_brain.settings import EvolutionSettings, Secrets

Fault = Callable[[str], None]


@dataclass
class CycleResult:
    """The outcome of one cycle (``as_json`` is what ``trading-brain evolve --json`` prints)."""

    cycle_id: str
    status: str
    decision: dict[str, Any] | None = None
    candidate: str | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = ""
    error: str | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    curves: dict[str, BacktestResult] = field(default_factory=dict)
    votes: list[dict[str, Any]] = field(default_factory=list)
    review: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        d = self.decision or {}
        return {"cycle_id": self.cycle_id, "status": self.status,
                "decision": {"action": d.get("action"), "tier": d.get("tier"),
                             "reasoning": d.get("reasoning")},
                "candidate": self.candidate, "gates": self.gates, "outcome": self.outcome,
                "error": self.error, "tokens": self.tokens, "cost_usd": self.cost_usd}


def knobs(es: EvolutionSettings) -> Knobs:
    return Knobs(guard=GuardSettings(margin=es.margin, min_dsr=es.min_dsr, max_pbo=es.max_pbo),
                 sweep_size=es.sweep_size, family_sweep_size=es.family_sweep_size,
                 train_fraction=es.train_fraction, min_trades=es.min_trades,
                 max_candidates=es.max_candidates, stale_days=es.stale_days,
                 paper_days={1: es.paper_days_tier1, 2: es.paper_days_tier2,
                             3: es.paper_days_tier3})


def night_of(now: datetime, es: EvolutionSettings) -> date:
    return now.astimezone(ZoneInfo(es.timezone)).date()


class LazyLab:
    """The night's ``Lab``, opened on first use (a cycle that only cancels never reads bars)."""

    def __init__(self, rt: Runtime, now: datetime) -> None:
        self.rt, self.now, self.lab = rt, now, None

    def get(self) -> Lab:
        if self.lab is None:
            es = self.rt.settings.evolution
            end = self.now.replace(second=0, microsecond=0)
            end -= timedelta(minutes=end.minute % 5)
            self.lab = Lab.open(self.rt.store, self.rt.workers, self.rt.settings.symbols, end,
                                es.history_days, Costs(cash=self.rt.settings.starting_cash))
        return self.lab


def _thought(rt: Runtime, cycle_id: str, step: str, seq: int, role: str, content: str,
             now: datetime) -> None:
    rt.store.save_evolution_row("ai_thoughts", {"cycle_id": cycle_id, "step": step, "seq": seq,
                                                "role": role, "content": content,
                                                "created_at": now})


def _tokens(rt: Runtime, cycle_id: str) -> tuple[int, float]:
    rows = rt.store.evolution_rows("token_usage", {"cycle_id": cycle_id})
    tokens = sum(int(r["input_tokens"]) + int(r["output_tokens"])
                 + int(r.get("cache_write_tokens") or 0) + int(r.get("cache_read_tokens") or 0)
                 for r in rows)
    return tokens, float(sum(float(r["cost_usd"]) for r in rows))


def stored_result(rt: Runtime, row: dict[str, Any]) -> CycleResult:
    """The result of a finished cycle, from its records."""
    cid = row["cycle_id"]
    gates = rt.store.evolution_rows("ai_thoughts", {"cycle_id": cid, "step": "gates"})
    table = json.loads(gates[0]["content"]) if gates else {}
    return CycleResult(cid, row["status"], row.get("decision"), table.get("candidate"),
                       table.get("gates", []), table.get("outcome", ""), row.get("error"),
                       int(row.get("tokens") or 0), float(row.get("cost_usd") or 0.0),
                       votes=_votes(rt, cid), review=_review(rt, cid))


def _decide(rt: Runtime, advisor: Advisor, ctx: Any, cycle_id: str, now: datetime
            ) -> Decision:
    """The stored decision of a re-run, else the advisor's: asked with no connection open
    (its own store calls, if any, open short ones)."""
    stored = rt.store.evolution_rows("ai_thoughts", {"cycle_id": cycle_id, "step": "decision",
                                                     "seq": 0})
    raw: Any = stored[0]["content"] if stored else advisor.decide(ctx).model_dump(mode="json")
    return parse_decision(raw, known_versions=ctx.known_versions, now=now)


def _votes(rt: Runtime, cycle_id: str) -> list[dict[str, Any]]:
    rows = rt.store.evolution_rows("ai_thoughts", {"cycle_id": cycle_id, "step": "panel"},
                                   order="seq DESC")
    return list(json.loads(rows[0]["content"]).get("votes", [])) if rows else []


def _review(rt: Runtime, cycle_id: str) -> dict[str, Any] | None:
    rows = rt.store.evolution_rows("ai_thoughts", {"cycle_id": cycle_id, "step": "review",
                                                   "seq": 0})
    if not rows:
        return None
    g = json.loads(rows[0]["content"])
    return {"verdict": g["metrics"].get("verdict"), "status": g["status"],
            "reason": g["reason"]}


def run_cycle(rt: Runtime, *, advisor_name: str | None = "offline",
              advisor: Advisor | None = None,
              now: datetime | None = None, fault: Fault | None = None,
              stop_after: str | None = None) -> CycleResult:
    """One nightly cycle (module docstring); ``stop_after="decision"`` returns once the
    decision and its memory are recorded (status ``running``: a later call finishes it).
    Each step's store calls share a short session (``Store.session``); no connection is open
    during the advisor's calls, the sandbox work or the backtests (DESIGN §4)."""
    res = _run(rt, advisor_name, advisor, now, fault, stop_after)
    return notify_cycle(rt, res, now)  # the night's alerts, once (app.alerts; never raises)


def _run(rt: Runtime, advisor_name: str | None, advisor: Advisor | None, now: datetime | None,
         fault: Fault | None, stop_after: str | None) -> CycleResult:
    now = now or rt.clock.now()
    es = rt.settings.evolution
    step: Fault = fault or (lambda name: None)
    home = str(rt.home.root)
    cycle_id = cycle_id_for(night_of(now, es), home)
    lab = LazyLab(rt, now)
    if advisor is None:
        name = advisor_name or chosen_kind(rt.settings, Secrets.load(rt.home.root))
        advisor = advisor_for(name, lab.get, rt, document=lambda: strategy_document(rt.store))
    coder = code_advisor(advisor)
    if coder is not None:
        coder.begin(cycle_id, now)
    with rt.store.session():
        rt.store.start_cycle(cycle_id, night_of(now, es), home, advisor.name, now)
        row = rt.store.evolution_cycles(cycle_id)[0]
        if row["status"] in ("done", "rejected"):
            return stored_result(rt, row)
    step("start")
    since = now - timedelta(days=es.history_days)
    with rt.store.session():
        bench = refresh_benchmarks(rt.store, now, since, cycle_id)
        grade_open_predictions(rt.store, now)
    reports = run_analyses(rt.store, now, since, cycle_id, workers=rt.workers,
                           settings=rt.settings)  # sandboxed: short connections
    shipped = register_shipped(rt.store, rt.settings, rt.workers)
    if shipped:
        reports = {**reports, "registry": {"error": shipped}}
    with rt.store.session():
        ctx = build_context(rt.store, cycle_id, now, knobs(es), benchmarks=bench,
                            reports=reports)
        _thought(rt, cycle_id, "context", 0, "host", json.dumps(ctx.summary(), default=str),
                 now)
    step("context")
    try:
        decision = _decide(rt, advisor, ctx, cycle_id, now)
    except AdvisorOutputRejected as e:
        reason = f"advisor output rejected: {e}"
        with rt.store.session():
            _thought(rt, cycle_id, "decision", 1, "host", reason, now)
            tokens, cost = _tokens(rt, cycle_id)
            rt.store.finish_cycle(cycle_id, status="rejected", finished_at=now, error=reason,
                                  tokens=tokens, cost_usd=cost)
            return CycleResult(cycle_id, "rejected", error=reason, tokens=tokens,
                               cost_usd=cost, votes=_votes(rt, cycle_id))
    dump = decision.model_dump(mode="json")
    with rt.store.session():
        _thought(rt, cycle_id, "decision", 0, "assistant", json.dumps(dump), now)
        step("decision")
        acts.remember(rt.store, cycle_id, decision, now)
        step("memory")
    reflect(rt.store, ctx, advisor)  # may ask the advisor: no session
    with rt.store.session():
        if lab.lab is not None:
            acts.record_trials(rt.store, cycle_id, lab.lab.tried, now)
        step("trials")
        if stop_after == "decision":
            tokens, cost = _tokens(rt, cycle_id)
            return CycleResult(cycle_id, "running", dump, tokens=tokens, cost_usd=cost,
                               votes=_votes(rt, cycle_id))
    out = acts.act(rt, ctx, decision, lab, step, coder)  # sessions per step inside
    with rt.store.session():
        _thought(rt, cycle_id, "gates", 0, "host", json.dumps(
            {"candidate": out.candidate, "gates": out.gates, "outcome": out.outcome},
            default=str), now)
        step("finish")
        tokens, cost = _tokens(rt, cycle_id)
        rt.store.finish_cycle(cycle_id, status=out.status, finished_at=now, decision=dump,
                              error=out.error, tokens=tokens, cost_usd=cost)
        return CycleResult(cycle_id, out.status, dump, out.candidate, out.gates, out.outcome,
                           out.error, tokens, cost, out.curves, _votes(rt, cycle_id),
                           _review(rt, cycle_id))
