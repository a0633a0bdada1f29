"""``SandboxWorkers``: one worker per strategy version, reused, bounded (LRU eviction kills the
victim), thread safe, booted in the background on the spawner thread, replaced when dead,
all closed by ``close()``; ``validate`` hands out a fresh worker outside the pool."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from trading_brain.adapters.sandbox.pool import PooledWorker, SandboxWorkers
from trading_brain.errors import StrategyError
from trading_brain.ports import StrategyWorker, StrategyWorkers
from trading_brain_tests.adapters.sandbox.helpers import synthetic_bars

pytestmark = pytest.mark.slow

SOURCE = '''
import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "pooled"
VERSION = {version}
WARMUP_BARS = 5


class Params(BaseModel):
    size: float = 0.1


def generate(bars, params):
    n = bars.height
    return pl.DataFrame({{"action": ["hold"] * n, "size": [params.size] * n,
                         "stop_loss": [None] * n, "take_profit": [None] * n,
                         "intent": ["swing"] * n, "confidence": [0.5] * n}})
'''
A, B, C = (SOURCE.format(version=v) for v in (1, 2, 3))
BARS = synthetic_bars(40)


def pid_of(handle: PooledWorker) -> int:
    """The pid of the live worker behind ``handle`` (after a call)."""
    entry = handle.pool._live[handle.key]
    assert entry.worker._proc is not None
    return entry.worker._proc.pid


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_version_is_served_by_one_reused_worker():
    with SandboxWorkers() as pool:
        assert isinstance(pool, StrategyWorkers)
        a = pool.get("pooled@1", A)
        assert isinstance(a, StrategyWorker)
        a.generate(BARS)
        pid = pid_of(a)
        again = pool.get("pooled@1", A)
        assert again is a
        again.generate(BARS, {"size": 0.2})
        assert pid_of(again) == pid
        b = pool.get("pooled@2", B)
        b.generate(BARS)
        assert pid_of(b) != pid and (a.version, b.version) == (1, 2)
        assert len(pool.live()) == 2
    assert gone(pid)


def test_eviction_kills_the_least_recently_used_worker_and_a_handle_stays_usable():
    with SandboxWorkers(max_workers=2) as pool:
        a, b = pool.get("pooled@1", A), pool.get("pooled@2", B)
        a.generate(BARS)
        b.generate(BARS)
        pid_a, pid_b = pid_of(a), pid_of(b)
        a.generate(BARS)  # a is now the most recent: c evicts b
        c = pool.get("pooled@3", C)
        c.generate(BARS)
        assert gone(pid_b) and not gone(pid_a)
        assert set(pool.live()) == {a.key, c.key}
        b.generate(BARS)  # the old handle admits its version again, in a fresh worker
        assert pid_of(b) != pid_b and gone(pid_a)  # and that evicted a (least recent)
        assert len(pool.live()) == 2


def test_close_kills_every_worker_and_the_service_stays_usable():
    pool = SandboxWorkers()
    handles = [pool.get(f"pooled@{i}", s) for i, s in enumerate((A, B, C), 1)]
    check = pool.validate(A)
    check.generate(BARS)
    for h in handles:
        h.generate(BARS)
    pids = [pid_of(h) for h in handles] + [check._proc.pid]
    pool.close()
    assert all(gone(p) for p in pids) and pool.live() == []
    handles[0].generate(BARS)
    assert pid_of(handles[0]) not in pids
    pool.close()


def test_two_threads_get_one_worker_per_version():
    with SandboxWorkers() as pool:
        barrier = threading.Barrier(4)
        got: dict[int, tuple[PooledWorker, int]] = {}
        errors: list[BaseException] = []

        def use(i: int) -> None:
            try:
                barrier.wait()
                h = pool.get("pooled", A if i % 2 else B)
                for _ in range(3):
                    h.generate(BARS)
                got[i] = (h, pid_of(h))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=use, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert got[1] == got[3] and got[0] == got[2]  # same handle, same worker per version
        assert got[1][1] != got[0][1]
        assert len(pool.live()) == 2


def test_a_dead_worker_is_replaced_on_the_next_call():
    with SandboxWorkers() as pool:
        a = pool.get("pooled@1", A)
        a.generate(BARS)
        pid = pid_of(a)
        os.killpg(pid, signal.SIGKILL)
        while not a.pool._live[a.key].worker._proc.proc.poll():  # reaped: it is dead
            pass
        assert a.generate(BARS).height == BARS.height  # no SandboxViolation: a fresh worker
        assert pid_of(a) != pid


def test_the_boot_runs_in_the_background_on_the_spawner_thread():
    before = {t.name for t in threading.enumerate()}
    with SandboxWorkers() as pool:
        a = pool.get("pooled@1", A)
        entry = pool._live[a.key]
        assert entry.boot is not None
        entry.boot.result(timeout=60)
        assert entry.worker._proc is not None and entry.worker._ready is not None
    new = {t.name for t in threading.enumerate()} - before
    assert new <= {"sandbox-spawner"}  # no short-lived thread ever started a worker


def test_a_failed_boot_is_raised_by_the_first_call():
    broken = A + "\n\nclass Broken(BaseModel):\n    x: int = 'not an int' + 1\n"
    with SandboxWorkers() as pool:
        h = pool.get("pooled@1", broken)
        with pytest.raises(StrategyError, match="loading the strategy failed: TypeError"):
            h.generate(BARS)


def test_validate_hands_out_a_fresh_worker_outside_the_pool():
    with SandboxWorkers() as pool:
        a = pool.get("pooled@1", A)
        a.generate(BARS)
        fresh = pool.validate(A)
        fresh.generate(BARS)
        assert fresh._proc.pid != pid_of(a) and pool.live() == [a.key]
        fresh.close()


def test_the_static_gate_refuses_a_source_at_get():
    with SandboxWorkers() as pool, pytest.raises(StrategyError):
        pool.get("evil@1", A.replace("import polars as pl", "import os\nimport polars as pl"))
    assert pool.live() == []
