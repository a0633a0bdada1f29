"""The end of the `evolution` group (DESIGN §8, gate 4 and after): thin assets over
``trading_brain.app.promotion`` and ``app.promotion_reviews``.

- ``paper_tests``: running shadow paper tests judged (candidate slot vs the active slot over the
  same period: passed / failed / still running; inconclusive when the incumbent changed), then
  free shadow slots given to waiting candidates. Metadata: the tests as a table. Tonight's
  verdicts are what the next night's decision sees.
- ``deployments``: tonight's ``promote_candidate`` decision carried out through the registry
  when the paper test passed and the risk shell agrees (a refusal is metadata, not a failed
  run), and a pending rollback trigger acted on (the executor sensor also does that every tick).
- ``promotion_reviews``: due promotions graded with the exact engine against the incumbent
  they replaced; metadata: the scorecard. Asset check ``evolution_adds_value`` (WARN): fails
  when most of the recent graded promotions lost to their incumbents.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from trading_brain.adapters.charts import markdown_table
from trading_brain.defs.evolution.assets import GROUP, strategy_candidates
from trading_brain.defs.resources import WAREHOUSE_POOL, TradingBrainResource

TEST_COLUMNS = ["test_id", "status", "days", "trades", "min_trades", "candidate_return",
                "active_return", "reason"]
SCORE_COLUMNS = ["promotion_id", "incumbent", "promoted_at", "verdict", "edge",
                 "promoted_return", "incumbent_return", "bars"]


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb"}, deps=[strategy_candidates])
def paper_tests(tb: TradingBrainResource) -> dg.MaterializeResult:
    """Shadow paper tests: judged, and free candidate slots filled (at most 3)."""
    from trading_brain.app.promotion import evaluate_paper_tests, start_paper_tests

    rt = tb.runtime
    now = rt.clock.now()
    judged = evaluate_paper_tests(rt, now)
    started = start_paper_tests(rt, now)
    rows: list[dict[str, Any]] = [{k: j.get(k) for k in TEST_COLUMNS} for j in judged]
    rows += [{"test_id": t["test_id"], "status": "started", "days": 0, "trades": 0,
              "min_trades": t["min_trades"], "reason": f"until {t['min_until']:%Y-%m-%d %H:%M}"}
             for t in started]
    return dg.MaterializeResult(metadata={
        "judged": len(judged), "started": len(started),
        "finished": sum(j["status"] != "running" for j in judged),
        "tests": dg.MetadataValue.md(markdown_table(rows, TEST_COLUMNS) if rows
                                     else "no paper test running")})


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb"}, deps=[paper_tests])
def deployments(tb: TradingBrainResource) -> dg.MaterializeResult:
    """Promotion through the registry when the paper test won and the risk shell agrees."""
    from trading_brain.app.promotion import apply_decision, auto_rollback

    rt = tb.runtime
    now = rt.clock.now()
    done = apply_decision(rt, now)
    rollback = auto_rollback(rt, now)
    active = rt.store.active_version()
    return dg.MaterializeResult(metadata={
        "decision": str(done["action"]), "promoted": str(done.get("promoted") or "none"),
        "outcome": str(done["outcome"]), "rollback": rollback or "none",
        "active": f"{active[0]}@{active[1]}" if active else "none"})


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb"}, deps=[deployments],
          check_specs=[dg.AssetCheckSpec(
              "evolution_adds_value", asset="promotion_reviews",
              description="most recent promotions beat the incumbents they replaced on the "
                          "bars after the promotion (exact engine, same costs)")])
def promotion_reviews(tb: TradingBrainResource) -> dg.MaterializeResult:
    """Every promotion graded against the incumbent it replaced, after review_days."""
    from trading_brain.app.promotion_reviews import adds_value, review_promotions, scorecard_rows

    rt = tb.runtime
    graded = review_promotions(rt, rt.clock.now())
    rows = scorecard_rows(rt.store)
    check = adds_value(rt.store)
    return dg.MaterializeResult(
        metadata={"graded_now": len(graded), "promotions": len(rows),
                  "scorecard": dg.MetadataValue.md(markdown_table(rows, SCORE_COLUMNS) if rows
                                                   else "no promotion yet")},
        check_results=[dg.AssetCheckResult(
            check_name="evolution_adds_value", passed=check.passed,
            severity=dg.AssetCheckSeverity.WARN, description=check.description,
            metadata=dict(check.metrics))])


PROMOTION_ASSETS = [paper_tests, deployments, promotion_reviews]
