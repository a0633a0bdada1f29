"""Strategy ports: ``SignalSource`` (a loaded version turning bars into validated signals),
``StrategyWorker`` (a sandbox worker with the research calls), ``StrategyWorkers`` (the
sandbox-worker service, one pooled worker per version) and ``Advisor`` (who proposes the nightly
evolution decision). Strategy code only ever runs behind these. Contracts on each class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import polars as pl

from trading_brain.errors import StrategyError

if TYPE_CHECKING:
    from trading_brain.engine.evolution.context import EvolutionContext
    from trading_brain.engine.evolution.decision import Decision


@runtime_checkable
class SignalSource(Protocol):
    """A loaded strategy version that turns one symbol's bars into validated signals.

    ``generate`` returns a frame with ``ts`` plus ``domain.strategy.SIGNAL_SCHEMA`` columns,
    one row per input bar, already checked by ``domain.strategy.validate_signals``; it raises
    ``StrategyError`` (or ``SandboxViolation``) for anything else. Implementations: the sandbox
    worker (``adapters/sandbox``; all strategy code in production) and an in-process loader for
    trusted differential tests and benchmarks.
    """

    @property
    def strategy_id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def warmup_bars(self) -> int: ...

    def generate(self, bars: pl.DataFrame, params: dict | None = None) -> pl.DataFrame: ...

    def generate_many(self, frames: Mapping[str, pl.DataFrame], params: dict | None = None
                      ) -> dict[str, pl.DataFrame | StrategyError]:
        """``generate`` for each symbol's bars at once (one sandbox round trip): per symbol the
        validated signals or the ``StrategyError`` it raised; a ``SandboxViolation`` raises for
        the whole call."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class StrategyWorker(SignalSource, Protocol):
    """A strategy version's sandbox worker as ``StrategyWorkers`` hands it out: a
    ``SignalSource`` plus the research calls.

    ``params_schema()`` is the JSON schema and the defaults of the strategy's ``Params``;
    ``generate_sets(bars, sets)`` is ``generate`` over the same bars for each parameter set in
    one sandbox round trip: per set the validated signals or the ``StrategyError`` that set's
    call would raise (``invalid params: …`` for a set ``Params`` refuses); a
    ``SandboxViolation`` raises for the whole call. ``missing_layers()`` names the isolation
    layers production requires that the running worker does not enforce (empty when complete;
    only ``sandbox.allow_weak_isolation`` lets such a worker run).
    """

    def params_schema(self) -> tuple[dict[str, Any], dict[str, Any]]: ...

    def missing_layers(self) -> list[str]: ...

    def generate_sets(self, bars: pl.DataFrame, sets: Sequence[Mapping[str, Any] | None]
                      ) -> list[pl.DataFrame | StrategyError]: ...


@runtime_checkable
class StrategyWorkers(Protocol):
    """The sandbox-worker service: one live worker per strategy version (its source's sha256).

    ``get(version_ref, source)`` returns the worker running ``source`` (``version_ref`` is
    ``"ID@V"``, for messages), booting it in the background on first use and reusing it
    afterwards; a bounded number run at once (least recently used evicted); thread safe.
    ``validate(source)`` returns a FRESH worker outside the pool for registration's gates (the
    caller closes it). ``close()`` stops every worker it started. Used by scan, simulate,
    backtest, optimize and registration (``adapters/sandbox/pool.py``).
    """

    def get(self, version_ref: str, source: str) -> StrategyWorker: ...

    def validate(self, source: str) -> StrategyWorker: ...

    def close(self) -> None: ...


@runtime_checkable
class Advisor(Protocol):
    """Who proposes tonight's evolution decision (DESIGN §8): ``offline`` or ``anthropic``.

    ``decide(context)`` reads the night's ``EvolutionContext`` (plain data: benchmarks, reports,
    versions, candidates, memory) and returns a validated ``Decision``, or raises
    ``AdvisorOutputRejected`` with the reason when its output is unusable. The advisor proposes,
    the cycle disposes: it re-validates the decision and runs every gate itself; nothing an
    advisor returns can place an order or change a risk limit.
    """

    name: str

    def decide(self, context: EvolutionContext) -> Decision: ...
