"""`trading-brain halt | resume | kill` and the halts in `status --json` on real homes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from trading_brain.adapters.duckdb import Store
from trading_brain.app.home.control import kill_all
from trading_brain.app.runtime import build_runtime
from trading_brain.cli import cli
from trading_brain.engine.scan import scan_bar_time
from trading_brain_tests.defs.conftest import NOW, write_home
from trading_brain_tests.defs.test_trading_checks import (  # noqa: F401 - fixtures
    LATER,
    enter_intent,
    traded,
    traded_template,
)

EXE = Path(sys.executable).with_name("trading-brain")


def invoke(home, *args: str) -> tuple[int, dict | str]:
    res = CliRunner().invoke(cli, ["--home", str(home.root), *args])
    out = res.output
    return res.exit_code, (json.loads(out) if "--json" in args and out.strip() else out)


def run_exe(home_root, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRADING_BRAIN_HOME"}
    return subprocess.run([str(EXE), "--home", str(home_root), *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.fixture
def home(tmp_path):
    h = write_home(tmp_path / "home")
    Store.open(h.warehouse)  # initialised: config + migrated warehouse
    return h


def test_halt_shows_in_status_and_resume_clears(home):
    code, out = invoke(home, "halt", "--reason", "news at noon", "--json")
    assert code == 0 and out["slots"]["active"] == {"changed": True, "halted": True,
                                                     "kill_switch": False}
    code, status = invoke(home, "status", "--json")
    assert code == 0 and "candles" in status and "mode" in status  # existing keys kept
    active = status["halts"]["active"]
    assert active["halted"] and active["halts"]["manual"]["reason"] == "news at noon"
    assert active["kill_switch"] is None and active["open_positions"] == 0

    code, out = invoke(home, "halt", "--json")  # halting twice changes nothing
    assert out["slots"]["active"]["changed"] is False
    code, out = invoke(home, "resume", "--slot", "active", "--json")
    assert code == 0 and out["slots"]["active"]["halted"] is False
    assert invoke(home, "status", "--json")[1]["halts"]["active"]["halted"] is False
    kinds = [r[0] for r in Store.open(home.warehouse).execute(
        "SELECT kind FROM risk_events ORDER BY ts, kind")]
    assert kinds.count("halt") == 1 and kinds.count("resume") == 1


def test_kill_on_a_flat_home_sets_the_kill_switch(home):
    code, out = invoke(home, "kill", "--json")
    assert code == 0 and out["flat"] and out["ticks"] == 0
    state = Store.open(home.warehouse).load_risk_state("active")
    assert state.kill_switch is not None and state.halted
    code, text = invoke(home, "status")
    assert "HALTED (kill switch" in text
    invoke(home, "resume")
    assert Store.open(home.warehouse).load_risk_state("active").kill_switch is None


def test_cli_errors_are_one_line(home, tmp_path):
    for args, text in [(("halt", "--slot", "shadow9"), "unknown slot 'shadow9'"),
                       (("kill",), "not a Trading Brain home")]:
        root = home.root if "--slot" in args else tmp_path / "nowhere"
        proc = run_exe(root, *args)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], proc.stderr


def test_kill_closes_positions_verifies_fills_and_stays_halted(traded):  # noqa: F811
    home = traded
    store = Store.open(home.warehouse)
    [pos] = store.positions("active")
    pending = enter_intent(store, "ETH/USD", scan_bar_time(NOW), "s-pending")
    rt = build_runtime(home, now=LATER + timedelta(minutes=1))
    out = kill_all(rt, ["active"], "test kill", attempts=10, wait_s=60)
    r = out["slots"]["active"]
    assert out["flat"] and 1 <= out["ticks"] <= 10
    assert r["closed"] == [pos.position_id] and r["open_positions"] == 0
    assert r["cancelled_intents"] == 1 and len(r["exit_intents"]) == 1
    assert store.intent_by_id(pending.intent_id).status == "cancelled"
    assert not store.orders("active", intent_ids=[pending.intent_id])  # never sent
    sells = store.execute("SELECT count(*) FROM fills WHERE side = 'sell'")[0][0]
    assert sells == 1
    [closed] = store.positions("active", status="closed")
    assert closed.position_id == pos.position_id and closed.exit_time is not None
    assert closed.exit_reason == "kill"  # not "signal": closed by the kill switch's exit order
    state = store.load_risk_state("active")
    assert state.kill_switch.reason == "test kill" and state.halted

    again = kill_all(rt, ["active"], "test kill", attempts=3, wait_s=60)  # idempotent
    assert again["flat"] and again["ticks"] == 0 and again["slots"]["active"]["exit_intents"] == []
    assert store.execute("SELECT count(*) FROM fills WHERE side = 'sell'")[0][0] == 1


def test_kill_json_lists_the_stops_it_cancelled_at_the_venue(tmp_path, fk, monkeypatch) -> None:
    """Issue 15: a live kill cancelled the positions' stop-losses at the venue (confirmed
    before each exit sell) but reported ``"cancelled_orders": []``."""
    from trading_brain.domain.orders import derive_client_order_id
    from trading_brain_tests.fakes.kraken_live import LiveWorld, write_live_home

    home = write_live_home(tmp_path / "live", fk, monkeypatch)
    w = LiveWorld(home.warehouse, fk)  # the bot's first ticks on this home's warehouse
    w.store.upsert_asset_pairs("kraken", list(w.market.asset_pairs(["BTC/USD"]).values()))
    iid = w.intent("enter", "0.01", sl=0.02, tp=0.03)
    w.tick()
    w.tick()
    stop = derive_client_order_id(derive_client_order_id(iid), "sl")
    assert w.store.order(stop).state == "open"
    code, out = invoke(home, "kill", "--json", "--wait", "0", "--attempts", "5")
    assert code == 0 and out["flat"], out
    r = out["slots"]["active"]
    assert r["cancelled_orders"] == [stop] and r["closed"] == [iid]
    assert Store.open(home.warehouse).order(stop).state == "canceled"
    (venue_stop,) = w.venue_orders(stop)
    assert venue_stop.status == "canceled"


def test_status_text_formats_money_quantities_and_percents_json_stays_exact(traded):  # noqa: F811
    """Issue 13: `status` printed ``equity=10000.000000000000000000``."""
    import re
    from decimal import Decimal

    code, text = invoke(traded, "status")
    assert code == 0, text
    line = next(s for s in text.splitlines() if s.startswith("slot active:"))
    assert re.search(r"equity=\d{1,3}(,\d{3})+\.\d{2}  peak=\d{1,3}(,\d{3})+\.\d{2}  "
                     r"drawdown=\d+\.\d{2}%  open positions=1$", line), line
    pairs = Store.open(traded.warehouse).read_asset_pairs()
    pos = next(s for s in text.splitlines() if s.strip().startswith("BTC/USD") and " at " in s)
    qty = pos.split()[1]
    assert len(qty.split(".")[1]) == pairs["BTC/USD"].lot_decimals, pos
    assert re.search(r" at \d{1,3}(,\d{3})*\.\d{2}$", pos), pos
    code, data = invoke(traded, "status", "--json")
    eq = data["halts"]["active"]["equity"]
    assert Decimal(eq) > 0 and "," not in eq and len(eq.split(".")[1]) > 2  # exact string
    (p,) = data["positions"]["active"]
    assert p["symbol"] == "BTC/USD" and Decimal(p["quantity"]) > 0
