"""The sim market's known universe: the pairs it serves and their built-in profiles.

Contract: ``PROFILES`` maps every known symbol (real Kraken USD spot pairs: the 9 default majors
and 25 others) to ``(anchor price, daily volatility, price decimals, typical daily volume in
USD)``; ``KNOWN_SYMBOLS`` is its key tuple, in that order. ``unknown(symbols)`` returns the
symbols outside it, in the given order. Settings validation refuses any other symbol when
``market = "sim"`` (a made-up pair such as ``FOOBARZZ/USD`` would otherwise be traded on prices
the venue could never quote). Pure data: importing it loads neither numpy nor polars.
"""

from __future__ import annotations

from collections.abc import Iterable

# anchor price, daily vol, price decimals, typical daily volume in quote (USD) units
PROFILES: dict[str, tuple[float, float, int, float]] = {
    "BTC/USD": (60_000.0, 0.030, 1, 3.0e8),
    "ETH/USD": (3_000.0, 0.038, 2, 1.5e8),
    "SOL/USD": (150.0, 0.052, 2, 6.0e7),
    "XRP/USD": (0.6, 0.045, 5, 5.0e7),
    "ADA/USD": (0.5, 0.045, 6, 1.5e7),
    "DOGE/USD": (0.15, 0.055, 7, 2.0e7),
    "LTC/USD": (80.0, 0.040, 2, 1.0e7),
    "DOT/USD": (7.0, 0.048, 4, 8.0e6),
    "LINK/USD": (15.0, 0.050, 5, 1.0e7),
    # other real Kraken USD pairs (anchors are typical recent price levels, not live quotes)
    "AVAX/USD": (30.0, 0.055, 2, 2.0e7),
    "ATOM/USD": (8.0, 0.050, 4, 8.0e6),
    "UNI/USD": (8.0, 0.055, 3, 5.0e6),
    "AAVE/USD": (150.0, 0.055, 2, 5.0e6),
    "XLM/USD": (0.12, 0.045, 6, 5.0e6),
    "BCH/USD": (400.0, 0.045, 2, 1.0e7),
    "ALGO/USD": (0.2, 0.050, 5, 3.0e6),
    "FIL/USD": (5.0, 0.055, 3, 4.0e6),
    "NEAR/USD": (5.0, 0.060, 3, 6.0e6),
    "TRX/USD": (0.12, 0.030, 6, 3.0e6),
    "XTZ/USD": (0.9, 0.050, 4, 2.0e6),
    "ETC/USD": (25.0, 0.050, 3, 4.0e6),
    "ARB/USD": (1.0, 0.060, 4, 5.0e6),
    "OP/USD": (2.0, 0.060, 4, 5.0e6),
    "INJ/USD": (25.0, 0.065, 3, 5.0e6),
    "SUI/USD": (1.5, 0.070, 4, 8.0e6),
    "APT/USD": (9.0, 0.060, 4, 4.0e6),
    "GRT/USD": (0.2, 0.060, 5, 3.0e6),
    "MKR/USD": (2_000.0, 0.050, 1, 3.0e6),
    "COMP/USD": (55.0, 0.055, 2, 2.0e6),
    "SAND/USD": (0.4, 0.060, 5, 2.0e6),
    "MANA/USD": (0.4, 0.060, 5, 2.0e6),
    "KSM/USD": (30.0, 0.055, 2, 1.0e6),
    "FLOW/USD": (0.8, 0.060, 4, 1.0e6),
    "ZEC/USD": (30.0, 0.050, 2, 2.0e6),
}
KNOWN_SYMBOLS: tuple[str, ...] = tuple(PROFILES)


def unknown(symbols: Iterable[str]) -> list[str]:
    """The normalised ``symbols`` the sim market does not serve, in the given order."""
    return [s for s in symbols if s not in PROFILES]
