"""Escape corpus against the OS boundary ALONE (static gate switched off), with canaries.

Each file in ``escapes/`` is a complete strategy module whose ``generate`` first escapes the
in-language allowlist (``dataclasses.fields.__globals__["sys"]``) and then attempts a real action.
The gate rejects all of them except the resource bombs (test_gate.py); here they run in a fully
locked-down worker and every canary must stay intact: the fake API key (in this process's
environment and a world-readable .env) never appears in any output or error, no PWNED_* file, no
connection to the loopback listeners, no datagram on the path socket, no SIGUSR1 to this process,
not traced, and the call ends with a clean error reply (the worker killed at a timeout). How long
that takes is measured in benchmarks/bench_sandbox.py, not asserted here.
"""

from __future__ import annotations

import select

import pytest

from trading_brain.adapters.sandbox.host import SandboxedStrategy
from trading_brain.errors import SandboxViolation, StrategyError
from trading_brain_tests.adapters.sandbox.helpers import ESCAPES, run_case, synthetic_bars

pytestmark = pytest.mark.slow
TIMEOUT = {"a14_cpu_bomb": 1.0, "a15_sleep_bomb": 1.0}
EXPECTED = {  # how specific cases must fail
    "a13_memory_bomb": "MemoryError",
    "a14_cpu_bomb": "timed out",
    "a15_sleep_bomb": "timed out",
    # the forged frame alone fails validation; glued to the real reply it is a framing violation
    "a16_forged_reply": ("SandboxViolation", "'size' has values outside the allowed range"),
    "a17_oversized_reply": "exceeds the cap",
    # seccomp denies socket(2) itself: a clean strategy error, nothing sent
    "a21_unix_dgram_sendto": "PermissionError: [Errno 1] Operation not permitted",
    "a22_socket_families": "all denied: inet: errno 1; unix: errno 1; pair: errno 1; abstract",
}
NAMES = sorted(p.stem for p in ESCAPES.glob("*.py"))


@pytest.mark.parametrize("name", NAMES)
def test_os_boundary_contains_escape(name, canaries):
    timeout = TIMEOUT.get(name, 5.0)
    outcome = run_case(canaries.render((ESCAPES / f"{name}.py").read_text()), timeout=timeout)
    assert not outcome.gate_rejected
    assert outcome.booted, outcome.messages  # the attack really ran in a ready worker
    assert canaries.violations(outcome.messages) == []
    assert outcome.failed, f"an attack must not produce accepted signals: {outcome.messages}"
    expected = EXPECTED.get(name, "")
    expected = (expected,) if isinstance(expected, str) else expected
    assert any(e in outcome.messages[0] for e in expected), outcome.messages


def test_gate_passing_memory_bomb_through_the_full_pipeline(canaries):
    outcome = run_case((ESCAPES / "a13_memory_bomb.py").read_text(), gate=True)
    assert outcome.booted and outcome.failed and "MemoryError" in outcome.messages[0]
    assert canaries.violations(outcome.messages) == []


def test_timeout_kills_the_worker_and_the_next_call_gets_a_fresh_one():
    src = (ESCAPES / "a14_cpu_bomb.py").read_text()
    s = SandboxedStrategy(src, timeout_s=1.0)
    try:
        pid = s.start() and s._proc.pid
        with pytest.raises(StrategyError, match="timed out after 1 s"):
            s.generate(synthetic_bars())
        with pytest.raises(ProcessLookupError):
            import os

            os.kill(pid, 0)  # the old worker is gone (killed and reaped)
        s.start()
        assert s._proc.pid != pid
    finally:
        s.close()


def test_worker_dying_is_a_sandbox_violation():
    src = (
        (ESCAPES / "a14_cpu_bomb.py")
        .read_text()
        .replace(
            "    n = 0\n",
            "    dataclasses.fields.__globals__['sys'].modules['os']._exit(3)\n    n = 0\n",
        )
    )
    s = SandboxedStrategy(src, static_gate=False)
    try:
        with pytest.raises(SandboxViolation, match="exit code 3"):
            s.generate(synthetic_bars())
    finally:
        s.close()


FORGER = """
import dataclasses

import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "forger"
VERSION = 1
WARMUP_BARS = 1


class Params(BaseModel):
    pass


def _forge():
    os = dataclasses.fields.__globals__["sys"].modules["os"]
    for fd in range(3, 30):
        try:
            os.write(fd, b"\\x00\\x00\\x00\\x02{}")
        except OSError:
            pass


def generate(bars, params):
    threading = dataclasses.fields.__globals__["sys"].modules["threading"]
    threading.Timer(0.2, _forge).start()
    return bars.with_columns(
        action=pl.lit("hold"), size=pl.lit(0.0), stop_loss=pl.lit(None, pl.Float64),
        take_profit=pl.lit(None, pl.Float64), intent=pl.lit("day"), confidence=pl.lit(0.0),
    ).drop("ts", "open", "high", "low", "close", "volume")
"""


def test_output_between_calls_is_a_protocol_violation():
    s = SandboxedStrategy(FORGER, static_gate=False)
    try:
        assert s.generate(synthetic_bars()).height == 60  # a background thread forges later
        ready, _, _ = select.select([s._proc.proc.stdout], [], [], 10.0)  # the forged bytes
        assert ready
        with pytest.raises(SandboxViolation, match="unsolicited output"):
            s.generate(synthetic_bars())
        assert s._proc is None
    finally:
        s.close()
