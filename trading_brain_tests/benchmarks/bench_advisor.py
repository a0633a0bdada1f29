"""Benchmark: the anthropic advisor's own overhead per cycle is <= 2 s with the Messages API
answering instantly (issue 12), and the input tokens a cycle sends.

Run: .venv/bin/python -m pytest -o addopts='' -s -p no:cacheprovider \
    trading_brain_tests/benchmarks/bench_advisor.py

A loopback fake answers at once by role (analyst: a tier-2 candidate, coder: its source,
reviewer: approve). One "cycle" is what the advisor does in a night: ``decide`` (panel votes,
the tally, one coder call whose source passes the static gate), one repair through
``write_code(request, Repair(...))`` and one ``review``. Timed from the first call to the last
(SDK client, count_tokens, the HTTP round trips, validation, thoughts and usage written to a real
DuckDB warehouse); the gates' backtests are not part of it. Panels of 1, 3 and 5 seats,
``ROUNDS`` cycles each; asserted: the slowest cycle of every panel <= 2 s, and the input tokens
(counted like ``count_tokens``: the fake's characters / 4) <= 60k. Prints p50 / max and tokens.
"""

from __future__ import annotations

import statistics
import time

from trading_brain.adapters.anthropic.wire import Repair, ReviewRequest
from trading_brain.adapters.duckdb import Store
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.fakes.anthropic_server import FakeAnthropic

ROUNDS = 5
LIMIT_S = 2.0
TIER2 = h.decision("create_candidate", tier=2, code_brief="Use the previous bar's EMAs.")


def test_advisor_overhead_per_cycle(tmp_path):
    store = Store.open(tmp_path / "warehouse.duckdb")
    with FakeAnthropic(api_key=h.KEY, responder=h.responder(TIER2)) as fa:
        for panel in (1, 3, 5):
            adv = h.advisor(fa, store, panel=panel)
            times, tokens, calls = [], [], 0
            for i in range(ROUNDS):
                t0 = time.perf_counter()
                source = adv.decide(h.ctx(f"cycle-bench-{panel}-{i}")).source or ""
                assert source == h.v3_source()
                req = adv.pending_code
                assert req is not None
                fixed = adv.write_code(req, Repair(source, ("lookahead check failed",)))
                verdict = adv.review(ReviewRequest("ema_cross@3", fixed, "ema_cross@1",
                                                   h.EMA_SOURCE, {"gates": []}))
                times.append(time.perf_counter() - t0)
                assert verdict.verdict == "approve"
                tokens.append(adv.usage()["input_tokens"])
                calls = int(adv.usage()["calls"])
            print(f"panel {panel}: p50 {statistics.median(times):.3f} s, max {max(times):.3f} s,"
                  f" input tokens per cycle {int(max(tokens))} ({calls} calls)")
            assert max(times) <= LIMIT_S
            assert max(tokens) <= 60_000
