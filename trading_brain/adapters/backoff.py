"""The one retry back-off policy of the adapters: exponential delays with jitter.

Contract:
- ``backoff_delay(attempt, base_s, max_s, rng)`` is the delay before retry number ``attempt``
  (0-based): uniformly in ``[d/2, d]`` with ``d = min(max_s, base_s·2**attempt)``. Pure apart
  from the random draw, which comes from ``rng`` (a seeded ``random.Random`` in tests) or the
  module's generator.
- ``Backoff(base_s, max_s, rng)`` keeps the attempt count of one retrying loop: ``next_delay()``
  returns the delay for the current attempt and counts it; ``reset()`` starts over (after a
  success). ``delays()`` is the same sequence as an endless iterator that reads the live count,
  so a ``reset()`` between two ``next()`` calls takes effect at once.
Users: the DuckDB lock retry (``adapters.duckdb.connection``), the Kraken REST retries
(``adapters.kraken.client``) and the WebSocket sessions (``adapters.kraken.ws_session``).
"""

from __future__ import annotations

import random
from collections.abc import Generator


def backoff_delay(
    attempt: int, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Exponential back-off with jitter for retry number ``attempt`` (0-based)."""
    d = min(max_s, base_s * (2 ** max(0, attempt)))
    r = (rng or random).random()
    return d / 2 + r * d / 2


class Backoff:
    """The attempt counter and delays of one retrying loop (not thread-safe: one loop owns it)."""

    def __init__(self, base_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if base_s < 0 or max_s < 0:
            raise ValueError("base_s and max_s must not be negative")
        self.base_s, self.max_s = base_s, max_s
        self.attempt = 0
        self._rng = rng

    def next_delay(self) -> float:
        """The delay before the next retry; counts the attempt."""
        delay = backoff_delay(self.attempt, self.base_s, self.max_s, self._rng)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """The loop succeeded: the next delay is the shortest again."""
        self.attempt = 0

    def delays(self) -> Generator[float, None, None]:
        """``next_delay()`` forever (the shape websockets' ``reconnect_delays`` expects)."""
        while True:
            yield self.next_delay()
