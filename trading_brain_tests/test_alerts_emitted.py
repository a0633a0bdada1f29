"""The alerts of what the system did reach a real channel exactly once (issue 13: a trade
opened and closed, a halt, a resume, a kill), and emitting them never breaks trading.

Real components: a traded paper home (one BTC position, ``traded_template``), the real
``executor_sensor`` and ``alert_sensor`` ticks, ``app.home.control`` (halt, resume, kill with
its executor ticks) and a loopback webhook receiver (``fakes.telegram_server.WebhookReceiver``).
"""

from __future__ import annotations

import shutil
from datetime import timedelta

import dagster as dg
import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.app import alerts as app_alerts
from trading_brain.app.alerts import cycle_alerts, emit
from trading_brain.app.home.control import halt, kill_all, resume
from trading_brain.app.notify import LogNotifier
from trading_brain.app.runtime import build_runtime
from trading_brain.definitions import defs
from trading_brain.defs.alerts import alert_sensor
from trading_brain.domain.alerts import Alert
from trading_brain.settings import Home
from trading_brain_tests.defs.conftest import resource
from trading_brain_tests.defs.test_trading_checks import (  # noqa: F401 - fixture
    LATER,
    tick,
    traded_template,
)
from trading_brain_tests.fakes.telegram_server import WebhookReceiver

NOTIFY = """
[notify]
channels = ["webhook"]
webhook_url = "{url}"
digest_threshold = 50
routing = {{ trade_opened = ["webhook"], trade_closed = ["webhook"], stale_data = ["log"], \
check_failed = ["log"], run_failed = ["log"] }}
"""


def notified_home(template: Home, root, url: str) -> Home:
    shutil.copytree(template.root, root)
    home = Home(root)
    with home.config_file.open("a") as f:
        f.write(NOTIFY.format(url=url))
    return home


def deliver_now(home: Home, now, instance) -> str:
    """One real alert-sensor tick: sends what is pending to the remote channels."""
    with dg.build_sensor_context(instance=instance, definitions=defs,
                                 resources={"tb": resource(home, now)}) as ctx:
        return alert_sensor(ctx).skip_message or ""


def kinds(hook: WebhookReceiver) -> list[str]:
    """What each received message reported (by its text)."""
    words = {"] opened ": "trade_opened", "] closed ": "trade_closed", "HALTED": "risk_halt",
             "KILL SWITCH": "kill", "resumed": "risk_resume"}
    return sorted(next((k for w, k in words.items() if w in b["text"]), b["text"])
                  for b in hook.received)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def test_each_trade_halt_resume_and_kill_reaches_the_webhook_once(
        traded_template, tmp_path, instance):  # noqa: F811
    with WebhookReceiver("ok") as hook:
        home = notified_home(traded_template, tmp_path / "home", hook.url)
        t = LATER + timedelta(minutes=1)
        deliver_now(home, t, instance)
        assert kinds(hook) == ["trade_opened"]  # recorded by the template's executor tick
        assert "BTC/USD" in hook.received[0]["text"]

        halt(build_runtime(home, now=t), ["active"], "news at noon")
        for i in range(2):  # the standing halt seen by two more ticks: still one message
            tick(home, t + timedelta(seconds=15 * (i + 1)), instance)
            deliver_now(home, t + timedelta(minutes=1 + i), instance)
        assert kinds(hook) == ["risk_halt", "trade_opened"]
        assert "news at noon" in hook.received[-1]["text"]

        t2 = t + timedelta(minutes=5)
        resume(build_runtime(home, now=t2), ["active"], "all clear")
        out = kill_all(build_runtime(home, now=t2 + timedelta(seconds=1)), ["active"],
                       "test kill", attempts=5, wait_s=60)
        assert out["flat"]
        for i in range(2):
            tick(home, t2 + timedelta(minutes=10 + i), instance)
            deliver_now(home, t2 + timedelta(minutes=12 + i), instance)
        assert kinds(hook) == ["kill", "risk_halt", "risk_resume", "trade_closed",
                               "trade_opened"]
        closed = next(b["text"] for b in hook.received if "] closed " in b["text"])
        assert "reason kill" in closed and "P&L" in closed


def test_a_failing_channel_neither_fails_the_tick_nor_loses_the_alert(
        traded_template, tmp_path, instance):  # noqa: F811
    with WebhookReceiver("error") as hook:  # HTTP 500 on every POST
        home = notified_home(traded_template, tmp_path / "home", hook.url)
        t = LATER + timedelta(minutes=1)
        halt(build_runtime(home, now=t), ["active"], "webhook down")
        res = tick(home, t + timedelta(seconds=15), instance)
        assert res.asset_events  # the executor tick ran and reported
        assert "sent" in deliver_now(home, t + timedelta(minutes=1), instance)
        assert hook.received == []
        hook.mode = "ok"  # back: the pending alerts go out once, after the retry backoff
        deliver_now(home, t + timedelta(minutes=10), instance)
        deliver_now(home, t + timedelta(minutes=20), instance)
        assert kinds(hook) == ["risk_halt", "trade_opened"]


