"""Benchmark: a Telegram command answers in <= 1 s against the loopback fake (issue 13).

Run: .venv/bin/python -m pytest -o addopts='' -s -p no:cacheprovider \
    trading_brain_tests/benchmarks/bench_telegram.py

The bot runs its real loop (``Bot.run``: long-poll getUpdates, handle, sendMessage) in a thread;
each round pushes one command to the fake and times until its first answer is there (wall
clock, the user's view), then until its charts (photos) are there too; the next command waits
for them, so a chart being drawn never slows the next command's answer. Asserted: the slowest
first answer <= 1 s. The charts' times (``/<name>+charts``) are printed, not asserted: they
follow the answer (``/pnl`` 1, ``/performance`` 1, ``/report`` 5 photos).

- ``test_a_command_answers_within_one_second``: every command of the table ``ROUNDS`` times
  over a seeded home (one snapshot, two positions);
- ``test_report_answers_within_one_second_on_a_simulated_home``: ``/report`` (the newest day)
  and ``/report week`` ``REPORT_ROUNDS`` times over a home ``simulate`` built with the 9 default
  symbols over ``TB_BENCH_TG_DAYS`` days (default 7; the build, ~1 min, is not timed).
Prints p50 / p99 / max per command and the load average (2 shared cores: wall times from a
busy machine are upper bounds).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from trading_brain.adapters.telegram.client import TelegramClient
from trading_brain.app.runtime import Runtime, build_runtime
from trading_brain.app.telegram import build_bot
from trading_brain.app.telegram_commands import COMMANDS
from trading_brain.settings import Home
from trading_brain_tests.defs.conftest import write_home
from trading_brain_tests.fakes.telegram_server import FakeTelegram
from trading_brain_tests.test_telegram_bot import NOW, OWNER, TOKEN, seed

ROUNDS = 10
REPORT_ROUNDS = 5
LIMIT_S = 1.0
PHOTOS = {"pnl": 1, "performance": 1, "report": 5, "report week": 5}


def _bench(rt: Runtime, commands: Sequence[str], rounds: int) -> dict[str, list[float]]:
    """{command: first-answer times, command+charts: times until its photos} (seconds)."""
    times: dict[str, list[float]] = {}
    with FakeTelegram(TOKEN) as tg:
        bot = build_bot(rt, TelegramClient(TOKEN, tg.api_url, timeout_s=5.0))
        time.sleep(3)  # build_bot imports matplotlib in the background (as `telegram` does)
        stop = threading.Event()
        loop = threading.Thread(target=bot.run, args=(stop,), daemon=True)
        loop.start()
        try:
            for _ in range(rounds):
                for name in commands:
                    sent, photos = len(tg.sent), len(tg.photos)
                    t0 = time.perf_counter()
                    tg.push(f"/{name}", user_id=OWNER)
                    deadline = t0 + 30
                    while time.perf_counter() < deadline and len(tg.sent) == sent:
                        time.sleep(0.001)
                    times.setdefault(name, []).append(time.perf_counter() - t0)
                    want = PHOTOS.get(name, 0)
                    while want and len(tg.photos) < photos + want and (
                            time.perf_counter() < deadline):
                        time.sleep(0.001)
                    if want:
                        times.setdefault(f"{name}+charts", []).append(time.perf_counter() - t0)
                        assert len(tg.photos) == photos + want, f"/{name}: photos missing"
        finally:
            stop.set()
            loop.join(30)
    return times


def _print(times: dict[str, list[float]]) -> float:
    """Print the table; return the slowest first answer."""
    worst = 0.0
    for name, ts in times.items():
        ts = sorted(ts)
        p99 = ts[min(len(ts) - 1, int(len(ts) * 0.99))]
        if not name.endswith("+charts"):
            worst = max(worst, ts[-1])
        print(f"/{name:<19} p50 {statistics.median(ts) * 1000:7.1f} ms  p99 "
              f"{p99 * 1000:7.1f} ms  max {ts[-1] * 1000:7.1f} ms")
    load = os.getloadavg()
    print(f"slowest answer {worst * 1000:.1f} ms (limit {LIMIT_S * 1000:.0f} ms); load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    return worst


def test_a_command_answers_within_one_second(tmp_path):
    home = write_home(tmp_path / "home", extra=(
        f"[telegram]\nallowed_user_ids = [{OWNER}]\nchat_id = {OWNER}\npoll_timeout_s = 20\n"))
    rt = build_runtime(home, now=NOW)
    seed(rt)
    names = [n for n in COMMANDS if n not in ("halt", "resume")] + ["help"]
    print()
    assert _print(_bench(rt, names, ROUNDS)) <= LIMIT_S


def test_report_answers_within_one_second_on_a_simulated_home(tmp_path):
    from trading_brain.app.simulate.loop import Plan, simulate

    days = float(os.environ.get("TB_BENCH_TG_DAYS", "7"))
    start = datetime(2024, 3, 1, tzinfo=UTC)
    home = Home(tmp_path / "home")
    t0 = time.perf_counter()
    out = simulate(home, Plan(market="sim", days=days, seed=42, start=start.isoformat()))
    cfg = home.config_file.read_text().replace("allowed_user_ids = []",
                                               f"allowed_user_ids = [{OWNER}]")
    home.config_file.write_text(cfg.replace("poll_timeout_s = 25", "poll_timeout_s = 20"))
    print(f"\nhome: simulate {days:g} days, {len(out['symbols'])} symbols, {out['trades']} "
          f"trades, built in {time.perf_counter() - t0:.0f} s")
    rt = build_runtime(home, now=start + timedelta(days=days, hours=6))
    assert _print(_bench(rt, ["report", "report week"], REPORT_ROUNDS)) <= LIMIT_S
