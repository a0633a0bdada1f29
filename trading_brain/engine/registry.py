"""The strategy registry: validate a version, record it, deploy it, roll back.

Rules (DESIGN §7):
- a released ``(strategy_id, version)`` is immutable: registering a different source for an
  existing version is refused (``StrategyError``); the same source again is a no-op;
- nothing is recorded unless every gate passed, in order: static gate (by the ``open_source``
  factory, which the caller builds with the sandbox worker), sandbox start, a smoke run on
  sample bars that satisfies the output contract and is deterministic across two runs, the
  look-ahead check and the warm-up check;
- validation has ONE overall time budget (``sandbox.validation_budget_s``, carried by the source
  as ``validation_budget_s``): a source that can be interrupted (``Interruptible``) has every call
  bounded by the budget's deadline, and a step that runs out ends the validation with a
  StrategyError naming that step (the static gate before it is bounded by its source-size cap);
- exactly one version is ``active``; ``deploy`` and ``rollback`` are logged, and ``rollback``
  returns to the version deployed before the current one.

The engine never imports the sandbox: ``open_source(source_text)`` returns an object with the
``ports.SignalSource`` members plus ``params_schema() -> (json_schema, defaults)``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

import polars as pl

from trading_brain.engine.lookahead import check_lookahead, check_warmup
from trading_brain.errors import ConfigError, StrategyError
from trading_brain.ports import SignalSource


class VersionSource(SignalSource, Protocol):
    def params_schema(self) -> tuple[dict[str, Any], dict[str, Any]]: ...


@runtime_checkable
class Interruptible(Protocol):
    """A source whose calls an overall deadline can cut short (the sandboxed strategy)."""

    validation_budget_s: float

    def start(self) -> object: ...

    def set_deadline(self, deadline: float | None) -> None: ...


DEFAULT_BUDGET_S = 120.0
T = TypeVar("T")


class ValidationBudget:
    """The overall deadline of one validation; ``step`` runs a named gate under it."""

    def __init__(self, source: SignalSource, seconds: float | None = None) -> None:
        self.source = source if isinstance(source, Interruptible) else None
        self.seconds = seconds or (self.source.validation_budget_s if self.source
                                   else DEFAULT_BUDGET_S)
        self.deadline = time.monotonic() + self.seconds
        if self.source is not None:
            self.source.set_deadline(self.deadline)

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def _verdict(self, step: str) -> StrategyError:
        return StrategyError(
            f"validation stopped: its time budget of {self.seconds:g} s "
            f"(sandbox.validation_budget_s) ran out in the {step} step; generate must be much "
            "faster (validation calls it about 65 times)")

    def step(self, name: str, fn: Callable[[], T]) -> T:
        """Run ``fn``; a failure (or failed check) once the budget is spent names the step."""
        if self.expired():
            raise self._verdict(name)
        try:
            out = fn()
        except StrategyError:
            if self.expired():
                raise self._verdict(name) from None
            raise
        if self.expired() and getattr(out, "passed", True) is False:
            raise self._verdict(name)
        return out

    def close(self) -> None:
        if self.source is not None:
            self.source.set_deadline(None)


class RegistryStore(Protocol):
    def strategy_version(self, strategy_id: str, version: int) -> dict[str, Any] | None: ...

    def strategy_versions(self, strategy_id: str | None = None) -> list[dict[str, Any]]: ...

    def insert_strategy_version(self, row: dict[str, Any]) -> None: ...

    def set_active_version(self, strategy_id: str, version: int, action: str,
                           reason: str, at: datetime | None = None) -> None: ...

    def deployment_history(self) -> list[tuple[str, int, str, str]]: ...

    def active_version(self) -> tuple[str, int] | None: ...


def sha256(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"ema_cross@2"`` -> (``"ema_cross"``, 2); ``"ema_cross"`` -> (``"ema_cross"``, None)."""
    name, _, ver = ref.partition("@")
    if not name or (ver and not ver.lstrip("v").isdigit()):
        raise ConfigError(f"invalid strategy reference {ref!r}; expected ID or ID@VERSION")
    return name, int(ver.lstrip("v")) if ver else None


