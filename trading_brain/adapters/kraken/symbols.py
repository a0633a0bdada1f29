"""Pair and asset naming between Trading Brain (``BTC/USD``) and Kraken.

Kraken names one pair four ways: the pair *key* (``XXBTZUSD``, what REST results are keyed by),
the *altname* (``XBTUSD``, what we send), the WS v1 ``wsname`` (``XBT/USD``) and the WS v2 symbol
(``BTC/USD``, which is our symbol). Assets have legacy X/Z-prefixed ids (``XXBT``, ``ZUSD``,
``XXDG``) and Kraken-only codes (``XBT`` = BTC, ``XDG`` = DOGE). Pair keys are not derivable from
the assets, so ``PairMap`` is always built from an AssetPairs payload.

Contract:
- ``common_asset(code)``: any Kraken asset code → common code (``XXBT``/``XBT`` → ``BTC``,
  ``ZUSD`` → ``USD``, ``XXDG`` → ``DOGE``, ``SOL`` → ``SOL``). Only known legacy ids lose their
  prefix: ``XTZ``, ``XRP``, ``ZEC`` stay as they are.
- ``kraken_asset(code)``: common code → Kraken short code (``BTC`` → ``XBT``, ``DOGE`` → ``XDG``).
- ``ws_v2_symbol(wsname)``: ``XBT/USD`` → ``BTC/USD``. ``guess_altname(symbol)``: ``BTC/USD`` →
  ``XBTUSD`` (a best guess for requests before AssetPairs is known).
- ``PairMap.from_asset_pairs(result)``: ``symbol(name)`` accepts a key, altname, wsname or v2
  symbol and returns our symbol; ``key(symbol)``/``altname(symbol)`` go the other way; unknown
  names raise ``ConfigError`` naming the symbol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trading_brain.errors import ConfigError, DataError

_TO_COMMON = {"XBT": "BTC", "XDG": "DOGE"}
_TO_KRAKEN = {v: k for k, v in _TO_COMMON.items()}
# Legacy 4-character asset ids whose first letter is a class prefix, not part of the code.
_LEGACY_IDS = frozenset(
    {
        "XXBT", "XETH", "XXDG", "XLTC", "XXRP", "XXLM", "XXMR", "XZEC", "XETC", "XREP", "XMLN",
        "XXTZ", "XICN", "XNMC", "XXVN", "ZUSD", "ZEUR", "ZGBP", "ZJPY", "ZCAD", "ZAUD", "ZKRW",
    }
)


def common_asset(code: str) -> str:
    """Kraken asset id or code → common code (BTC, USD, DOGE…)."""
    c = code.strip().upper()
    if c in _LEGACY_IDS:
        c = c[1:]
    return _TO_COMMON.get(c, c)


def kraken_asset(code: str) -> str:
    """Common asset code → Kraken's short code (BTC → XBT, DOGE → XDG)."""
    c = code.strip().upper()
    return _TO_KRAKEN.get(c, c)


def ws_v2_symbol(wsname: str) -> str:
    """WS v1 name (``XBT/USD``) → WS v2 symbol (``BTC/USD``), which is our symbol."""
    base, sep, quote = wsname.partition("/")
    if not sep or not base or not quote:
        raise DataError(f"Kraken wsname {wsname!r} is not BASE/QUOTE")
    return f"{common_asset(base)}/{common_asset(quote)}"


def guess_altname(symbol: str) -> str:
    """Our symbol → Kraken altname guess (``BTC/USD`` → ``XBTUSD``)."""
    base, _, quote = symbol.partition("/")
    return kraken_asset(base) + kraken_asset(quote)


@dataclass(frozen=True)
class PairNames:
    """Every name of one Kraken pair."""

    symbol: str
    key: str
    altname: str
    wsname: str
    base: str
    quote: str


@dataclass(frozen=True)
class PairMap:
    """Bidirectional mapping between our symbols and Kraken pair names."""

    pairs: Mapping[str, PairNames]  # by our symbol
    _lookup: Mapping[str, str] = field(default_factory=dict, repr=False)  # any name -> symbol

    @classmethod
    def from_asset_pairs(cls, result: Mapping[str, Any]) -> PairMap:
        """Build from the ``result`` object of ``/0/public/AssetPairs``."""
        if not isinstance(result, Mapping):
            raise DataError("Kraken AssetPairs: result is not an object")
        return cls.from_names(names_of(key, row) for key, row in result.items())

    @classmethod
    def from_names(cls, names: Iterable[PairNames]) -> PairMap:
        pairs: dict[str, PairNames] = {}
        lookup: dict[str, str] = {}
        for n in names:
            if n.key.endswith(".d") or n.symbol in pairs:
                continue  # dark-pool ``.d`` pairs never shadow the real one; first row wins
            pairs[n.symbol] = n
            for alias in (n.key, n.altname, n.wsname, n.symbol):
                if alias:
                    lookup.setdefault(alias.upper(), n.symbol)
        return cls(pairs=pairs, _lookup=lookup)

    def symbol(self, name: str) -> str:
        """Any Kraken name (key, altname, wsname) or our symbol → our symbol."""
        try:
            return self._lookup[name.strip().upper()]
        except KeyError:
            raise ConfigError(f"unknown Kraken pair {name!r}") from None

    def names(self, symbol: str) -> PairNames:
        try:
            return self.pairs[self.symbol(symbol)]
        except ConfigError:
            raise ConfigError(f"symbol {symbol!r} is not traded on Kraken") from None

    def key(self, symbol: str) -> str:
        return self.names(symbol).key

    def altname(self, symbol: str) -> str:
        return self.names(symbol).altname

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().upper() in self._lookup


def names_of(key: str, row: Any) -> PairNames:
    """Names of one AssetPairs row; raises DataError when base/quote are missing."""
    if not isinstance(row, Mapping):
        raise DataError(f"Kraken AssetPairs[{key}]: not an object")
    base, quote = row.get("base"), row.get("quote")
    if not isinstance(base, str) or not isinstance(quote, str):
        raise DataError(f"Kraken AssetPairs[{key}]: missing base/quote")
    altname = str(row.get("altname") or key)
    wsname = str(row.get("wsname") or "")
    symbol = ws_v2_symbol(wsname) if wsname else f"{common_asset(base)}/{common_asset(quote)}"
    return PairNames(symbol, key, altname, wsname, common_asset(base), common_asset(quote))
