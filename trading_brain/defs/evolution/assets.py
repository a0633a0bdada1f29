"""The `evolution` group (DESIGN §8): thin assets over ``trading_brain.app.evolve``.

- ``truth_benchmarks``: the rigid SQL metrics of the last ``history_days`` stored for now, open
  predictions graded; metadata: the active slot's numbers;
- ``market_analysis``, ``trade_performance``: the newest shipped analysis module's report
  (``analysis_reports``; a crash or timeout is a report, never a failed run);
- ``evolution_decision``: tonight's cycle up to the advisor's decision (the decision and its
  reasons in Markdown); the advisor is ``[advisor] kind`` (else anthropic when
  ANTHROPIC_API_KEY is set, else offline); metadata of both cycle assets also carries the
  panel's votes, the reviewer's verdict, ``tokens`` and ``cost_usd``;
- ``strategy_candidates``: the rest of the cycle (the candidate, its gates, its status) with
  three asset checks, each carrying its gate's numbers as metadata:
  ``candidate_registration`` (gate 1: static gate, sandbox, determinism, look-ahead, warm-up),
  ``candidate_backtest`` (gate 2: walk-forward against the active version, the exact engine
  confirming the fast one) and ``candidate_overfit_guard`` (gate 3: out-of-sample edge, DSR,
  PBO). Without a candidate tonight the checks pass and say so. Metadata: the gate table
  (Markdown) and the equity chart of candidate vs incumbent out of sample (PNG, embedded).
  A version the cycle registered gets its ``backtests`` partition (``new_partitions``).

The two cycle assets declare no pool: they hold the ``warehouse`` slot only while a warehouse
connection is open (``tb.slot_per_connection``), never through an advisor call, the sandbox work
or a backtest, so a cycle keeps the scan waiting for one short session at most. Their metadata
says how: ``warehouse_claims``, ``warehouse_wait_s``, ``warehouse_held_s`` and
``warehouse_longest_hold_s`` (the longest single hold: the most the scan could have waited).
The other assets of the group hold the pool for their whole step (short warehouse work each).

Paper tests, deployments and promotion reviews are the next assets of this group (not here).
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg

from trading_brain.adapters.charts import compare_png, markdown_image, markdown_table
from trading_brain.defs.research.partitions import add_version_partitions
from trading_brain.defs.resources import WAREHOUSE_POOL, TradingBrainResource

if TYPE_CHECKING:
    from trading_brain.app.evolve.cycle import CycleResult
    from trading_brain.defs.pool_slot import StepPoolSlot

GROUP = "evolution"
CHECKS = {"candidate_registration": ("registration",),
          "candidate_backtest": ("walk_forward",),
          "candidate_overfit_guard": ("oos_edge", "dsr", "pbo")}
_CHECK_HELP = {
    "candidate_registration": "gate 1: static gate, sandbox, determinism, look-ahead, warm-up",
    "candidate_backtest": "gate 2: walk-forward against the active version (fast sweep, exact "
                          "engine confirms)",
    "candidate_overfit_guard": "gate 3: out-of-sample edge > margin, deflated Sharpe ratio, "
                               "probability of backtest over-fitting",
}


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb"})
def truth_benchmarks(tb: TradingBrainResource) -> dg.MaterializeResult:
    """Rigid metrics in plain SQL over the ledger, per slot, version and symbol."""
    from trading_brain.app.evolve.context import grade_open_predictions, refresh_benchmarks

    rt = tb.runtime
    now = rt.clock.now()
    days = rt.settings.evolution.history_days
    bench = refresh_benchmarks(rt.store, now, now - timedelta(days=days), "")
    graded = grade_open_predictions(rt.store, now)
    active = (bench.get("active") or {}).get("slot") or {}
    rows = [{"metric": k, "value": v} for k, v in sorted(active.items())]
    return dg.MaterializeResult(metadata={
        "as_of": now.isoformat(), "slots": ", ".join(sorted(bench)) or "none",
        "predictions_graded": graded,
        "active_slot": dg.MetadataValue.md(markdown_table(rows, ["metric", "value"], 80))})


def _analysis(analysis_id: str) -> dg.AssetsDefinition:
    @dg.asset(name=analysis_id, group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"polars"},
              deps=[truth_benchmarks],
              description=f"The newest analyses/{analysis_id} module's report over the "
                          "history window (a crash or timeout is recorded, never fatal).")
    def asset(tb: TradingBrainResource) -> dg.MaterializeResult:
        from trading_brain.app.evolve.context import run_analyses

        rt = tb.runtime
        now = rt.clock.now()
        since = now - timedelta(days=rt.settings.evolution.history_days)
        report = run_analyses(rt.store, now, since, "", workers=rt.workers, settings=rt.settings,
                              ids=(analysis_id,))[analysis_id]
        failed = isinstance(report, dict) and ("error" in report or "timeout" in report)
        return dg.MaterializeResult(metadata={
            "status": "error" if failed else "ok",
            "keys": ", ".join(sorted(report)) if isinstance(report, dict) else ""})

    return asset


market_analysis = _analysis("market_analysis")
trade_performance = _analysis("trade_performance")


def _decision_md(decision: dict[str, Any] | None, error: str | None) -> str:
    if not decision:
        return f"**Rejected advisor output**: {error}" if error else "no decision"
    tier = f" (tier {decision['tier']})" if decision.get("tier") else ""
    lines = [f"**{decision['action']}**{tier}", "", str(decision.get("reasoning", ""))]
    if decision.get("observation"):
        lines += ["", f"*Observation*: {decision['observation']}"]
    for p in decision.get("predictions") or []:
        lines.append(f"- prediction: {p['claim']} ({p['subject']} {p['metric']} "
                     f"{p['comparator']} {p['threshold']} by {p['deadline']})")
    return "\n".join(lines)


@dg.asset(group_name=GROUP, kinds={"duckdb"},
          deps=[truth_benchmarks, market_analysis, trade_performance])
def evolution_decision(context: dg.AssetExecutionContext, tb: TradingBrainResource
                       ) -> dg.MaterializeResult:
    """Tonight's advisor decision with its reasons (the cycle up to the decision)."""
    from trading_brain.app.evolve.cycle import run_cycle

    with tb.slot_per_connection(context) as slot:
        res = run_cycle(tb.runtime, advisor_name=None, stop_after="decision")
    d = res.decision or {}
    return dg.MaterializeResult(metadata={
        "cycle_id": res.cycle_id, "status": res.status, "action": str(d.get("action")),
        "decision": dg.MetadataValue.md(_decision_md(res.decision, res.error)),
        **_advisor_meta(res), **_slot_meta(slot)})


