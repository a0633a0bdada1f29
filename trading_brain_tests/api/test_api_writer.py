"""The API beside a writer: requests while fills are written through the store (only 503s
may fail, the writer never does) and under real executor ticks, a 503 while the writer holds
the file, and the event stream (a fill and a halt written after connecting arrive;
heartbeats; the generator ends on disconnect)."""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.http_api import events
from trading_brain.app.home.control import halt
from trading_brain.app.runtime import build_runtime
from trading_brain_tests.api.conftest import TOKEN, ApiServer

PATHS = ["/positions", "/fills?limit=20", "/equity?limit=5", "/status", "/metrics",
         "/orders?limit=5", "/trades?limit=5"]


def write_fill(store: Store, fill_id: str) -> None:
    """One fill and its cash-ledger entry, in one short read-write transaction."""
    with store.connect() as con:
        con.execute("BEGIN TRANSACTION")
        con.execute("""INSERT INTO fills VALUES (?, 'cid-w', 'v-w', 'BTC/USD', 'buy', 0.001, 50000,
            0.1, 'USD', now(), now())""", [fill_id])
        con.execute("""INSERT INTO cash_ledger (entry_id, ts, slot, amount, balance_after, cause,
            ref, symbol, seq) VALUES (?, now(), 'writer', -50, 0, 'buy', ?, 'BTC/USD', 0)""",
                    [f"{fill_id}-buy", fill_id])
        con.execute("COMMIT")


