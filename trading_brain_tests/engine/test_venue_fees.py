"""The venue fee tier refresh: pure decisions, then against the fake Kraken (TradeVolume) over a
real warehouse, then through the executor sensor of a live home and a paper home."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.definitions import defs
from trading_brain.defs.trading.executor import executor_sensor
from trading_brain.domain.orders import FeeTier
from trading_brain.engine import venue_fees as vf
from trading_brain.errors import TemporaryError
from trading_brain_tests.defs.conftest import resource, write_home
from trading_brain_tests.fakes.kraken_live import LiveWorld, write_live_home
from trading_brain_tests.fakes.kraken_server import FakeKraken

DAY1 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_process() -> Iterator[None]:
    vf.forget_process_state()
    yield
    vf.forget_process_state()


@pytest.mark.parametrize(("last", "first", "failed", "due"), [
    (None, False, None, True),  # never refreshed
    (DAY1 - timedelta(hours=9), True, None, True),  # first tick after start, same day
    (DAY1 - timedelta(hours=9), False, None, False),  # same UTC day
    (DAY1 - timedelta(hours=11), False, None, True),  # 23:00 the day before
    (None, True, DAY1 - timedelta(minutes=1), False),  # failed a minute ago: wait
    (None, True, DAY1 - vf.RETRY_AFTER, True),
])
def test_refresh_due(last, first: bool, failed, due: bool) -> None:
    assert vf.refresh_due(DAY1, last, first, failed) is due


def _fees(store: Store) -> list[tuple[str, float, float]]:
    return [tuple(r) for r in store.execute(
        "SELECT symbol, fee_taker, fee_maker FROM fee_schedule ORDER BY valid_from, symbol")]


def _setup(tmp_path, fk: FakeKraken) -> LiveWorld:
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    w.store.upsert_asset_pairs("kraken", list(w.market.asset_pairs(["BTC/USD"]).values()))
    return w


def _refresh(w: LiveWorld, now: datetime, live: bool = True) -> vf.FeeRefresh:
    return vf.refresh_venue_fees(w.store, w.ex, "kraken", ["BTC/USD", "ETH/USD"], now, live=live)


def test_pure_fee_update_keeps_unchanged_pairs_out(tmp_path, fk) -> None:
    w = _setup(tmp_path, fk)
    pairs = w.store.read_asset_pairs()
    same = FeeTier(symbol="BTC/USD", taker=Decimal("0.0026"), maker=Decimal("0.0016"))
    assert vf.with_venue_fees(pairs, {"BTC/USD": same}) == []
    (new,) = vf.with_venue_fees(pairs, {"BTC/USD": same.model_copy(update={"taker": Decimal(
        "0.002")}), "XYZ/USD": same})
    assert (new.symbol, new.fee_taker, new.fee_maker, new.ordermin) == (
        "BTC/USD", 0.002, 0.0016, pairs["BTC/USD"].ordermin)


def test_fee_tier_is_read_at_start_and_once_per_utc_day(tmp_path, fk) -> None:
    w = _setup(tmp_path, fk)
    assert _fees(w.store) == [("BTC/USD", 0.0026, 0.0016)]  # the public tier-0 schedule
    fk.state.private.taker_pct, fk.state.private.maker_pct = Decimal("0.24"), Decimal("0.14")
    first = _refresh(w, DAY1)
    assert (first.read, first.changed) == (["BTC/USD"], ["BTC/USD"])  # ETH/USD: no stored pair
    assert (w.store.read_asset_pairs()["BTC/USD"].fee_taker,
            w.store.read_asset_pairs()["BTC/USD"].fee_maker) == (0.0024, 0.0014)
    assert _fees(w.store)[-1] == ("BTC/USD", 0.0024, 0.0014)
    assert w.store.get_meta(vf.META_REFRESHED) == DAY1.isoformat()
    for k in range(1, 4):  # later ticks of the same UTC day ask nothing
        assert _refresh(w, DAY1 + timedelta(hours=k)).skipped == "not_due"
    assert len(fk.state.calls("TradeVolume")) == 1 and len(_fees(w.store)) == 2
    vf.forget_process_state()  # a restart: the first tick reads again; same rates, no new row
    assert _refresh(w, DAY1 + timedelta(hours=5)).changed == []
    assert len(fk.state.calls("TradeVolume")) == 2 and len(_fees(w.store)) == 2
    fk.state.private.taker_pct = Decimal("0.22")  # 30-day volume moved the account up a tier
    assert _refresh(w, DAY1 + timedelta(days=1)).changed == ["BTC/USD"]
    assert _fees(w.store)[-1] == ("BTC/USD", 0.0022, 0.0014)
    assert w.store.get_meta(vf.META_REFRESHED) == (DAY1 + timedelta(days=1)).isoformat()


def test_venue_failure_leaves_the_old_fees_and_retries_later(tmp_path, fk) -> None:
    w = _setup(tmp_path, fk)
    _refresh(w, DAY1)
    fk.state.private.taker_pct = Decimal("0.20")
    fk.state.add_fault("TradeVolume", errors=["EService:Unavailable"], times=None)
    day2 = DAY1 + timedelta(days=1)
    with pytest.raises(TemporaryError):
        _refresh(w, day2)
    assert w.store.read_asset_pairs()["BTC/USD"].fee_taker == 0.0026
    assert len(_fees(w.store)) == 1 and w.store.get_meta(vf.META_REFRESHED) == DAY1.isoformat()
    calls = len(fk.state.calls("TradeVolume"))
    assert _refresh(w, day2 + timedelta(minutes=1)).skipped == "not_due"  # backs off
    assert len(fk.state.calls("TradeVolume")) == calls
    fk.state.clear_faults()
    assert _refresh(w, day2 + vf.RETRY_AFTER).changed == ["BTC/USD"]
    assert w.store.read_asset_pairs()["BTC/USD"].fee_taker == 0.002


def test_unreadable_tier_is_reported_and_trading_goes_on(tmp_path, fk) -> None:
    w = _setup(tmp_path, fk)
    fk.state.add_fault("TradeVolume", body=b'{"error": [], "result": {"fees": {}}}', status=200)
    got = _refresh(w, DAY1)
    assert got.error is not None and "DataError" in got.error
    assert _fees(w.store) == [("BTC/USD", 0.0026, 0.0016)]
    assert w.store.get_meta(vf.META_REFRESHED) is None


def test_a_fresh_home_reads_the_tier_once_asset_pairs_exist(tmp_path, fk) -> None:
    """Issue 15: the first tick ran before ``asset_pairs`` existed and stored ``{}`` as today's
    tiers, so TradeVolume was never called that day. Now nothing is stored until it can be."""
    w = LiveWorld(tmp_path / "w.duckdb", fk)  # no asset_pairs yet
    assert _refresh(w, DAY1).skipped == "no_pairs"
    assert fk.state.calls("TradeVolume") == []
    assert w.store.get_meta(vf.META_REFRESHED) is None and w.store.get_meta(vf.META_TIERS) is None
    w.store.upsert_asset_pairs("kraken", list(w.market.asset_pairs(["BTC/USD"]).values()))
    fk.state.private.taker_pct = Decimal("0.24")
    got = _refresh(w, DAY1 + timedelta(minutes=1))  # same process, same UTC day
    assert (got.read, got.changed) == (["BTC/USD"], ["BTC/USD"])
    assert len(fk.state.calls("TradeVolume")) == 1
    assert _refresh(w, DAY1 + timedelta(minutes=2)).skipped == "not_due"


def test_an_empty_answer_is_a_failure_retried_until_it_succeeds(tmp_path, fk) -> None:
    w = _setup(tmp_path, fk)
    answers: list[dict] = [{}, {}]

    class Venue:  # TradeVolume answered without the symbol twice, then properly
        def fee_tiers(self, symbols: list[str]) -> dict:
            return answers.pop(0) if answers else w.ex.fee_tiers(symbols)

    first = vf.refresh_venue_fees(w.store, Venue(), "kraken", ["BTC/USD"], DAY1, live=True)
    assert first.error is not None and "no fee tier for BTC/USD" in first.error
    assert w.store.get_meta(vf.META_TIERS) is None
    again = vf.refresh_venue_fees(w.store, Venue(), "kraken", ["BTC/USD"],
                                  DAY1 + timedelta(minutes=1), live=True)
    assert again.skipped == "not_due"  # backs off
    for k in (1, 2):
        got = vf.refresh_venue_fees(w.store, Venue(), "kraken", ["BTC/USD"],
                                    DAY1 + k * vf.RETRY_AFTER, live=True)
    assert got.read == ["BTC/USD"] and got.error is None
    assert "BTC/USD" in w.store.get_meta(vf.META_TIERS)


def test_stored_tiers_missing_a_symbol_are_read_again_the_same_day(tmp_path, fk) -> None:
    w = _setup(tmp_path, fk)
    _refresh(w, DAY1)
    w.store.set_meta(vf.META_TIERS, "{}")  # what a home hit by the old bug holds
    assert _refresh(w, DAY1 + timedelta(minutes=1)).read == ["BTC/USD"]
    assert len(fk.state.calls("TradeVolume")) == 2


def test_overlay_applies_the_last_venue_tier(tmp_path, fk) -> None:
    w = _setup(tmp_path, fk)
    public = w.market.asset_pairs(["BTC/USD"])
    assert vf.overlay_venue_fees(w.store, public) == public  # never refreshed: unchanged
    fk.state.private.taker_pct = Decimal("0.24")
    _refresh(w, DAY1)
    assert vf.overlay_venue_fees(w.store, public)["BTC/USD"].fee_taker == 0.0024


def test_paper_mode_reads_and_writes_nothing(tmp_path, fk) -> None:
    w = _setup(tmp_path, fk)
    assert _refresh(w, DAY1, live=False).skipped == "paper"
    assert fk.state.calls("TradeVolume") == [] and w.store.get_meta(vf.META_REFRESHED) is None


def _sensor(home, now, instance) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, resources={"tb": resource(home, now)},
                                 definitions=defs) as ctx:
        return executor_sensor(ctx)


def test_executor_sensor_refreshes_fees_in_live_mode_only(tmp_path, fk, monkeypatch,
                                                          instance) -> None:
    live = write_live_home(tmp_path / "live", fk, monkeypatch)
    store = Store.open(live.warehouse)
    w = _setup(tmp_path, fk)
    store.upsert_asset_pairs("kraken", list(w.market.asset_pairs(["BTC/USD"]).values()))
    fk.state.private.taker_pct = Decimal("0.24")
    for k in range(2):
        _sensor(live, DAY1 + timedelta(minutes=k), instance)
    assert len(fk.state.calls("TradeVolume")) == 1
    assert _fees(store)[-1] == ("BTC/USD", 0.0024, 0.0016)
    fk.state.add_fault("TradeVolume", errors=["EService:Unavailable"], times=None)
    skipped = _sensor(live, DAY1 + timedelta(days=1), instance)
    assert skipped.skip_reason is not None
    assert skipped.skip_reason.skip_message.startswith("tick skipped: Kraken TradeVolume")
    assert _fees(store)[-1] == ("BTC/USD", 0.0024, 0.0016)
    paper = write_home(tmp_path / "paper")
    _sensor(paper, DAY1, instance)
    assert Store.open(paper.warehouse).get_meta(vf.META_REFRESHED) is None


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst
