"""Step 1 of the cycle: gather the context (truth benchmarks, analyses, memory, candidates).

- ``refresh_benchmarks``: the truth benchmarks of ``[now - history_days, now]`` by plain SQL
  (``adapters/duckdb/benchmark_sql.compute``), stored for ``as_of = now`` (a re-run replaces
  them), returned nested (``benchmarks.nested``);
- ``grade_open_predictions``: every open prediction graded from the stored benchmarks
  (``predictions.grade_prediction``); a grade other than ``pending`` closes it;
- ``run_analyses`` (from ``analyses_run``): each active analysis module run in the sandbox
  worker over the README's frames; a crash or a timeout is recorded, never fatal;
- ``register_shipped``: shipped strategy files not registered yet go through the registry;
- ``build_context``: the ``EvolutionContext`` the advisor gets. The tier of a candidate is the
  one its cycle's stored plan gave it (thought ``candidate``/0), else read from its version's
  ``reason`` (``tier N: …``, as ``app.evolve.candidates`` writes it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.duckdb.benchmark_sql import compute
from trading_brain.app.evolve.analyses_run import (  # noqa: F401 - moved there, re-exported
    ANALYSES_ROOT,
    ANALYSIS_IDS,
    run_analyses,
)
from trading_brain.app.research.register import register_files
from trading_brain.app.research.strategy_files import STRATEGIES_ROOT, find_strategies
from trading_brain.engine.evolution.benchmarks import nested, readings
from trading_brain.engine.evolution.context import (
    CandidateInfo,
    EvolutionContext,
    Knobs,
    VersionInfo,
)
from trading_brain.engine.evolution.decision import Prediction
from trading_brain.engine.evolution.offline import known_hashes
from trading_brain.engine.evolution.predictions import grade_prediction
from trading_brain.errors import ConfigError, TradingBrainError
from trading_brain.ports import StrategyWorkers
from trading_brain.settings import Settings

_TIER = re.compile(r"^tier ([123])\b")


def refresh_benchmarks(store: Store, now: datetime, since: datetime,
                       cycle_id: str) -> dict[str, Any]:
    with store.connect() as con:
        rows = compute(con, now, since)
    store.save_benchmarks(now, rows, computed_at=now, since=since, cycle_id=cycle_id)
    return nested(rows)


def grade_open_predictions(store: Store, now: datetime) -> int:
    """Grade every open prediction; return how many were closed now."""
    closed = 0
    for row in store.evolution_rows("predictions", {"status": "open"}):
        p = Prediction.model_validate({k: row[k] for k in (
            "claim", "metric", "comparator", "threshold", "deadline", "subject")})
        if p.subject == "active":
            stored = store.benchmarks(slot="active", scope="slot", metric=p.metric)
            stored += store.benchmarks(slot="active", scope="slot", metric="trades")
        else:
            stored = store.benchmarks(scope="version", subject=p.subject)
        grade = grade_prediction(p, readings(stored, p.subject, p.metric), now=now)
        if grade.status != "pending":
            closed += store.grade_prediction(row["prediction_id"], grade.status, now,
                                             grade.value, grade.reason)
    return closed


def register_shipped(store: Store, settings: Settings, workers: StrategyWorkers) -> str:
    """Register the shipped strategies not in the registry yet (the existing register path,
    as the ``strategy_versions`` asset does), so the search sees every shipped family. A
    failure is returned as text (the context notes it) and never stops the cycle."""
    have = {(r["strategy_id"], r["version"]) for r in store.strategy_versions()}
    missing = [r.path for r in find_strategies() if (r.strategy_id, r.version) not in have]
    if not missing:
        return ""
    try:
        register_files(store, settings, missing, "released", workers=workers)
    except TradingBrainError as e:
        return f"registering the shipped strategies failed: {e}"
    return ""


def version_info(row: Mapping[str, Any]) -> VersionInfo:
    path = row.get("path")
    shipped = bool(path) and Path(str(path)).resolve().is_relative_to(STRATEGIES_ROOT)
    return VersionInfo(family=row["strategy_id"], version=int(row["version"]),
                       status=str(row["status"]), source=row["source"],
                       space=row.get("param_space") or {},
                       defaults=row.get("params_default") or {}, shipped=shipped)


def _candidates(store: Store, rows: list[dict[str, Any]]) -> tuple[CandidateInfo, ...]:
    tests = store.evolution_rows("paper_tests", order="started_at")
    planned: dict[str, int] = {}  # the tier each cycle's plan gave its candidate
    for t in store.evolution_rows("ai_thoughts", {"step": "candidate", "seq": 0},
                                  order="created_at"):
        plan = json.loads(t["content"])
        planned[f"{plan['family']}@{plan['version']}"] = int(plan["tier"])
    out = []
    for r in rows:
        if r["status"] != "candidate":
            continue
        mine = [t for t in tests if t["strategy_id"] == r["strategy_id"]
                and t["version"] == r["version"]]
        tier = _TIER.match(str(r.get("reason") or ""))
        paper = str(mine[-1]["status"]) if mine else None
        ref = f"{r['strategy_id']}@{r['version']}"
        out.append(CandidateInfo(ref=ref, tier=planned.get(ref, int(tier.group(1)) if tier
                                                            else 1), paper=paper,
                                 since=r.get("status_changed_at") or r.get("created_at"),
                                 reason=str(r.get("reason") or "")))
    return tuple(out)


def build_context(store: Store, cycle_id: str, now: datetime, knobs: Knobs, *,
                  benchmarks: Mapping[str, Any], reports: Mapping[str, Any]
                  ) -> EvolutionContext:
    """The advisor's view of tonight (``engine.evolution.context``)."""
    rows = store.strategy_versions()
    active_ref = store.active_version()
    if active_ref is None:
        raise ConfigError("no active strategy version; deploy one before evolving")
    versions = tuple(version_info(r) for r in rows)
    active = next(v for v in versions if (v.family, v.version) == tuple(active_ref))
    memory = store.evolution_rows("observations", order="created_at DESC")[:10]
    return EvolutionContext(
        cycle_id=cycle_id, now=now, active=active, versions=versions,
        candidates=_candidates(store, rows), benchmarks=benchmarks, reports=reports,
        open_predictions=tuple(store.evolution_rows("predictions", {"status": "open"})),
        observations=tuple(str(o["content"]) for o in memory),
        tried=known_hashes(store.evolution_rows("variant_trials")), knobs=knobs)


def window(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
