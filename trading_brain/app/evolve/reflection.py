"""The weekly reflection: grades, the strategy document, condensed memory (issue 12).

``reflect(store, ctx, advisor) -> Reflection | None`` runs once per ISO week (the first cycle of
the week, after the decision's memory is written; None when this week's document exists):

1. grade every open prediction from the stored truth benchmarks
   (``context.grade_open_predictions``: confirmed / refuted / partial / inconclusive, with the
   graded value and reason stored; a prediction before its deadline stays open);
2. condense the observations: the newest ``KEEP_OBSERVATIONS`` stay, the older ones are
   replaced by ONE summary observation (``<cycle>:summary``, subject ``summary``; earlier
   summaries fold into it too), in one transaction;
3. rewrite the strategy document (``strategy_documents``, migration 0009): a new version per
   week, the old ones kept. An advisor that writes code asks its analyst for it (step
   ``reflection``; a ``DocumentReply``); offline, or when that call fails or the budget stops
   it, the document is built deterministically from the benchmarks, the analysis reports, the
   graded predictions and the observations (``offline_document``; the failure is noted).

``strategy_document(store)`` is the newest document's text ("" before the first reflection):
the analyst's context reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.duckdb.reflection_tables import (
    condense_observations,
    document,
    save_document,
)
from trading_brain.app.evolve.advisors import Asker, code_advisor
from trading_brain.app.evolve.context import grade_open_predictions
from trading_brain.engine.evolution.context import EvolutionContext
from trading_brain.errors import AdvisorOutputRejected
from trading_brain.ports import Advisor

KEEP_OBSERVATIONS = 20
MAX_DOCUMENT_CHARS = 8_000


class DocumentReply(BaseModel):
    """The analyst's rewritten strategy document."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    document: str = Field(description="the whole strategy document, plain text or markdown")


@dataclass(frozen=True)
class Reflection:
    week: str
    version: int
    graded: int
    condensed: int
    author: str
    note: str = ""


def iso_week(now: datetime) -> str:
    y, w, _ = now.isocalendar()
    return f"{y}-W{w:02d}"


def strategy_document(store: Store) -> str:
    row = document(store)
    return str(row["content"]) if row else ""


def _condense(store: Store, cycle_id: str, now: datetime) -> int:
    rows = store.evolution_rows("observations", order="created_at DESC")
    older = rows[KEEP_OBSERVATIONS:]
    if not older:
        return 0
    first, last = older[-1]["created_at"], older[0]["created_at"]
    lines = [f"- {str(r['content'])[:300]}" for r in reversed(older)]
    text = (f"Summary of {len(older)} observations from {first:%Y-%m-%d} to {last:%Y-%m-%d}:\n"
            + "\n".join(lines))[:MAX_DOCUMENT_CHARS]
    return condense_observations(store, KEEP_OBSERVATIONS, {
        "observation_id": f"{cycle_id}:summary", "cycle_id": cycle_id, "subject": "summary",
        "content": text, "created_at": last}, [str(r["observation_id"]) for r in older])


def _graded(store: Store) -> list[dict[str, Any]]:
    keep = ("subject", "claim", "metric", "comparator", "threshold", "status", "graded_value",
            "grade_reason")
    return [{k: r.get(k) for k in keep}
            for r in store.evolution_rows("predictions", order="created_at DESC")[:30]]


def offline_document(ctx: EvolutionContext, store: Store, previous: str) -> str:
    """The deterministic strategy document (module docstring)."""
    active = (ctx.benchmarks.get("active") or {}).get("slot") or {}
    keys = ("trades", "net_pnl", "fees_paid", "win_rate", "profit_factor", "max_drawdown",
            "sharpe")
    figures = ", ".join(f"{k} {active[k]:.4g}" if isinstance(active.get(k), float)
                        else f"{k} {active.get(k)}" for k in keys if k in active)
    graded = [g for g in _graded(store) if g["status"] != "open"]
    tally: dict[str, int] = {}
    for g in graded:
        tally[str(g["status"])] = tally.get(str(g["status"]), 0) + 1
    parts = [
        f"# Strategy document ({iso_week(ctx.now)})",
        f"Active version: {ctx.active.ref} with defaults {json.dumps(ctx.active.defaults)}.",
        f"Active slot over the last window: {figures or 'no figures yet'}.",
        "Candidates: " + (", ".join(f"{c.ref} (tier {c.tier}, paper {c.paper or 'waiting'})"
                                    for c in ctx.candidates) or "none") + ".",
        "Predictions graded so far: " + (", ".join(f"{k} {v}" for k, v in sorted(tally.items()))
                                         or "none") + ".",
        "Recent observations:", *[f"- {o[:300]}" for o in ctx.observations[:10]],
        "Mandate: portfolio growth with capital preservation; avoid major drawdowns.",
    ]
    if previous:
        parts.append(f"(Replaces the previous version of {len(previous)} characters.)")
    return "\n".join(parts)[:MAX_DOCUMENT_CHARS]


def _ask_document(asker: Asker, ctx: EvolutionContext, store: Store, previous: str) -> str:
    user = "\n".join([
        f"Weekly reflection {iso_week(ctx.now)} (cycle {ctx.cycle_id}). Rewrite the strategy "
        "document: what works, what does not, what to try next, what to avoid; keep it under "
        f"{MAX_DOCUMENT_CHARS // 2} characters.",
        "## previous document", previous or "(none yet)",
        "## truth benchmarks", json.dumps(ctx.benchmarks, default=str)[:8_000],
        "## predictions (graded and open)", json.dumps(_graded(store), default=str)[:4_000],
        "## recent observations", json.dumps(list(ctx.observations[:20]))[:4_000]])
    return asker.ask("analyst", "reflection", user, DocumentReply).document[:MAX_DOCUMENT_CHARS]


def reflect(store: Store, ctx: EvolutionContext, advisor: Advisor) -> Reflection | None:
    """This week's reflection, once (module docstring)."""
    week = iso_week(ctx.now)
    current = document(store)
    if current is not None and current["week"] == week:
        return None
    graded = grade_open_predictions(store, ctx.now)
    condensed = _condense(store, ctx.cycle_id, ctx.now)
    previous = str(current["content"]) if current else ""
    author, note, text = advisor.name, "", ""
    coder = code_advisor(advisor)
    if coder is not None:
        try:
            text = _ask_document(coder.begin(ctx.cycle_id, ctx.now), ctx, store, previous)
        except AdvisorOutputRejected as e:
            note = f"the advisor's document was not usable ({e}); written offline"
    if not text.strip():
        author, text = "offline", offline_document(ctx, store, previous)
        if note:
            text += f"\n\n{note}"
    version = save_document(store, text, week=week, cycle_id=ctx.cycle_id, author=author,
                            now=ctx.now)
    return Reflection(week, version, graded, condensed, author, note)
