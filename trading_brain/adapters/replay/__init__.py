"""The "replay" market: recorded candle files served as if live (``ReplayMarket``) and the
readers behind ``import-ohlcv`` (``read_candle_file``, ``read_candles``)."""

from trading_brain.adapters.replay.files import (
    candle_files,
    expand,
    read_candle_file,
    read_candles,
    symbol_from_name,
    timeframe_from_name,
)
from trading_brain.adapters.replay.market import ReplayMarket

__all__ = [
    "ReplayMarket",
    "candle_files",
    "expand",
    "read_candle_file",
    "read_candles",
    "symbol_from_name",
    "timeframe_from_name",
]
