"""Every promotion graded later (DESIGN §8, issue 11 step 5), the scorecard and the candidates.

- ``review_promotions(rt, now)``: each ``pending`` row of ``promotion_reviews`` whose promotion
  is at least ``[evolution] review_days`` old is graded: the promoted version and the incumbent
  it replaced are replayed with the EXACT engine (``app.research.backtest.run_backtest``,
  engine ``exact``) over exactly the 5m bars closed since the promotion (decision bars opening
  in ``[promoted_at, now)``; the warm-up bars before it are read so the first decision is the
  live one, and no signal before ``promoted_at`` is acted on), with the same costs for both
  (``starting_cash``, the pairs' highest taker fee, the backtest's default slippage). Each
  version's params are its defaults. The row gets both returns, ``edge = promoted -
  incumbent`` and a verdict (``paper.review_verdict``: won / lost / tie). A version that
  cannot be replayed leaves the row pending with the error in ``details``.
- ``adds_value(store)``: the ``evolution_adds_value`` verdict over the stored reviews.
- ``scorecard_rows(store)``: every promotion with its review, newest first.
- ``candidates(rt, now)``: the shadow slots, who holds them and each paper test's progress.
- ``evolution_summary(store)``: counts of cycles, candidates, paper tests, promotions,
  cancels, automatic rollbacks and reviews (the ``evolution`` key of ``simulate --evolve``).
- ``run_night(rt, now, trading)``: the whole night in order, as ``simulate --evolve`` runs it
  and the `evolution` assets do: paper tests judged, the cycle (``app.evolve.cycle.run_cycle``),
  tonight's promotion (``promotion.apply_decision``), free slots given to waiting candidates,
  due promotions graded. Returns counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl

from trading_brain.adapters.duckdb import Store
from trading_brain.app import promotion
from trading_brain.app.research import backtest as bt
from trading_brain.app.runtime import Runtime
from trading_brain.domain.candles import BARS_COLUMNS
from trading_brain.engine.evolution import paper
from trading_brain.engine.scan import BAR
from trading_brain.errors import DataError, TradingBrainError
from trading_brain.ports import TradingStore


def review_costs(rt: Runtime) -> bt.Costs:
    pairs = rt.store.read_asset_pairs()
    fee = max((p.fee_taker for p in pairs.values()), default=bt.Costs().fee)
    return bt.Costs(cash=float(rt.settings.starting_cash), fee=float(fee))


def _bars(rt: Runtime, start: datetime, end: datetime, warmup: int) -> dict[str, pl.DataFrame]:
    got = rt.store.read_candles(rt.settings.symbols, "5m", start - BAR * warmup, end)
    bars = {str(s): p.sort("ts").select(BARS_COLUMNS)
            for (s,), p in got.partition_by("symbol", as_dict=True).items()}
    if not bars or not any(b.filter(pl.col("ts") >= start).height for b in bars.values()):
        raise DataError(f"no 5m bars since {start.isoformat()}")
    return bars


def replay(rt: Runtime, ref: str, start: datetime, end: datetime, costs: bt.Costs
           ) -> tuple[float, int, int]:
    """(total return, closed trades, decision bars) of ``ref`` trading from ``start``."""
    sid, ver = ref.split("@")
    row = rt.store.strategy_version(sid, int(ver))
    if row is None:
        raise DataError(f"{ref} is not registered")
    bars = _bars(rt, start, end, int(row["warmup_bars"]))
    with bt.VersionWorker(rt.workers, ref, row["source"]) as worker:
        signals = worker.signals(bars, dict(row.get("params_default") or {}))
    live = {s: sig.with_columns(pl.when(pl.col("ts") < start).then(pl.lit("hold"))
                                .otherwise(pl.col("action")).alias("action"))
            for s, sig in signals.items()}
    result = bt.run_backtest(bars, live, "exact", costs)
    n = max(b.filter(pl.col("ts") >= start).height for b in bars.values())
    return float(result.metrics.total_return), int(result.closed_trades().height), n


def review_promotions(rt: Runtime, now: datetime, *, force: bool = False
                      ) -> list[dict[str, Any]]:
    """Grade the due promotions (module docstring); ``force`` grades every pending one."""
    due = timedelta(days=rt.settings.evolution.review_days)
    out = []
    for r in rt.store.evolution_rows("promotion_reviews", {"verdict": "pending"}):
        if not force and now - r["promoted_at"] < due:
            continue
        start = r["promoted_at"]
        end = now - timedelta(minutes=now.minute % 5, seconds=now.second,
                              microseconds=now.microsecond)
        ref = f"{r['strategy_id']}@{r['version']}"
        inc = f"{r['incumbent_strategy_id']}@{r['incumbent_version']}"
        costs = review_costs(rt)
        try:
            mine, n_mine, bars = replay(rt, ref, start, end, costs)
            theirs, n_theirs, _ = replay(rt, inc, start, end, costs)
        except TradingBrainError as e:
            rt.store.save_evolution_row("promotion_reviews", {
                **r, "details": {**(r.get("details") or {}), "error": str(e)[:500]}})
            continue
        edge, verdict = paper.review_verdict(mine, theirs)
        row = {**r, "reviewed_at": now, "bars_start": start, "bars_end": end, "bars": bars,
               "promoted_return": mine, "incumbent_return": theirs, "edge": edge,
               "verdict": verdict,
               "details": {**(r.get("details") or {}), "engine": "exact",
                           "fee": costs.fee, "slippage": costs.slippage, "cash": costs.cash,
                           "promoted_trades": n_mine, "incumbent_trades": n_theirs}}
        rt.store.save_evolution_row("promotion_reviews", row)
        out.append(row)
    return out


def adds_value(store: Store) -> paper.ValueCheck:
    return paper.adds_value(store.evolution_rows("promotion_reviews"))


def scorecard_rows(store: Store) -> list[dict[str, Any]]:
    """Every promotion with its review, newest first (JSON-ready)."""
    rows = store.evolution_rows("promotion_reviews", order="promoted_at DESC")
    keys = ("promotion_id", "incumbent", "promoted_at", "verdict", "edge", "promoted_return",
            "incumbent_return", "bars", "bars_start", "bars_end", "reviewed_at")
    out = []
    for r in rows:
        r = {**r, "incumbent": f"{r['incumbent_strategy_id']}@{r['incumbent_version']}"}
        out.append({k: (r[k].isoformat() if isinstance(r.get(k), datetime) else r.get(k))
                    for k in keys})
    return out


def candidates(rt: Runtime, now: datetime) -> dict[str, Any]:
    """The shadow slots and every candidate's paper-test progress (JSON-ready)."""
    es = rt.settings.evolution
    held = promotion.tenants(rt.store)
    slots = [{"slot": s, "candidate": held[s].ref if s in held else None,
              "test_id": held[s].test_id if s in held else None}
             for s in paper.SHADOW_SLOTS[:es.max_candidates]]
    tests = {(t["strategy_id"], int(t["version"])): t
             for t in rt.store.evolution_rows("paper_tests", order="started_at")}
    out = []
    for v in rt.store.strategy_versions():
        t = tests.get((v["strategy_id"], int(v["version"])))
        if v["status"] != "candidate" and t is None:
            continue
        item: dict[str, Any] = {"candidate": f"{v['strategy_id']}@{v['version']}",
                                "status": v["status"], "paper_test": None}
        if t is not None:
            m = t.get("metrics") or {}
            days = (now - t["started_at"]).total_seconds() / 86_400
            item["paper_test"] = {
                "slot": t["slot"], "status": t["status"], "tier": t["tier"],
                "started_at": t["started_at"].isoformat(),
                "min_until": t["min_until"].isoformat(), "days": round(days, 3),
                "trades": m.get("trades"), "min_trades": t["min_trades"],
                "candidate_return": m.get("candidate_return"),
                "active_return": m.get("active_return"), "reason": t.get("reason")}
        out.append(item)
    return {"max_candidates": es.max_candidates, "slots": slots, "candidates": out}


