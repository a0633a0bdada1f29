"""Benchmark: the API serves ``/positions`` at >= 200 requests/s on loopback while a writer
writes (issue 13, Performance).

Run: .venv/bin/python -m pytest -o addopts='' -s -p no:cacheprovider \
    trading_brain_tests/benchmarks/bench_api.py

Set-up: ``trading-brain simulate --days 2`` (a home with ~100 positions, 5 open), then a real
``trading-brain api`` process with its defaults (read budget 2 s, cache 1 s). The writer is
another process writing one fill and its cash-ledger entry per short read-write transaction
through ``Store`` as fast as it can (far more often than the executor's one tick per ~15 s).
The load is bounded: ``CLIENTS`` threads with keep-alive connections send ``REQUESTS`` GETs
in all. Asserted: >= 200 req/s, only 200 (or 503) answers, the writer never fails. Printed:
p50, p99, max latency, req/s, the writer's rows and its slowest write, the load average.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import statistics
import threading
import time
import uuid
from pathlib import Path

from trading_brain_tests.api.conftest import TOKEN, ApiServer, run_cli

CLIENTS = 8
REQUESTS = 4000
MIN_RPS = 200.0


def _writer(warehouse: str, stop: mp.synchronize.Event, out: mp.Queue) -> None:
    from trading_brain.adapters.duckdb import Store
    from trading_brain_tests.api.test_api_writer import write_fill

    store, n, slowest, error = Store(warehouse, lock_budget_s=30), 0, 0.0, None
    try:
        while not stop.is_set():
            t0 = time.perf_counter()
            write_fill(store, f"bench-{uuid.uuid4().hex[:12]}")
            slowest = max(slowest, time.perf_counter() - t0)
            n += 1
            time.sleep(0.01)
    except Exception as e:  # reported and asserted by the parent
        error = repr(e)
    out.put((n, slowest, error))


def _client(port: int, count: int, lat: list[float], codes: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(count):
        t0 = time.perf_counter()
        conn.request("GET", "/positions", headers=headers)
        resp = conn.getresponse()
        resp.read()
        lat.append(time.perf_counter() - t0)
        codes.append(resp.status)
    conn.close()


def test_positions_at_200_requests_per_second_beside_a_writer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = run_cli(home, "simulate", "--days", "2", "--json", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    server = ApiServer(home)
    ctx = mp.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    writer = ctx.Process(target=_writer, args=(str(home / "var" / "warehouse.duckdb"), stop, out))
    try:
        writer.start()
        time.sleep(2.0)  # the writer is writing before the load starts
        for _ in range(50):  # warm-up
            assert server.get("/positions")[0] == 200
        lat: list[float] = []
        codes: list[int] = []
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=_client, args=(server.port, REQUESTS // CLIENTS, lat,
                                                          codes)) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        load_after = os.getloadavg()
    finally:
        stop.set()
        writer.join(timeout=60)
        server.stop()
    rows, slowest_write, error = out.get(timeout=10)
    lat.sort()
    rps = len(lat) / elapsed
    p50, p99 = statistics.median(lat), lat[int(len(lat) * 0.99) - 1]
    print(f"\n/positions: {len(lat)} requests by {CLIENTS} clients in {elapsed:.2f} s = "
          f"{rps:.0f} req/s; p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max "
          f"{lat[-1] * 1000:.1f} ms; answers {sorted(set(codes))} (503: {codes.count(503)})")
    print(f"writer: {rows} fills written meanwhile, slowest write {slowest_write * 1000:.0f} ms, "
          f"error {error}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} cores)")
    assert error is None and rows > 0
    assert set(codes) <= {200, 503} and codes.count(200) > 0.99 * len(codes)
    assert rps >= MIN_RPS
