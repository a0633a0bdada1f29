"""The Telegram bot against the loopback fake Bot API: every command, strangers, faults."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from trading_brain.adapters.telegram.client import TelegramClient, split_message
from trading_brain.app.runtime import build_runtime
from trading_brain.app.telegram import REFUSAL, Bot, build_bot, help_text
from trading_brain.app.telegram_commands import COMMANDS, Reply
from trading_brain.domain.records import PositionRecord, Snapshot
from trading_brain.errors import OperationalError, TemporaryError
from trading_brain_tests.defs.conftest import write_home
from trading_brain_tests.fakes.telegram_server import FakeTelegram

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
OWNER, STRANGER = 42, 666
TOKEN = "123:SECRET-TOKEN"


@pytest.fixture
def tg():
    with FakeTelegram(TOKEN) as fake:
        yield fake


@pytest.fixture
def rt(tmp_path):
    home = write_home(tmp_path / "home", extra=(
        f"[telegram]\nallowed_user_ids = [{OWNER}]\nchat_id = {OWNER}\n"))
    return build_runtime(home, now=NOW)


def make_bot(rt, tg, timeout_s: float = 2.0) -> Bot:
    return build_bot(rt, TelegramClient(TOKEN, tg.api_url, timeout_s=timeout_s))


def ask(bot: Bot, tg: FakeTelegram, text: str, user: int = OWNER) -> list[str]:
    before = len(tg.sent)
    tg.push(text, user_id=user)
    bot.poll_once(timeout_s=0)
    bot.wait_jobs()
    return [t for _, t in tg.sent[before:]]


def seed(rt) -> None:
    store = rt.store
    store.ensure_deposit("active", Decimal(10000), NOW)
    store.write_snapshot(Snapshot(
        ts=NOW, slot="active", equity=Decimal("10250.5"), cash=Decimal("9000"),
        positions_value=Decimal("1250.5"), exposure=0.12, peak_equity=Decimal("10300"),
        drawdown=0.005, daily_pnl=Decimal("50"), fees_paid=Decimal("3.1"),
        realized_pnl=Decimal("200"), unrealized_pnl=Decimal("50.5")))
    store.save_position(PositionRecord(
        position_id="p1", symbol="BTC/USD", slot="active", strategy_id="ema_cross", version=1,
        intent_type="market", status="open", quantity=Decimal("0.02"),
        cost_basis=Decimal("1200"), entry_fee=Decimal("3.1"), entry_time=NOW, updated_at=NOW,
        stop_loss_price=Decimal("57000")))
    store.save_position(PositionRecord(
        position_id="p0", symbol="ETH/USD", slot="active", strategy_id="ema_cross", version=1,
        intent_type="market", status="closed", quantity=Decimal("0"),
        cost_basis=Decimal("0"), entry_fee=Decimal("1"), entry_time=NOW, updated_at=NOW,
        exit_fee=Decimal("1"), exit_time=NOW, exit_reason="signal",
        realized_pnl=Decimal("200")))


def test_every_command_answers(rt, tg):
    seed(rt)
    bot = make_bot(rt, tg)
    expect = {"status": "active: trading, equity 10,250.50, 1 open position",
              "health": "alerts in the last 24 h: none",
              "positions": "BTC/USD: 0.02 @ 60,000.00",
              "trades": "pnl 200.00 (signal)", "pnl": "equity 10,250.50 (start 10,000.00, 2.50%)",
              "risk": "active: no halt", "performance": "1 closed trade(s), 1 won (100%)",
              "strategy": "no active strategy version",
              "candidates": "not available yet", "scorecard": "not available yet",
              "thoughts": "not available yet",
              "report": "Daily report 2026-11-20 (slot active)\nequity 10,250.50 (+2.50%"}
    for name in COMMANDS:
        if name in ("halt", "resume"):
            continue
        got = "\n".join(ask(bot, tg, f"/{name}"))
        assert expect[name] in got, (name, got)
    assert tg.photos and tg.photos[-1][1].startswith(b"\x89PNG")  # /pnl's equity chart
    assert ask(bot, tg, "/help") == [help_text()]
    assert "/kill" in help_text() and all(f"/{n}" in help_text() for n in COMMANDS)
    assert ask(bot, tg, "/nope") == ["Unknown command /nope; send /help."]


def test_halt_and_resume_change_the_risk_state(rt, tg):
    bot = make_bot(rt, tg)
    assert "Halted" in ask(bot, tg, "/halt looking into it")[0]
    st = rt.store.load_risk_state("active")
    assert st.halted and st.halts["manual"].reason == "looking into it"
    assert "HALTED" in ask(bot, tg, "/status")[0]
    assert "Resumed" in ask(bot, tg, "/resume")[0]
    assert not rt.store.load_risk_state("active").halted


def test_kill_asks_for_confirmation(rt, tg):
    clock = [1000.0]
    bot = make_bot(rt, tg)
    bot._monotonic = lambda: clock[0]
    assert "No kill pending" in ask(bot, tg, "/kill CONFIRM")[0]
    assert rt.store.load_risk_state("active") is None or \
        rt.store.load_risk_state("active").kill_switch is None
    assert "/kill CONFIRM within 60 s" in ask(bot, tg, "/kill")[0]
    clock[0] += 61  # too late
    assert "expired" in ask(bot, tg, "/kill CONFIRM")[0]
    ask(bot, tg, "/kill")
    clock[0] += 30
    replies = ask(bot, tg, "/kill CONFIRM")
    assert replies[0].startswith("Kill switch on") and replies[1].startswith("Kill done: flat")
    assert rt.store.load_risk_state("active").kill_switch is not None
    assert "No kill pending" in ask(bot, tg, "/kill CONFIRM")[0]  # used once


def test_stranger_gets_no_data_and_is_logged(rt, tg, caplog):
    seed(rt)
    bot = make_bot(rt, tg)
    with caplog.at_level(logging.WARNING, logger="trading_brain.telegram"):
        assert ask(bot, tg, "/positions", user=STRANGER) == [REFUSAL]
        assert ask(bot, tg, "/halt", user=STRANGER) == []  # one refusal, then silence
    assert not rt.store.load_risk_state("active") or not rt.store.load_risk_state(
        "active").halted
    assert sum("user id 666" in r.getMessage() for r in caplog.records) == 2


def test_empty_allowed_list_means_nobody(tmp_path, tg):
    home = write_home(tmp_path / "h2", extra="[telegram]\nchat_id = 42\n")
    bot = make_bot(build_runtime(home, now=NOW), tg)
    assert ask(bot, tg, "/status") == [REFUSAL]


def test_offset_acknowledges_and_survives_a_restart(rt, tg):
    bot = make_bot(rt, tg)
    ask(bot, tg, "/help")
    again = make_bot(rt, tg)  # a new process reads the offset from the warehouse
    assert again.offset == bot.offset
    assert again.poll_once(timeout_s=0) == 0


def test_old_commands_are_ignored(rt, tg):
    bot = make_bot(rt, tg)
    tg.push("/halt", user_id=OWNER, date=time.time() - 3600)
    bot.poll_once(timeout_s=0)
    assert tg.sent == [] and rt.store.load_risk_state("active") is None


def test_long_reply_is_split_at_line_ends(rt, tg):
    text = "\n".join(f"line {i:05d} " + "x" * 50 for i in range(200))  # ~12k chars
    parts = split_message(text)
    assert len(parts) == 4 and all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == text and all(p.startswith("line ") for p in parts)
    assert split_message("y" * 5000) == ["y" * 4096, "y" * 904]
    bot = make_bot(rt, tg)
    bot._send(OWNER, [Reply(text)])
    assert [t for _, t in tg.sent] == parts


def test_network_failure_is_a_temporary_error_without_the_token(rt):
    client = TelegramClient(TOKEN, "http://127.0.0.1:9", timeout_s=1.0)  # nothing listens
    with pytest.raises(TemporaryError) as e:
        client.get_updates(None, 0)
    assert "SECRET" not in str(e.value)


def test_server_faults(rt, tg):
    client = TelegramClient(TOKEN, tg.api_url, timeout_s=0.5)
    tg.add_fault("getUpdates", status=500)
    with pytest.raises(TemporaryError, match="HTTP 500"):
        client.get_updates(None, 0)
    tg.add_fault("getUpdates", status=200, body=b"<html>garbage")
    with pytest.raises(TemporaryError, match="not the API's JSON"):
        client.get_updates(None, 0)
    tg.add_fault("sendMessage", status=429, retry_after=7)
    with pytest.raises(TemporaryError) as rl:
        client.send_message(OWNER, "x")
    assert getattr(rl.value, "retry_after", None) == 7
    tg.add_fault("getUpdates", delay_s=2.0, status=200)  # slow: longer than the timeout
    with pytest.raises(TemporaryError, match="timed out"):
        client.get_updates(None, 0)
    with pytest.raises(OperationalError, match="401"):
        TelegramClient("999:WRONG", tg.api_url).get_updates(None, 0)


def test_run_backs_off_on_failures_and_keeps_answering(rt, tg):
    import threading

    bot = make_bot(rt, tg, timeout_s=0.5)
    tg.add_fault("getUpdates", status=500, times=2)
    tg.push("/help", user_id=OWNER)
    stop = threading.Event()
    t = threading.Thread(target=bot.run, args=(stop,), daemon=True)
    t.start()
    try:
        assert tg.wait_sent(1, timeout_s=15) and tg.sent[0][1] == help_text()
    finally:
        stop.set()
        t.join(10)


def test_a_failing_handler_answers_one_line(rt, tg, monkeypatch):
    bot = make_bot(rt, tg)
    monkeypatch.setitem(COMMANDS, "status", ("x", lambda ctx, args: 1 / 0))
    assert ask(bot, tg, "/status") == ["error: /status failed (see the log)"]
    assert ask(bot, tg, "/help")  # still answering


def test_cli_without_a_token_is_one_line(tmp_path, rt):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    res = subprocess.run([sys.executable, "-m", "trading_brain.cli", "--home",
                          str(rt.home.root), "telegram", "--once"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip() == ("error: TELEGRAM_BOT_TOKEN is not set (environment or .env "
                                  "in the home)")


def test_cli_once_answers_pending_commands(rt, tg):
    import os
    import subprocess
    import sys

    (rt.home.root / "trading_brain.toml").write_text(
        (rt.home.root / "trading_brain.toml").read_text().replace(
            "[telegram]\n", f'[telegram]\napi_url = "{tg.api_url}"\n'))
    tg.push("/help", user_id=OWNER)
    res = subprocess.run([sys.executable, "-m", "trading_brain.cli", "--home",
                          str(rt.home.root), "telegram", "--once"],
                         env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN},
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "1 update(s) handled" in res.stdout and tg.sent[0][1] == help_text()


def test_threads_sharing_one_warehouse_never_conflict(rt):
    """The cause of the flaky /kill test: the kill job's thread and the poll loop's thread open
    and close connections to one file at once; DuckDB tore the file's instance down in one
    thread while the other attached it ("Unique file handle conflict … already attached").
    Opening and closing are serialised per file in ``adapters.duckdb.connection``."""
    import threading

    from trading_brain.adapters.duckdb.connection import connect, run

    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(300):
                if i % 50 == 0:
                    rt.store.set_meta(f"t{k}", str(i))
                with connect(rt.store.path) as con:  # what every Store call does
                    run(con, "SELECT 1")
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
