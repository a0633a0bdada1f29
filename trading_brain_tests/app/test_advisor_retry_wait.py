"""The SDK's own retries, configured once, never wait longer than ``RETRY_WAIT_CAP_S``.

The pinned SDK honours ``retry-after`` up to ~50 days, so a 429/529 answering
``retry-after: 3600`` would stall the nightly cycle for an hour per retry. The advisor's client
caps the SDK's own delay computation. The SDK's ``time`` module is replaced by a clock that
records every wait instead of sleeping: the waits asked for are asserted exactly, nothing sleeps
(no wall-clock assertion), and without the cap the recorded wait is 3600 s (the test fails).
Requests go through the real SDK (``make_client``, ``models.list``) to the loopback fake.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator

import anthropic
import anthropic._base_client as sdk_base
import pytest

from trading_brain.adapters.anthropic.client import RETRY_WAIT_CAP_S, CappedRetryClient
from trading_brain.adapters.duckdb import Store
from trading_brain.errors import AdvisorOutputRejected
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.fakes.anthropic_server import (
    FakeAnthropic,
    Scripted,
    ok,
    overloaded,
    rate_limited,
)

HOUR = 3600.0


class Clock:
    """Stands in for the SDK module's ``time``: ``sleep`` records, the rest is real."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(sdk_base, "time", c)
    return c


@pytest.fixture
def fa() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=h.KEY) as server:
        yield server


def test_the_cap_is_at_most_a_minute_and_overrides_the_sdks_own_method() -> None:
    assert 0 < RETRY_WAIT_CAP_S <= 60
    ours = inspect.signature(CappedRetryClient._calculate_retry_timeout)
    theirs = inspect.signature(anthropic.Anthropic._calculate_retry_timeout)
    assert list(ours.parameters) == list(theirs.parameters)  # an SDK upgrade that renames it fails


@pytest.mark.parametrize("fault", [rate_limited(HOUR), overloaded(HOUR)], ids=["429", "529"])
def test_an_hour_of_retry_after_waits_the_cap_then_the_retry_succeeds(
        fa: FakeAnthropic, store: Store, clock: Clock, fault: Scripted) -> None:
    fa.script(fault, ok(h.decision()))
    adv = h.advisor(fa, store, max_retries=2)
    assert isinstance(adv.client, CappedRetryClient)
    assert adv.decide(h.ctx()).action == "no_change"
    assert clock.waits == [RETRY_WAIT_CAP_S]  # not 3600
    assert len(fa.calls()) == 2  # the SDK's one retry; no second loop on top


def test_a_server_that_keeps_asking_for_an_hour_ends_the_call_in_bounded_attempts(
        fa: FakeAnthropic, store: Store, clock: Clock) -> None:
    fa.script(overloaded(HOUR), rate_limited(HOUR), overloaded(HOUR))
    with pytest.raises(AdvisorOutputRejected, match="HTTP 529 overloaded_error"):
        h.advisor(fa, store, max_retries=2).decide(h.ctx())
    assert len(fa.calls()) == 3  # max_retries + 1 attempts, then the cycle records the reason
    assert clock.waits == [RETRY_WAIT_CAP_S] * 2
    failed = [r["content"] for r in h.thoughts(store) if r["step"] == "analyst.1"
              and r["role"] == "host"]
    assert failed == ["failed: analyst: HTTP 529 overloaded_error: overloaded error"]


def test_a_short_retry_after_is_honoured_as_asked(fa: FakeAnthropic, store: Store,
                                                   clock: Clock) -> None:
    fa.script(rate_limited(1.5), ok(h.decision()))
    assert h.advisor(fa, store).decide(h.ctx()).action == "no_change"
    assert clock.waits == [1.5]
