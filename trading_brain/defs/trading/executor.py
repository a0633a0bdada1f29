"""`executor_sensor`: one bounded executor tick every ~15 s (DESIGN §6.2,
reference/dagster.md §4.4).

The tick is ``trading_brain.app.execute.execute_once`` (venues, fee tier, then
``engine.executor.tick.run_tick``: reconcile, execute, record); a locked warehouse or a briefly
unavailable venue (``TemporaryError``) skips the tick rather than blocking past the sensor
timeout. This sensor only reports what happened as asset events for `orders`, `fills`,
`positions` and `portfolio`, so the UI shows them in lineage. Warnings of the tick (ambiguous
placements, ``EService``/transient venue errors, refused protective legs) are logged at WARNING
and shown as an ``orders`` observation and in the ``portfolio`` metadata; the tick's alerts go
through the notifier once per key (``app.execute.deliver_alerts``).
"""

import dagster as dg

from trading_brain.app.execute import deliver_alerts, execute_once
from trading_brain.app.notify import LogNotifier
from trading_brain.defs.resources import TradingBrainResource
from trading_brain.engine.executor.context import SlotReport
from trading_brain.errors import TemporaryError

trading_records = [
    dg.AssetSpec("orders", group_name="trading", deps=["order_intents"],
                 description="Orders written ahead of every venue call, settled by lookups."),
    dg.AssetSpec("fills", group_name="trading", deps=["orders"],
                 description="Executions reported by the venue (paper or Kraken)."),
    dg.AssetSpec("positions", group_name="trading", deps=["fills"],
                 description="Open and closed positions per slot, with stop levels."),
    dg.AssetSpec("portfolio", group_name="trading", deps=["positions"],
                 description="Cash ledger and equity snapshots per slot; invariant checked."),
]


@dg.sensor(minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING,
           asset_selection=[s.key for s in trading_records])
def executor_sensor(context: dg.SensorEvaluationContext,
                    tb: TradingBrainResource) -> dg.SensorResult:
    """Reconcile, execute pending intents, record fills/positions/ledger, snapshot."""
    rt = tb.runtime
    try:
        outcome = execute_once(rt)
    except TemporaryError as e:  # warehouse busy, venue briefly unavailable: next tick
        return dg.SensorResult(skip_reason=f"tick skipped: {e}")
    if outcome.fee_error:
        context.log.warning(f"venue fee tier not refreshed, stored fees kept: {outcome.fee_error}")
    report = outcome.report
    events = [e for slot, r in report.slots.items()
              for e in _slot_events(context, slot, r, report.ts.isoformat())]
    busy = deliver_alerts(rt, [a for r in report.slots.values() for a in r.alerts],
                          LogNotifier(context.log))
    if busy:
        context.log.warning(busy)
    placed, fills = report.count("orders_placed"), report.count("fills")
    warned = report.count("warnings")
    context.log.info(f"tick {report.ts:%H:%M:%S}: {placed} orders, {fills} fills, "
                     f"invariant {'ok' if report.invariant_ok else 'BROKEN'}"
                     + (f", {warned} warning(s)" if warned else ""))
    return dg.SensorResult(asset_events=events,
                           skip_reason=None if events else "nothing to do")


def _slot_events(context: dg.SensorEvaluationContext, slot: str, r: SlotReport,
                 tick: str) -> list[dg.AssetMaterialization | dg.AssetObservation]:
    """One slot's asset events; its warnings logged at WARNING."""
    meta = {"slot": slot, "tick": tick}
    events: list[dg.AssetMaterialization | dg.AssetObservation] = []
    if r.orders_placed or r.orders_updated:
        events.append(dg.AssetMaterialization("orders", metadata={
            **meta, "placed": len(r.orders_placed), "updated": len(r.orders_updated),
            "rejected_intents": ", ".join(f"{k}: {v}" for k, v in r.intents_rejected.items())
            or "none"}))
    if r.warnings or r.alerts or r.orders_cancelled:  # an event the UI shows
        events.append(dg.AssetObservation("orders", metadata={
            **meta, "warnings": "; ".join(r.warnings) or "none",
            "alerts": "; ".join(a.text for a in r.alerts) or "none",
            "cancelled": ", ".join(r.orders_cancelled) or "none"}))
    for text in r.warnings:  # ambiguous orders, service errors, refused protective legs
        context.log.warning(f"{slot}: {text}")
    if r.fills:
        events.append(dg.AssetMaterialization("fills", metadata={**meta, "fills": len(r.fills)}))
    if r.positions_opened or r.positions_closed:
        events.append(dg.AssetMaterialization("positions", metadata={
            **meta, "opened": len(r.positions_opened), "closed": len(r.positions_closed)}))
    if r.snapshot is not None:
        s = r.snapshot
        events.append(dg.AssetMaterialization("portfolio", metadata={
            **meta, "equity": float(s.equity), "cash": float(s.cash),
            "exposure": float(s.exposure), "drawdown": float(s.drawdown),
            "invariant_ok": r.ok, "errors": "; ".join(r.errors) or "none",
            "warnings": "; ".join(r.warnings) or "none",
            "unprotected": "; ".join(r.unprotected) or "none"}))
    return events
