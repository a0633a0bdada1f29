"""The built-in simulated market ("sim"): a deterministic, seedable, clock-anchored MarketData."""

from trading_brain.adapters.sim.market import SimMarket, character
from trading_brain.adapters.sim.process import EPOCH, Character, PriceProcess

__all__ = ["EPOCH", "Character", "PriceProcess", "SimMarket", "character"]
