"""No process of a home outlives `up` (issue 9 part 1), shown without Dagster: a stand-in `up`
holds the real lock and watchdog and starts tagged children that try to escape (their own
session, a grandchild that calls setsid and ignores SIGINT). Real processes, real signals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trading_brain.adapters.service.procs import UP_TAG_ENV, stop_tagged, tagged_pids
from trading_brain.app.serve import acquire_lock, release_lock
from trading_brain.errors import ConfigError
from trading_brain.settings import Home

pytestmark = pytest.mark.timeout(120)

STAND_IN_UP = textwrap.dedent("""
    import subprocess, sys, time
    from trading_brain.app.serve import acquire_lock, dagster_env, start_watchdog
    from trading_brain.settings import Home
    home = Home(sys.argv[1])
    lock = acquire_lock(home, {"pid": 1, "url": "http://127.0.0.1:1", "started": "t0"})
    watchdog, pipe_w = start_watchdog(home, lock, grace_s=1.0)
    child = ("import os, signal, subprocess, sys, time\\n"
             "subprocess.Popen([sys.executable, '-c', 'import os, signal, time; os.setsid(); "
             "signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)'])\\n"
             "time.sleep(600)\\n")
    subprocess.Popen([sys.executable, "-c", child], env=dagster_env(home),
                     start_new_session=True)
    print(watchdog.pid, flush=True)
    time.sleep(600)
""")


def _wait(predicate, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _start(root: Path) -> tuple[subprocess.Popen[str], int]:
    up = subprocess.Popen([sys.executable, "-c", STAND_IN_UP, str(root)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    watchdog = int(up.stdout.readline())
    assert _wait(lambda: len(tagged_pids(root)) == 2), "child and grandchild never started"
    return up, watchdog


def _locked(root: Path) -> str | None:
    try:
        release_lock(acquire_lock(Home(root), {"pid": 2, "url": "x", "started": "t1"}))
    except ConfigError as e:
        return str(e)
    return None


def test_sigkill_of_up_ends_every_process_of_the_home_and_frees_the_lock(tmp_path):
    root = tmp_path.resolve()
    up, watchdog = _start(root)
    try:
        assert "already running" in (_locked(root) or "")
        up.kill()
        up.wait(10)
        assert _wait(lambda: tagged_pids(root) == []), tagged_pids(root)
        assert _wait(lambda: not Path(f"/proc/{watchdog}").exists() or
                     b") Z" in Path(f"/proc/{watchdog}/stat").read_bytes())
        assert _locked(root) is None
        assert (root / "var" / "up.lock").read_text() == ""
    finally:
        stop_tagged(root, 0)


def test_a_second_up_is_refused_while_any_process_of_the_home_lives(tmp_path):
    root = tmp_path.resolve()
    up, watchdog = _start(root)
    try:
        os.kill(watchdog, signal.SIGKILL)  # take the guards away: up and its watchdog both die
        up.kill()
        up.wait(10)
        time.sleep(0.5)
        survivors = tagged_pids(root)
        assert len(survivors) == 2
        message = _locked(root)
        assert message is not None and "is not running" in message
        assert f"2 of its processes are: pid {survivors[0]}" in message
        assert f"(kill {survivors[0]} {survivors[1]})" in message
    finally:
        stop_tagged(root, 0)
    assert tagged_pids(root) == [] and _locked(root) is None


def test_the_watchdog_ignores_the_signals_of_a_terminal(tmp_path):
    root = tmp_path.resolve()
    up, watchdog = _start(root)
    try:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            os.kill(watchdog, sig)
        time.sleep(0.5)
        assert len(tagged_pids(root)) == 2 and Path(f"/proc/{watchdog}").exists()
        up.send_signal(signal.SIGTERM)  # the stand-in has no handler: it dies like a SIGKILL
        up.wait(10)
        assert _wait(lambda: tagged_pids(root) == [])
    finally:
        stop_tagged(root, 0)


def test_the_tag_marks_only_the_home(tmp_path):
    other = subprocess.Popen(["sleep", "60"], env={**os.environ, UP_TAG_ENV: str(tmp_path / "x")})
    try:
        # /proc may show the new environment a moment after Popen returns (seen on CI): wait for it.
        x = tmp_path / "x"
        assert _wait(lambda: tagged_pids(x) == [other.pid], 10), tagged_pids(x)
        assert tagged_pids(tmp_path) == []
    finally:
        other.kill()
        other.wait()