def test_an_emission_failure_never_breaks_a_tick_a_halt_or_a_kill(
        traded_template, tmp_path, instance, monkeypatch, caplog):  # noqa: F811
    home = Home(tmp_path / "home")
    shutil.copytree(traded_template.root, home.root)

    def boom(*args: object, **kw: object) -> None:
        raise RuntimeError("notifications table gone")

    monkeypatch.setattr(app_alerts, "deliver", boom)
    t = LATER + timedelta(minutes=1)
    assert halt(build_runtime(home, now=t), ["active"], "x")["active"]["halted"]
    res = tick(home, t + timedelta(seconds=15), instance)  # standing halt alert: fails
    assert res.asset_events
    out = kill_all(build_runtime(home, now=t + timedelta(minutes=1)), ["active"], "k",
                   attempts=5, wait_s=60)
    assert out["flat"]  # closed by the kill's ticks although every alert failed
    assert "alerts not recorded" in caplog.text
    store = Store.open(home.warehouse)
    assert store.load_risk_state("active").kill_switch is not None


def test_emit_records_each_key_once(tmp_path):
    store = Store.open(tmp_path / "w.duckdb")
    a = Alert("trade_opened:p1", "INFO", "trade_opened", "BTC/USD", "opened")
    now = LATER
    assert emit(store, LogNotifier(), [a, a], now) is None
    assert emit(store, LogNotifier(), [a], now) is None
    assert store.execute("SELECT count(*) FROM notifications")[0][0] == 1


def test_cycle_alerts_summary_created_and_cancelled():
    base = {"cycle_id": "c1", "status": "done", "gates": [], "error": None}
    created = cycle_alerts({**base, "decision": {"action": "create_candidate", "reasoning": "r"},
                            "candidate": "ema_cross@3",
                            "outcome": "candidate (waiting for a shadow paper-test slot)"})
    assert [a.kind for a in created] == ["evolution_cycle", "candidate_created"]
    assert created[1].key == "candidate:ema_cross@3"
    cancelled = cycle_alerts({**base, "decision": {"action": "cancel_candidate"},
                              "candidate": "ema_cross@3", "outcome": "cancelled"})
    assert cancelled[1].key == "cancel:ema_cross@3"  # app.promotion.cancel's key: once
    rejected = cycle_alerts({**base, "status": "rejected", "decision": None,
                             "error": "advisor output rejected", "candidate": None,
                             "gates": [{"gate": "sandbox", "status": "fail"}]})
    assert [a.kind for a in rejected] == ["evolution_cycle"] and rejected[0].level == "WARN"
    assert "failed gates: sandbox" in rejected[0].text


def test_a_finished_cycle_is_recorded_once_a_running_one_not_at_all(tmp_path):
    from trading_brain.app.alerts import notify_cycle
    from trading_brain.app.evolve.cycle import CycleResult
    from trading_brain_tests.defs.conftest import write_home

    home = write_home(tmp_path / "home")
    Store.open(home.warehouse)
    rt = build_runtime(home, now=LATER)
    decision = {"action": "create_candidate", "reasoning": "tighter stops"}
    running = CycleResult("c1", "running", decision)
    assert notify_cycle(rt, running) is running
    assert rt.store.execute("SELECT count(*) FROM notifications")[0][0] == 0
    done = CycleResult("c1", "done", decision, "ema_cross@3", [],
                       "candidate (waiting for a shadow paper-test slot)")
    for _ in range(2):  # the stored result of a re-run: no second alert
        notify_cycle(rt, done)
    rows = rt.store.execute("SELECT kind, subject FROM notifications ORDER BY kind")
    assert rows == [("candidate_created", "ema_cross@3"), ("evolution_cycle", "c1")]


def test_trades_of_shadow_slots_are_not_messages_halts_are():
    from decimal import Decimal

    from trading_brain.domain.records import PositionRecord
    from trading_brain.domain.risk import Halt, RiskState
    from trading_brain.engine.executor import alerts as ex

    pos = PositionRecord("p1", "BTC/USD", "shadow1", "ema_cross", 2, "swing", "open",
                         Decimal("0.0123"), Decimal("1234.5"), Decimal("1"), LATER, LATER)
    assert ex.trade_opened("shadow1", pos, {}) == []
    (opened,) = ex.trade_opened("active", pos, {})
    assert opened.key == "trade_opened:p1" and "0.0123 at 100,365.85" in opened.text
    state = RiskState(halts={"drawdown": Halt(reason="drawdown 21%", since=LATER)})
    (halt_alert,) = ex.risk_alerts("shadow1", state, [])
    assert halt_alert.key == f"risk_halt:shadow1:drawdown:{LATER.isoformat()}"
