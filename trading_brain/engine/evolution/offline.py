"""The deterministic offline advisor (DESIGN §8): no network, the same data gives the same advice.

``advise(ctx, evaluate) -> Advice``. ``evaluate(version, sets)`` is the data-heavy part, passed in
by the cycle: the fast engine over the recent history for each parameter set of a version
(``evidence.Run``, or None when the strategy refuses the set). Priorities, one action a night:

1. ``promote_candidate`` for the first candidate (by ref) whose paper test ``passed``;
2. ``cancel_candidate`` for the first one whose paper test ``failed`` or ended
   ``inconclusive``, or that waited more than ``stale_days`` without a slot;
3. ``no_change`` when every candidate slot (``max_candidates``) is taken;
4. otherwise the search (``sweep_plan``): the active family's declared space
   (``search.param_sets``, ``sweep_size`` sets, the active defaults first = the incumbent) and
   every other shipped family's newest shipped version (``family_sweep_size`` sets each). The
   chosen set is the best IN-SAMPLE compounded return (the first ``train_fraction`` of the hours)
   among sets with at least ``min_trades`` closed trades whose variant was never a candidate,
   active, retired, cancelled or rejected. It is proposed only when the advisor's own run of the
   over-fitting guard (``guard.overfit_guard`` on the fast engine's out-of-sample split, N = the
   family's variants tried so far plus tonight's) passes; the cycle then runs every gate again
   itself. Otherwise ``no_change``, with the numbers that stopped it.

A proposal in the active family is tier 1 (``params``: the changed defaults, target the active
version); one in another family is tier 2 with ``source``: that family's version re-written by
``candidate.derive_source`` (or unchanged, when its defaults won: the version itself becomes the
candidate). Every decision carries its reasons with the numbers, an ``observation`` and one
falsifiable prediction about the active slot's net P&L over the coming days (its sign follows
the incumbent's out-of-sample return). The returned ``Advice.decision`` is raw data for
``decision.parse_decision``; ``trials`` lists every variant evaluated (for ``variant_trials``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from trading_brain.engine.evolution.candidate import derive_source
from trading_brain.engine.evolution.context import CandidateInfo, EvolutionContext, VersionInfo
from trading_brain.engine.evolution.evidence import Run, cut_index, split_return
from trading_brain.engine.evolution.guard import overfit_guard
from trading_brain.engine.evolution.search import Params, diff, param_sets, variant_hash

SPENT = ("candidate", "active", "retired", "cancelled", "rejected", "rolled_back")


class Evaluate(Protocol):
    def __call__(self, version: VersionInfo, sets: Sequence[Params]) -> list[Run | None]: ...


@dataclass(frozen=True)
class Column:
    """One evaluated parameter set of the sweep."""

    version: VersionInfo
    params: Params
    run: Run

    @property
    def label(self) -> str:
        changed = diff(self.params, self.version.defaults)
        return self.version.ref + (f" {changed}" if changed else " (defaults)")


@dataclass(frozen=True)
class Advice:
    """The raw decision, the variants evaluated and a digest of the evidence."""

    decision: dict[str, Any]
    trials: tuple[tuple[str, Params], ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)


def sweep_plan(ctx: EvolutionContext) -> list[tuple[VersionInfo, list[Params]]]:
    """The versions searched tonight and their parameter sets (incumbent first)."""
    k = ctx.knobs
    plan = [(ctx.active, param_sets(ctx.active.space, ctx.active.defaults, k.sweep_size))]
    newest: dict[str, VersionInfo] = {}
    for v in ctx.versions:
        if v.shipped and v.family != ctx.active.family and v.status not in ("rejected",):
            if v.family not in newest or v.version > newest[v.family].version:
                newest[v.family] = v
    plan += [(v, param_sets(v.space, v.defaults, k.family_sweep_size))
             for _, v in sorted(newest.items())]
    return plan


def evaluate_plan(plan: Sequence[tuple[VersionInfo, Sequence[Params]]],
                  evaluate: Evaluate) -> list[Column]:
    """Columns of every set that ran (plan order; the incumbent is column 0 when it ran)."""
    out: list[Column] = []
    for version, sets in plan:
        runs = evaluate(version, sets)
        out += [Column(version, dict(p), r) for p, r in zip(sets, runs, strict=True)
                if r is not None]
    return out


def _pct(x: float) -> str:
    return f"{x:+.2%}"


def _prediction(ctx: EvolutionContext, oos: float, days: float) -> dict[str, Any]:
    losing = oos < 0
    return {"claim": (f"{ctx.active.ref} keeps {'losing' if losing else 'earning'} money in "
                      f"the active slot over the next {math.ceil(days)} days"),
            "metric": "net_pnl", "comparator": "<" if losing else ">", "threshold": 0.0,
            "deadline_days": max(1, math.ceil(days)), "subject": "active"}


def _decision(action: str, reasoning: str, observation: str,
              predictions: Sequence[dict[str, Any]] = (), **fields: Any) -> dict[str, Any]:
    return {"action": action, "reasoning": reasoning[:4000], "observation": observation[:2000],
            "predictions": list(predictions), **fields}


def _paper_action(ctx: EvolutionContext) -> dict[str, Any] | None:
    for c in sorted(ctx.candidates, key=lambda c: c.ref):
        if c.paper == "passed":
            return _decision("promote_candidate", f"{c.ref} passed its shadow paper test "
                             f"against {ctx.active.ref}.", "", target=c.ref)
    for c in sorted(ctx.candidates, key=lambda c: c.ref):
        why = _cancel_reason(ctx, c)
        if why:
            return _decision("cancel_candidate", f"{c.ref}: {why}.", "", target=c.ref)
    return None


def _cancel_reason(ctx: EvolutionContext, c: CandidateInfo) -> str | None:
    if c.paper in ("failed", "inconclusive"):
        return f"its paper test ended {c.paper}"
    if c.paper is None and c.since is not None:
        days = (ctx.now - c.since).total_seconds() / 86_400
        if days > ctx.knobs.stale_days:
            return f"no paper-test slot for {days:.1f} days (limit {ctx.knobs.stale_days:g})"
    return None


def _choose(ctx: EvolutionContext, cols: Sequence[Column], cut: int) -> int | None:
    spent = {(v.family, variant_hash(v.defaults)) for v in ctx.versions if v.status in SPENT}
    best, best_score = None, -math.inf
    for i, c in enumerate(cols[1:], start=1):
        if c.run.trades < ctx.knobs.min_trades:
            continue
        if (c.version.family, variant_hash(c.params)) in spent:
            continue
        score = split_return(c.run, cut)[0]
        if score > best_score:
            best, best_score = i, score
    return best


def _trials(ctx: EvolutionContext, cols: Sequence[Column], family: str) -> int:
    tonight = {variant_hash(c.params) for c in cols if c.version.family == family}
    return len(set(ctx.tried.get(family, frozenset())) | tonight)


def _proposal(ctx: EvolutionContext, col: Column) -> dict[str, Any]:
    v = col.version
    changed = diff(col.params, v.defaults)
    if v.family == ctx.active.family:
        return {"tier": 1, "target": v.ref, "params": changed}
    source = v.source
    if changed:
        source = derive_source(v.source, changed, space=v.space,
                               new_version=ctx.next_version(v.family),
                               note=f"derived from {v.ref} by the offline advisor "
                                    f"({ctx.cycle_id})")
    return {"tier": 2, "target": v.ref, "source": source}


def advise(ctx: EvolutionContext, evaluate: Evaluate) -> Advice:
    """Tonight's advice (module docstring)."""
    paper = _paper_action(ctx)
    if paper is not None:
        return Advice(paper)
    k = ctx.knobs
    if len(ctx.candidates) >= k.max_candidates:
        return Advice(_decision("no_change", f"all {k.max_candidates} candidate slots are "
                                "taken; waiting for their paper tests.", ""))
    cols = evaluate_plan(sweep_plan(ctx), evaluate)
    trials = tuple((c.version.family, c.params) for c in cols)
    if not cols or cols[0].version.ref != ctx.active.ref or cols[0].params != dict(
            ctx.active.defaults):
        return Advice(_decision("no_change", f"{ctx.active.ref} could not be backtested on "
                                "the recent history; nothing to compare against.", ""), trials)
    inc = cols[0]
    cut = cut_index(len(inc.run.marks), k.train_fraction)
    inc_is, inc_oos = split_return(inc.run, cut)
    observation = (f"{ctx.active.ref} on the last {len(inc.run.marks) / 24:.0f} days: "
                   f"{_pct(inc.run.total_return)} with {inc.run.trades} closed trades and "
                   f"{inc.run.fees:,.0f} in fees (out of sample {_pct(inc_oos)}).")
    evidence = {"columns": len(cols), "cut_hour": cut, "top": _top(cols, cut)}
    chosen = _choose(ctx, cols, cut)
    if chosen is None:
        return Advice(_decision(
            "no_change", f"No untried variant with at least {k.min_trades} trades among "
            f"{len(cols)} sets searched.", observation, [_prediction(ctx, inc_oos, 7)]),
            trials, evidence)
    col = cols[chosen]
    c_is, c_oos = split_return(col.run, cut)
    n = _trials(ctx, cols, col.version.family)
    gates = overfit_guard([c.run for c in cols], chosen, 0, candidate_oos=c_oos,
                          incumbent_oos=inc_oos, n_trials=n, knobs=k.guard)
    evidence["guard"] = [g.as_row() for g in gates]
    found = (f"Searched {len(cols)} sets; best in sample: {col.label} with {col.run.trades} "
             f"trades, in sample {_pct(c_is)} vs {_pct(inc_is)}, out of sample {_pct(c_oos)} "
             f"vs {ctx.active.ref} {_pct(inc_oos)}.")
    verdicts = "; ".join(f"{g.name} {g.status}: {g.reason}" for g in gates)
    if not all(g.passed for g in gates):
        return Advice(_decision("no_change", f"{found} Not proposed: {verdicts}.", observation,
                                [_prediction(ctx, inc_oos, 7)]), trials, evidence)
    fields = _proposal(ctx, col)
    days = k.paper_days.get(int(fields["tier"]), 7) + 1
    return Advice(_decision("create_candidate", f"{found} Guard: {verdicts}.", observation,
                            [_prediction(ctx, inc_oos, days)], **fields), trials, evidence)


def _top(cols: Sequence[Column], cut: int, n: int = 5) -> list[dict[str, Any]]:
    order = sorted(range(len(cols)), key=lambda i: -split_return(cols[i].run, cut)[0])
    return [{"set": cols[i].label, "trades": cols[i].run.trades,
             "in_sample": split_return(cols[i].run, cut)[0],
             "out_of_sample": split_return(cols[i].run, cut)[1]} for i in order[:n]]


def known_hashes(rows: Sequence[Mapping[str, Any]]) -> dict[str, frozenset[str]]:
    """``variant_trials`` rows → family → hashes."""
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(str(r["family"]), set()).add(str(r["variant_hash"]))
    return {k: frozenset(v) for k, v in out.items()}
