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
``portfolio`` is materialized on change or heartbeat only, together with its checks' evaluations
and an equity chart (``portfolio.py``). On the first tick an instance has seen (cursor), each of
``orders``/``fills``/``positions`` never materialized gets an explicit state: a materialization
with its row count (``dagster/row_count``, 0 on a home that has not traded) and a note.
"""

import json

import dagster as dg

from trading_brain.app.execute import deliver_alerts, execute_once
from trading_brain.app.notify import LogNotifier
from trading_brain.app.runtime import Runtime
from trading_brain.defs.resources import TradingBrainResource
from trading_brain.defs.trading.portfolio import portfolio_events
from trading_brain.engine.executor.report import SlotReport
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
    state = json.loads(context.cursor) if context.cursor else {}
    events: list[dg.AssetMaterialization | dg.AssetObservation | dg.AssetCheckEvaluation] = [
        e for slot, r in report.slots.items()
        for e in _slot_events(context, slot, r, report.ts.isoformat())]
    if not state.get("announced"):
        events += _empty_states(context.instance, rt, {e.asset_key for e in events})
        state["announced"] = True
    events += portfolio_events(rt, report, state)
    context.update_cursor(json.dumps(state))
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


EMPTY_NOTES = {"orders": "no orders yet", "fills": "no fills yet",
               "positions": "no positions yet"}


def _empty_states(instance: dg.DagsterInstance, rt: Runtime, emitted: set[dg.AssetKey]
                  ) -> list[dg.AssetMaterialization]:
    """orders/fills/positions never materialized (and not in this tick): their state now."""
    keys = [dg.AssetKey(k) for k in EMPTY_NOTES]
    missing = [k for k in keys if k not in emitted
               and instance.get_latest_materialization_event(k) is None]
    if not missing:
        return []
    store = rt.store
    with store.session():
        slots = store.known_slots()
        counts = {"orders": len(store.orders()),
                  "fills": sum(len(store.fills(s)) for s in slots),
                  "positions": sum(len(store.positions(s, status=None)) for s in slots)}
    out = []
    for key in missing:
        name = key.to_user_string()
        n = counts[name]
        note = EMPTY_NOTES[name] if n == 0 else f"{n} {name} recorded before this instance"
        out.append(dg.AssetMaterialization(key, description=note, metadata={
            "dagster/row_count": n, "note": note}))
    return out


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
    return events
