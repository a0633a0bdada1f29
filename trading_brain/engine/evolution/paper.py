"""Shadow paper tests, promotion checks and promotion grades, as data (pure; DESIGN §8 gate 4+).

No I/O and no clock: the use cases (``app/promotion.py``, ``app/promotion_reviews.py``) read
the rows, call these functions and write what they return.

- Slots: a candidate trades in one of the shadow slots ``SHADOW_SLOTS`` (at most
  ``max_candidates`` of them, in order). ``holding(tests, statuses)`` maps each held slot to the
  candidate in it: a test ``running`` or ``passed`` whose version is still ``candidate`` holds
  its slot; ``free_slots`` are the others among the first ``max_candidates`` that hold nothing
  at the venue either (``busy``: pending intents, open positions or orders left by the
  previous tenant).
- ``new_test``: the ``paper_tests`` row of a candidate starting in a slot: ``test_id`` =
  ``family@N:slot``, ``min_until`` = ``started_at`` + the tier's minimum days, ``min_trades``,
  and in ``metrics`` the test's baseline (``start_equity`` of both slots and the ``incumbent``
  active at the start).
- ``slot_return``: a slot's result since the start as ``gates.PaperStats``: closed trades and
  net P&L of trades closed in ``[started_at, now]`` (the truth benchmarks of the slot) over its
  equity at the start. Both slots are measured the same way over the same period.
- ``verdict``: ``gates.paper_test_gate`` of candidate vs active plus the rules around it: an
  ``incumbent`` that changed during the test makes it ``inconclusive`` (it was not compared with
  one version over the whole period); a ``pass``/``fail`` ends the test ``passed``/``failed``;
  ``inconclusive`` keeps it ``running`` (``None``) until ``max_days`` (``min_days + stale_days``),
  where the gate fails it. ``max_days_for`` gives that limit.
- ``shell_agrees``: the risk shell's consent to a promotion: neither the active nor the
  candidate's slot is halted, killed or has a pending rollback trigger.
- ``review_verdict`` grades a promotion: ``edge = promoted - incumbent`` returns over the same
  bars; ``won`` (> ``TIE``), ``lost`` (< -``TIE``) or ``tie``.
- ``adds_value(reviews, last=5)``: the ``evolution_adds_value`` check: it fails when most of the
  most recent graded promotions lost to their incumbents (more losses than wins); no graded
  promotion passes and says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from trading_brain.domain.risk import RiskState
from trading_brain.engine.evolution.gates import GateResult, PaperStats, paper_test_gate

SHADOW_SLOTS = ("shadow1", "shadow2", "shadow3")
HOLDING = ("running", "passed")  # test statuses that keep the slot
TIE = 1e-9
REVIEW_WINDOW = 5


@dataclass(frozen=True)
class Tenant:
    """The candidate holding a shadow slot."""

    slot: str
    strategy_id: str
    version: int
    test_id: str

    @property
    def ref(self) -> str:
        return f"{self.strategy_id}@{self.version}"


def holding(tests: Iterable[Mapping[str, Any]], statuses: Mapping[tuple[str, int], str]
            ) -> dict[str, Tenant]:
    """Slot -> tenant: tests running/passed whose version is still ``candidate``."""
    out: dict[str, Tenant] = {}
    for t in sorted(tests, key=lambda r: (r["started_at"], r["test_id"])):
        key = (str(t["strategy_id"]), int(t["version"]))
        if t["status"] in HOLDING and statuses.get(key) == "candidate":
            out[str(t["slot"])] = Tenant(str(t["slot"]), key[0], key[1], str(t["test_id"]))
    return out


def free_slots(held: Mapping[str, Tenant], busy: Iterable[str], max_candidates: int
               ) -> list[str]:
    """The shadow slots a new candidate may take, in order."""
    taken = set(held) | set(busy)
    return [s for s in SHADOW_SLOTS[:max_candidates] if s not in taken]


def new_test(strategy_id: str, version: int, slot: str, tier: int, started_at: datetime, *,
             min_days: Mapping[int, float], min_trades: int, incumbent: str,
             start_equity: Mapping[str, float], cycle_id: str | None = None
             ) -> dict[str, Any]:
    """The ``paper_tests`` row of a test starting now (module docstring)."""
    days = float(min_days.get(tier, max(min_days.values())))
    return {"test_id": f"{strategy_id}@{version}:{slot}", "strategy_id": strategy_id,
            "version": version, "slot": slot, "tier": tier, "started_at": started_at,
            "min_until": started_at + timedelta(days=days), "min_trades": min_trades,
            "status": "running", "cycle_id": cycle_id, "updated_at": started_at,
            "metrics": {"incumbent": incumbent, "start_equity": dict(start_equity)}}


def slot_return(started_at: datetime, trades: float | None, net_pnl: float | None,
                start_equity: float | None) -> PaperStats:
    """A slot's paper result since ``started_at`` (net P&L over its equity at the start)."""
    base = float(start_equity or 0.0)
    ret = float(net_pnl or 0.0) / base if base > 0 else 0.0
    return PaperStats(started_at=started_at, closed_trades=int(trades or 0), net_return=ret)


