"""Fixtures of the API tests: a simulated home (``simulate --days 2``, once per session) with
evolution rows seeded, and ``ApiServer``: a real ``trading-brain api`` process on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from trading_brain.adapters.duckdb import Store

TOKEN = "test-token-0123456789"
CLI = [sys.executable, "-c", "from trading_brain.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(home: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--home", str(home), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def seed_evolution(store: Store) -> None:
    """One finished cycle with thoughts and tokens, a candidate in a paper test, a benchmark,
    a promotion review and a check-failure notification (simulate without --evolve has none)."""
    for sql in (
        """INSERT INTO evolution_cycles VALUES ('cyc-1', DATE '2026-12-06', 'h',
            TIMESTAMPTZ '2026-12-06 00:00:00+00', TIMESTAMPTZ '2026-12-06 00:05:00+00', 'done',
            'offline', '{"action": "create_candidate"}', NULL, 1234, 0.5)""",
        """INSERT INTO ai_thoughts (cycle_id, step, seq, role, content, created_at) VALUES
            ('cyc-1', 'decide', 1, 'user', 'context', TIMESTAMPTZ '2026-12-06 00:01:00+00'),
            ('cyc-1', 'decide', 2, 'assistant', 'tweak', TIMESTAMPTZ '2026-12-06 00:02:00+00')""",
        """INSERT INTO strategy_versions SELECT * REPLACE (2 AS version, 'candidate' AS status,
            'tweak from cyc-1' AS reason) FROM strategy_versions
            WHERE strategy_id = 'ema_cross' AND version = 1""",
        """INSERT INTO paper_tests (test_id, strategy_id, version, slot, tier, started_at,
            min_until, min_trades, status, updated_at) VALUES ('pt-1', 'ema_cross', 2,
            'candidate_1', 1, TIMESTAMPTZ '2026-12-06 00:05:00+00',
            TIMESTAMPTZ '2026-12-09 00:00:00+00', 5, 'running', now())""",
        """INSERT INTO truth_benchmarks (as_of, slot, scope, subject, metric, value,
            computed_at) VALUES (TIMESTAMPTZ '2026-12-06 00:00:00+00', 'active', 'slot',
            'active', 'win_rate', 0.4, now())""",
        """INSERT INTO promotion_reviews (promotion_id, strategy_id, version,
            incumbent_strategy_id, incumbent_version, promoted_at, verdict) VALUES
            ('pr-1', 'ema_cross', 1, 'ema_cross', 1, TIMESTAMPTZ '2026-12-05 00:00:00+00',
            'pending')""",
        """INSERT INTO token_usage (call_id, cycle_id, role, model, input_tokens, output_tokens,
            cost_usd, created_at) VALUES ('call-1', 'cyc-1', 'analyst', 'm', 1000, 234, 0.5,
            now())""",
        """INSERT INTO notifications (notification_id, ts, level, kind, subject, text, channels)
            VALUES ('n-1', now(), 'ERROR', 'check_failure', 'candles_5m_fresh', 'stale', 'log')""",
    ):
        store.execute(sql)


@pytest.fixture(scope="session")
def sim_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``trading-brain simulate --days 2`` (sim market, 9 symbols: ~5 s idle, up to ~20 s on
    a loaded machine; once per session, shared by every API test) plus seeded rows."""
    home = tmp_path_factory.mktemp("api") / "home"
    done = run_cli(home, "simulate", "--days", "2", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    seed_evolution(Store(home / "var" / "warehouse.duckdb"))
    return home


class ApiServer:
    """``trading-brain api`` as a subprocess on a free loopback port."""

    def __init__(self, home: Path, *extra: str, token: str = TOKEN) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TRADING_BRAIN_API_TOKEN": token}
        self.proc = subprocess.Popen(
            [*CLI, "--home", str(home), "api", "--port", str(self.port), *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api exited: {self.proc.stderr and self.proc.stderr.read()}")
            try:
                if self.get("/openapi.json", token=None)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("api did not start within 60 s")
            time.sleep(0.1)

    def get(self, path: str, token: str | None = TOKEN, timeout: float = 30
            ) -> tuple[int, dict[str, str], object]:
        req = urllib.request.Request(self.base + path)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, headers, body = r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, dict(e.headers), e.read()
        ctype = headers.get("content-type", "")
        return status, headers, json.loads(body) if "json" in ctype else body.decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


@pytest.fixture(scope="module")
def server(sim_home: Path) -> Iterator[ApiServer]:
    srv = ApiServer(sim_home, "--cache-ttl", "0")
    try:
        yield srv
    finally:
        srv.stop()
