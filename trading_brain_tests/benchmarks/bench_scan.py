"""Benchmark of the scan (not part of ``make test``).

Run: .venv/bin/python -m pytest -o addopts='' -s trading_brain_tests/benchmarks/bench_scan.py

Issue limits: in-process scan compute (after the data fetch, sandboxed ``generate`` included,
all symbols sequentially through ONE worker) <= 300 ms for 9 symbols and <= 2 s for 100; a whole
``scan_job`` Dagster run <= 15 s. Baseline, in the same process: the same scan with the trusted
in-process strategy, so the sandbox's share is measured as a per-symbol overhead (asserted
<= 1.5x the raw overhead of one sandboxed call, measured in the same process, + 2 ms).
Wall-clock best of 3, because the work spans two processes. The machine is shared: the absolute
limits are asserted only while the load average is <= 2.5 (else printed as not asserted).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import polars as pl

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.sandbox import SandboxedStrategy
from trading_brain.adapters.sim import SimMarket
from trading_brain.app.research.strategy_files import STRATEGIES_ROOT, InProcessStrategy
from trading_brain.domain.instruments import DEFAULT_SYMBOLS
from trading_brain.domain.risk import PortfolioView, RiskLimits, RiskState
from trading_brain.engine.indicators import compute_indicators
from trading_brain.engine.scan import SlotInput, run_scan

NOW = datetime(2026, 11, 20, 10, 2, 30, tzinfo=UTC)
EMA_CROSS = STRATEGIES_ROOT / "ema_cross" / "v1.py"
CASH = Decimal(10_000)
QUIET_LOAD = 2.5  # absolute limits are asserted only when the 2 cores are not oversubscribed


def _market(n: int) -> tuple[dict, dict, pl.DataFrame]:
    """Bars, pairs and 5m indicators of ``n`` sim symbols: what the asset fetches."""
    symbols = list(DEFAULT_SYMBOLS) + [f"S{i:02d}/USD" for i in range(n - len(DEFAULT_SYMBOLS))]
    symbols = symbols[:n]
    market = SimMarket(symbols, seed=3, clock=SimClock(NOW))
    start = NOW - timedelta(minutes=5 * 1250)
    candles = {s: market.candles(s, "5m", start, NOW) for s in symbols}
    ind = compute_indicators(pl.concat(candles.values()))
    bars = {s: c.drop("symbol", "timeframe") for s, c in candles.items()}
    return bars, market.asset_pairs(symbols), ind.filter(pl.col("ts") >= NOW - timedelta(hours=1))


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _scan(data, sources):
    bars, pairs, indicators = data
    slots = [SlotInput(name, src, PortfolioView(equity=CASH, cash=CASH), RiskState())
             for name, src in zip(("active", "shadow1", "shadow2", "shadow3")[:len(sources)],
                                  sources, strict=True)]
    return run_scan(bars, slots, RiskLimits(), pairs, NOW, indicators)


def _raw_overhead(sandboxed, trusted, window) -> float:
    """Median extra seconds of one sandboxed ``generate`` over the in-process one."""
    diffs = []
    for _ in range(15):
        t0 = time.perf_counter()
        sandboxed.generate(window)
        t1 = time.perf_counter()
        trusted.generate(window)
        diffs.append((t1 - t0) - (time.perf_counter() - t1))
    return statistics.median(diffs)


def test_scan_compute_9_and_100_symbols_through_one_sandbox_worker():
    trusted = InProcessStrategy(EMA_CROSS)
    load = os.getloadavg()[0]
    quiet = load <= QUIET_LOAD
    with SandboxedStrategy(path=EMA_CROSS) as sandboxed:
        for n, limit in ((9, 0.300), (100, 2.0)):
            data = _market(n)
            _scan(data, [sandboxed])  # worker start and first-call warm-up
            window = next(iter(data[0].values())).tail(trusted.warmup_bars)
            raw = _raw_overhead(sandboxed, trusted, window)
            base = _best(lambda d=data: _scan(d, [trusted]))
            sand = _best(lambda d=data: _scan(d, [sandboxed]))
            per_call = (sand - base) / n
            print(f"\nscan of {n} symbols: in-process {base * 1e3:.1f} ms, sandboxed "
                  f"{sand * 1e3:.1f} ms (limit {limit * 1e3:.0f} ms"
                  f"{'' if quiet else ', not asserted'}), overhead {per_call * 1e3:.2f} "
                  f"ms/symbol vs the sandbox's own {raw * 1e3:.2f} ms/call; load {load:.1f}")
            assert per_call <= 1.5 * raw + 0.002  # nothing added beyond the sandbox's call cost
            assert sand <= limit or not quiet
        data = _market(9)
        four = _best(lambda: _scan(data, [sandboxed] * 4))
        one = _best(lambda: _scan(data, [sandboxed]))
        print(f"9 symbols x 4 slots: {four * 1e3:.1f} ms = {four / one:.2f}x one slot")
        assert four <= 5.5 * one  # linear in the slots (4x), with room for a shared machine


def test_scan_job_run_end_to_end(tmp_path):
    from trading_brain.adapters.duckdb import Store
    from trading_brain.app.research.register import register_files
    from trading_brain.app.runtime import build_runtime
    from trading_brain.definitions import defs
    from trading_brain.defs.resources import TradingBrainResource
    from trading_brain.engine import registry

    home = tmp_path / "home"
    home.mkdir()
    (home / "trading_brain.toml").write_text('market = "sim"\n')
    rt = build_runtime(home)
    with dg.instance_for_test() as instance:
        res = defs.resolve_job_def("bootstrap_job").execute_in_process(
            instance=instance, resources={"tb": TradingBrainResource(home=str(home),
                                                                     now=NOW.isoformat())},
            run_config={"ops": {"bootstrap_history_op": {"config": {
                "days_5m": 5, "days_1h": 2, "days_1d": 5}}}})
        assert res.success
        store = Store.open(rt.home.warehouse)
        register_files(store, rt.settings, [EMA_CROSS], "released")
        registry.deploy(store, "ema_cross", 1, reason="bench")
        times = []
        for k in (1, 2):
            now = NOW + timedelta(minutes=5 * k)
            tb = TradingBrainResource(home=str(home), now=now.isoformat())
            t0 = time.perf_counter()
            res = defs.resolve_job_def("scan_job").execute_in_process(
                partition_key=(now - timedelta(minutes=5)).strftime("%Y-%m-%d"),
                instance=instance, resources={"tb": tb})
            times.append(time.perf_counter() - t0)
            assert res.success
            meta = res.asset_materializations_for_node("scan")[0].metadata
            print(f"\nscan_job run {k} ({len(rt.settings.symbols)} symbols): "
                  f"{times[-1]:.2f} s end to end, scan step compute "
                  f"{meta['duration_ms'].value:.0f} ms")
        assert max(times) <= 15.0