@pytest.fixture(scope="module")
def writer_home(sim_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the simulated home (these tests write into it)."""
    return Path(shutil.copytree(sim_home, tmp_path_factory.mktemp("w") / "home"))


@pytest.fixture(scope="module")
def live(writer_home: Path) -> Iterator[ApiServer]:
    srv = ApiServer(writer_home, "--cache-ttl", "0", "--lock-budget", "0.5", "--poll", "0.1",
                    "--heartbeat", "0.3")
    try:
        yield srv
    finally:
        srv.stop()


def test_requests_beside_a_writer_fail_only_with_503(live: ApiServer, writer_home: Path) -> None:
    store = Store(writer_home / "var" / "warehouse.duckdb", lock_budget_s=30)
    stop, written, errors = threading.Event(), [], []

    def writer() -> None:
        try:
            while not stop.is_set():
                fid = f"w-{uuid.uuid4().hex[:12]}"
                write_fill(store, fid)
                written.append(fid)
        except Exception as e:  # the assertion below reports it
            errors.append(e)

    statuses: list[int] = []

    def reader(i: int) -> None:
        # At least 15 requests each, and on until the writer has committed 5 rows: under CPU
        # load the writer may get few turns in 15 requests (seen on a loaded machine).
        k, deadline = 0, time.monotonic() + 120
        while k < 15 or (len(written) < 5 and not errors and time.monotonic() < deadline):
            statuses.append(live.get(PATHS[(i + k) % len(PATHS)])[0])
            k += 1

    w = threading.Thread(target=writer)
    w.start()
    readers = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    stop.set()
    w.join()
    assert errors == []
    assert len(written) >= 5
    assert set(statuses) <= {200, 503} and statuses.count(200) >= len(statuses) // 2, statuses
    _s, _h, fills = live.get("/fills?limit=1000&symbol=BTC/USD")
    assert isinstance(fills, dict)
    assert set(written) <= {f["fill_id"] for f in fills["items"]}


def test_a_held_writer_lock_is_a_503_then_reads_resume(live: ApiServer, writer_home: Path
                                                       ) -> None:
    con = duckdb.connect(str(writer_home / "var" / "warehouse.duckdb"))  # read-write: the lock
    try:
        answers = {p: live.get(p) for p in ("/positions", "/status", "/metrics", "/events")}
    finally:
        con.close()
    for path, (status, headers, body) in answers.items():
        assert status == 503 and headers.get("retry-after") == "1", path
        assert isinstance(body, dict) and body["error"].startswith("warehouse busy: "), path
        assert "locked by another process" in body["error"] and "\n" not in body["error"]
    assert live.get("/positions")[0] == 200


def _sse(live: ApiServer) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=20)
    conn.request("GET", "/events", headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("content-type", "").startswith(
        "text/event-stream")
    return conn, resp


def test_a_fill_written_after_connecting_is_streamed(live: ApiServer, writer_home: Path) -> None:
    conn, resp = _sse(live)
    try:
        assert resp.readline() == b": connected\n"
        fid = f"sse-{uuid.uuid4().hex[:8]}"
        write_fill(Store(writer_home / "var" / "warehouse.duckdb"), fid)
        seen, heartbeat, deadline = None, False, time.monotonic() + 20
        while seen is None and time.monotonic() < deadline:
            line = resp.readline().decode()
            heartbeat |= line.startswith(": heartbeat")
            if line.startswith("data: ") and fid in line:
                seen = json.loads(line[6:])
        assert seen is not None and seen["kind"] == "fill" and seen["id"] == fid
        assert seen["symbol"] == "BTC/USD" and seen["qty"] == pytest.approx(0.001)
        halt(build_runtime(writer_home), ["active"], "api test halt")  # what `halt` runs
        halted = None
        while halted is None and time.monotonic() < deadline:
            line = resp.readline().decode()
            heartbeat |= line.startswith(": heartbeat")
            if line.startswith("data: ") and "api test halt" in line:
                halted = json.loads(line[6:])
        assert halted is not None and halted["kind"] == "halt"
        assert halted["risk_kind"] == "halt" and halted["details"]["message"] == "api test halt"
        while not heartbeat and time.monotonic() < deadline:  # 0.3 s of silence
            heartbeat = resp.readline().startswith(b": heartbeat")
        assert heartbeat
    finally:
        conn.close()


def test_the_stream_ends_when_the_client_goes_away() -> None:
    class Poller:
        polls = 0

        def poll(self) -> list[events.Event]:
            self.polls += 1
            return [events.Event("fill", f"fill|t|{self.polls}", {"n": self.polls})]

    gone = {"after": 3}

    async def is_disconnected() -> bool:
        gone["after"] -= 1
        return gone["after"] < 0

    async def drain() -> list[str]:
        return [c async for c in events.stream(Poller(), is_disconnected,  # type: ignore[arg-type]
                                               poll_s=0, heartbeat_s=60)]

    out = asyncio.run(drain())
    assert out[0] == ": connected\n\n" and len(out) == 4
    assert out[1].startswith("id: fill|t|1\nevent: fill\ndata: ")


@pytest.fixture(scope="module")
def executor_home(sim_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another copy of the simulated home, for real executor ticks."""
    return Path(shutil.copytree(sim_home, tmp_path_factory.mktemp("x") / "home"))


def test_requests_under_a_running_executor(executor_home: Path) -> None:
    """Real executor ticks (``execute_once``: reconcile, stops and take-profits against the sim
    market, ledger, snapshot) in a thread while clients read: only 200/503 answers, no tick
    fails, and the API sees the ticks' snapshots. ~6 s idle (a server, a runtime, 2+ ticks);
    up to ~20 s on a loaded machine."""
    from trading_brain.app.execute import execute_once

    srv = ApiServer(executor_home, "--cache-ttl", "0", "--lock-budget", "0.5")
    rt = build_runtime(executor_home)
    stop, ticks, errors = threading.Event(), [], []

    def executor() -> None:
        try:
            while not stop.is_set():
                ticks.append(execute_once(rt).report.ts)
        except Exception as e:  # the assertion below reports it
            errors.append(e)

    statuses: list[int] = []
    try:
        x = threading.Thread(target=executor)
        x.start()
        deadline = time.monotonic() + 60
        while (len(ticks) < 2 or len(statuses) < 40) and time.monotonic() < deadline \
                and not errors:
            statuses += [srv.get(p)[0] for p in PATHS[:4]]
        stop.set()
        x.join()
        _s, _h, eq = srv.get("/equity?limit=1")
    finally:
        srv.stop()
    assert errors == [] and len(ticks) >= 2
    assert set(statuses) <= {200, 503} and statuses.count(200) >= len(statuses) // 2, statuses
    newest = rt.store.snapshots("active")[-1].ts  # what the executor's store holds now
    assert isinstance(eq, dict)
    assert datetime.fromisoformat(eq["items"][0]["ts"]) == newest.astimezone(UTC)
