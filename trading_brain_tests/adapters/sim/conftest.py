"""Shared fixtures for the sim market tests: a fixed "now" and a factory of clocked markets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.sim import SimMarket
from trading_brain.domain.instruments import DEFAULT_SYMBOLS

NOW = datetime(2026, 3, 14, 15, 27, 41, 123456, tzinfo=UTC)


@pytest.fixture
def make_market() -> Callable[..., tuple[SimMarket, SimClock]]:
    """Build a SimMarket on its own SimClock starting at ``now`` (default NOW)."""

    def build(
        symbols: Sequence[str] = DEFAULT_SYMBOLS, seed: int = 7, now: datetime = NOW
    ) -> tuple[SimMarket, SimClock]:
        clock = SimClock(now)
        return SimMarket(symbols, seed=seed, clock=clock), clock

    return build
