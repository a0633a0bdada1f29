"""Token bucket and back-off, on a fake clock; spacing measured against the fake server."""

from __future__ import annotations

import random
import threading

import pytest

from trading_brain.adapters.backoff import backoff_delay
from trading_brain.adapters.kraken.client import KrakenClient
from trading_brain.adapters.kraken.ratelimit import TokenBucket
from trading_brain_tests.fakes.kraken_server import FakeKraken

from .conftest import FakeTime


def test_bucket_spaces_calls(fake_time: FakeTime) -> None:
    b = TokenBucket(2.0, 1.0, monotonic=fake_time.monotonic, sleep=fake_time.sleep)
    start = fake_time.t
    stamps = []
    for _ in range(5):
        b.acquire()
        stamps.append(fake_time.t - start)
    assert stamps == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])


def test_bucket_burst_capacity_then_rate(fake_time: FakeTime) -> None:
    b = TokenBucket(1.0, 3.0, monotonic=fake_time.monotonic, sleep=fake_time.sleep)
    assert [b.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.acquire() == pytest.approx(1.0)
    assert not b.try_acquire()
    fake_time.t += 10  # idle time refills only up to capacity
    assert [b.try_acquire() for _ in range(4)] == [True, True, True, False]
    with pytest.raises(ValueError):
        b.acquire(4.0)
    with pytest.raises(ValueError):
        TokenBucket(0, 1)


def test_block_for_delays_everyone(fake_time: FakeTime) -> None:
    b = TokenBucket(10.0, 1.0, monotonic=fake_time.monotonic, sleep=fake_time.sleep)
    b.acquire()
    b.block_for(3.0)
    assert not b.try_acquire()
    waited = b.acquire()
    assert waited == pytest.approx(3.1)  # the block, then one token at 10/s


def test_bucket_is_thread_safe_in_real_time() -> None:
    b = TokenBucket(200.0, 1.0)
    granted: list[int] = []

    def worker() -> None:
        for _ in range(5):
            b.acquire()
            granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(granted) == 20


def test_backoff_delay_grows_with_jitter() -> None:
    rng = random.Random(7)
    for attempt, (lo, hi) in enumerate([(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (2.5, 5.0)]):
        samples = [backoff_delay(attempt, 1.0, 5.0, rng) for _ in range(200)]
        assert all(lo <= s <= hi for s in samples)
        assert max(samples) - min(samples) > (hi - lo) * 0.5  # really jittered


def test_client_spaces_public_calls(fake_kraken: FakeKraken) -> None:
    client = KrakenClient(fake_kraken.rest_url, timeout_s=2, public_calls_per_s=10.0)
    for _ in range(6):
        client.server_time()
    stamps = [t for _, _, t in fake_kraken.state.calls("Time")]
    assert len(stamps) == 6
    # 10/s: five 100 ms gaps. Arrival times jitter with scheduling, so check the whole span.
    assert stamps[-1] - stamps[0] >= 0.45, stamps
