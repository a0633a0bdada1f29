"""Ports: the small Protocols that engine code receives instead of concrete adapters.

``engine/`` never imports an adapter or dagster; it is handed objects satisfying these
protocols. Adapters in ``adapters/`` implement them, and tests use the same adapters (a real
DuckDB file, the sim market) or the fakes in ``trading_brain_tests/fakes``. Later issues extend
this module (``Exchange``, ``Advisor``, ``Notifier``) — add methods, never change meanings.

Grouped in modules (``market``, ``strategies``, ``venue``, ``storage``); every name is
re-exported here, so ``from trading_brain.ports import X`` is the way to import a port.

The storage contract (``ports/storage.py``: ``LedgerStore``, ``RiskStore``, ``IntentStore``,
``PaperBookStore``, ``MetaStore`` and their union ``TradingStore``) is implemented in full by
the DuckDB ``Store`` and simulate's ``MemoryBook``; callers never ask which one they have.
"""

from trading_brain.ports.market import (
    CandleStore,
    Clock,
    MarketData,
)
from trading_brain.ports.storage import (
    EvolutionRecords,
    IntentStore,
    LedgerStore,
    MetaStore,
    PaperBookStore,
    RiskStore,
    SavedBook,
    TradingStore,
)
from trading_brain.ports.strategies import (
    Advisor,
    SignalSource,
    StrategyWorker,
    StrategyWorkers,
)
from trading_brain.ports.venue import (
    Exchange,
    Notifier,
)

__all__ = [
    "Advisor",
    "CandleStore",
    "Clock",
    "EvolutionRecords",
    "Exchange",
    "IntentStore",
    "LedgerStore",
    "MarketData",
    "MetaStore",
    "Notifier",
    "PaperBookStore",
    "RiskStore",
    "SavedBook",
    "SignalSource",
    "StrategyWorker",
    "StrategyWorkers",
    "TradingStore",
]
