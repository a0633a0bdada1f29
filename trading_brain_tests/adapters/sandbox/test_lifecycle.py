"""The worker dies with its host: PR_SET_PDEATHSIG, armed before the lockdown and kept by it.

A real host process (a small script) starts a worker whose ``generate`` spins; SIGKILL of the host
must take the worker down at once, not leave it at 100% CPU until its CPU rlimit. Waiting for the
worker to disappear is a bounded liveness poll, not a timing assertion.

Linux sends the parent-death signal when the spawning THREAD exits, so the host spawns every worker
from one long-lived thread: a worker started from a short-lived boot thread must survive that
thread.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from trading_brain.adapters.sandbox.host import SandboxedStrategy
from trading_brain_tests.adapters.sandbox.helpers import REPO, synthetic_bars

pytestmark = pytest.mark.slow
SPIN = """
import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "spin"
VERSION = 1
WARMUP_BARS = 1


class Params(BaseModel):
    spin: bool = False


def generate(bars, params):
    n = 0
    while params.spin:
        n += 1
    return bars.with_columns(
        action=pl.lit("hold"), size=pl.lit(0.0), stop_loss=pl.lit(None, pl.Float64),
        take_profit=pl.lit(None, pl.Float64), intent=pl.lit("day"), confidence=pl.lit(0.0),
    ).drop("ts", "open", "high", "low", "close", "volume")
"""
HOST = """
import sys, threading
from trading_brain.adapters.sandbox.host import SandboxedStrategy
from trading_brain_tests.adapters.sandbox.helpers import synthetic_bars

s = SandboxedStrategy(open(sys.argv[1]).read(), timeout_s=600)
boot = threading.Thread(target=s.start)  # booted from a short-lived thread, as the CLI does
boot.start()
boot.join()
print(s._proc.pid, flush=True)
s.generate(synthetic_bars(), {"spin": True})
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie waiting for a reaper is dead


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _wait(cond, limit_s: float = 30.0) -> bool:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_sigkill_of_the_host_kills_a_spinning_worker(tmp_path):
    src = tmp_path / "spin.py"
    src.write_text(SPIN)
    script = tmp_path / "host.py"
    script.write_text(HOST)
    host = subprocess.Popen([sys.executable, str(script), str(src)], cwd=REPO,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    worker = 0
    try:
        worker = int(host.stdout.readline())
        start = _cpu_ticks(worker)
        assert _wait(lambda: _cpu_ticks(worker) > start + 20), "the worker never spun"
        host.send_signal(signal.SIGKILL)
        host.wait()
        assert _wait(lambda: not _alive(worker)), "the worker outlived its SIGKILLed host"
    finally:
        host.kill()
        host.wait()
        if worker and _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_a_worker_booted_on_a_short_lived_thread_survives_that_thread():
    s = SandboxedStrategy(SPIN)
    try:
        boot = threading.Thread(target=s.start)
        boot.start()
        boot.join()
        pid = s._proc.pid
        assert s.layers.pdeathsig
        time.sleep(0.2)  # give a wrongly aimed parent-death signal time to arrive
        assert s.generate(synthetic_bars()).height == 60 and s._proc.pid == pid
    finally:
        s.close()


def test_a_worker_whose_host_is_gone_before_arming_exits(tmp_path):
    """The race: the parent died before PR_SET_PDEATHSIG was armed -> the worker exits at once."""
    from trading_brain.adapters.sandbox.process import HOST_PID_ENV

    worker = REPO / "trading_brain" / "adapters" / "sandbox" / "worker.py"
    proc = subprocess.run([sys.executable, "-I", "-B", str(worker)], input=b"",
                          env={HOST_PID_ENV: "1"}, capture_output=True, timeout=60)
    assert proc.returncode == 70
