"""``update_market_analysis`` / ``update_trade_analysis``: a new analysis module version.

``store_analysis(rt, ctx, decision) -> (ref, GateResult)``: the decision's ``source`` (written
by the advisor's coder) must pass the static gate (``check_source(kind="analysis")``), name the
analysis the action is about (``ANALYSIS_ID``) and a ``VERSION`` above every shipped and stored
version. It is then written once to ``<home>/var/analyses/<id>/v<N>.py`` and recorded in
``analysis_versions`` (migration 0009); a released version never changes (a different source
for an existing version is refused). The gate row is named ``analysis_static``.

The stored version is NOT run by this version of the cycle: shipped analyses run in process
(trusted repository code) and the sandbox worker has no analysis call yet, so advisor-written
analysis code waits there until it can run sandboxed.
"""

from __future__ import annotations

import ast
import os

from trading_brain.adapters.duckdb.reflection_tables import analysis_versions, save_analysis
from trading_brain.adapters.sandbox.gate import check_source
from trading_brain.app.evolve.context import ANALYSES_ROOT
from trading_brain.app.runtime import Runtime
from trading_brain.engine.evolution.context import EvolutionContext
from trading_brain.engine.evolution.decision import Decision
from trading_brain.engine.evolution.gates import GateResult
from trading_brain.engine.registry import sha256

IDS = {"update_market_analysis": "market_analysis", "update_trade_analysis": "trade_performance"}


def _constant(source: str, name: str) -> object:
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name \
                and isinstance(node.value, ast.Constant):
            return node.value.value
    return None


def _fail(why: str, source: str) -> GateResult:
    return GateResult("analysis_static", "fail", {"sha256": sha256(source)[:12]}, why)


def store_analysis(rt: Runtime, ctx: EvolutionContext, d: Decision) -> tuple[str, GateResult]:
    """The new analysis version of ``d`` (module docstring)."""
    aid = IDS[d.action]
    source = d.source or ""
    findings, _ = check_source(source, "analysis")
    if findings:
        return aid, _fail("the static gate refused the source: "
                          + "; ".join(str(f) for f in findings[:10]), source)
    got_id, version = _constant(source, "ANALYSIS_ID"), _constant(source, "VERSION")
    if got_id != aid or not isinstance(version, int) or isinstance(version, bool):
        return aid, _fail(f"ANALYSIS_ID/VERSION must be {aid!r}/<int>, "
                          f"got {got_id!r}/{version!r}", source)
    ref = f"{aid}@{version}"
    shipped = [int(p.stem[1:]) for p in (ANALYSES_ROOT / aid).glob("v*.py")
               if p.stem[1:].isdigit()]
    stored = {int(r["version"]): r for r in analysis_versions(rt.store, aid)}
    mine = stored.get(version)
    if mine is not None:
        if mine["sha256"] == sha256(source):  # a re-run of the same night
            return ref, GateResult("analysis_static", "pass", {"sha256": mine["sha256"][:12]},
                                   f"{ref} already stored")
        return ref, _fail(f"{ref} exists with another source; released versions never "
                          "change", source)
    newest = max([*shipped, *stored, 0])
    if version <= newest:
        return ref, _fail(f"VERSION must be above {newest} (the newest {aid})", source)
    path = rt.home.var / "analyses" / aid / f"v{version}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(source, encoding="utf-8")
    os.replace(tmp, path)
    save_analysis(rt.store, {"analysis_id": aid, "version": version,
                             "sha256": sha256(source), "source": source, "path": str(path),
                             "cycle_id": ctx.cycle_id, "reason": d.reasoning[:500],
                             "created_at": ctx.now})
    return ref, GateResult("analysis_static", "pass", {"sha256": sha256(source)[:12]},
                           "static gate passed; stored, runs once analyses are sandboxed")
