"""Fixtures for the Kraken adapter tests: a fresh fake Kraken per test, fast timings, fake time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from trading_brain_tests.conftest import require_shared
from trading_brain_tests.fakes import kraken_data
from trading_brain_tests.fakes.kraken_server import FakeKraken

# The captured payloads were taken at this server time (http_server_time.json).
CAPTURE_TIME = datetime(2025, 11, 11, 0, 17, 4, tzinfo=UTC)


def require_data() -> None:
    require_shared(kraken_data.DATA_DIR / "rest" / "http_ohlc.json", "real Kraken payloads")


@pytest.fixture
def fake_kraken() -> Iterator[FakeKraken]:
    """A started fake Kraken (REST + WS on 127.0.0.1) fed with the real payloads."""
    require_data()
    with FakeKraken(heartbeat_s=0.05) as fk:
        yield fk


class FakeTime:
    """A monotonic clock whose ``sleep`` only advances it (records every sleep)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
