"""Benchmark of the risk shell (not part of ``make test``).

Run: .venv/bin/python -m pytest -o addopts='' -s trading_brain_tests/benchmarks/bench_risk.py

The risk shell runs inside every scan (9 symbols x up to 4 slots) and every executor tick, so it
must stay negligible next to the 5-minute cadence. Baseline, in the same process: one ``evaluate``
of a single entry. Each evaluation scans the pending orders, so a batch is mildly quadratic; the
figures say how much: asserted, a 100-proposal batch costs <= 5x 100 single evaluations (measured
~2.7x), a 36-proposal scan batch takes <= 50 ms of CPU, and a state JSON round trip <= 5 ms.
CPU time is used for the absolute limits because the machine is shared.
"""

from __future__ import annotations

import time
from decimal import Decimal

from trading_brain.domain.risk import RiskState
from trading_brain.engine.risk import evaluate, evaluate_batch
from trading_brain.engine.risk_state import update_state_on_close
from trading_brain_tests.engine.test_risk_fixtures import (
    LIMITS,
    NOW,
    enter,
    pair,
    portfolio,
    ready_state,
)

SYMBOLS = [f"S{i:02d}/USD" for i in range(100)]
PAIRS = {s: pair(s) for s in SYMBOLS}


def cpu(fn, repeat: int) -> float:
    """Best-of-3 mean process CPU seconds per call."""
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        for _ in range(repeat):
            fn()
        best = min(best, (time.process_time() - t0) / repeat)
    return best


def test_risk_shell_speed():
    pf = portfolio("1000000")
    state = ready_state("1000000")
    for i, s in enumerate(SYMBOLS[:20]):  # some probation memory to look through
        state, _ = update_state_on_close(state, s, Decimal(-i), Decimal(100), "signal", NOW,
                                         LIMITS)
    limits = LIMITS.model_copy(update={"max_open_positions": 100, "max_exposure_pct": 1.0})
    single = cpu(lambda: evaluate(enter(SYMBOLS[50], size=0.01, price="123.4"), pf, state,
                                  limits, PAIRS[SYMBOLS[50]], NOW), 300)
    props100 = [enter(s, size=0.01, price="123.4", intent=s) for s in SYMBOLS]
    batch100 = cpu(lambda: evaluate_batch(props100, pf, state, limits, PAIRS, NOW), 5)
    scan = cpu(lambda: evaluate_batch(props100[:36], pf, state, limits, PAIRS, NOW), 20)
    approved = sum(d.approved for d in evaluate_batch(props100, pf, state, limits, PAIRS,
                                                      NOW).decisions)
    text = state.model_dump_json()
    roundtrip = cpu(lambda: RiskState.model_validate_json(text).model_dump_json(), 200)
    ratio = batch100 / (100 * single)
    print(f"\nrisk shell: evaluate {single * 1e6:.0f} us; batch of 100 {batch100 * 1e3:.1f} ms "
          f"({approved} approved; {ratio:.2f}x 100 singles); 36-proposal scan {scan * 1e3:.1f} ms; "
          f"state JSON round trip {roundtrip * 1e6:.0f} us ({len(text)} bytes)")
    assert approved == 100
    assert ratio <= 5.0
    assert scan <= 0.050
    assert roundtrip <= 0.005
