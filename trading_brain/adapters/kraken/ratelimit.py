"""Client-side rate limiting for the Kraken adapter (retry back-off: ``adapters.backoff``).

Contract:
- ``TokenBucket(rate_per_s, capacity)`` is a thread-safe token bucket: ``acquire(cost)`` blocks
  (through the injected ``sleep``) until ``cost`` tokens are available and returns the seconds it
  waited. Kraken's public REST limit is per IP, ≈1 call/s sustained (CCXT spaces OHLC calls by
  1.2 s), so the default capacity is 1 — calls are spaced, never burst. The private REST counter
  (per key: max 15–20, decay 0.33–1/s) maps onto the same bucket with ``capacity=max`` and
  ``rate=decay``; a later issue adds that bucket beside the public one.
- ``block_for(seconds)`` empties the bucket and forbids any token until ``now + seconds``: used
  when the venue says "slow down" (``EAPI:Rate limit exceeded``, ``EService:Throttled: <ts>``,
  HTTP 429) so that every caller sharing the bucket backs off, not only the one refused.
Time and sleep are injectable so tests run on a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_EPS = 1e-9  # float slack so that refill rounding never leaves a caller spinning
_MIN_WAIT_S = 1e-4


class TokenBucket:
    """A blocking, thread-safe token bucket with an injectable monotonic clock and sleep."""

    def __init__(
        self,
        rate_per_s: float,
        capacity: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_s <= 0 or capacity <= 0:
            raise ValueError("rate_per_s and capacity must be positive")
        self.rate = float(rate_per_s)
        self.capacity = float(capacity)
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = monotonic()
        self._blocked_until = float("-inf")
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        start = max(self._stamp, self._blocked_until)
        if now > start:
            self._tokens = min(self.capacity, self._tokens + (now - start) * self.rate)
        self._stamp = max(self._stamp, now)

    def _wait_needed(self, cost: float, now: float) -> float:
        """Seconds to wait before ``cost`` tokens exist (0 when they do; reserves them then)."""
        if now < self._blocked_until:
            return self._blocked_until - now
        self._refill(now)
        if self._tokens >= cost - _EPS:
            self._tokens = max(0.0, self._tokens - cost)
            return 0.0
        return max((cost - self._tokens) / self.rate, _MIN_WAIT_S)

    def acquire(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens, sleeping as long as needed; return the total seconds slept."""
        if cost > self.capacity:
            raise ValueError(f"cost {cost} exceeds bucket capacity {self.capacity}")
        waited = 0.0
        while True:
            with self._lock:
                wait = self._wait_needed(cost, self._monotonic())
            if wait <= 0:
                return waited
            self._sleep(wait)
            waited += wait

    def try_acquire(self, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if available right now; never sleeps."""
        with self._lock:
            return self._wait_needed(cost, self._monotonic()) == 0.0

    def block_for(self, seconds: float) -> None:
        """Empty the bucket and refuse tokens for ``seconds`` (the venue asked us to slow down)."""
        with self._lock:
            now = self._monotonic()
            self._tokens = 0.0
            self._stamp = now
            self._blocked_until = max(self._blocked_until, now + max(0.0, seconds))

