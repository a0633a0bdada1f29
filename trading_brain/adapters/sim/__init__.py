"""The built-in simulated market ("sim"): a deterministic, seedable, clock-anchored MarketData.

The market and its process are loaded on first use (numpy/polars); ``universe`` is pure data.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trading_brain.adapters.sim.market import SimMarket, character
    from trading_brain.adapters.sim.process import EPOCH, Character, PriceProcess

__all__ = ["EPOCH", "Character", "PriceProcess", "SimMarket", "character"]
_WHERE = {"SimMarket": "market", "character": "market", "EPOCH": "process",
          "Character": "process", "PriceProcess": "process"}


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