def validate_version(source: VersionSource, bars: pl.DataFrame, *, cut_points: int = 30,
                     samples: int = 30, budget: ValidationBudget | None = None) -> dict[str, Any]:
    """Run the post-gate checks on ``bars``; raise StrategyError naming the first failure.

    ``budget`` None: a new ``ValidationBudget`` of the source's own length covers this call.
    """
    own = budget is None
    b = budget or ValidationBudget(source)
    try:
        if isinstance(source, Interruptible):
            b.step("sandbox start", source.start)
        first = b.step("smoke run", lambda: source.generate(bars))
        again = b.step("determinism", lambda: source.generate(bars))
        if not first.equals(again):
            raise StrategyError("generate is not deterministic: two runs on the same bars differ")
        look = b.step("look-ahead", lambda: check_lookahead(source, bars, cut_points=cut_points))
        if not look.passed:
            raise StrategyError(look.summary())
        warm = b.step("warm-up", lambda: check_warmup(source, bars, source.warmup_bars,
                                                      samples=samples))
        if not warm.passed:
            raise StrategyError(warm.summary())
    finally:
        if own:
            b.close()
    entries = int((first["action"] == "enter").sum())
    return {"smoke_rows": first.height, "smoke_entries": entries,
            "lookahead": look.to_metadata(), "warmup": warm.to_metadata()}


def register(
    store: RegistryStore, source_text: str, open_source: Callable[[str], VersionSource],
    sample_bars: pl.DataFrame, *, path: str | None = None, reason: str = "released",
    parent_version: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """Validate and record a version; return (row, created). Nothing is written on failure."""
    digest = sha256(source_text)
    src = open_source(source_text)
    budget = ValidationBudget(src)
    try:
        sid, ver = src.strategy_id, src.version
        existing = store.strategy_version(sid, ver)
        if existing is not None:
            if existing["sha256"] != digest:
                raise StrategyError(
                    f"{sid}@{ver} is already released with a different source "
                    f"(sha256 {existing['sha256'][:12]}…); a change must be a new version "
                    f"v{_next_version(store, sid)}")
            return existing, False
        schema, defaults = budget.step("sandbox start", src.params_schema)
        validation = validate_version(src, sample_bars, budget=budget)
    finally:
        budget.close()
        src.close()
    row = {"strategy_id": sid, "version": ver, "source": source_text, "sha256": digest,
           "path": path, "parent_version": parent_version, "reason": reason,
           "warmup_bars": src.warmup_bars, "params_default": defaults, "param_space": schema,
           "status": "registered", "validation": validation}
    store.insert_strategy_version({**row, "created_at": _now_sql()})
    return store.strategy_version(sid, ver) or row, True


def deploy(store: RegistryStore, strategy_id: str, version: int, reason: str = "manual") -> None:
    """Make a registered version the active one."""
    row = store.strategy_version(strategy_id, version)
    if row is None:
        raise ConfigError(f"unknown strategy version {strategy_id}@{version}")
    if row["status"] not in ("registered", "active"):
        raise ConfigError(f"{strategy_id}@{version} is {row['status']} and cannot be deployed")
    store.set_active_version(strategy_id, version, "deploy", reason)


ROLLBACKS = ("rollback", "auto_rollback")  # deployments_log actions that pop the stack


def rollback(store: RegistryStore, reason: str = "manual",
             action: str = "rollback", at: datetime | None = None) -> tuple[str, int]:
    """Return to the version deployed before the current one (a stack: deploys and promotions
    push, rollbacks pop); return it. ``action``: ``rollback`` or ``auto_rollback`` (a rollback
    trigger, ``app.promotion.auto_rollback``); ``at`` stamps the log (None: the wall clock)."""
    if action not in ROLLBACKS:
        raise ConfigError(f"rollback action must be one of {ROLLBACKS}, got {action!r}")
    stack: list[tuple[str, int]] = []
    for sid, ver, done, _ in store.deployment_history():
        if done in ROLLBACKS:
            stack.pop()
        else:
            stack.append((sid, ver))
    if len(stack) < 2:
        raise ConfigError("nothing to roll back to: no earlier deployed version")
    target = stack[-2]
    store.set_active_version(*target, action, reason, at)
    return target


def _next_version(store: RegistryStore, strategy_id: str) -> int:
    return max((r["version"] for r in store.strategy_versions(strategy_id)), default=0) + 1


def _now_sql() -> datetime:
    return datetime.now(UTC)
