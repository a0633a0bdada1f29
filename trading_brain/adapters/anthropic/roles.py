"""The three roles and the panel: what each is shown and how its reply is judged.

- **Analyst** (``analyst_message``): the night's context as compact JSON sections, each capped
  (``CAPS``, characters, scaled down for a panel) so a cycle stays inside
  ``max_input_tokens_per_cycle``; the votes of a panel share one message, sent with a cache
  breakpoint so seats 2.. read it from the prompt cache. Sections: the truth
  benchmarks, both analysis reports, the strategy document, the active version (space,
  defaults, source), every version's status, candidates with their paper tests, recent
  observations, open and graded predictions, the scorecard of past promotions, variants tried,
  the evolution thresholds and the token budget left. ``vote_check`` rejects a reply that
  ``parse_decision`` refuses (code still to be written stands in as ``PENDING_SOURCE``) or that
  needs code without a ``code_brief``: the analyst is asked again with the reason.
- **Panel** (``tally``): ``panel`` analyst votes; a vote's key is ``(action, target)`` (a
  ``create_candidate`` without a target means the active version). The key with MORE THAN
  HALF of the panel's seats wins (an invalid vote counts as a seat lost), and its first vote is
  the decision. Otherwise: no valid vote → rejected; a split or a tie → ``no_change`` with the
  counts as the reason. Every vote is recorded (``votes_record``).
- **Coder** (``coder_message``, ``code_check``): the request (exact identity, parent source,
  brief) and, on a repair, the failed source with the gate's exact messages. A reply must pass
  the static gate (``adapters/sandbox/gate``) and carry the requested identity, or the coder is
  asked again with the findings; the cycle then runs every gate itself.
- **Reviewer** (``reviewer_message``): the unified diff against the parent and the report.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trading_brain.adapters.anthropic.wire import (
    AnalystReply,
    CodeRequest,
    CoderReply,
    Repair,
    ReviewRequest,
    raw_decision,
)
from trading_brain.adapters.sandbox.gate import check_source
from trading_brain.engine.evolution.candidate import module_constant
from trading_brain.engine.evolution.context import EvolutionContext
from trading_brain.engine.evolution.decision import parse_decision
from trading_brain.errors import AdvisorOutputRejected

CAPS = {"truth_benchmarks": 12_000, "analysis_reports": 10_000, "strategy_document": 4_000,
        "active_source": 5_000, "memory": 4_000, "other": 3_000}
FAMILY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
Key = tuple[str, str | None]


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return value if not math.isfinite(value) or value == 0 else float(f"{value:.6g}")
    if isinstance(value, Mapping):
        return {str(k): _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    return value


def section(name: str, value: Any, cap: int) -> str:
    """``## name`` and compact JSON, cut at ``cap`` characters with a note saying so."""
    text = value if isinstance(value, str) else json.dumps(
        _round(value), separators=(",", ":"), default=str, ensure_ascii=False)
    if len(text) > cap:
        text = text[:cap] + f"… [cut: {len(text) - cap} more characters]"
    return f"## {name}\n{text}\n"


def analyst_message(ctx: EvolutionContext, memory: Mapping[str, Any],
                    budget_left: Mapping[str, int], scale: float = 1.0) -> str:
    """The analyst's user message (module docstring); ``scale`` shrinks every cap (a panel of
    n seats uses ``2 / (n + 1)``, so five votes fit the default per-cycle budget)."""
    caps = {k: max(500, int(v * scale)) for k, v in CAPS.items()}
    a, other, mem = ctx.active, caps["other"], caps["memory"]
    parts = [
        f"Night {ctx.now.isoformat()} (cycle {ctx.cycle_id}). Decide one action.\n",
        section("token budget left", dict(budget_left), other),
        section("truth benchmarks", ctx.benchmarks, caps["truth_benchmarks"]),
        section("analysis reports", ctx.reports, caps["analysis_reports"]),
        section("strategy document", memory.get("document") or "(none yet)",
                caps["strategy_document"]),
        section(f"active version {a.ref}", {"space": a.space, "defaults": a.defaults}, other),
        section(f"active source {a.ref}", a.source, caps["active_source"]),
        section("versions", [{"ref": v.ref, "status": v.status, "shipped": v.shipped}
                             for v in ctx.versions], other),
        section("candidates and paper tests", [
            {"ref": c.ref, "tier": c.tier, "paper": c.paper, "since": c.since,
             "reason": c.reason} for c in ctx.candidates], other),
        section("recent observations", list(ctx.observations), mem),
        section("open predictions", list(ctx.open_predictions), mem),
        section("graded predictions", memory.get("graded", []), mem),
        section("scorecard of past promotions", memory.get("scorecard", []), mem),
        section("variants tried per family", {k: len(v) for k, v in ctx.tried.items()}, other),
        section("evolution thresholds", {
            "margin": ctx.knobs.guard.margin, "min_dsr": ctx.knobs.guard.min_dsr,
            "max_pbo": ctx.knobs.guard.max_pbo, "min_trades": ctx.knobs.min_trades,
            "max_candidates": ctx.knobs.max_candidates,
            "paper_days": dict(ctx.knobs.paper_days)}, other),
    ]
    return "\n".join(parts)