def _slot_meta(slot: "StepPoolSlot") -> dict[str, Any]:
    """How often the step took the warehouse slot, how long it waited for it and held it."""
    return {"warehouse_claims": slot.claims, "warehouse_wait_s": round(slot.waited_s, 3),
            "warehouse_held_s": round(slot.held_s, 3),
            "warehouse_longest_hold_s": round(slot.longest_hold_s, 3)}


def _advisor_meta(res: "CycleResult") -> dict[str, Any]:
    """The panel's votes, the reviewer's verdict and the cost (secret-free: from the records)."""
    meta: dict[str, Any] = {"tokens": res.tokens, "cost_usd": round(res.cost_usd, 6)}
    if res.votes:
        meta["votes"] = dg.MetadataValue.md(markdown_table(
            res.votes, ["seat", "valid", "action", "target", "tier", "reason"]))
    if res.review is not None:
        meta["review"] = f"{res.review['verdict']}: {res.review['reason']}"
    return meta


def _check(name: str, gates: Sequence[dict[str, Any]], candidate: str | None
           ) -> dg.AssetCheckResult:
    mine = [g for g in gates if g.get("gate") in CHECKS[name]]
    if not mine:
        what = f"{candidate}: not run (an earlier gate failed)" if candidate else \
            "no candidate tonight"
        return dg.AssetCheckResult(check_name=name, passed=True, description=what,
                                   severity=dg.AssetCheckSeverity.WARN)
    meta: dict[str, Any] = {}
    for g in mine:
        for k, v in g.items():
            if isinstance(v, int | float | str) and k != "gate":
                meta[f"{g['gate']}.{k}" if len(mine) > 1 else k] = v
    return dg.AssetCheckResult(
        check_name=name, passed=all(g["status"] == "pass" for g in mine),
        severity=dg.AssetCheckSeverity.WARN, metadata=meta,
        description="; ".join(f"{g['gate']} {g['status']}: {g['reason']}" for g in mine))


@dg.asset(group_name=GROUP, kinds={"duckdb", "vectorbt"},
          deps=[evolution_decision],
          check_specs=[dg.AssetCheckSpec(n, asset="strategy_candidates",
                                         description=_CHECK_HELP[n]) for n in CHECKS])
def strategy_candidates(context: dg.AssetExecutionContext, tb: TradingBrainResource
                        ) -> dg.MaterializeResult:
    """The candidate tonight's decision asked for, its gates and its status."""
    from trading_brain.app.evolve.cycle import run_cycle

    rt = tb.runtime
    with tb.slot_per_connection(context) as slot:
        res = run_cycle(rt, advisor_name=None)
        versions = rt.store.strategy_versions() if res.candidate else []
    new = add_version_partitions(context.instance, versions)  # the candidate can be backtested
    cols = ["gate", "status", "reason"]
    meta: dict[str, Any] = {
        "cycle_id": res.cycle_id, "status": res.status, "candidate": res.candidate or "none",
        "outcome": res.outcome or res.error or "",
        "decision": dg.MetadataValue.md(_decision_md(res.decision, res.error)),
        "gates": dg.MetadataValue.md(markdown_table(res.gates, cols) if res.gates
                                     else "no gates tonight"), **_advisor_meta(res),
        "new_partitions": ", ".join(new) or "none", **_slot_meta(slot)}
    if res.curves:
        curves = {f"{k} ({res.candidate if k == 'candidate' else 'active'})": v.equity
                  for k, v in res.curves.items()}
        png = compare_png(curves, f"{res.candidate} vs the active version, out of sample")
        path = rt.home.var / "reports" / "evolution" / f"{res.cycle_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        meta["equity_chart"] = dg.MetadataValue.md(markdown_image(png, "candidate vs incumbent"))
        meta["equity_png"] = dg.MetadataValue.path(str(path))
    return dg.MaterializeResult(metadata=meta, check_results=[
        _check(n, res.gates, res.candidate) for n in CHECKS])
