"""``Runtime.store_asset_pairs``: the market's public fees, except that in live mode the account
tier read from the venue (``engine.venue_fees``) is kept, so the 5-minute ``asset_pairs``
materialisation never flips ``fee_schedule`` back to the public schedule."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from trading_brain.app.runtime import build_runtime
from trading_brain.domain.orders import FeeTier
from trading_brain.engine.venue_fees import META_TIERS
from trading_brain.settings import Home, Settings


@pytest.mark.parametrize("execution", ["paper", "kraken"])
def test_live_mode_keeps_the_venue_tier(tmp_path, execution):
    extra = {"allow_live_orders": True} if execution == "kraken" else {}
    settings = Settings(symbols=["BTC/USD", "ETH/USD"], execution=execution, **extra)
    rt = build_runtime(Home(tmp_path / "home"), settings=settings)
    public = rt.store_asset_pairs()
    tier = FeeTier(symbol="BTC/USD", taker=Decimal("0.0010"), maker=Decimal("0.0005"))
    rt.store.set_meta(META_TIERS, json.dumps({"BTC/USD": tier.model_dump(mode="json")}))
    rt.store_asset_pairs()
    rt.store_asset_pairs()
    stored = rt.store.read_asset_pairs()
    fees = rt.store.execute("SELECT count(*) FROM fee_schedule WHERE symbol = 'BTC/USD'")[0][0]
    if execution == "kraken":
        assert (stored["BTC/USD"].fee_taker, stored["BTC/USD"].fee_maker) == (0.001, 0.0005)
        assert fees == 2  # public at first, then the venue tier once: no flip-flopping
    else:
        assert stored["BTC/USD"].fee_taker == public["BTC/USD"].fee_taker != 0.001
        assert fees == 1
    assert stored["ETH/USD"].fee_taker == public["ETH/USD"].fee_taker
