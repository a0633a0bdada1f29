"""The executor sensor's `portfolio` events: on change, with the checks they carry, and a chart.

Contract (issue 13: the UI showed the portfolio checks "Not Evaluated" because `portfolio` got an
event every ~15 s tick and the 5-minute check runs attached to an older one):
- ``portfolio_events(rt, report, state)``: one ``portfolio`` materialization for the whole tick
  (every slot with a snapshot) only when something changed since the last one — a slot appeared,
  a fill or a position opened/closed, cash moved by a cent or more, equity moved by at least
  ``[ui] portfolio_change_bps``, the invariant's verdict flipped — or when
  ``[ui] portfolio_heartbeat_minutes`` passed; otherwise nothing. ``state`` (the sensor cursor)
  keeps the last event's figures; a lost cursor only means one extra event;
- the materialization is followed, in the same ``SensorResult``, by the evaluations of
  ``portfolio_reconciled`` and ``drawdown_within_limit`` on the figures it reports (the tick's
  invariant and venue mismatches, the snapshot equity against the persisted peak): runless events
  of one sensor tick, so the UI attaches them to that materialization. A failing one halts the
  slot's entries like the scheduled check (``checks.evaluate_portfolio``);
- the metadata carries a small equity chart of the active slot (7 days, 10-minute buckets) as a
  Markdown image; it is rendered at most once per ``[ui] portfolio_chart_minutes`` into
  ``var/reports/portfolio/equity.png`` and that file is reused in between (bounded cost); it is
  stored with every event, so it is palette-compressed (``charts.compact_png``: ~7 KB).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import dagster as dg
import polars as pl

from trading_brain.adapters.charts import compact_png, equity_png, markdown_image, markdown_table
from trading_brain.app.runtime import Runtime
from trading_brain.defs.trading.checks import evaluate_portfolio
from trading_brain.engine.executor.report import SlotReport, TickReport

CHART_DAYS = 7
CHART_SQL = """SELECT time_bucket(INTERVAL '10 minutes', ts) AS ts,
    arg_max(CAST(equity AS DOUBLE), ts) AS equity FROM portfolio_snapshots
    WHERE slot = ? AND ts >= ? GROUP BY ALL ORDER BY ts"""


def change_reason(prev: Mapping[str, Any] | None, slots: Mapping[str, SlotReport],
                  now: datetime, heartbeat_min: float, change_bps: float) -> str | None:
    """Why the tick deserves a portfolio event (None: it does not)."""
    if not prev:
        return "first event"
    figures: dict[str, list] = prev.get("slots", {})
    if set(figures) != set(slots):
        return "slots changed"
    for slot, r in sorted(slots.items()):
        s = r.snapshot
        if s is None:
            continue
        cash, equity, ok = Decimal(figures[slot][0]), Decimal(figures[slot][1]), figures[slot][2]
        if r.fills or r.positions_opened or r.positions_closed:
            return f"{slot}: trade"
        if abs(s.cash - cash) >= Decimal("0.01"):
            return f"{slot}: cash changed"
        if ok != r.ok:
            return f"{slot}: invariant {'ok' if r.ok else 'broken'}"
        if equity and abs(s.equity / equity - 1) * 10_000 >= Decimal(repr(change_bps)):
            return f"{slot}: equity moved"
    if now - datetime.fromisoformat(prev["at"]) >= timedelta(minutes=heartbeat_min):
        return "heartbeat"
    return None


def portfolio_events(rt: Runtime, report: TickReport, state: dict[str, Any]
                     ) -> list[dg.AssetMaterialization | dg.AssetCheckEvaluation]:
    """The tick's portfolio materialization and its check evaluations, or nothing."""
    slots = {k: r for k, r in sorted(report.slots.items()) if r.snapshot is not None}
    if not slots:
        return []
    ui = rt.settings.ui
    why = change_reason(state.get("portfolio"), slots, report.ts,
                        ui.portfolio_heartbeat_minutes, ui.portfolio_change_bps)
    if why is None:
        return []
    state["portfolio"] = {"at": report.ts.isoformat(), "slots": {
        k: [str(r.snapshot.cash), str(r.snapshot.equity), r.ok]
        for k, r in slots.items() if r.snapshot is not None}}
    main = slots.get("active") or next(iter(slots.values()))
    s = main.snapshot
    assert s is not None  # slots only holds reports with a snapshot
    rows = [{"slot": k, "equity": f"{r.snapshot.equity:.2f}", "cash": f"{r.snapshot.cash:.2f}",
             "exposure": f"{r.snapshot.exposure:.1%}", "drawdown": f"{r.snapshot.drawdown:.2%}",
             "invariant": "ok" if r.ok else "BROKEN"}
            for k, r in slots.items() if r.snapshot is not None]
    meta: dict[str, dg.RawMetadataValue] = {
        "tick": report.ts.isoformat(), "why": why, "slot": main.slot,
        "equity": float(s.equity), "cash": float(s.cash), "exposure": float(s.exposure),
        "drawdown": float(s.drawdown), "invariant_ok": all(r.ok for r in slots.values()),
        "errors": "; ".join(e for r in slots.values() for e in r.errors) or "none",
        "warnings": "; ".join(w for r in slots.values() for w in r.warnings) or "none",
        "unprotected": "; ".join(u for r in slots.values() for u in r.unprotected) or "none",
        "slots": dg.MetadataValue.md(markdown_table(rows, list(rows[0]))),
        **_chart(rt, main.slot, report.ts, state, ui.portfolio_chart_minutes)}
    return [dg.AssetMaterialization("portfolio", description=f"portfolio ({why})",
                                    metadata=meta),
            *evaluate_portfolio(rt, slots, report.ts)]


def _chart(rt: Runtime, slot: str, now: datetime, state: dict[str, Any], every_min: float
           ) -> dict[str, dg.RawMetadataValue]:
    """The equity chart's metadata: rendered at most once per ``every_min``, else reused."""
    path = rt.home.var / "reports" / "portfolio" / "equity.png"
    at = state.get("chart_at")
    fresh = (at is not None and path.is_file()
             and now - datetime.fromisoformat(at) < timedelta(minutes=every_min))
    if fresh:
        png = path.read_bytes()
    else:
        curve = rt.store.frame(CHART_SQL, [slot, now - timedelta(days=CHART_DAYS)])
        curve = curve.with_columns(pl.col("equity").cast(pl.Float64))
        png = compact_png(equity_png(curve, f"{slot} equity, {CHART_DAYS} days", width=5.0,
                                     height=2.5))  # embedded in every event: ~7 KB, not ~28
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        at = now.isoformat()
        state["chart_at"] = at
    return {"equity_chart": dg.MetadataValue.md(markdown_image(png, f"{slot} equity")),
            "equity_png": dg.MetadataValue.path(str(path)), "chart_rendered_at": str(at)}
