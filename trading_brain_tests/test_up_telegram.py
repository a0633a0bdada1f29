"""`up` runs the Telegram bot beside Dagster (``dg dev``), keeps DEBUG off the terminal and in
``var/logs/up.log``, and stops everything on a terminal's Ctrl-C without leaving a stale
``var/up.lock`` (issue 13). Real processes: ``up``, ``dg dev`` and ``trading-brain telegram``
against the loopback fake Telegram Bot API (fakes/telegram_server.py).

The end-to-end test starts a real Dagster (about 60-120 s on 2 busy cores: the webserver's
imports dominate), so it is marked slow like the other `up` tests."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from trading_brain.adapters.service.logpipe import LogPipe, level_of
from trading_brain.adapters.service.procs import tagged_pids
from trading_brain.app.serve import telegram_wanted
from trading_brain.settings import Home
from trading_brain_tests.fakes.telegram_server import FakeTelegram
from trading_brain_tests.test_cli import EXE, small_home, tb
from trading_brain_tests.test_service import _free_port, _home_pids, _wait_gone

TOKEN = "123:UPTEST"
DEBUG_LINE = ("\x1b[32m2026-12-07 21:17:48 +0000\x1b[0m - dagster.daemon - "
              "\x1b[34mDEBUG\x1b[0m - tick")


def test_level_of_reads_dagster_lines_and_keeps_it_for_continuations():
    assert level_of(DEBUG_LINE, 20) == 10
    assert level_of("2026-12-07 - dagster - WARNING - x", 10) == 30
    assert level_of("Traceback (most recent call last):", 40) == 40  # continuation keeps it
    assert level_of("plain print", 20) == 20


def test_the_pipe_sends_info_to_the_terminal_and_everything_to_the_file(tmp_path):
    terminal = io.StringIO()
    pipe = LogPipe(tmp_path / "logs", terminal)
    r, w = os.pipe()
    with os.fdopen(w, "wb") as child:
        child.write(f"{DEBUG_LINE}\n  more of the debug line\n".encode())
        child.write(b"2026-12-07 - dagster - INFO - Launching Dagster services...\n")
        child.write(b"2026-12-07 - dagster - ERROR - boom\nTraceback: x\n")
    pipe.attach("dagster", os.fdopen(r, "rb"))
    pipe.note("up says hello")
    pipe.close()
    shown = terminal.getvalue().splitlines()
    assert not any("DEBUG" in s or "more of the debug" in s for s in shown)
    assert any("Launching" in s for s in shown) and "Traceback: x" in shown
    assert "up says hello" in shown
    logged = (tmp_path / "logs" / "up.log").read_text()
    assert "[dagster] 2026-12-07 21:17:48 +0000 - dagster.daemon - DEBUG - tick" in logged
    assert "[dagster]   more of the debug line" in logged and "\x1b[" not in logged


def test_the_bot_starts_only_with_a_token_and_someone_allowed(tmp_path, monkeypatch):
    home = Home(small_home(tmp_path / "h"))
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert telegram_wanted(home) == (False, "Telegram bot off (TELEGRAM_BOT_TOKEN not set)")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    wanted, why = telegram_wanted(home)
    assert not wanted and "allowed_user_ids is empty" in why
    with home.config_file.open("a") as f:
        f.write("[telegram]\nallowed_user_ids = [42]\n")
    assert telegram_wanted(home)[0]


def _wait_webserver(proc: subprocess.Popen[bytes], port: int, err: Path) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, err.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                assert "dagster_webserver_version" in json.loads(r.read())
                return
        except OSError:
            time.sleep(0.25)
    raise AssertionError("webserver never answered")


def _wait_logged(log: Path, *parts: str) -> None:
    """Until one line of ``log`` holds every part (the daemon's DEBUG lines come at its start
    and at each tick)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if log.exists() and any(all(p in line for p in parts)
                                for line in log.read_text().splitlines()):
            return
        time.sleep(0.2)
    raise AssertionError(f"no line with {parts} in {log}")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_up_runs_the_bot_logs_debug_to_a_file_and_ctrl_c_stops_all(tmp_path):
    with FakeTelegram(TOKEN) as tg:
        home = small_home(tmp_path / "h", f'[telegram]\nallowed_user_ids = [42]\n'
                          f'api_url = "{tg.api_url}"\npoll_timeout_s = 1\n')
        tb(home, "init", "--no-bootstrap", "--strategy", "none")
        home = home.resolve()
        env = {k: v for k, v in os.environ.items()
               if k not in ("TRADING_BRAIN_HOME", "TRADING_BRAIN_UI_TOKEN")}
        env["TELEGRAM_BOT_TOKEN"] = TOKEN
        port, err = _free_port(), tmp_path / "terminal.txt"
        with err.open("wb") as terminal:  # its own group: a terminal's foreground job
            up = subprocess.Popen([str(EXE), "--home", str(home), "up", "--port", str(port)],
                                  stdout=terminal, stderr=terminal, env=env,
                                  start_new_session=True)
        try:
            _wait_webserver(up, port, err)
            tg.push("/help", user_id=42, chat_id=42)
            (chat, text), *_ = tg.wait_sent(1, timeout_s=60)
            assert chat == 42 and "/status" in text  # the bot answered through up
            bots = [p for p in tagged_pids(home)
                    if b"telegram" in Path(f"/proc/{p}/cmdline").read_bytes()]
            assert len(bots) == 1  # tagged with the home: stopped with up
            _wait_logged(home / "var" / "logs" / "up.log", "[dagster]", " - DEBUG - ")
            os.killpg(up.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
            up.wait(120)
        finally:
            up.kill()
        assert up.returncode == 0, err.read_text()
        assert _wait_gone(home, 30) == [] and _home_pids(home) == []
        assert (home / "var" / "up.lock").read_text() == ""  # no stale pid after Ctrl-C
    shown = err.read_text()
    assert "Telegram bot started" in shown and "DEBUG log in" in shown
    assert " - DEBUG - " not in shown.replace("\x1b[34m", "").replace("\x1b[0m", "")
    assert "superseded" not in shown.lower()  # dg dev, not the superseded `dagster dev`
    logged = (home / "var" / "logs" / "up.log").read_text()
    assert " - DEBUG - " in logged and "[telegram]" in logged and "[dagster]" in logged
