"""executor_sensor's portfolio events: on change or heartbeat only, carrying their checks (the UI
attaches them to that materialization) and a bounded equity chart; explicit empty states."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from decimal import Decimal

import dagster as dg
import pytest
from dagster._core.loader import LoadingContextForTest
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecord

from trading_brain.definitions import defs
from trading_brain.defs.trading.executor import executor_sensor
from trading_brain.defs.trading.portfolio import change_reason
from trading_brain.domain.records import Snapshot
from trading_brain.engine.executor.report import SlotReport
from trading_brain.engine.valuation import InvariantReport
from trading_brain_tests.defs.conftest import NOW, resource
from trading_brain_tests.defs.test_trading_checks import (  # noqa: F401 (fixtures)
    LATER,
    traded,
    traded_template,
)

CHECKS = ("portfolio_reconciled", "drawdown_within_limit")


def _tick(home, now, instance, cursor):
    """One sensor tick; its events reported to the instance as the daemon does."""
    with dg.build_sensor_context(instance=instance, resources={"tb": resource(home, now)},
                                 definitions=defs, cursor=cursor) as ctx:
        result = executor_sensor(ctx)
        cursor = ctx.cursor
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result, cursor


def _portfolio(result) -> list:
    return [e for e in result.asset_events if isinstance(e, dg.AssetMaterialization)
            and e.asset_key == dg.AssetKey("portfolio")]


def _attached(instance, check: str) -> bool:
    """The UI's own test (executionForLatestMaterialization): does the check's latest
    evaluation belong to the latest portfolio materialization?"""
    async def go() -> bool:
        ctx = LoadingContextForTest(instance)
        key = dg.AssetCheckKey(dg.AssetKey("portfolio"), check)
        record = await AssetCheckExecutionRecord.gen(ctx, key)
        return record is not None and await record.targets_latest_materialization(ctx)
    return asyncio.run(go())


def test_portfolio_events_on_change_with_attached_checks_and_a_bounded_chart(
        traded, instance):  # noqa: F811 (the imported fixture)
    with traded.config_file.open("a") as f:
        f.write("[ui]\nportfolio_heartbeat_minutes = 2\nportfolio_chart_minutes = 10\n"
                "portfolio_change_bps = 10000\n")
    t1 = LATER + timedelta(minutes=1)
    first, cursor = _tick(traded, t1, instance, None)
    [mat] = _portfolio(first)
    meta = mat.metadata
    assert meta["why"].value == "first event" and meta["invariant_ok"].value is True
    assert "data:image/png;base64," in meta["equity_chart"].value
    png = base64.b64decode(str(meta["equity_chart"].value).split("base64,")[1].rstrip(")"))
    assert png.startswith(b"\x89PNG") and len(png) < 12_000  # every event stores it
    assert meta["chart_rendered_at"].value == t1.isoformat()
    evals = {e.check_name: e for e in first.asset_events
             if isinstance(e, dg.AssetCheckEvaluation)}
    assert set(evals) == set(CHECKS) and all(e.passed for e in evals.values())
    assert all(_attached(instance, c) for c in CHECKS)

    # the scheduled check run attaches to this same (still latest) materialization
    same, cursor = _tick(traded, t1 + timedelta(seconds=15), instance, cursor)
    assert _portfolio(same) == []  # nothing changed: no event, the checks stay attached
    assert all(_attached(instance, c) for c in CHECKS)

    later, cursor = _tick(traded, t1 + timedelta(minutes=3), instance, cursor)
    [beat] = _portfolio(later)
    assert beat.metadata["why"].value == "heartbeat"
    assert beat.metadata["chart_rendered_at"].value == t1.isoformat()  # reused, not rendered
    assert all(_attached(instance, c) for c in CHECKS)

    again, cursor = _tick(traded, t1 + timedelta(minutes=11), instance, cursor)
    [beat2] = _portfolio(again)
    assert beat2.metadata["chart_rendered_at"].value == (t1 + timedelta(minutes=11)).isoformat()


def test_a_failing_check_travels_with_its_event_and_halts(
        traded, instance):  # noqa: F811 (the imported fixture)
    from trading_brain.adapters.duckdb import Store

    store = Store.open(traded.warehouse)
    store.execute("UPDATE cash_ledger SET amount = amount - 1 "
                  "WHERE seq = (SELECT max(seq) FROM cash_ledger)")
    result, _ = _tick(traded, LATER + timedelta(minutes=1), instance, None)
    [mat] = _portfolio(result)
    assert mat.metadata["invariant_ok"].value is False
    bad = next(e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)
               and e.check_name == "portfolio_reconciled")
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.ERROR
    assert _attached(instance, "portfolio_reconciled")
    halt = store.load_risk_state("active").halts["manual"]
    assert halt.reason.startswith("check:portfolio_reconciled")


def _slot(cash: str, equity: str, *, ok: bool = True, fills: bool = False) -> SlotReport:
    snap = Snapshot(NOW, "active", Decimal(equity), Decimal(cash), Decimal(0), 0.0,
                    Decimal(equity), 0.0, Decimal(0), Decimal(0), Decimal(0), Decimal(0))
    inv = InvariantReport(ok, [] if ok else ["ledger off"], Decimal(equity), Decimal(cash))
    return SlotReport("active", fills=["f1"] if fills else [], invariant=inv, snapshot=snap)


PREV = {"at": NOW.isoformat(), "slots": {"active": ["100.00", "1000", True]}}


@pytest.mark.parametrize(("report", "minutes", "why"), [
    (_slot("100.00", "1000"), 1, None),
    (_slot("100.00", "1000.5"), 1, None),  # 5 bps < 10
    (_slot("100.00", "1001"), 1, "active: equity moved"),  # 10 bps
    (_slot("100.004", "1000"), 1, None),  # below a cent
    (_slot("99.99", "1000"), 1, "active: cash changed"),
    (_slot("100.00", "1000", fills=True), 1, "active: trade"),
    (_slot("100.00", "1000", ok=False), 1, "active: invariant broken"),
    (_slot("100.00", "1000"), 15, "heartbeat"),
])
def test_what_counts_as_a_change(report, minutes, why):
    now = NOW + timedelta(minutes=minutes)
    assert change_reason(PREV, {"active": report}, now, 15, 10) == why
    assert change_reason(None, {"active": report}, now, 15, 10) == "first event"
    assert change_reason(PREV, {"active": report, "shadow1": report}, now, 15, 10) \
        == "slots changed"


def test_a_home_that_has_not_traded_shows_explicit_empty_states(sim_home, instance):
    first, cursor = _tick(sim_home, NOW, instance, None)
    mats = {e.asset_key.to_user_string(): e for e in first.asset_events
            if isinstance(e, dg.AssetMaterialization)}
    for name, note in [("orders", "no orders yet"), ("fills", "no fills yet"),
                       ("positions", "no positions yet")]:
        assert mats[name].metadata["dagster/row_count"].value == 0
        assert mats[name].metadata["note"].value == note
    again, _ = _tick(sim_home, NOW + timedelta(seconds=15), instance, cursor)
    assert not {"orders", "fills", "positions"} & {e.asset_key.to_user_string()
                                                   for e in again.asset_events}
    lost, _ = _tick(sim_home, NOW + timedelta(seconds=30), instance, None)  # lost cursor
    assert not {"orders", "fills", "positions"} & {e.asset_key.to_user_string()
                                                   for e in lost.asset_events}