def max_days_for(tier: int, min_days: Mapping[int, float], stale_days: float) -> float:
    """The age at which a test still short of days or trades fails."""
    return float(min_days.get(tier, max(min_days.values()))) + stale_days


@dataclass(frozen=True)
class Verdict:
    """What to do with a running test: ``status`` None = keep running."""

    status: str | None
    gate: GateResult

    @property
    def reason(self) -> str:
        return self.gate.reason


def verdict(candidate: PaperStats, active: PaperStats, *, tier: int, now: datetime,
            min_days: Mapping[int, float], min_trades: int, stale_days: float,
            incumbent_then: str, incumbent_now: str | None) -> Verdict:
    """The state of a running test at ``now`` (module docstring)."""
    gate = paper_test_gate(candidate, active, tier=tier, now=now, min_days_by_tier=min_days,
                           min_trades=min_trades,
                           max_days=max_days_for(tier, min_days, stale_days))
    if incumbent_now != incumbent_then:
        why = (f"the active version changed during the test ({incumbent_then} -> "
               f"{incumbent_now or 'none'}): not one comparison over the whole period")
        return Verdict("inconclusive", GateResult("paper_test", "inconclusive",
                                                  dict(gate.metrics), why))
    if gate.status == "pass":
        return Verdict("passed", gate)
    if gate.status == "fail":
        return Verdict("failed", gate)
    return Verdict(None, gate)


def shell_objection(slot: str, state: RiskState | None) -> str | None:
    """Why the risk shell refuses a promotion because of ``slot``'s state (None: no reason)."""
    if state is None:
        return None
    if state.kill_switch is not None:
        return f"{slot}: kill switch on ({state.kill_switch.reason})"
    if state.halts:
        kinds = ", ".join(f"{k}: {h.reason}" for k, h in sorted(state.halts.items()))
        return f"{slot}: halted ({kinds})"
    if state.rollback is not None:
        return f"{slot}: rollback trigger pending ({state.rollback.reason})"
    return None


def shell_agrees(states: Mapping[str, RiskState | None]) -> tuple[bool, str]:
    """(agrees, why) over the slots a promotion involves."""
    problems = [p for s, st in sorted(states.items()) if (p := shell_objection(s, st))]
    return (not problems, "; ".join(problems) or "no halt, kill switch or rollback pending")


def review_verdict(promoted_return: float, incumbent_return: float) -> tuple[float, str]:
    """(edge, won|lost|tie) of a promotion over the same bars."""
    edge = promoted_return - incumbent_return
    return edge, "won" if edge > TIE else "lost" if edge < -TIE else "tie"


@dataclass(frozen=True)
class ValueCheck:
    """The ``evolution_adds_value`` verdict."""

    passed: bool
    description: str
    metrics: dict[str, float | int | str]


def adds_value(reviews: Sequence[Mapping[str, Any]], last: int = REVIEW_WINDOW) -> ValueCheck:
    """Most recent graded promotions vs their incumbents (module docstring)."""
    graded = sorted((r for r in reviews if r.get("verdict") in ("won", "lost", "tie")),
                    key=lambda r: (r["promoted_at"], r["promotion_id"]))[-last:]
    if not graded:
        return ValueCheck(True, "no promotion graded yet", {"graded": 0})
    won = sum(r["verdict"] == "won" for r in graded)
    lost = sum(r["verdict"] == "lost" for r in graded)
    edges = [float(r.get("edge") or 0.0) for r in graded]
    metrics: dict[str, float | int | str] = {
        "graded": len(graded), "won": won, "lost": lost, "tie": len(graded) - won - lost,
        "mean_edge": sum(edges) / len(edges)}
    text = (f"last {len(graded)} graded promotions: {won} beat their incumbent, {lost} lost "
            f"(mean edge {metrics['mean_edge']:+.4%})")
    if lost > won:
        return ValueCheck(False, f"{text}: the brain is not adding value", metrics)
    return ValueCheck(True, text, metrics)
