"""The offline advisor (engine/evolution/offline.py) and its search space (search.py).

The evaluation runs the shipped strategies in process (trusted code) over sim-market bars with
the fast engine, as the cycle does through the sandbox; synthetic runs test the priorities.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.sim import SimMarket
from trading_brain.app.research.strategy_files import load_module
from trading_brain.domain.candles import BARS_COLUMNS
from trading_brain.engine.evolution.candidate import read_defaults
from trading_brain.engine.evolution.context import (
    CandidateInfo,
    EvolutionContext,
    Knobs,
    VersionInfo,
)
from trading_brain.engine.evolution.decision import parse_decision
from trading_brain.engine.evolution.evidence import Costs, Run, align, run_set
from trading_brain.engine.evolution.offline import advise, sweep_plan
from trading_brain.engine.evolution.search import Params, dimensions, param_sets, variant_hash

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 10, 31, tzinfo=UTC)
FAMILIES = ("ema_cross", "ema_rsi_volume", "trend_pullback")
KNOBS = Knobs(sweep_size=8, family_sweep_size=4)


def _version(family: str, status: str = "registered") -> VersionInfo:
    path = REPO / "strategies" / family / "v1.py"
    mod = load_module(path)
    return VersionInfo(family=family, version=1, status=status, source=path.read_text(),
                       space=mod.params_cls.model_json_schema(),
                       defaults=mod.params_cls().model_dump(), shipped=True)


@pytest.fixture(scope="module")
def bars() -> dict:
    syms = ["BTC/USD", "ETH/USD", "SOL/USD"]
    market = SimMarket(syms, seed=7, clock=SimClock(NOW))
    return align({s: market.candles(s, "5m", NOW - timedelta(days=10), NOW)
                  .select(BARS_COLUMNS) for s in syms})


def _evaluator(bars: dict):
    calls: list[tuple[str, int]] = []

    def evaluate(version: VersionInfo, sets: Sequence[Params]) -> list[Run | None]:
        mod = load_module(REPO / "strategies" / version.family / "v1.py")
        calls.append((version.ref, len(sets)))
        out: list[Run | None] = []
        for p in sets:
            try:
                params = mod.params_cls(**p)
            except ValueError:
                out.append(None)
                continue
            out.append(run_set(bars, {s: mod.generate(b, params) for s, b in bars.items()},
                               Costs()))
        return out

    return evaluate, calls


def _ctx(**kw) -> EvolutionContext:
    versions = (_version("ema_cross", "active"), _version("ema_rsi_volume"),
                _version("trend_pullback"))
    base = {"cycle_id": "cycle-2026-10-31-test", "now": NOW, "active": versions[0],
            "versions": versions, "knobs": KNOBS}
    return EvolutionContext(**{**base, **kw})


def test_param_sets_are_deterministic_in_the_space_and_start_with_the_defaults() -> None:
    v = _version("ema_cross")
    a = param_sets(v.space, v.defaults, 20)
    assert a == param_sets(v.space, v.defaults, 20)
    assert a[0] == v.defaults and len(a) == 20
    assert len({variant_hash(p) for p in a}) == 20
    assert all(p["size"] == v.defaults["size"] for p in a)  # sizing is not searched
    assert [d.name for d in dimensions(v.space)] == ["fast", "slow", "stop_loss", "take_profit"]
    for p in a:
        assert 2 <= p["fast"] <= 50 and 5 <= p["slow"] <= 100 and isinstance(p["fast"], int)
        assert 0.005 <= p["stop_loss"] <= 0.1


def test_the_advisor_moves_away_from_a_losing_ema_cross(bars: dict) -> None:
    evaluate, calls = _evaluator(bars)
    ctx = _ctx()
    advice = advise(ctx, evaluate)
    assert advice == advise(ctx, _evaluator(bars)[0])  # deterministic given the data
    assert [ref for ref, _ in calls] == ["ema_cross@1", "ema_rsi_volume@1", "trend_pullback@1"]
    d = parse_decision(advice.decision, known_versions=ctx.known_versions, now=NOW)
    assert d.action == "create_candidate", d.reasoning
    assert d.observation.startswith("ema_cross@1 on the last")
    assert d.predictions and d.predictions[0].subject == "active"
    assert d.predictions[0].comparator == "<"  # the incumbent loses out of sample
    assert advice.evidence["top"]
    assert [g["status"] for g in advice.evidence["guard"]] == ["pass", "pass", "pass"]
    if d.tier == 1:
        assert d.target == "ema_cross@1" and d.params
    else:
        parent = ctx.version(d.target or "")
        assert d.source is not None and parent is not None
        if d.source != parent.source:  # a new version of that family
            assert read_defaults(d.source)[0] == 2
    assert {f for f, _ in advice.trials} == set(FAMILIES)


def test_no_change_when_the_incumbent_is_already_the_best(bars: dict) -> None:
    def evaluate(version: VersionInfo, sets: Sequence[Params]) -> list[Run | None]:
        rng = np.random.default_rng(len(version.family))
        out: list[Run | None] = []
        for i, _ in enumerate(sets):
            drift = 0.002 if (version.family == "ema_cross" and i == 0) else -0.001
            r = drift + rng.normal(0, 0.001, 200)
            marks = 10_000 * np.cumprod(np.concatenate([[1.0], 1 + r]))
            out.append(Run(np.arange(201, dtype=np.int64) * 3_600_000_000, marks, 20, 10.0,
                           float(marks[-1] / marks[0] - 1)))
        return out

    d = advise(_ctx(), evaluate).decision
    assert d["action"] == "no_change"
    assert "Not proposed" in d["reasoning"] and "oos_edge fail" in d["reasoning"]


def test_priorities_promote_then_cancel_then_full_slots() -> None:
    def never(version: VersionInfo, sets: Sequence[Params]) -> list[Run | None]:
        raise AssertionError("no search expected")

    passed = CandidateInfo("ema_rsi_volume@1", 2, paper="passed")
    failed = CandidateInfo("trend_pullback@1", 2, paper="failed")
    stale = CandidateInfo("trend_pullback@1", 2, since=NOW - timedelta(days=8))
    running = CandidateInfo("ema_rsi_volume@1", 2, paper="running")
    d = advise(_ctx(candidates=(failed, passed)), never).decision
    assert (d["action"], d["target"]) == ("promote_candidate", "ema_rsi_volume@1")
    d = advise(_ctx(candidates=(failed, running)), never).decision
    assert (d["action"], d["target"]) == ("cancel_candidate", "trend_pullback@1")
    d = advise(_ctx(candidates=(stale,)), never).decision
    assert d["action"] == "cancel_candidate" and "no paper-test slot" in d["reasoning"]
    full = Knobs(max_candidates=1)
    d = advise(_ctx(candidates=(running,), knobs=full), never).decision
    assert d["action"] == "no_change" and "slots are taken" in d["reasoning"]


def test_spent_variants_are_not_proposed_again(bars: dict) -> None:
    evaluate, _ = _evaluator(bars)
    ctx = _ctx()
    first = parse_decision(advise(ctx, evaluate).decision, known_versions=ctx.known_versions,
                           now=NOW)
    assert first.action == "create_candidate"
    parent = ctx.version(first.target or "")
    assert parent is not None
    if first.tier == 1 or first.source == parent.source:
        spent = VersionInfo(parent.family, 9, "rejected", parent.source, parent.space,
                            {**parent.defaults, **(first.params or {})}, shipped=False)
        if first.tier != 1:
            spent = VersionInfo(parent.family, 1, "rejected", parent.source, parent.space,
                                parent.defaults, shipped=True)
        versions = tuple(v for v in ctx.versions if v.ref != spent.ref) + (spent,)
        again = advise(_ctx(versions=versions), evaluate).decision
        assert again != first.model_dump(mode="json")
        assert again.get("params") != first.params or again.get("target") != first.target


def test_sweep_plan_searches_the_active_family_then_other_shipped_ones() -> None:
    plan = sweep_plan(_ctx())
    assert [(v.ref, len(s)) for v, s in plan] == [("ema_cross@1", 8), ("ema_rsi_volume@1", 4),
                                                   ("trend_pullback@1", 4)]
    assert plan[0][1][0] == dict(plan[0][0].defaults)
