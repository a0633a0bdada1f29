"""alert_sensor ticks (build_sensor_context + cursor): each check failure and run failure once."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import dagster as dg
import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.definitions import defs
from trading_brain.defs.alerts import Alert, LogNotifier, alert_sensor, deliver
from trading_brain.defs.trading.checks import risk_halt_active
from trading_brain.domain.risk import Halt, RiskState
from trading_brain_tests.defs.conftest import NOW, resource

HALT_JOB = dg.define_asset_job("halt_check_job", selection=dg.AssetSelection.checks(
    risk_halt_active))
JOB_DEFS = dg.Definitions.merge(defs, dg.Definitions(jobs=[HALT_JOB]))


@pytest.fixture
def store(sim_home) -> Store:
    return Store.open(sim_home.warehouse)  # creates and migrates the warehouse


def run_job(name: str, home, instance) -> None:
    assert JOB_DEFS.resolve_job_def(name).execute_in_process(
        instance=instance, resources={"tb": resource(home)}).success


def sensor_tick(home, instance, cursor: str | None) -> tuple[str, str | None]:
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                 resources={"tb": resource(home)}) as ctx:
        skip = alert_sensor(ctx)
    return skip.skip_message, ctx.cursor


def notifications(store: Store) -> list[tuple]:
    return store.execute("SELECT kind, level, subject, text FROM notifications ORDER BY ts, kind")


def set_halt(store: Store, on: bool) -> None:
    halts = {"manual": Halt(reason="looking into it", since=NOW)} if on else {}
    store.save_risk_state("active", RiskState(halts=halts), NOW)


def test_check_failure_is_sent_once_until_it_passes_again(sim_home, store, instance):
    set_halt(store, True)
    run_job("halt_check_job", sim_home, instance)
    msg, cursor = sensor_tick(sim_home, instance, None)
    assert msg.startswith("1 alert(s) sent")
    rows = notifications(store)
    assert [(r[0], r[1], r[2]) for r in rows] == [("check_failure", "WARN",
                                                    "portfolio:risk_halt_active")]
    assert "looking into it" in rows[0][3]

    assert sensor_tick(sim_home, instance, cursor)[0].startswith("0 alert(s)")
    assert sensor_tick(sim_home, instance, None)[0].startswith("0 alert(s)")  # lost cursor
    run_job("halt_check_job", sim_home, instance)  # still failing: not new
    msg, cursor = sensor_tick(sim_home, instance, cursor)
    assert msg.startswith("0 alert(s)") and len(notifications(store)) == 1

    set_halt(store, False)
    run_job("halt_check_job", sim_home, instance)  # passes
    msg, cursor = sensor_tick(sim_home, instance, cursor)
    assert msg.startswith("0 alert(s)")
    set_halt(store, True)
    run_job("halt_check_job", sim_home, instance)  # fails again: a new failure
    msg, cursor = sensor_tick(sim_home, instance, cursor)
    assert msg.startswith("1 alert(s)") and len(notifications(store)) == 2
    assert json.loads(cursor)["checks"]["portfolio:risk_halt_active"][1] is False


def test_error_check_alert_has_error_level(sim_home, store, instance):
    # the scan's freshness check failed (the halt it causes: test_market_defs)
    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("candles_5m"), check_name="candles_5m_fresh", passed=False,
        severity=dg.AssetCheckSeverity.ERROR, description="BTC/USD stale"))
    sensor_tick(sim_home, instance, None)
    rows = notifications(store)
    assert [(r[0], r[1], r[2]) for r in rows] == [("check_failure", "ERROR",
                                                    "candles_5m:candles_5m_fresh")]


@dg.op
def always_fails() -> None:
    raise RuntimeError("venue exploded")


@dg.job
def doomed_job() -> None:
    always_fails()


def test_run_failure_is_sent_once(sim_home, store, instance):
    assert not doomed_job.execute_in_process(instance=instance, raise_on_error=False).success
    msg, cursor = sensor_tick(sim_home, instance, None)
    assert msg.startswith("1 alert(s)")
    kind, level, subject, text = notifications(store)[0]
    assert (kind, level, subject) == ("run_failure", "ERROR", "doomed_job")
    assert "RUN FAILED doomed_job" in text
    assert sensor_tick(sim_home, instance, cursor)[0].startswith("0 alert(s)")
    assert sensor_tick(sim_home, instance, None)[0].startswith("0 alert(s)")  # table dedup
    assert not doomed_job.execute_in_process(instance=instance, raise_on_error=False).success
    assert sensor_tick(sim_home, instance, cursor)[0].startswith("1 alert(s)")
    assert len(notifications(store)) == 2


def test_log_notifier_levels_and_deliver_dedup(store, caplog):
    logger = logging.getLogger("tb-test-alerts")
    notifier = LogNotifier(logger)
    alerts = [Alert("k1", "ERROR", "check_failure", "a:b", "broken"),
              Alert("k2", "WARN", "stale_asset", "c", "late")]
    with caplog.at_level(logging.INFO, logger="tb-test-alerts"):
        assert deliver(alerts, [notifier], store, datetime.now(UTC)) == (2, 0)
        assert deliver(alerts, [notifier], store, datetime.now(UTC)) == (0, 0)
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels == [("ERROR", "ALERT ERROR: broken"), ("WARNING", "ALERT WARN: late")]
    assert store.execute("SELECT channels FROM notifications")[0][0] == "log"


def test_stale_asset_is_sent_once_per_change(sim_home, store, instance):
    from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

    def change(new: FreshnessState, old: FreshnessState) -> None:
        instance.report_runless_asset_event(FreshnessStateChange(
            key=dg.AssetKey("candles_5m"), new_state=new, previous_state=old,
            state_change_timestamp=datetime.now(UTC).timestamp()))

    change(FreshnessState.WARN, FreshnessState.PASS)
    msg, cursor = sensor_tick(sim_home, instance, None)
    assert msg.startswith("1 alert(s)")
    assert [r[:3] for r in notifications(store)] == [("stale_asset", "WARN", "candles_5m")]
    assert sensor_tick(sim_home, instance, cursor)[0].startswith("0 alert(s)")
    change(FreshnessState.FAIL, FreshnessState.WARN)
    msg, cursor = sensor_tick(sim_home, instance, cursor)
    assert msg.startswith("1 alert(s)") and notifications(store)[-1][1] == "ERROR"
    change(FreshnessState.PASS, FreshnessState.FAIL)
    msg, cursor = sensor_tick(sim_home, instance, cursor)
    assert msg.startswith("0 alert(s)") and json.loads(cursor)["stale"]["candles_5m"] == "PASS"
