"""Sandbox benchmark: worker boot time and per-call overhead of a persistent worker.

Run: ``.venv/bin/python -m pytest -o addopts='' -s trading_brain_tests/benchmarks/bench_sandbox.py``

Baseline (same process): the same strategy's ``generate`` + ``validate_signals`` in-process, which
is what a trusted in-process SignalSource does. Target: the persistent worker adds <= 5 ms per call
on a 600-row frame (median over many calls; reference/sandbox.md measured ~3 ms here).
"""

from __future__ import annotations

import os
import signal
import statistics
import time

import pytest

from trading_brain.adapters.sandbox.host import SandboxedStrategy
from trading_brain_tests.adapters.sandbox.helpers import (
    LEGIT,
    in_process_generate,
    load_in_process,
    real_bars,
)

SOURCE = (LEGIT / "l3_indicators.py").read_text()
TARGET_MS = 5.0


def _median_ms(fn, n: int) -> float:
    fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def test_boot_time():
    boots = []
    for _ in range(3):
        t0 = time.perf_counter()
        with SandboxedStrategy(SOURCE) as s:
            s.start()
            boots.append(time.perf_counter() - t0)
    print(
        f"\nworker boot (spawn + imports + lockdown + load): median "
        f"{statistics.median(boots):.3f} s,"
        f" all {[round(b, 3) for b in boots]}"
    )
    assert statistics.median(boots) < 10.0


@pytest.mark.parametrize(("rows", "calls"), [(600, 200), (52_000, 10)])
def test_per_call_overhead(rows, calls):
    bars = real_bars(rows)
    module = load_in_process(SOURCE, "bench_l3")
    inproc = _median_ms(lambda: in_process_generate(module, bars, {}), calls)
    with SandboxedStrategy(SOURCE, timeout_s=60) as s:
        s.start()
        sandboxed = _median_ms(lambda: s.generate(bars), calls)
    overhead = sandboxed - inproc
    load = os.getloadavg()[0]
    print(
        f"\n{rows} rows: in-process {inproc:.2f} ms, sandboxed {sandboxed:.2f} ms, "
        f"overhead {overhead:.2f} ms per call (median of {calls}; load average {load:.1f} on "
        f"{os.cpu_count()} cores)"
    )
    if rows == 600:
        # The target holds on an idle machine; other jobs on the same cores delay every wake-up
        # of the worker, so under load only a loose bound is asserted (the figure is printed).
        busy = load > (os.cpu_count() or 1)
        limit = TARGET_MS * (4 if busy else 1)
        assert overhead <= limit, f"overhead {overhead:.2f} ms > {limit} ms (load {load:.1f})"


CONFIGS = {  # layers switched off (gate off everywhere: the OS boundary alone)
    "full": set(),
    "-seccomp": {"seccomp"},
    "-landlock": {"landlock"},
    "-uid_drop": {"uid_drop"},
    "-rlimits": {"rlimits"},
    "-netns": {"netns"},
    "-seccomp-landlock": {"seccomp", "landlock"},
    "none": {"seccomp", "landlock", "uid_drop", "rlimits", "netns", "no_new_privs"},
}


@pytest.mark.skipif(os.geteuid() != 0, reason="the matrix is defined for the root (CI) case")
def test_ablation_table():
    """Which escape-corpus entries breach a canary with each layer switched off (prints a table)."""
    from trading_brain.adapters.sandbox.protocol import Layers
    from trading_brain_tests.adapters.sandbox.helpers import (
        ESCAPES,
        install_usr1_counter,
        make_canaries,
        run_case,
    )

    names = sorted(p.stem for p in ESCAPES.glob("*.py"))
    table: dict[str, list[str]] = {}
    for label, off in CONFIGS.items():
        breached = []
        for name in names:
            c = make_canaries()
            os.environ["ANTHROPIC_API_KEY"] = c.key
            old = install_usr1_counter(c)
            try:
                timeout = 1.0 if name in ("a14_cpu_bomb", "a15_sleep_bomb") else 5.0
                outcome = run_case(
                    c.render((ESCAPES / f"{name}.py").read_text()),
                    layers=Layers(**{k: False for k in off}),
                    allow_weak=True,
                    timeout=timeout,
                )
                if c.violations(outcome.messages):
                    breached.append(name)
            finally:
                signal.signal(signal.SIGUSR1, old)
                c.close()
        table[label] = breached
        print(f"\n{label:18s} {len(breached):2d}/{len(names)} breached: {', '.join(breached)}")
    assert table["full"] == []


def test_generate_many_amortises_the_round_trip():
    """100 symbols of 600 bars: one ``generate_many`` call vs 100 ``generate`` calls, same
    worker."""
    bars = real_bars(600)
    frames = {f"S{i:03d}/USD": bars for i in range(100)}
    with SandboxedStrategy(SOURCE, timeout_s=60) as s:
        s.start()
        s.generate_many(frames)
        singles = min(_timed(lambda: [s.generate(b.clone()) for b in frames.values()])
                      for _ in range(2))
        many = min(_timed(lambda: s.generate_many(frames)) for _ in range(3))
    print(f"\n100 symbols x 600 rows: 100 generate calls {singles * 1e3:.0f} ms, one generate_many "
          f"{many * 1e3:.0f} ms ({singles / many:.1f}x; {many * 10:.2f} ms per symbol)")
    assert many < singles


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


LIMITS = """
import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "limits"
VERSION = 1
WARMUP_BARS = 1


class Params(BaseModel):
    mode: str = "spin"


def generate(bars, params):
    n = 0
    while params.mode == "spin":
        n += 1
    while params.mode == "flood":
        print("x" * 1_000_000)
    return bars
"""


def test_timeout_and_output_cap_end_calls_promptly():
    """Wall-clock bounds moved here from the unit tests (issue 10): a call that spins is killed
    within its timeout plus a margin, and an endless print loop (the 2 GB case, 76 s before the
    output cap) ends within seconds."""
    from trading_brain.errors import StrategyError
    from trading_brain_tests.adapters.sandbox.helpers import synthetic_bars

    with SandboxedStrategy(LIMITS, timeout_s=1.0) as s:
        s.start()
        t0 = time.perf_counter()
        with pytest.raises(StrategyError, match="timed out"):
            s.generate(synthetic_bars(), {"mode": "spin"})
        spin = time.perf_counter() - t0
        s.timeout_s = 60.0
        s.start()
        t0 = time.perf_counter()
        with pytest.raises(StrategyError, match="stdout/stderr"):
            s.generate(synthetic_bars(), {"mode": "flood"})
        flood = time.perf_counter() - t0
    print(f"\n1 s timeout: call ended after {spin:.2f} s; print flood cut after {flood:.2f} s")
    assert spin < 3.0 and flood < 10.0
