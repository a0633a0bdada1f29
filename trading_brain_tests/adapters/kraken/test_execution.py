"""KrakenExecution against the stateful fake Kraken: orders, fills, ambiguity, restart,
protection."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import SecretStr, ValidationError

from trading_brain.adapters.clock import SystemClock
from trading_brain.adapters.kraken.client import KrakenClient
from trading_brain.adapters.kraken.execution import KrakenExecution, valid_cl_ord_id
from trading_brain.domain.orders import OrderRequest, derive_client_order_id
from trading_brain.errors import AmbiguousOrderError, OperationalError, OrderRejected
from trading_brain.settings import KrakenSettings, Secrets, Settings
from trading_brain_tests.fakes import kraken_private as fp
from trading_brain_tests.fakes.kraken_server import FakeKraken

from .conftest import FakeTime

LIVE = {"execution": "kraken", "allow_live_orders": True}
KEYS = Secrets(kraken_api_key=SecretStr(fp.TEST_KEY), kraken_api_secret=SecretStr(fp.TEST_SECRET))


def make_exec(fk: FakeKraken, timeout_s: float = 2.0) -> KrakenExecution:
    settings = Settings(**LIVE, kraken=KrakenSettings(rest_url=fk.rest_url, timeout_s=timeout_s))
    ft = FakeTime()  # limiter waits and back-off are recorded, not slept
    client = KrakenClient(fk.rest_url, timeout_s=timeout_s, max_retries=2,
                          public_calls_per_s=1000.0, backoff_base_s=0.01, rng=random.Random(1),
                          monotonic=ft.monotonic, sleep=ft.sleep)
    return KrakenExecution(settings, KEYS, SystemClock(), client=client, tier="pro")


def req(cid: str = "entry-1", **kw: object) -> OrderRequest:
    base: dict = {"client_order_id": cid, "symbol": "BTC/USD", "side": "buy", "type": "limit",
                  "quantity": Decimal("0.1"), "limit_price": Decimal("30000")}
    base.update(kw)
    return OrderRequest(**base)


@pytest.mark.parametrize(("settings", "secrets", "missing"), [
    ({}, KEYS, 'execution = "kraken", allow_live_orders = true'),
    ({"execution": "kraken"}, KEYS, "allow_live_orders = true"),
    (LIVE, Secrets(), "KRAKEN_API_KEY, KRAKEN_API_SECRET"),
    (LIVE, Secrets(kraken_api_key=SecretStr("k")), "KRAKEN_API_SECRET"),
])
def test_refuses_live_trading_without_everything(settings: dict, secrets: Secrets,
                                                 missing: str) -> None:
    with pytest.raises(OperationalError) as info:
        KrakenExecution(Settings(**settings), secrets, SystemClock())
    assert str(info.value).endswith("missing: " + missing)


def test_order_request_validation() -> None:
    with pytest.raises(ValidationError):
        req(limit_price=None)
    with pytest.raises(ValidationError):
        req(type="market")  # a market order with a limit price
    with pytest.raises(ValidationError):
        req(stop_loss=Decimal("31000"), take_profit=Decimal("30000"))
    assert derive_client_order_id("i-1") == derive_client_order_id("i-1")
    assert derive_client_order_id("i-1", "sl") != derive_client_order_id("i-1", "tp")
    assert valid_cl_ord_id(derive_client_order_id("x")) and valid_cl_ord_id("a" * 32)
    assert not valid_cl_ord_id("x" * 19) and not valid_cl_ord_id("has space")


def test_limit_order_with_scripted_partial_fills(fake_kraken: FakeKraken) -> None:
    ex = make_exec(fake_kraken)
    ack = ex.place_order(req())
    sent = fake_kraken.state.calls("AddOrder")[0][1]
    assert (sent["pair"], sent["volume"], sent["price"], sent["cl_ord_id"], sent["oflags"]) == (
        "XBTUSD", "0.10000000", "30000.0", "entry-1", "fciq")
    st = ex.order_by_client_id("entry-1")
    assert st is not None and st.venue_order_id == ack.venue_order_id and st.state == "open"
    fp.script_fills(fake_kraken.state, "entry-1", ["0.04", "0.06"])
    assert fp.step(fake_kraken.state) == 1
    st = ex.order_by_client_id("entry-1")
    assert st is not None and st.state == "partially_filled" and st.filled_qty == Decimal("0.04")
    assert fp.step(fake_kraken.state) == 1
    st = ex.order_by_client_id("entry-1")
    assert st is not None and st.state == "filled" and st.filled_qty == Decimal("0.1")
    assert st.avg_price == Decimal("30000.0") and st.fee == Decimal("4.8")  # 0.16 % maker
    fills = ex.fills_since(datetime.now(UTC) - timedelta(minutes=1))
    assert [f.qty for f in fills] == [Decimal("0.04"), Decimal("0.06")]
    assert {f.client_order_id for f in fills} == {"entry-1"} and fills[0].fee_currency == "USD"
    bal = ex.balances()
    assert bal.get("BTC") == Decimal("0.6") and bal.get("USD") == Decimal("196995.2")


def test_market_order_fills_and_unknown_client_id_is_none(fake_kraken: FakeKraken) -> None:
    ex = make_exec(fake_kraken)
    ex.place_order(req("mkt-1", type="market", limit_price=None, quantity=Decimal("0.123456789")))
    assert fake_kraken.state.calls("AddOrder")[0][1]["volume"] == "0.12345678"  # rounded down
    st = ex.order_by_client_id("mkt-1")
    assert st is not None and st.state == "filled" and st.avg_price == Decimal("30300.1")
    assert ex.order_by_client_id("never-sent") is None


@pytest.mark.parametrize(("kw", "reason"), [
    ({"quantity": Decimal("100")}, "insufficient_funds"),
    ({"quantity": Decimal("0.00005")}, "order_minimum"),
    ({"client_order_id": "far-too-long-for-kraken"}, "invalid_client_order_id"),
])
def test_rejections(fake_kraken: FakeKraken, kw: dict, reason: str) -> None:
    with pytest.raises(OrderRejected) as info:
        make_exec(fake_kraken).place_order(req(**kw))
    assert info.value.reason == reason and fake_kraken.state.private.orders == {}


def test_timeout_after_accept_is_ambiguous_then_settled_without_a_second_order(
    fake_kraken: FakeKraken,
) -> None:
    fake_kraken.state.add_fault("AddOrder", delay_s=0.6, after_handler=True)
    ex = make_exec(fake_kraken, timeout_s=0.3)
    with pytest.raises(AmbiguousOrderError):
        ex.place_order(req("amb-1"))
    assert len(fake_kraken.state.calls("AddOrder")) == 1
    st = ex.order_by_client_id("amb-1")  # the lookup settles it: the order exists
    assert st is not None and st.state == "open"
    assert [o.cl_ord_id for o in fake_kraken.state.private.orders.values()] == ["amb-1"]


def test_rejected_before_accept_settles_as_absent(fake_kraken: FakeKraken) -> None:
    fake_kraken.state.add_fault("AddOrder", errors=["EService:Unavailable"])
    ex = make_exec(fake_kraken)
    with pytest.raises(AmbiguousOrderError):
        ex.place_order(req("amb-2"))
    assert ex.order_by_client_id("amb-2") is None  # safe to resubmit with the same id


def test_duplicate_open_client_id_is_refused(fake_kraken: FakeKraken) -> None:
    ex = make_exec(fake_kraken)
    ex.place_order(req("dup-1"))
    with pytest.raises(OrderRejected) as info:
        ex.place_order(req("dup-1"))
    assert info.value.reason == "duplicate_order" and len(fake_kraken.state.private.orders) == 1


def test_cancel_and_restart_reads_back_open_orders_and_fills(fake_kraken: FakeKraken) -> None:
    ex = make_exec(fake_kraken)
    ex.place_order(req("keep-1"))
    ex.place_order(req("gone-1", limit_price=Decimal("29000")))
    fp.fill(fake_kraken.state, "keep-1", "0.03")
    assert ex.cancel_order(client_order_id="gone-1") is True
    assert ex.cancel_order(client_order_id="gone-1") is False  # already canceled
    since = datetime.now(UTC) - timedelta(minutes=1)
    fresh = make_exec(fake_kraken)  # a restart: new adapter, new nonce source, same venue
    [st] = fresh.open_orders()
    assert (st.client_order_id, st.state, st.filled_qty) == ("keep-1", "partially_filled",
                                                             Decimal("0.03"))
    [f] = fresh.fills_since(since)
    assert f.client_order_id == "keep-1" and f.symbol == "BTC/USD" and f.side == "buy"
    gone = fresh.order_by_client_id("gone-1")
    assert gone is not None and gone.state == "canceled" and gone.reason == "User requested"


def test_fee_tier(fake_kraken: FakeKraken) -> None:
    tier = make_exec(fake_kraken).fee_tier("BTC/USD")
    assert (tier.taker, tier.maker) == (Decimal("0.0026"), Decimal("0.0016"))
    assert tier.volume_30d == Decimal("294.0219") and tier.volume_currency == "USD"


def test_one_stop_loss_placed_after_fill_and_found_again(fake_kraken: FakeKraken) -> None:
    """One exchange-native stop per position (the take-profit is the executor's exit)."""
    ex = make_exec(fake_kraken)
    entry = req("prot-1", stop_loss=Decimal("29000"), take_profit=Decimal("32000"))
    ex.place_order(entry)
    assert ex.reconcile_protective(entry).actions == ()  # not filled yet: nothing to protect
    fp.fill(fake_kraken.state, "prot-1")
    first = ex.reconcile_protective(entry)
    assert first.actions == ("placed sl",) and first.error is None
    assert first.stop_loss is not None and first.stop_loss.stop_price == Decimal("29000.0")
    assert first.stop_loss.quantity == Decimal("0.1") and first.stop_loss.state == "open"
    before = len(fake_kraken.state.requests)
    assert ex.reconcile_protective(entry).actions == ()  # idempotent: nothing placed twice
    assert len(fake_kraken.state.requests) - before == 2  # OpenOrders + one ClosedOrders page
    assert len(fake_kraken.state.private.orders) == 2  # the entry and ONE trigger
    assert fp.set_price(fake_kraken.state, "XBTUSD", "28000")  # the stop fires
    done = ex.reconcile_protective(entry)
    assert done.actions == () and done.stop_loss is not None
    assert done.stop_loss.state == "filled"


def test_a_refused_or_ambiguous_stop_is_returned_not_raised(fake_kraken: FakeKraken) -> None:
    ex = make_exec(fake_kraken)
    entry = req("prot-2", stop_loss=Decimal("29000"))
    ex.place_order(entry)
    fp.fill(fake_kraken.state, "prot-2")
    with fake_kraken.state.lock:  # the coins are gone: the trigger is refused for funds
        fake_kraken.state.private.balances["XXBT"] = Decimal(0)
    got = ex.reconcile_protective(entry)
    assert (got.refused, got.stop_loss) == ("insufficient_funds", None)
    assert got.entry is not None and got.entry.state == "filled"  # what it learnt is kept
    with fake_kraken.state.lock:
        fake_kraken.state.private.balances["XXBT"] = Decimal("0.5")
    fake_kraken.state.add_fault("AddOrder", errors=["EService:Unavailable"], after_handler=True)
    got = ex.reconcile_protective(entry, stop_cid="prot-2-sl2")
    assert got.ambiguous and got.stop_loss is None and "EService" in (got.error or "")
    st = ex.order_by_client_id("prot-2-sl2")  # it reached the venue: a lookup settles it
    assert st is not None and st.order_type == "stop-loss"


def test_unreadable_answer_after_accept_is_ambiguous(fake_kraken: FakeKraken) -> None:
    fake_kraken.state.add_fault("AddOrder", body=b"<html>502 from the edge", status=200,
                                after_handler=True)
    ex = make_exec(fake_kraken)
    with pytest.raises(AmbiguousOrderError):
        ex.place_order(req("garbled-1"))
    st = ex.order_by_client_id("garbled-1")
    assert st is not None and len(fake_kraken.state.private.orders) == 1


def test_balances_use_common_codes_and_skip_staked(fake_kraken: FakeKraken) -> None:
    fake_kraken.state.private.balances["ETH2.S"] = Decimal("5")
    bal = make_exec(fake_kraken).balances()
    assert bal.assets == {"USD": Decimal("200000"), "BTC": Decimal("0.5"), "ETH": Decimal("2")}


def test_prices_round_on_the_traders_side(fake_kraken: FakeKraken) -> None:
    ex = make_exec(fake_kraken)
    ex.place_order(req("buy-r", limit_price=Decimal("30000.09")))
    ex.place_order(req("sell-r", side="sell", limit_price=Decimal("30000.01")))
    sent = {p["cl_ord_id"]: p["price"] for _, p, _ in fake_kraken.state.calls("AddOrder")}
    assert sent == {"buy-r": "30000.0", "sell-r": "30000.1"}  # never pay more / sell lower


def test_lookups_and_fills_do_not_repeat_calls(fake_kraken: FakeKraken) -> None:
    ex = make_exec(fake_kraken)
    ex.place_order(req("open-1"))
    before = len(fake_kraken.state.requests)
    assert ex.order_by_client_id("open-1") is not None
    assert [r[0] for r in fake_kraken.state.requests[before:]] == ["OpenOrders"]
    fp.fill(fake_kraken.state, "open-1", "0.01")
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert [f.client_order_id for f in ex.fills_since(since)] == ["open-1"]
    assert [f.client_order_id for f in ex.fills_since(since)] == ["open-1"]
    assert len(fake_kraken.state.calls("QueryOrders")) == 1  # a txid's client id never changes


def test_fee_tiers_of_several_symbols_in_one_call(fake_kraken: FakeKraken) -> None:
    fake_kraken.state.private.taker_pct = Decimal("0.24")
    tiers = make_exec(fake_kraken).fee_tiers(["BTC/USD", "BTC/USDT"])
    assert {s: (t.taker, t.maker) for s, t in tiers.items()} == {
        "BTC/USD": (Decimal("0.0024"), Decimal("0.0016")),
        "BTC/USDT": (Decimal("0.0024"), Decimal("0.0016"))}
    assert len(fake_kraken.state.calls("TradeVolume")) == 1
