"""Kraken adapter: public REST (``KrakenClient``, ``KrakenMarket``), WS v2 (``KrakenStream``).

``client`` wraps krakenex with rate limiting, retries and the one error mapping (``errors``);
``symbols`` maps BTC/USD ↔ XXBTZUSD/XBTUSD/XBT/USD; ``parse`` turns payloads into domain types;
``market`` implements ``ports.MarketData``; ``ws`` streams tickers and candles with REST fallback.
"""

from .client import KrakenClient
from .market import KrakenMarket
from .symbols import PairMap
from .ws import KrakenStream

__all__ = ["KrakenClient", "KrakenMarket", "KrakenStream", "PairMap"]
