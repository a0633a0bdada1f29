"""`alert_sensor`: each new check failure, run failure and stale asset becomes one notification.

Contract (DESIGN §5; reference/dagster.md §3.3, merged into one sensor, running by default):
- check failures: the latest evaluation record of every asset check of the code location; a
  failed evaluation not seen before (cursor ``checks``) is one alert at the check's severity
  (ERROR / WARN) when the check had passed (or was unknown) before — a persisting failure is
  reported once, again only after it passed in between;
- run failures: ``RUN_FAILURE`` events read with the instance's own event cursor (``runs``),
  at most ``MAX_RUNS`` per tick, oldest first — a backlog drains over later ticks;
- stale assets: freshness states (``FreshnessPolicy``) changing to WARN or FAIL (``stale``).
Each alert is recorded in the ``notifications`` table under a deterministic id and logged; the
remote channels ``[notify]`` turns on (Telegram, webhook) get it routed by event type, with
retries, digest and rate limit (``trading_brain.app.notify``). Each tick also flushes what other
processes recorded (executor sensor, ``kill``, backup) to those channels. Dedup is twofold: the
cursor, and the table (an id already stored is not sent again, so a lost cursor after a sensor
timeout does not repeat alerts). A busy warehouse (``TemporaryError``) still logs the alert;
only its row is skipped. Bounded work: one query per check key, ``MAX_RUNS`` run events, one
freshness query per tick, and remote delivery within ``notify.budget_s``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import dagster as dg

from trading_brain.app.notify import (
    Alert,
    LogNotifier,
    build_channels,
    deliver,
    log,
    record_notification,
)
from trading_brain.defs.resources import TradingBrainResource
from trading_brain.settings import Secrets

__all__ = ["Alert", "LogNotifier", "alert_sensor", "deliver", "log", "record_notification"]

MAX_RUNS = 20
LOCK_BUDGET_S = 5.0
STALE_STATES = ("WARN", "FAIL")


def check_alerts(instance: dg.DagsterInstance, check_keys: Sequence[dg.AssetCheckKey],
                 seen: dict[str, list]) -> list[Alert]:
    """Checks that turned failed since ``seen`` (key -> [record id, passed]); updates it.

    A check failing again on later evaluations is not new; it alerts again only after it
    passed in between (a scan evaluates ``candles_5m_fresh`` every 5 minutes: one alert per outage).
    """
    out: list[Alert] = []
    for ck in sorted(check_keys, key=lambda k: k.to_user_string()):
        rec = instance.get_latest_asset_check_evaluation_record(ck)
        name = ck.to_user_string()
        prev = seen.get(name)
        if rec is None or rec.event is None or (prev is not None and prev[0] == rec.id):
            continue
        ev = rec.event.dagster_event.event_specific_data if rec.event.dagster_event else None
        passed = ev.passed if isinstance(ev, dg.AssetCheckEvaluation) else True
        seen[name] = [rec.id, passed]
        if passed or not isinstance(ev, dg.AssetCheckEvaluation) or (
                prev is not None and not prev[1]):
            continue
        desc = ev.description or ""
        out.append(Alert(f"check:{name}:{rec.id}", ev.severity.value, "check_failure", name,
                         f"CHECK FAILED {name} ({ev.severity.value}): {desc}".strip()))
    return out


def run_alerts(instance: dg.DagsterInstance, cursor: str | None) -> tuple[list[Alert], str | None]:
    """Run failures after ``cursor`` (oldest first, at most ``MAX_RUNS``) and the new cursor."""
    res = instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, limit=MAX_RUNS,
                                            cursor=cursor, ascending=True)
    out = []
    for r in res.records:
        run = instance.get_run_by_id(r.run_id)
        job = run.job_name if run else "?"
        part = run.tags.get("dagster/partition") if run else None
        msg = (r.event_log_entry.dagster_event.message if r.event_log_entry.dagster_event
               else r.event_log_entry.user_message) or ""
        where = f" partition {part}" if part else ""
        out.append(Alert(f"run:{r.run_id}", "ERROR", "run_failure", job,
                         f"RUN FAILED {job} run {r.run_id[:8]}{where}: {msg[:300]}"))
    return out, (res.cursor if res.records else cursor)


def stale_alerts(instance: dg.DagsterInstance, keys: Sequence[dg.AssetKey],
                 prev: dict[str, str]) -> list[Alert]:
    """Assets whose freshness state became WARN/FAIL since ``prev``; updates ``prev``."""
    out = []
    for key, rec in sorted(instance.get_freshness_state_records(list(keys)).items(),
                           key=lambda kv: kv[0].to_user_string()):
        name, state = key.to_user_string(), rec.freshness_state.value
        if state in STALE_STATES and prev.get(name) != state:
            out.append(Alert(f"stale:{name}:{state}:{rec.updated_at.isoformat()}",
                             "ERROR" if state == "FAIL" else "WARN", "stale_asset", name,
                             f"STALE {name}: {prev.get(name, 'UNKNOWN')} -> {state}"))
        prev[name] = state
    return out


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Notify each new check failure, run failure and stale asset once.")
def alert_sensor(context: dg.SensorEvaluationContext, tb: TradingBrainResource) -> dg.SkipReason:
    state = json.loads(context.cursor) if context.cursor else {}
    checks: dict[str, list] = state.get("checks", {})
    stale: dict[str, str] = state.get("stale", {})
    if context.repository_def is None:  # only a hand-built context lacks it
        return dg.SkipReason("no definitions to watch")
    graph = context.repository_def.asset_graph
    alerts = check_alerts(context.instance, list(graph.asset_check_keys), checks)
    runs, run_cursor = run_alerts(context.instance, state.get("runs"))
    alerts += runs
    alerts += stale_alerts(context.instance, list(graph.get_all_asset_keys()), stale)
    rt = tb.runtime
    rt.store.lock_budget_s = LOCK_BUDGET_S
    channels = build_channels(rt.settings, Secrets.load(rt.home.root), context.log)
    sent, unrecorded = deliver(alerts, channels, rt.store, rt.clock.now(),
                               config=rt.settings.notify)
    context.update_cursor(json.dumps({"checks": checks, "runs": run_cursor, "stale": stale}))
    note = f", {unrecorded} not recorded (warehouse busy)" if unrecorded else ""
    return dg.SkipReason(f"{sent} alert(s) sent{note}")
