"""Benchmark: the anthropic advisor's own overhead per cycle is <= 2 s with the Messages API
answering instantly (issue 12), and the input tokens a cycle sends.

Run: .venv/bin/python -m pytest -o addopts='' -s -p no:cacheprovider \
    trading_brain_tests/benchmarks/bench_advisor.py
(an idle machine: the figures scale with the load, which the cycle test prints).

A loopback fake answers at once by role (analyst: a tier-2 candidate, coder: its source,
reviewer: approve). One "cycle" is what the advisor does in a night: ``decide`` (panel votes,
the tally, one coder call whose source passes the static gate), one repair through
``write_code(request, Repair(...))`` and one ``review``. Timed from the first call to the last
(SDK client, count_tokens, the HTTP round trips, validation, thoughts and usage written to a real
DuckDB warehouse); the gates' backtests are not part of it. Panels of 1, 3 and 5 seats,
``ROUNDS`` cycles each; asserted: the slowest cycle of every panel <= 2 s, and the input tokens
(counted like ``count_tokens``: the fake's characters / 4) <= 60k. Prints p50 / max and tokens.

``test_cycle_overhead_beyond_the_gates``: whole nightly cycles (``run_cycle``) with the
anthropic advisor on a simulated home (2 days, 3 symbols, ema_cross@1 active; the home of
``trading_brain_tests/app/test_evolve_anthropic.py``) and the fake answering at once: a tier-2
candidate written by the coder (the slower-EMA source of ``test_simulate_advisor``, thresholds
loosened so it can reach the reviewer), the weekly reflection, the real registration gate
(sandbox), the backtest gates, the reviewer. The parts that are backtests or sandbox work (truth
benchmarks, analyses, shipped registrations, the registration gate, the lab's bars, the backtest
gates) are timed by wrapping them; the cycle's own overhead is the rest (advisor calls and
validation, thoughts, usage, context, decision, records, alerts), asserted <= 2 s per cycle
(issue 12). Prints each part, the overhead's CPU time in this process too (a figure the machine's
load inflates less than wall time), and the input tokens per role (``count_tokens`` figure and
the usage recorded).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trading_brain.adapters.anthropic.wire import Repair, ReviewRequest
from trading_brain.adapters.duckdb import Store
from trading_brain.app.evolve import candidates as cands
from trading_brain.app.evolve import cycle as cycle_mod
from trading_brain.app.evolve.lab import Lab
from trading_brain.app.home.config_file import render
from trading_brain.app.runtime import build_runtime
from trading_brain.settings import Home, Settings, load_settings
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.app import test_evolve_anthropic as ea
from trading_brain_tests.app.test_evolve_anthropic import (
    sim_home,  # noqa: F401 - the module-scoped simulated home
)
from trading_brain_tests.app.test_simulate_advisor import CANDIDATE
from trading_brain_tests.fakes.anthropic_server import FakeAnthropic, count, ok

ROUNDS = 5
LIMIT_S = 2.0
TIER2 = h.decision("create_candidate", tier=2, code_brief="Use the previous bar's EMAs.")


def test_advisor_overhead_per_cycle(tmp_path):
    store = Store.open(tmp_path / "warehouse.duckdb")
    print()
    with FakeAnthropic(api_key=h.KEY, responder=h.responder(TIER2)) as fa:
        for panel in (1, 3, 5):
            adv = h.advisor(fa, store, panel=panel)
            times, tokens, calls, per_role = [], [], 0, ""
            for i in range(ROUNDS):
                seen = len(fa.calls())
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
                per_role = per_role_tokens(fa.calls()[seen:])
            print(f"panel {panel}: p50 {statistics.median(times):.3f} s, max {max(times):.3f} s,"
                  f" input tokens per cycle {int(max(tokens))} ({calls} calls; count_tokens per "
                  f"role: {per_role})")
            assert max(times) <= LIMIT_S
            assert max(tokens) <= 60_000


def per_role_tokens(bodies: list[dict[str, Any]]) -> str:
    """``role n1+n2… = total`` per role: the ``count_tokens`` figure of every call."""
    sent: dict[str, list[int]] = defaultdict(list)
    for body in bodies:
        sent[kind_of(body)].append(count(body))
    return "; ".join(f"{k} {'+'.join(map(str, v))} = {sum(v)}" for k, v in sent.items()) \
        + f"; total {sum(map(sum, sent.values()))}"


HEAVY = {cycle_mod: ("refresh_benchmarks", "run_analyses", "register_shipped"),
         cands: ("registration_gate", "backtest_gates")}
CYCLES = 3


def render_to(home: Path, settings: Settings) -> None:
    Home(home).config_file.write_text(render(settings), encoding="utf-8")


def kind_of(body: dict[str, Any]) -> str:
    role = h.role_of(body)
    fmt = json.dumps(body.get("output_config") or {})
    return "reflection" if role == "analyst" and '"document"' in fmt else role


def test_cycle_overhead_beyond_the_gates(sim_home: Path, tmp_path: Path,  # noqa: F811
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    heavy: dict[str, float] = defaultdict(float)
    heavy_cpu: dict[str, float] = defaultdict(float)

    def timed(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                heavy[name] += time.perf_counter() - t0
                heavy_cpu[name] += time.process_time() - c0
        return wrapper

    for mod, names in HEAVY.items():
        for name in names:
            monkeypatch.setattr(mod, name, timed(getattr(mod, name), name))
    lab_open = timed(Lab.open, "lab_bars")  # the bars the gates backtest on
    monkeypatch.setattr(Lab, "open", classmethod(lambda _cls, *a, **k: lab_open(*a, **k)))
    monkeypatch.setenv("ANTHROPIC_API_KEY", ea.KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    overheads: list[float] = []
    print()
    with FakeAnthropic(api_key=ea.KEY) as fa:
        for i in range(CYCLES):
            heavy.clear()
            heavy_cpu.clear()
            run_dir = tmp_path / f"run{i}"
            run_dir.mkdir()
            home = ea.make_home(sim_home, run_dir, fa)
            s = load_settings(Home(home))
            loose = s.evolution.model_copy(update={"margin": 0.0, "min_dsr": 0.0, "max_pbo": 1.0,
                                                   "min_trades": 1})
            render_to(home, s.model_copy(update={"evolution": loose}))
            fa.state.responder = ea.Roles([ok(ea.TIER2)], coder=[CANDIDATE])
            seen = len(fa.calls())
            rt = build_runtime(home, now=ea.NOW)
            try:
                t0, c0 = time.perf_counter(), time.process_time()
                res = cycle_mod.run_cycle(rt, advisor_name="anthropic")
                total = time.perf_counter() - t0
                cpu = time.process_time() - c0 - sum(heavy_cpu.values())
            finally:
                rt.workers.close()
            assert res.candidate == "ema_cross@2" and res.gates
            overhead = total - sum(heavy.values())
            overheads.append(overhead)
            parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(heavy.items()))
            print(f"cycle {i}: total {total:.2f} s = overhead {overhead:.2f} s (CPU {cpu:.2f} s)"
                  f" + {parts} "
                  f"(gates: {' '.join(g['gate'] + ':' + g['status'] for g in res.gates)})")
            usage: dict[str, int] = defaultdict(int)
            for u in rt.store.evolution_rows("token_usage", {"cycle_id": res.cycle_id}):
                kind = "reflection" if ":reflection:" in u["call_id"] else u["role"]
                usage[kind] += u["input_tokens"] + u["cache_write_tokens"] + u["cache_read_tokens"]
            print(f"  input tokens (count_tokens): {per_role_tokens(fa.calls()[seen:])}; "
                  f"recorded input incl. cache: {dict(usage)}")
            assert sum(usage.values()) <= 60_000
    print(f"cycle overhead: p50 {statistics.median(overheads):.2f} s, "
          f"max {max(overheads):.2f} s; load {os.getloadavg()[0]:.2f}")
    assert max(overheads) <= LIMIT_S
