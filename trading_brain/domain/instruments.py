"""Tradable pairs and the exchange rules that come with them.

Symbols are written ``BASE/QUOTE`` with common asset codes (``BTC/USD``, ``DOGE/USD``). Venue
specific names (Kraken ``XXBTZUSD``, altname ``XBTUSD``) live on the ``AssetPair`` and never leak
into the rest of the system.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal

from pydantic import BaseModel, ConfigDict, Field

from trading_brain.errors import ConfigError

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,10}/[A-Z0-9]{2,10}$")

DEFAULT_SYMBOLS: tuple[str, ...] = (
    "BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD", "ADA/USD",
    "DOGE/USD", "LTC/USD", "DOT/USD", "LINK/USD",
)


def parse_symbol(value: str) -> str:
    """Normalise ``value`` (``btc/usd``, ``BTC-USD``) to ``BTC/USD`` or raise ConfigError."""
    s = value.strip().upper().replace("-", "/").replace("_", "/")
    if not SYMBOL_RE.match(s):
        raise ConfigError(f"invalid symbol {value!r}; expected BASE/QUOTE such as BTC/USD")
    return s


class AssetPair(BaseModel):
    """A spot pair with the venue's precision, minimums and fees (fractions, e.g. 0.0026)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    base: str
    quote: str
    venue_name: str = Field(description="the venue's own pair key, e.g. XXBTZUSD")
    altname: str = ""
    wsname: str = ""
    lot_decimals: int = Field(ge=0, le=18)
    pair_decimals: int = Field(ge=0, le=18)
    ordermin: Decimal = Field(ge=0)
    costmin: Decimal = Field(default=Decimal(0), ge=0)
    tick_size: Decimal | None = None
    fee_taker: float = Field(ge=0, le=0.1)
    fee_maker: float = Field(ge=0, le=0.1)
    status: str = "online"

    def round_qty(self, qty: Decimal | float) -> Decimal:
        """Round a quantity down to the pair's lot precision."""
        return _q(qty, self.lot_decimals)

    def round_price(self, price: Decimal | float) -> Decimal:
        """Round a price to the pair's price precision (down; callers pick the side)."""
        return _q(price, self.pair_decimals)

    def meets_minimums(self, qty: Decimal, price: Decimal) -> bool:
        """True when ``qty`` ≥ ordermin and ``qty·price`` ≥ costmin."""
        return qty >= self.ordermin and qty * price >= self.costmin


def _q(value: Decimal | float, decimals: int) -> Decimal:
    d = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    return d.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)
