"""/report, /pnl and /performance charts through the bot against the loopback fake Bot API.

One home per module: ``simulate`` over 1 day of 3 symbols (sim market, seed 7; ~5 s on a quiet
machine), then the real bot (``build_bot``, ``TelegramClient``) against a fresh fake per test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.telegram.client import TelegramClient
from trading_brain.app.reports.figures import Figures, SymbolFigures
from trading_brain.app.reports.service import report
from trading_brain.app.runtime import Runtime, build_runtime
from trading_brain.app.simulate.loop import Plan, simulate
from trading_brain.app.telegram import REFUSAL, Bot, build_bot, help_text
from trading_brain.app.telegram_commands import Reply
from trading_brain.app.telegram_report import headline
from trading_brain.settings import Home
from trading_brain_tests.fakes.telegram_server import FakeTelegram
from trading_brain_tests.test_telegram_bot import OWNER, STRANGER, TOKEN, ask

NOW = datetime(2026, 10, 2, 6, 0, tzinfo=UTC)
DAY = date(2026, 10, 1)
PNG = b"\x89PNG\r\n\x1a\n"
CHARTS = ["Equity and drawdown", "P&L per symbol", "Fees against gross profit", "Exposure",
          "Trades on price"]


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    home = Home(tmp_path_factory.mktemp("tg_report") / "home")
    simulate(home, Plan(market="sim", days=1, seed=7, start="2026-10-01T00:00:00+00:00",
                        symbols=("BTC/USD", "ETH/USD", "SOL/USD")))
    cfg = home.config_file.read_text()
    assert "allowed_user_ids = []" in cfg
    home.config_file.write_text(cfg.replace("allowed_user_ids = []",
                                            f"allowed_user_ids = [{OWNER}]"))
    return build_runtime(home, now=NOW)


@pytest.fixture
def tg():
    with FakeTelegram(TOKEN) as fake:
        yield fake


def bot_for(rt: Runtime, tg: FakeTelegram, timeout_s: float = 2.0) -> Bot:
    bot = build_bot(rt, TelegramClient(TOKEN, tg.api_url, timeout_s=timeout_s))
    bot.offset = tg.state.next_update_id  # a fresh fake numbers its updates from 1000 again
    return bot


def methods(tg: FakeTelegram) -> list[str]:
    return [m for m, _ in tg.state.requests if m != "getUpdates"]


def test_report_answers_figures_then_the_charts_as_photos(rt, tg):
    bot = bot_for(rt, tg)
    texts = ask(bot, tg, "/report")
    expected = report(rt.home, Store.open(rt.home.warehouse), "daily", DAY, NOW).figures
    assert len(texts) == 1, texts
    lines = texts[0].splitlines()
    assert lines[0] == "Daily report 2026-10-01 (slot active)"  # the newest day with data
    assert expected.final_equity is not None and expected.return_pct is not None
    assert lines[1].startswith(f"equity {expected.final_equity:,.2f} "
                               f"({expected.return_pct:+.2f}%")
    assert f"trades: {expected.trades_opened} opened, {expected.trades_closed} closed" \
        in texts[0] and expected.trades_opened > 0
    assert [c.split("\n")[0] for _, _, c in tg.photos] == CHARTS
    assert all(chat == OWNER and png.startswith(PNG) for chat, png, _ in tg.photos)
    html = rt.home.var / "reports" / "daily-2026-10-01.html"
    assert tg.photos[0][2].endswith(f"full report: {html}") and html.exists()
    assert methods(tg) == ["sendMessage"] + ["sendPhoto"] * len(CHARTS)  # text first


def test_report_of_a_week_and_of_a_date(rt, tg):
    bot = bot_for(rt, tg)
    week = ask(bot, tg, "/report 2026-10-01 week")
    assert week[0].startswith("Weekly report 2026-09-25 to 2026-10-01 (slot active)\n")
    assert len(tg.photos) == len(CHARTS)
    assert ask(bot, tg, "/report weekly 2026-10-01")[0] == week[0]  # any order


def test_a_date_without_data_is_one_line(rt, tg):
    bot = bot_for(rt, tg)
    assert ask(bot, tg, "/report 2025-01-01") == ["No trading data for 2025-01-01."]
    assert ask(bot, tg, "/report 2025-01-01 week") == [
        "No trading data for the week ending 2025-01-01."]
    assert tg.photos == []
    assert not list((rt.home.var / "reports").glob("*2025-01-01*"))


def test_bad_arguments_are_one_error_line(rt, tg):
    bot = bot_for(rt, tg)
    assert ask(bot, tg, "/report yesterday") == [
        "error: /report [YYYY-MM-DD] [week]: not a date YYYY-MM-DD: 'yesterday'"]
    assert ask(bot, tg, "/report 2026-10-01 2026-10-02") == [
        "error: /report [YYYY-MM-DD] [week]: one date at most, got '2026-10-02'"]
    assert tg.photos == []


def test_a_stranger_gets_no_report(rt, tg):
    bot = bot_for(rt, tg)
    assert ask(bot, tg, "/report", user=STRANGER) == [REFUSAL]
    assert ask(bot, tg, "/report 2026-10-01 week", user=STRANGER) == []
    assert tg.photos == [] and methods(tg) == ["sendMessage"]


def test_send_photo_failing_keeps_the_text_and_the_bot(rt, tg):
    bot = bot_for(rt, tg)
    tg.add_fault("sendPhoto", status=500)
    texts = ask(bot, tg, "/report")
    assert texts[0].startswith("Daily report 2026-10-01 ")
    assert texts[1].startswith("(charts not sent: telegram sendPhoto: HTTP 500")
    assert tg.photos == []  # the rest of that answer's photos are dropped, not retried
    assert methods(tg) == ["sendMessage", "sendPhoto", "sendMessage"]
    assert ask(bot, tg, "/help") == [help_text()]  # still answering
    tg.add_fault("sendPhoto", delay_s=1.5, status=200)  # slow: longer than the client's timeout
    slow = bot_for(rt, tg, timeout_s=0.5)
    texts = ask(slow, tg, "/report")
    assert texts[0].startswith("Daily report") and "timed out" in texts[1]
    assert len(ask(slow, tg, "/report")) == 1  # recovered: every chart of the next one came
    captions = [c.split("\n")[0] for _, _, c in tg.photos]  # (+ the slow one, stored late)
    assert set(captions) == set(CHARTS) and len(captions) in (len(CHARTS), len(CHARTS) + 1)


def test_pnl_and_performance_send_their_chart_after_the_text(rt, tg):
    bot = bot_for(rt, tg)
    assert ask(bot, tg, "/pnl")[0].startswith("equity ")
    assert ask(bot, tg, "/performance")[0].split(" ", 2)[1:2] == ["closed"]
    assert [c for _, _, c in tg.photos] == [
        "equity (slot active)", "net P&L per symbol (closed trades, after fees)"]
    assert all(png.startswith(PNG) for _, png, _ in tg.photos)
    assert methods(tg) == ["sendMessage", "sendPhoto"] * 2


def test_a_long_report_text_is_split_at_the_limit(rt, tg):
    per = tuple(SymbolFigures(f"COIN{i:03d}/USD", 3, 12.5, 1.25, 11.25) for i in range(150))
    figs = Figures(10_000.0, 10_100.0, 1.0, 0.01, 450, 450, 300, 1875.0, 187.5, 1687.5, 0.3,
                   0.9, per)
    text = headline("Weekly report 2026-09-25 to 2026-10-01", figs)
    assert len(text) > 4096
    bot_for(rt, tg)._send(OWNER, [Reply(text)])
    parts = [t for _, t in tg.sent]
    assert len(parts) == 2 and all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == text
