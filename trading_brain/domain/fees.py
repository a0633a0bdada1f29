"""The venue's default fee rates, as fractions of the traded value (0.0026 = 0.26 %).

Contract:
- ``DEFAULT_TAKER_FEE`` / ``DEFAULT_MAKER_FEE`` are Kraken's public (tier-0) spot rates. They
  are the one source for every default that needs a fee before the venue has told us the
  account's own tier: the sim and replay markets' asset pairs, the backtest costs, the CLI's
  ``--fee`` default and the Dagster backtest config. A venue's stored fee schedule
  (``AssetPair.fee_taker``/``fee_maker``, the account's ``FeeTier``) always wins over these.
- They are floats because ``AssetPair`` and the backtest engines carry fees as floats; use
  ``Decimal(repr(DEFAULT_TAKER_FEE))`` where exact decimal arithmetic is needed.
"""

from __future__ import annotations

from typing import Final

DEFAULT_TAKER_FEE: Final[float] = 0.0026
DEFAULT_MAKER_FEE: Final[float] = 0.0016
