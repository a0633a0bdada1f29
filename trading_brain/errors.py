"""The one error tree of Trading Brain, named by what the caller should do.

    TradingBrainError           base; never raised directly
    ├── ConfigError             bad settings or CLI input: tell the user, change nothing
    ├── DataError               malformed or invalid data (candles, files, venue JSON): reject it,
    │   │                       store nothing
    │   └── AdvisorOutputRejected  advisor decision bad or hostile: record why, change nothing
    ├── TemporaryError          transient (network, timeout, 5xx, busy): an idempotent call may be
    │   │                       retried
    │   ├── RateLimited         the venue or our own limiter said "slow down"; honour
    │   │                       ``retry_after``
    │   └── WarehouseLocked     the DuckDB file is held by another process past our retry budget
    ├── AmbiguousOrderError     the venue may or may not have accepted an order: reconcile, never
    │                           resend
    ├── OrderRejected           the venue or the risk shell refused an order; ``reason`` says why
    ├── StrategyError           strategy code is broken, hostile or returned bad output: reject
    │   │                       the version
    │   └── SandboxViolation    the sandbox worker broke the protocol or an isolation rule
    ├── ReconciliationMismatch  local ledger and venue disagree: stop new entries, a human may be
    │                           needed
    └── OperationalError        needs a human (auth failure, schema newer than code, missing
                                keys): stop

Vendor exceptions are mapped to this tree once, at the adapter boundary, with ``raise … from e``.
The CLI prints ``str(error)`` of any ``TradingBrainError`` as one line and exits non-zero; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class TradingBrainError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(TradingBrainError):
    """Invalid configuration or command-line input; the message names the key and allowed values."""


class DataError(TradingBrainError):
    """Invalid data (candle file, venue payload, frame); nothing was stored."""


class AdvisorOutputRejected(DataError):
    """An advisor decision was malformed, out of schema or hostile; ``reason`` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"advisor output rejected: {reason}")
        self.reason = reason


class TemporaryError(TradingBrainError):
    """A transient failure; retrying an idempotent call later may succeed."""


class RateLimited(TemporaryError):
    """A rate limit was hit; ``retry_after`` is the advised wait in seconds, if known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WarehouseLocked(TemporaryError):
    """The warehouse file stayed locked by another process for the whole retry budget."""


class AmbiguousOrderError(TradingBrainError):
    """An order's fate is unknown (timeout or 5xx after sending): look it up by client id, never
    resend."""


class OrderRejected(TradingBrainError):
    """An order was refused by the venue or the risk shell; ``reason`` is a short machine code."""

    def __init__(self, message: str, reason: str = "rejected") -> None:
        super().__init__(message)
        self.reason = reason


class StrategyError(TradingBrainError):
    """Strategy code failed validation, raised, timed out or returned invalid output."""


class SandboxViolation(StrategyError):
    """The sandbox worker violated the protocol or an isolation layer was missing."""


class ReconciliationMismatch(TradingBrainError):
    """Local state and the venue disagree beyond tolerance."""


class OperationalError(TradingBrainError):
    """A condition that needs a human: bad credentials, newer database schema, refused live mode."""
