"""Trading asset checks on a real sim home with an open position: pass, fail, halt, no auto-resume.

One traded home is built per session (bootstrap + one filled entry; fixture ``traded_template``,
also imported by test_control_cli) and copied per test (fixture ``traded``).
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from decimal import Decimal

import dagster as dg
import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.definitions import defs
from trading_brain.defs.trading.checks import trading_checks
from trading_brain.defs.trading.executor import executor_sensor
from trading_brain.domain.intents import OrderIntent, intent_id_for
from trading_brain.domain.risk import RiskState
from trading_brain.engine import trading_checks as tc
from trading_brain.engine.scan import scan_bar_time
from trading_brain.engine.valuation import InvariantReport, Mismatch
from trading_brain.settings import Home
from trading_brain_tests.defs.conftest import NOW, resource, write_home

LATER = NOW + timedelta(minutes=3)
CHECKS_JOB = dg.define_asset_job("trading_checks_job",
                                 selection=dg.AssetSelection.checks(*trading_checks))
CHECK_DEFS = dg.Definitions.merge(defs, dg.Definitions(jobs=[CHECKS_JOB]))


def enter_intent(store: Store, symbol: str, bar, scan_id: str, qty: str = "0.01") -> OrderIntent:
    price = store.read_candles([symbol], "5m", bar, bar + timedelta(minutes=5))["close"][0]
    intent = OrderIntent(
        intent_id=intent_id_for("ema_cross", 1, "active", symbol, bar, "enter"), scan_id=scan_id,
        strategy_id="ema_cross", version=1, symbol=symbol, bar_time=bar, action="enter",
        quantity=Decimal(qty), reference_price=Decimal(repr(price)), created_at=NOW)
    scan = dict(scan_id=scan_id, bar_time=bar, started_at=NOW, duration_ms=1.0, symbols=1,
                signals=1, intents=1, rejected=0, details={})
    assert store.record_scan(scan, [], [intent]) == 1
    return intent


def tick(home: Home, now, instance) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, resources={"tb": resource(home, now)},
                                 definitions=defs) as ctx:
        return executor_sensor(ctx)


def build_traded_home(root) -> Home:
    """Bootstrap one day of sim candles and open one BTC position (no stops) in `active`."""
    home = write_home(root)
    with dg.instance_for_test() as instance:
        assert defs.resolve_job_def("bootstrap_job").execute_in_process(
            instance=instance, resources={"tb": resource(home)},
            run_config={"ops": {"bootstrap_history_op": {"config": {"days_5m": 1}}}}).success
        enter_intent(Store.open(home.warehouse), "BTC/USD", scan_bar_time(NOW), "s1")
        tick(home, NOW, instance)
        tick(home, LATER, instance)
    assert Store.open(home.warehouse).positions("active")  # the entry filled
    return home


_TEMPLATE: list[Home] = []  # built once per process, even when another module imports the fixture


@pytest.fixture(scope="session")
def traded_template(tmp_path_factory) -> Home:
    if not _TEMPLATE:
        _TEMPLATE.append(build_traded_home(tmp_path_factory.mktemp("traded") / "home"))
    return _TEMPLATE[0]


@pytest.fixture
def traded(traded_template, tmp_path) -> Home:
    shutil.copytree(traded_template.root, tmp_path / "home")
    return Home(tmp_path / "home")


def run_checks(home: Home, now, instance) -> dict[str, dg.AssetCheckEvaluation]:
    res = CHECK_DEFS.resolve_job_def("trading_checks_job").execute_in_process(
        instance=instance, resources={"tb": resource(home, now)})
    assert res.success
    return {e.check_name: e for e in res.get_asset_check_evaluations()}


def risk(home: Home, slot: str = "active") -> RiskState:
    return Store.open(home.warehouse).load_risk_state(slot) or RiskState()


def test_all_checks_pass_on_a_healthy_home(traded, instance):
    evals = run_checks(traded, LATER, instance)
    assert set(evals) == {"portfolio_reconciled", "drawdown_within_limit", "risk_halt_active",
                          "signal_drought"}  # stale data: candles_5m_fresh (test_market_defs)
    assert all(e.passed for e in evals.values()), {k: e.description for k, e in evals.items()}
    assert evals["portfolio_reconciled"].metadata["slots"].value == "active"
    assert not risk(traded).halted


def test_broken_ledger_halts_entries_and_passing_again_does_not_resume(traded, instance):
    store = Store.open(traded.warehouse)
    store.execute("UPDATE cash_ledger SET amount = amount - 1 "
                  "WHERE seq = (SELECT max(seq) FROM cash_ledger)")
    evals = run_checks(traded, LATER, instance)
    bad = evals["portfolio_reconciled"]
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.ERROR
    assert "active" in bad.metadata["failing_slots"].value
    st = risk(traded)
    assert st.halts["manual"].reason.startswith("check:portfolio_reconciled:")
    events = store.frame("SELECT kind, reason FROM risk_events WHERE kind = 'halt'")
    assert events.height == 1

    # the executor now refuses a new entry (exits would still pass)
    intent = enter_intent(store, "ETH/USD", scan_bar_time(NOW), "s2")
    tick(traded, LATER + timedelta(minutes=1), instance)
    assert store.intent_by_id(intent.intent_id).status == "cancelled"

    run_checks(traded, LATER, instance)  # still failing: no second halt event
    assert store.frame("SELECT * FROM risk_events WHERE kind = 'halt'").height == 1

    store.execute("UPDATE cash_ledger SET amount = amount + 1 "
                  "WHERE seq = (SELECT max(seq) FROM cash_ledger)")
    again = run_checks(traded, LATER + timedelta(minutes=1), instance)
    assert again["portfolio_reconciled"].passed
    assert risk(traded).halted  # a human resumes, never the check
    assert not again["risk_halt_active"].passed
    assert again["risk_halt_active"].severity == dg.AssetCheckSeverity.WARN
    assert "check:portfolio_reconciled" in again["risk_halt_active"].description


def test_deep_drawdown_fails_and_halts(traded, instance):
    store = Store.open(traded.warehouse)
    store.execute("""INSERT INTO portfolio_snapshots SELECT ts + INTERVAL 1 MINUTE, slot,
        equity * 0.5, cash, positions_value, exposure, peak_equity, 0.5, daily_pnl, fees_paid,
        realized_pnl, unrealized_pnl FROM portfolio_snapshots ORDER BY ts DESC LIMIT 1""")
    evals = run_checks(traded, LATER, instance)
    dd = evals["drawdown_within_limit"]
    assert not dd.passed and "drawdown 50.0" in dd.description and "on active" in dd.description
    assert risk(traded).halts["manual"].reason.startswith("check:drawdown_within_limit")


def test_signal_drought_warns_after_enough_scans_without_entries(traded, instance):
    store = Store.open(traded.warehouse)
    for i in range(tc.DROUGHT_MIN_SCANS):
        bar = scan_bar_time(LATER) - timedelta(minutes=5 * (i + 1))
        store.record_scan(dict(scan_id=f"d{i}", bar_time=bar, started_at=bar, duration_ms=1.0,
                               symbols=3, signals=0, intents=0, rejected=0, details={}), [], [])
    evals = run_checks(traded, LATER, instance)
    drought = evals["signal_drought"]
    assert not drought.passed and drought.severity == dg.AssetCheckSeverity.WARN
    assert drought.metadata["scans"].value >= tc.DROUGHT_MIN_SCANS
    assert not risk(traded).halted  # WARN checks never halt


# ---- pure evaluations: boundaries ------------------------------------------------------------
def test_drawdown_boundary_is_inclusive():
    state = RiskState(peak_equity=Decimal(1000))
    ok, failing = tc.drawdown_within_limit({"active": state}, {"active": Decimal("600.01")}, 0.4)
    assert ok.passed and failing == []
    bad, failing = tc.drawdown_within_limit({"active": state}, {"active": Decimal(600)}, 0.4)
    assert not bad.passed and failing == ["active"]
    # no persisted peak yet: the equity itself is the peak
    assert tc.drawdown_within_limit({"shadow1": None}, {"shadow1": Decimal(5)}, 0.4)[0].passed


def test_reconciled_reports_venue_mismatch_per_slot():
    good = InvariantReport(True, [], Decimal(1), Decimal(1))
    out, failing = tc.portfolio_reconciled(
        {"active": good, "shadow1": good},
        {"active": [Mismatch("USD", Decimal(10), Decimal(9))]}, live=True)
    assert not out.passed and failing == ["active"] and "venue USD" in out.description
    assert tc.portfolio_reconciled({"active": good})[0].passed


def test_drought_needs_enough_scans_and_no_entries():
    assert tc.signal_drought(11, 0)[0].passed
    assert not tc.signal_drought(12, 0)[0].passed
    assert tc.signal_drought(12, 1)[0].passed


def test_replayed_market_is_never_stale():
    out, failing = tc.data_fresh({}, ["BTC/USD"], NOW, live=False, slots=["active"])
    assert out.passed and failing == []
    out, failing = tc.data_fresh({}, ["BTC/USD"], NOW, live=True, slots=["active"])
    assert not out.passed and failing == ["active"]


def test_portfolio_checks_run_as_their_own_scheduled_job(sim_home, instance):
    """The job behind portfolio_checks_schedule executes the three portfolio checks."""
    import dagster as dg

    from trading_brain.definitions import defs
    from trading_brain_tests.defs.conftest import resource

    sim_home.var.mkdir(parents=True, exist_ok=True)
    assert defs.resolve_schedule_def("portfolio_checks_schedule").default_status == \
        dg.DefaultScheduleStatus.RUNNING
    res = defs.resolve_job_def("portfolio_checks_job").execute_in_process(
        instance=instance, resources={"tb": resource(sim_home)}, raise_on_error=False)
    names = {e.check_name for e in res.get_asset_check_evaluations()}
    assert names == {"portfolio_reconciled", "drawdown_within_limit", "risk_halt_active"}
