"""Private REST against the fake Kraken: auth, nonces, retry policy, counter, rejections."""

from __future__ import annotations

import logging
import random

import pytest

from trading_brain.adapters.kraken.client import KrakenClient
from trading_brain.adapters.kraken.private import KrakenPrivate, call_cost, enable_private
from trading_brain.adapters.kraken.signing import Credentials, NonceSource
from trading_brain.errors import (
    AmbiguousOrderError,
    ConfigError,
    OperationalError,
    OrderRejected,
    RateLimited,
    TemporaryError,
)
from trading_brain_tests.fakes.kraken_private import TEST_KEY, TEST_SECRET
from trading_brain_tests.fakes.kraken_server import FakeKraken

from .conftest import FakeTime

OTHER_SECRET = ("kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZu"
                "j6F1huXg==")
BUY = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "30000.0",
       "volume": "0.01000000", "cl_ord_id": "entry-1"}


def make_private(fk: FakeKraken, ft: FakeTime | None = None, *, key: str = TEST_KEY,
                 secret: str = TEST_SECRET, tier: str = "pro", nonces: NonceSource | None = None,
                 **kw: object) -> KrakenPrivate:
    opts: dict = {"timeout_s": 2.0, "max_retries": 3, "public_calls_per_s": 1000.0,
                  "backoff_base_s": 0.1, "rng": random.Random(1)}
    if ft is not None:
        opts.update(monotonic=ft.monotonic, sleep=ft.sleep)
    opts.update(kw)
    client = KrakenClient(fk.rest_url, **opts)
    return enable_private(client, Credentials(key, secret), tier=tier, nonces=nonces)


def test_balance_is_signed_and_verified(fake_kraken: FakeKraken) -> None:
    bal = make_private(fake_kraken).balance()
    assert bal["ZUSD"].startswith("200000") and bal["XXBT"].startswith("0.5")
    assert fake_kraken.state.private.signatures_checked == 1
    (_, params, _), = fake_kraken.state.calls("Balance")
    assert int(params["nonce"]) == fake_kraken.state.private.last_nonce