def vote_check(ctx: EvolutionContext) -> Callable[[AnalystReply], None]:
    """The analyst reply check of this night (module docstring)."""
    def check(reply: AnalystReply) -> None:
        parse_decision(raw_decision(reply), known_versions=ctx.known_versions, now=ctx.now)
        if reply.needs_code and not (reply.code_brief or "").strip():
            raise AdvisorOutputRejected(f"code_brief is required for {reply.action}")
        if reply.family is not None and not (reply.tier == 3 and FAMILY.fullmatch(reply.family)):
            raise AdvisorOutputRejected("family is for tier 3 only, as [a-z][a-z0-9_]*")
    return check


@dataclass(frozen=True)
class Vote:
    """One panel seat: a valid reply with its key, or the reason it was lost."""

    seat: int
    reply: AnalystReply | None
    key: Key | None = None
    reason: str = ""


def vote_key(reply: AnalystReply, ctx: EvolutionContext) -> Key:
    target = reply.target
    if reply.action == "create_candidate" and target is None:
        target = ctx.active.ref
    return reply.action, target


def tally(votes: Sequence[Vote], seats: int) -> tuple[Vote | None, str]:
    """The winning vote (or None) and the outcome in words (module docstring)."""
    counts = Counter(v.key for v in votes if v.key is not None)
    if not counts:
        return None, "no valid vote: " + "; ".join(v.reason for v in votes)
    ranked = counts.most_common()
    key, n = ranked[0]
    if n * 2 > seats:
        first = next(v for v in votes if v.key == key)
        return first, f"{n} of {seats} votes for {key[0]} {key[1] or ''}".rstrip()
    tie = " (a tie)" if len(ranked) > 1 and ranked[1][1] == n else ""
    split = ", ".join(f"{k[0]} {k[1] or ''}".rstrip() + f": {c}" for k, c in ranked)
    return None, f"no majority among {seats} votes{tie}: {split}"


def votes_record(votes: Sequence[Vote], outcome: str) -> dict[str, Any]:
    """The panel's record: the outcome and every seat's vote (or why it was lost)."""
    return {"outcome": outcome, "votes": [
        {"seat": v.seat, "valid": v.key is not None, "action": v.key[0] if v.key else None,
         "target": v.key[1] if v.key else None,
         "tier": v.reply.tier if v.reply else None, "reason": v.reason} for v in votes]}


def code_request(ctx: EvolutionContext, reply: AnalystReply) -> CodeRequest:
    """What the coder must write for the winning ``reply``."""
    brief = reply.code_brief or ""
    if reply.action == "create_candidate":
        parent = ctx.version(reply.target or ctx.active.ref) or ctx.active
        family = reply.family or parent.family
        return CodeRequest("strategy", family, ctx.next_version(family), brief, reply.tier,
                           parent.ref, parent.source)
    aid = "market_analysis" if reply.action == "update_market_analysis" else "trade_performance"
    kind = "market_analysis" if aid == "market_analysis" else "trade_analysis"
    report = ctx.reports.get(aid)
    current = report.get("version") if isinstance(report, Mapping) else None
    version = int(current) + 1 if isinstance(current, int) else 2
    return CodeRequest(kind, aid, version, brief)


def coder_message(request: CodeRequest, repair: Repair | None = None) -> str:
    ident = "STRATEGY_ID" if request.kind == "strategy" else "ANALYSIS_ID"
    lines = [f"Write {request.kind} module {request.ref}: {ident} = {request.module_id!r}, "
             f"VERSION = {request.version}."
             + (f" Tier {request.tier}; parent {request.parent}." if request.tier else ""),
             section("brief", request.brief, CAPS["strategy_document"])]
    if request.parent_source:
        lines.append(section(f"parent source {request.parent}", request.parent_source,
                             CAPS["active_source"] * 4))
    if repair is not None:
        lines.append(section("your source that failed the gates", repair.source,
                             CAPS["active_source"] * 4))
        lines.append(section("the gates' messages (fix exactly these)",
                             "\n".join(repair.failures), CAPS["other"]))
    return "\n".join(lines)


def code_check(request: CodeRequest) -> Callable[[CoderReply], None]:
    """The coder reply check: the static gate and the requested identity."""
    def check(reply: CoderReply) -> None:
        kind = "strategy" if request.kind == "strategy" else "analysis"
        findings, _ = check_source(reply.source, kind)
        if findings:
            raise AdvisorOutputRejected("the static gate refused the source:\n"
                                        + "\n".join(str(f) for f in findings[:20]))
        ident = "STRATEGY_ID" if kind == "strategy" else "ANALYSIS_ID"
        got = (module_constant(reply.source, ident), module_constant(reply.source, "VERSION"))
        if got != (request.module_id, request.version):
            raise AdvisorOutputRejected(f"{ident}/VERSION must be {request.module_id!r}/"
                                        f"{request.version}, got {got[0]!r}/{got[1]!r}")
    return check


def reviewer_message(request: ReviewRequest) -> str:
    return "\n".join([
        f"Review candidate {request.candidate} (parent {request.parent}).\n",
        section("brief", request.brief or "(none)", CAPS["strategy_document"]),
        section("diff against the parent", request.diff() or "(identical)",
                CAPS["active_source"] * 4),
        section("backtest report", dict(request.report), CAPS["truth_benchmarks"])])
