"""``update_market_analysis`` / ``update_trade_analysis``: a new analysis module version.

``store_analysis(rt, ctx, decision) -> (ref, GateResult)``: the decision's ``source`` (written
by the advisor's coder) must
1. pass the static gate (``check_source(kind="analysis")``: the analysis contract and the same
   forbidden imports and escapes as strategies), name the analysis the action is about
   (``ANALYSIS_ID``) and a ``VERSION`` above every shipped and stored version (gate row
   ``analysis_static``);
2. run once in a fresh sandbox worker (``analyses_run.trial_run``) over tonight's frames (the
   cycle's history window) and return a valid report within ``TRIAL_TIMEOUT_S`` (gate row
   ``analysis_sandbox``, with the run's ``status``, ``ms`` and report size).
Only then is it written once to ``<home>/var/analyses/<id>/v<N>.py`` and recorded in
``analysis_versions`` (migration 0009), which makes it the version the next cycle runs
(``analyses_run.active_analysis``: the highest version). A refused source is not stored: the gate
row records why, and the previous version keeps running. A released version never changes (a
different source for an existing version is refused; the same source is a re-run of the night).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

from trading_brain.adapters.duckdb.reflection_tables import analysis_versions, save_analysis
from trading_brain.adapters.sandbox.gate import check_source
from trading_brain.app.evolve.analyses_run import (
    ANALYSES_ROOT,
    read_frames,
    shipped_versions,
    trial_run,
)
from trading_brain.app.runtime import Runtime
from trading_brain.engine.evolution.candidate import module_constant
from trading_brain.engine.evolution.context import EvolutionContext
from trading_brain.engine.evolution.decision import Decision
from trading_brain.engine.evolution.gates import GateResult
from trading_brain.engine.registry import sha256

IDS = {"update_market_analysis": "market_analysis", "update_trade_analysis": "trade_performance"}
TRIAL_TIMEOUT_S = 60.0


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
    got_id, version = module_constant(source, "ANALYSIS_ID"), module_constant(source, "VERSION")
    if got_id != aid or not isinstance(version, int) or isinstance(version, bool):
        return aid, _fail(f"ANALYSIS_ID/VERSION must be {aid!r}/<int>, "
                          f"got {got_id!r}/{version!r}", source)
    ref = f"{aid}@{version}"
    shipped = list(shipped_versions(aid, ANALYSES_ROOT))
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
    trial = _trial(rt, ctx, source, ref)
    if not trial.passed:
        return ref, trial
    path = rt.home.var / "analyses" / aid / f"v{version}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(source, encoding="utf-8")
    os.replace(tmp, path)
    save_analysis(rt.store, {"analysis_id": aid, "version": version,
                             "sha256": sha256(source), "source": source, "path": str(path),
                             "cycle_id": ctx.cycle_id, "reason": d.reasoning[:500],
                             "created_at": ctx.now})
    return ref, GateResult("analysis_sandbox", "pass", trial.metrics,
                           f"static gate and sandbox test run passed; {ref} runs from the next "
                           "cycle on")


def _trial(rt: Runtime, ctx: EvolutionContext, source: str, ref: str) -> GateResult:
    """The test run of a new version in a fresh sandbox worker over tonight's frames."""
    since = ctx.now - timedelta(days=rt.settings.evolution.history_days)
    try:
        frames = read_frames(rt.store, since, ctx.now)
    except Exception as e:  # noqa: BLE001 - no frames, no test run: refused, recorded
        return GateResult("analysis_sandbox", "fail", {"sha256": sha256(source)[:12]},
                          f"reading the frames failed: {type(e).__name__}: {e}"[:2000])
    out = trial_run(rt.workers, rt.settings, source, frames, TRIAL_TIMEOUT_S,
                    filename=f"<{ref}>")
    metrics: dict[str, float | int | str] = {
        "sha256": sha256(source)[:12], "run": out.status, "ms": round(out.ms, 1),
        "report_bytes": len(json.dumps(out.report)) if out.report is not None else 0}
    if out.status != "ok":
        return GateResult("analysis_sandbox", "fail", metrics,
                          f"the test run in the sandbox ended {out.status}: {out.error}"[:2000])
    return GateResult("analysis_sandbox", "pass", metrics, "a valid report within "
                      f"{TRIAL_TIMEOUT_S:g} s")