def run_night(rt: Runtime, now: datetime, trading: TradingStore | None = None, *,
              advisor_name: str | None = "offline") -> dict[str, Any]:
    """The whole night in order (module docstring); returns what happened, counted.
    ``advisor_name`` is the cycle's (``run_cycle``; None: chosen from the settings and key)."""
    from trading_brain.app.evolve.cycle import run_cycle

    judged = promotion.evaluate_paper_tests(rt, now, trading)
    cycle = run_cycle(rt, advisor_name=advisor_name, now=now)
    deployed = promotion.apply_decision(rt, now, trading)
    started = promotion.start_paper_tests(rt, now, trading, cycle.cycle_id)
    reviewed = review_promotions(rt, now)
    action = (cycle.decision or {}).get("action")
    return {"cycle_id": cycle.cycle_id, "action": action, "status": cycle.status,
            "candidate_created": action == "create_candidate"
            and cycle.outcome.startswith("candidate"),
            "cancelled": action == "cancel_candidate" and cycle.status == "done",
            "promoted": deployed.get("promoted"), "tests_started": len(started),
            "tests_finished": sum(j["status"] != "running" for j in judged),
            "reviewed": len(reviewed)}


def evolution_summary(store: Store) -> dict[str, int]:
    """Counts of the evolution so far, from the warehouse (``simulate --evolve``'s summary)."""
    versions = store.strategy_versions()
    made = [v for v in versions if any(str(v.get(k) or "").startswith("tier ")
                                       for k in ("reason", "status_reason"))]
    tests = store.evolution_rows("paper_tests")
    reviews = store.evolution_rows("promotion_reviews")
    history = store.deployment_history()
    return {
        "cycles": len(store.evolution_cycles(limit=100_000)),
        "candidates_created": sum(v["status"] != "rejected" for v in made),
        "candidates_rejected": sum(v["status"] == "rejected" for v in made),
        "paper_tests": len(tests),
        "paper_passed": sum(t["status"] == "passed" for t in tests),
        "paper_failed": sum(t["status"] == "failed" for t in tests),
        "paper_inconclusive": sum(t["status"] == "inconclusive" for t in tests),
        "promoted": sum(a == "promote" for _, _, a, _ in history),
        "cancelled": sum(v["status"] == "cancelled" for v in versions),
        "rolled_back": sum(a == "auto_rollback" for _, _, a, _ in history),
        "reviews": sum(r["verdict"] != "pending" for r in reviews),
        "reviews_won": sum(r["verdict"] == "won" for r in reviews),
    }