def test_bad_signature_is_operational_not_retried_and_leaks_nothing(
    fake_kraken: FakeKraken, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(OperationalError, match="EAPI:Invalid signature") as info:
        make_private(fake_kraken, secret=OTHER_SECRET).balance()
    assert len(fake_kraken.state.calls("Balance")) == 1
    for text in (str(info.value), repr(info.value), caplog.text):
        assert OTHER_SECRET[:12] not in text and TEST_KEY not in text


def test_unknown_key_is_operational(fake_kraken: FakeKraken) -> None:
    with pytest.raises(OperationalError, match="EAPI:Invalid key"):
        make_private(fake_kraken, key="someone-else").balance()


def test_invalid_nonce_is_retried_once_with_a_fresh_nonce(fake_kraken: FakeKraken) -> None:
    fake_kraken.state.add_fault("Balance", errors=["EAPI:Invalid nonce"])
    p = make_private(fake_kraken)
    assert "ZUSD" in p.balance()
    calls = fake_kraken.state.calls("Balance")
    assert len(calls) == 2 and p.sender.nonce_retries == 1
    assert int(calls[1][1]["nonce"]) > int(calls[0][1]["nonce"])


def test_second_adapter_with_colliding_nonce_recovers_once(fake_kraken: FakeKraken) -> None:
    make_private(fake_kraken, nonces=NonceSource(now_ms=lambda: 5000)).balance()
    late = make_private(fake_kraken, nonces=NonceSource(now_ms=lambda: 5000))
    late.balance()  # 5000 refused by the fake's real nonce check, 5001 accepted
    assert late.sender.nonce_retries == 1 and fake_kraken.state.private.last_nonce == 5001


def test_persistently_invalid_nonce_surfaces_after_one_retry(fake_kraken: FakeKraken) -> None:
    fake_kraken.state.private.last_nonce = 10**18
    with pytest.raises(OperationalError, match="Invalid nonce"):
        make_private(fake_kraken).balance()
    assert len(fake_kraken.state.calls("Balance")) == 2


def test_idempotent_reads_retry_with_backoff(fake_kraken: FakeKraken, fake_time: FakeTime) -> None:
    fake_kraken.state.add_fault("OpenOrders", errors=["EService:Unavailable"], times=2)
    assert make_private(fake_kraken, fake_time).open_orders() == {}
    assert len(fake_kraken.state.calls("OpenOrders")) == 3
    assert len(fake_time.sleeps) == 2 and fake_time.sleeps[1] > fake_time.sleeps[0] * 0.9


def test_reads_give_up_after_max_retries(fake_kraken: FakeKraken, fake_time: FakeTime) -> None:
    fake_kraken.state.add_fault("Balance", status=502, times=None)
    with pytest.raises(TemporaryError):
        make_private(fake_kraken, fake_time, max_retries=2).balance()
    assert len(fake_kraken.state.calls("Balance")) == 3


@pytest.mark.parametrize("fault", [{"errors": ["EService:Unavailable"]},
                                   {"errors": ["EService:Busy"]}, {"status": 502},
                                   {"delay_s": 1.0}])
def test_add_order_transient_failure_is_ambiguous_and_never_resent(
    fake_kraken: FakeKraken, fake_time: FakeTime, fault: dict
) -> None:
    fake_kraken.state.add_fault("AddOrder", times=None, **fault)
    p = make_private(fake_kraken, fake_time, timeout_s=0.3)
    with pytest.raises(AmbiguousOrderError):
        p.add_order(BUY)
    assert len(fake_kraken.state.calls("AddOrder")) == 1


def test_add_order_refused_by_rate_limit_is_not_ambiguous(fake_kraken: FakeKraken) -> None:
    fake_kraken.state.add_fault("AddOrder", errors=["EOrder:Rate limit exceeded"])
    with pytest.raises(RateLimited):
        make_private(fake_kraken).add_order(BUY)
    assert fake_kraken.state.private.orders == {}


@pytest.mark.parametrize(("volume", "price", "reason"), [
    ("100.0", "30000.0", "insufficient_funds"),
    ("0.00005", "30000.0", "order_minimum"),
    ("0.0001", "1.0", "cost_minimum"),
])
def test_venue_rejections_carry_reason_codes(fake_kraken: FakeKraken, volume: str, price: str,
                                             reason: str) -> None:
    with pytest.raises(OrderRejected) as info:
        make_private(fake_kraken).add_order({**BUY, "volume": volume, "price": price})
    assert info.value.reason == reason
    assert fake_kraken.state.private.orders == {}


def test_call_costs() -> None:
    assert call_cost("Balance") == 1 and call_cost("TradesHistory") == 2
    assert call_cost("AddOrder") == 0 and call_cost("CancelOrder") == 0


def test_private_counter_spaces_calls_by_tier(fake_kraken: FakeKraken, fake_time: FakeTime) -> None:
    p = make_private(fake_kraken, fake_time, tier="starter")  # max 15, decay 0.33/s
    for _ in range(15):
        p.balance()
    assert fake_time.sleeps == []
    for i in range(3):
        p.add_order({**BUY, "volume": "0.0001", "cl_ord_id": f"c{i}"})
    assert fake_time.sleeps == []  # AddOrder does not use the REST counter
    p.balance()
    assert sum(fake_time.sleeps) == pytest.approx(1 / 0.33, rel=0.01)
    p.trades_history()
    assert sum(fake_time.sleeps) == pytest.approx(3 / 0.33, rel=0.01)  # costs 2


def test_unknown_tier_and_bad_cancel_args_are_config_errors(fake_kraken: FakeKraken) -> None:
    with pytest.raises(ConfigError, match="tier"):
        make_private(fake_kraken, tier="whale")
    with pytest.raises(ConfigError):
        make_private(fake_kraken).cancel_order()
