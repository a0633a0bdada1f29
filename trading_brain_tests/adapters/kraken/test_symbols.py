"""Pair-name mapping: our symbols <-> Kraken keys, altnames, wsnames, legacy asset codes."""

from __future__ import annotations

import pytest

from trading_brain.adapters.kraken.symbols import (
    PairMap,
    common_asset,
    guess_altname,
    kraken_asset,
    ws_v2_symbol,
)
from trading_brain.errors import ConfigError, DataError
from trading_brain_tests.fakes import kraken_data

from .conftest import require_data


@pytest.mark.parametrize(
    ("code", "common"),
    [("XXBT", "BTC"), ("XBT", "BTC"), ("ZUSD", "USD"), ("XETH", "ETH"), ("XXDG", "DOGE"),
     ("XDG", "DOGE"), ("SOL", "SOL"), ("USDT", "USDT"), ("XTZ", "XTZ"), ("XRP", "XRP"),
     ("ZEC", "ZEC"), ("XXRP", "XRP"), ("ZEUR", "EUR")],
)
def test_common_asset_strips_only_legacy_prefixes(code: str, common: str) -> None:
    assert common_asset(code) == common


def test_kraken_asset_and_names() -> None:
    assert kraken_asset("BTC") == "XBT"
    assert kraken_asset("doge") == "XDG"
    assert kraken_asset("ETH") == "ETH"
    assert ws_v2_symbol("XBT/USD") == "BTC/USD"
    assert ws_v2_symbol("XDG/USD") == "DOGE/USD"
    assert ws_v2_symbol("ETH/XBT") == "ETH/BTC"
    assert guess_altname("BTC/USD") == "XBTUSD"
    assert guess_altname("DOGE/USD") == "XDGUSD"
    with pytest.raises(DataError):
        ws_v2_symbol("XBTUSD")


def _real_pairs() -> dict:
    require_data()
    pairs = kraken_data.default_market()["pairs"]
    # A newer-style row as Kraken publishes it for DOGE (key = altname, base = legacy XXDG).
    pairs["XDGUSD"] = {**pairs["XXBTZUSD"], "altname": "XDGUSD", "wsname": "XDG/USD",
                       "base": "XXDG", "quote": "ZUSD"}
    pairs["XXBTZUSD.d"] = {**pairs["XXBTZUSD"], "altname": "XBTUSD.d", "wsname": ""}
    return pairs


def test_pair_map_from_real_asset_pairs() -> None:
    pm = PairMap.from_asset_pairs(_real_pairs())
    for name in ("XXBTZUSD", "XBTUSD", "XBT/USD", "BTC/USD", "xbtusd"):
        assert pm.symbol(name) == "BTC/USD"
    assert pm.key("BTC/USD") == "XXBTZUSD"
    assert pm.altname("BTC/USD") == "XBTUSD"
    assert pm.symbol("XBTUSDT") == "BTC/USDT"
    assert pm.key("BTC/USDT") == "XBTUSDT"
    assert pm.symbol("XETHXXBT") == "ETH/BTC"
    assert pm.key("DOGE/USD") == "XDGUSD"
    assert pm.symbol("XDG/USD") == "DOGE/USD"
    assert pm.names("BTC/USD").base == "BTC" and pm.names("BTC/USD").quote == "USD"
    assert "BTC/USD" in pm and "FOO/USD" not in pm


def test_pair_map_unknown_and_malformed() -> None:
    pm = PairMap.from_asset_pairs(_real_pairs())
    with pytest.raises(ConfigError, match="FOO/USD"):
        pm.key("FOO/USD")
    with pytest.raises(DataError, match="base/quote"):
        PairMap.from_asset_pairs({"XXBTZUSD": {"altname": "XBTUSD"}})
    with pytest.raises(DataError):
        PairMap.from_asset_pairs({"XXBTZUSD": ["not", "an", "object"]})
    with pytest.raises(DataError):
        PairMap.from_asset_pairs([])  # type: ignore[arg-type]
