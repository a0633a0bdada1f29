"""Risk state transitions: halts, peak, day rollover, rollback triggers, probation, cooldown,
restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trading_brain.domain.risk import RiskLimits, RiskState
from trading_brain.engine.risk import evaluate
from trading_brain.engine.risk_state import (
    clear_rollback,
    halt,
    probation_level,
    restore,
    resume,
    set_kill_switch,
    update_state_on_close,
    update_state_on_equity,
)
from trading_brain.errors import DataError
from trading_brain_tests.engine.test_risk_fixtures import (
    EXACT,
    LIMITS,
    NOW,
    D,
    enter,
    portfolio,
    ready_state,
    unit_pair,
)

LATER = NOW + timedelta(hours=1)
TOMORROW = NOW + timedelta(days=1)


def kinds(events):
    return [e.kind for e in events]


EQUITY = [
    # (id, equity after a 10 000 start, expected halts, rollback reason)
    ("flat", "10000", [], None),
    ("-9.99 % is not a halt", "9001", [], None),
    ("exactly -10 % halts for the day", "9000", ["daily_loss"], None),
    ("-14.99 %: halted, no rollback yet", "8501", ["daily_loss"], None),
    ("exactly -15 % also triggers a rollback", "8500", ["daily_loss"], "daily_drop"),
    ("-40 % from peak: drawdown halt too", "6000", ["daily_loss", "drawdown"], "daily_drop"),
    ("zero equity: everything fires", "0", ["daily_loss", "drawdown"], "daily_drop"),
]


@pytest.mark.parametrize(("case", "equity", "halts", "rollback"), EQUITY,
                         ids=[e[0] for e in EQUITY])
def test_equity_thresholds(case, equity, halts, rollback):
    state, events = update_state_on_equity(ready_state(), D(equity), LATER, LIMITS)
    assert sorted(state.halts) == halts
    assert (state.rollback.reason if state.rollback else None) == rollback
    assert kinds(events).count("halt") == len(halts)
    assert state.peak_equity == D(10000)


def test_drawdown_measured_from_persisted_peak_not_day_start():
    state = ready_state()
    state, _ = update_state_on_equity(state, D(20000), LATER, LIMITS)  # new peak
    state, _ = update_state_on_equity(state, D(12001), TOMORROW, LIMITS)  # -39.995 %
    assert state.peak_equity == D(20000) and "drawdown" not in state.halts
    assert state.day_start_equity == D(12001)  # first equity seen on the new day
    state, events = update_state_on_equity(state, D(12000), TOMORROW, LIMITS)  # exactly -40 %
    assert "drawdown" in state.halts and kinds(events) == ["halt"]


def test_halts_fire_once_and_persist_through_json():
    state, first = update_state_on_equity(ready_state(), D(5000), LATER, LIMITS)
    again, second = update_state_on_equity(state, D(4000), LATER, LIMITS)
    assert kinds(first).count("halt") == 2 and kinds(second) == []
    loaded = RiskState.model_validate_json(again.model_dump_json())
    assert loaded == again
    assert loaded.halts["drawdown"].since == LATER and loaded.halted
    d = evaluate(enter(size=0.05), portfolio("4000"), loaded, EXACT, unit_pair(), LATER)
    assert d.reason == "halt_drawdown"


def test_day_rollover_clears_daily_halt_but_not_drawdown():
    state, _ = update_state_on_equity(ready_state(), D(5000), LATER, LIMITS)
    state, events = update_state_on_equity(state, D(5000), TOMORROW, LIMITS)
    assert list(state.halts) == ["drawdown"]
    assert kinds(events) == ["day_rollover", "halt_cleared"]
    assert state.day == TOMORROW.date() and state.day_start_equity == D(5000)


def test_rollover_happens_exactly_at_midnight_utc():
    last = datetime(2026, 3, 10, 23, 59, 59, 999999, tzinfo=UTC)
    state, ev = update_state_on_equity(ready_state(), D(9500), last, LIMITS)
    assert state.day_start_equity == D(10000) and kinds(ev) == []
    state, ev = update_state_on_equity(state, D(9500), last + timedelta(microseconds=1), LIMITS)
    assert state.day_start_equity == D(9500) and kinds(ev) == ["day_rollover"]


def test_rollover_resets_symbol_day_pnl_and_daily_drop_trigger_once_per_day():
    state, _ = update_state_on_close(ready_state(), "AAA/USD", D(-5), D(100), "signal", NOW, LIMITS)
    assert state.symbol("AAA/USD").day_pnl == D(-5)
    state, ev = update_state_on_equity(state, D(8000), LATER, LIMITS)
    assert state.rollback.reason == "daily_drop"
    state, _ = clear_rollback(state, LATER, "reverted to v2")
    state, ev = update_state_on_equity(state, D(7900), LATER, LIMITS)
    assert state.rollback is None and "rollback_trigger" not in kinds(ev)  # once per day
    state, _ = update_state_on_equity(state, D(7900), TOMORROW, LIMITS)
    assert state.symbol("AAA/USD").day_pnl == 0
    state, ev = update_state_on_equity(state, D(6700), TOMORROW, LIMITS)  # -15.2 % new day
    assert state.rollback.reason == "daily_drop"


def test_bad_inputs_raise():
    with pytest.raises(DataError, match="clock went back"):
        update_state_on_equity(ready_state(), D(1), NOW - timedelta(days=1), LIMITS)
    with pytest.raises(DataError, match="equity must be"):
        update_state_on_equity(ready_state(), D(-1), NOW, LIMITS)
    with pytest.raises(DataError, match="UTC-aware"):
        update_state_on_equity(ready_state(), D(1), NOW.replace(tzinfo=None), LIMITS)
    with pytest.raises(DataError, match="cost must be"):
        update_state_on_close(ready_state(), "A/USD", D(1), D(0), "signal", NOW, LIMITS)


def _closes(state, pnls, reason="signal", start=NOW, limits=LIMITS):
    events = []
    for i, pnl in enumerate(pnls):
        state, ev = update_state_on_close(state, "AAA/USD", D(pnl), D(100), reason,
                                          start + timedelta(minutes=i), limits)
        events += ev
    return state, events


LOSSES = [
    # (id, P&L sequence of closes, consecutive losses after, rollback fired) with N = 4
    ("three losses", ["-1", "-1", "-1"], 3, False),
    ("exactly four losses trigger", ["-1", "-1", "-1", "-1"], 4, True),
    ("a win resets the count", ["-1", "-1", "-1", "2", "-1"], 1, False),
    ("break-even resets the count", ["-1", "-1", "-1", "0", "-1", "-1"], 2, False),
]


@pytest.mark.parametrize(("case", "pnls", "count", "fired"), LOSSES, ids=[x[0] for x in LOSSES])
def test_consecutive_losses(case, pnls, count, fired):
    state, events = _closes(ready_state(), pnls)
    assert state.consecutive_losses == count
    assert (state.rollback is not None) == fired
    assert kinds(events).count("rollback_trigger") == int(fired)


def test_rollback_fires_once_until_cleared_and_clearing_resets_count():
    state, events = _closes(ready_state(), ["-1"] * 6)
    assert kinds(events).count("rollback_trigger") == 1
    state, ev = clear_rollback(state, LATER, "deployments reverted")
    assert state.rollback is None and state.consecutive_losses == 0 and kinds(ev) == [
        "rollback_cleared"]
    assert clear_rollback(state, LATER, "again") == (state, [])


def test_probation_levels_escalate_and_recover_with_events():
    state, events = _closes(ready_state(), ["-3", "-3"])  # -6 %: half
    assert probation_level(state, "AAA/USD", NOW, LIMITS) == 1
    assert [e.details["level"] for e in events if e.kind == "probation"] == [1]
    state, events = _closes(state, ["-5"], start=LATER)  # -11 %: quarter
    assert probation_level(state, "AAA/USD", LATER, LIMITS) == 2
    state, events = _closes(state, ["7"], start=LATER)  # -4 %: recovered
    assert probation_level(state, "AAA/USD", LATER, LIMITS) == 0
    assert [e.details["level"] for e in events if e.kind == "probation"] == [0]


def test_probation_window_expiry_and_pruning():
    state, _ = _closes(ready_state(), ["-20"])
    assert probation_level(state, "AAA/USD", NOW + timedelta(hours=23, minutes=59), LIMITS) == 2
    assert probation_level(state, "AAA/USD", NOW + timedelta(hours=24), LIMITS) == 0
    state, _ = _closes(state, ["1"], start=NOW + timedelta(hours=25))
    assert len(state.symbol("AAA/USD").closes) == 1  # the old close was pruned


@pytest.mark.parametrize(("reason", "cooling"), [
    ("stop_loss", True),  # a stop-loss starts the cooldown
    ("take_profit", False),  # a take-profit does not
    ("signal", False),  # nor a signal exit, even at a loss
])
def test_cooldown_only_after_stop_loss(reason, cooling):
    state, events = _closes(ready_state(), ["-1"], reason=reason)
    until = state.symbol("AAA/USD").cooldown_until
    assert (until == NOW + timedelta(minutes=240)) if cooling else until is None
    assert ("cooldown" in kinds(events)) == cooling


def test_zero_cooldown_setting_disables_it():
    state, events = _closes(ready_state(), ["-1"], "stop_loss", limits=RiskLimits(
        cooldown_minutes=0))
    assert state.symbol("AAA/USD").cooldown_until is None and "cooldown" not in kinds(events)


def test_restore_after_a_long_outage_re_evaluates_everything():
    state, _ = update_state_on_equity(ready_state(), D(8800), LATER, LIMITS)  # daily halt
    state, _ = _closes(state, ["-20"], "stop_loss", start=LATER)
    saved = state.model_dump_json()
    week = NOW + timedelta(days=7)
    state, events = restore(RiskState.model_validate_json(saved), portfolio("8800"), week, LIMITS)
    assert state.halts == {}  # the daily halt belonged to another day
    assert state.day == week.date() and state.day_start_equity == D(8800)
    assert state.symbols == {}  # cooldown and probation memory expired
    assert state.peak_equity == D(10000)  # the peak survives
    assert kinds(events) == ["day_rollover", "halt_cleared", "restore"]
    assert events[-1].details["halts"] is None


def test_restore_same_day_keeps_halts_and_detects_new_ones():
    state, _ = set_kill_switch(ready_state(), True, "operator", NOW)
    state, events = restore(state, portfolio("5900"), LATER, LIMITS)
    assert state.kill_switch is not None and set(state.halts) == {"daily_loss", "drawdown"}
    assert events[-1].details == {"halts": "daily_loss,drawdown", "kill_switch": True,
                                  "peak_equity": "10000", "equity": "5900",
                                  "rollback": "daily_drop"}


def test_fresh_state_is_initialised_by_restore():
    state, events = restore(RiskState(), portfolio("2500"), NOW, LIMITS)
    assert (state.peak_equity, state.day_start_equity, state.day) == (D(2500), D(2500), NOW.date())
    assert not state.halted


def test_human_controls():
    state, ev = halt(ready_state(), "going on holiday", NOW)
    assert state.halts["manual"].reason == "going on holiday" and kinds(ev) == ["halt"]
    assert halt(state, "again", NOW)[1] == []  # idempotent
    state, ev = set_kill_switch(state, True, "panic", NOW)
    assert state.kill_switch.reason == "panic" and kinds(ev) == ["kill_switch"]
    assert set_kill_switch(state, True, "panic", NOW)[1] == []
    state, ev = update_state_on_equity(state, D(5000), LATER, LIMITS)
    state, ev = resume(state, D(5000), LATER, "reviewed")
    assert state.halts == {} and state.kill_switch is not None  # kill switch stays
    assert state.peak_equity == state.day_start_equity == D(5000) and kinds(ev) == ["resume"]
    assert ev[0].details["cleared"] == "daily_loss,drawdown,manual"
    state, _ = update_state_on_equity(state, D(5000), LATER, LIMITS)
    assert state.halts == {}  # peak and day start were reset, so nothing re-fires at once
    state, ev = resume(state, D(5000), LATER, "all clear", clear_kill_switch=True)
    assert state.kill_switch is None and kinds(ev) == ["resume", "kill_switch"]


def test_rollover_keeps_probation_memory_inside_the_window_and_drops_the_rest():
    late = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    state, _ = update_state_on_close(ready_state(), "AAA/USD", D(-6), D(100), "signal", NOW,
                                     LIMITS)
    state, _ = update_state_on_close(state, "BBB/USD", D(-6), D(100), "signal", late, LIMITS)
    state, _ = update_state_on_equity(state, D(9000), late + timedelta(hours=13), LIMITS)
    assert set(state.symbols) == {"BBB/USD"}  # AAA's close is 25 h old, BBB's 13 h
    assert state.symbols["BBB/USD"].day_pnl == 0  # day figures reset...
    # ...not probation
    assert probation_level(state, "BBB/USD", late + timedelta(hours=13), LIMITS) == 1
