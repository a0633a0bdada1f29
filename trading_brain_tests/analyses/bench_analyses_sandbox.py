"""Benchmark: the night's analyses in the sandbox worker vs in process (not collected by pytest).

    .venv/bin/python -m trading_brain_tests.analyses.bench_analyses_sandbox HOME [NIGHTS]

Copies the warehouse of a simulated HOME, then inside one ``Store.session`` (as the cycle runs)
times ``NIGHTS`` calls (default 6) of each way over the 30 days up to the last candle: the
in-process baseline (read the frames, run each shipped module in this process, store the rows:
what ``run_analyses`` did before the sandbox) and ``run_analyses`` with the runtime's workers
(the first call boots the two workers; later ones are warm, as in ``simulate --evolve``).
Prints the frame sizes and the per-night seconds (first call, then the median of the rest).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from trading_brain.app.evolve.analyses_run import read_frames, run_analyses
from trading_brain.app.runtime import build_runtime
from trading_brain_tests.analyses.helpers import load


def _times(fn: Callable[[int], object], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def main(home: str, nights: int = 6) -> None:
    dst = Path(tempfile.mkdtemp(prefix="tb-bench-analyses-")) / "home"
    shutil.copytree(home, dst, ignore=shutil.ignore_patterns("dagster", "logs"))
    rt = build_runtime(dst)
    with rt.store.connect(read_only=True) as con:
        last = con.execute("SELECT max(ts) FROM candles").fetchone()
    now = last[0] + timedelta(minutes=5) if last and last[0] else rt.clock.now()
    since = now - timedelta(days=30)
    modules = {aid: load(aid) for aid in ("market_analysis", "trade_performance")}

    def in_process(i: int) -> None:
        frames = read_frames(rt.store, since, now)
        for aid, m in modules.items():
            t0 = time.perf_counter()
            report = m.analyze(frames, m.Params())
            rt.store.save_evolution_row("analysis_reports", {
                "analysis_id": aid, "version": 1, "as_of": now, "cycle_id": f"inproc{i}",
                "status": "ok", "report": report, "error": None,
                "duration_ms": (time.perf_counter() - t0) * 1000, "created_at": now})

    try:
        with rt.store.session():
            sizes = {k: v.height for k, v in read_frames(rt.store, since, now).items()}
            print(f"frames over [{since:%Y-%m-%d}, {now:%Y-%m-%d %H:%M}]: {sizes}")
            base = _times(in_process, nights)
            sand = _times(lambda i: run_analyses(rt.store, now, since, f"sandbox{i}",
                                                 workers=rt.workers), nights)
    finally:
        rt.workers.close()
        shutil.rmtree(dst.parent, ignore_errors=True)
    for name, ts in (("in process", base), ("sandbox", sand)):
        print(f"{name:>10}: first {ts[0]:.3f} s, then median {statistics.median(ts[1:]):.3f} s "
              f"per night ({', '.join(f'{t:.3f}' for t in ts)})")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 6)
