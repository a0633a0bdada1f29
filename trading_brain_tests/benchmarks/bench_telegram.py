"""Benchmark: a Telegram command answers in <= 1 s against the loopback fake (issue 13).

Run: .venv/bin/python -m pytest -o addopts='' -s -p no:cacheprovider \
    trading_brain_tests/benchmarks/bench_telegram.py

The bot runs its real loop (``Bot.run``: long-poll getUpdates, handle, sendMessage) in a thread
over a seeded home; each round pushes one command to the fake and times until its answer is
there (wall clock, the user's view). Every command of the table is asked ``ROUNDS`` times;
asserted: the slowest first answer <= 1 s. ``/pnl`` answers with text, then renders the equity
chart and sends it as a photo: the photo's time is printed too (``/pnl+chart``), not asserted.
Prints p50 / p99 / max per command.
"""

from __future__ import annotations

import statistics
import threading
import time

from trading_brain.adapters.telegram.client import TelegramClient
from trading_brain.app.runtime import build_runtime
from trading_brain.app.telegram import build_bot
from trading_brain.app.telegram_commands import COMMANDS
from trading_brain_tests.defs.conftest import write_home
from trading_brain_tests.fakes.telegram_server import FakeTelegram
from trading_brain_tests.test_telegram_bot import NOW, OWNER, TOKEN, seed

ROUNDS = 10
LIMIT_S = 1.0


def test_a_command_answers_within_one_second(tmp_path):
    home = write_home(tmp_path / "home", extra=(
        f"[telegram]\nallowed_user_ids = [{OWNER}]\nchat_id = {OWNER}\npoll_timeout_s = 20\n"))
    rt = build_runtime(home, now=NOW)
    seed(rt)
    names = [n for n in COMMANDS if n not in ("halt", "resume")] + ["help"]
    with FakeTelegram(TOKEN) as tg:
        bot = build_bot(rt, TelegramClient(TOKEN, tg.api_url, timeout_s=5.0))
        stop = threading.Event()
        loop = threading.Thread(target=bot.run, args=(stop,), daemon=True)
        loop.start()
        times: dict[str, list[float]] = {n: [] for n in [*names, "pnl+chart"]}
        try:
            for _ in range(ROUNDS):
                for name in names:
                    sent, photos = len(tg.sent), len(tg.photos)
                    t0 = time.perf_counter()
                    tg.push(f"/{name}", user_id=OWNER)
                    deadline = t0 + 10
                    while time.perf_counter() < deadline and len(tg.sent) == sent:
                        time.sleep(0.001)
                    times[name].append(time.perf_counter() - t0)
                    while name == "pnl" and len(tg.photos) == photos and (
                            time.perf_counter() < deadline):
                        time.sleep(0.001)
                    if name == "pnl":
                        times["pnl+chart"].append(time.perf_counter() - t0)
        finally:
            stop.set()
            loop.join(30)
    worst = 0.0
    for name, ts in times.items():
        ts.sort()
        p99 = ts[min(len(ts) - 1, int(len(ts) * 0.99))]
        worst = max(worst, ts[-1]) if name != "pnl+chart" else worst
        print(f"/{name:<12} p50 {statistics.median(ts) * 1000:6.1f} ms  p99 "
              f"{p99 * 1000:6.1f} ms  max {ts[-1] * 1000:6.1f} ms")
    print(f"slowest answer {worst * 1000:.1f} ms (limit {LIMIT_S * 1000:.0f} ms)")
    assert worst <= LIMIT_S
