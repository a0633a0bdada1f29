"""A step's `warehouse` pool slot held only while it has a warehouse connection open.

A step declared with ``pool="warehouse"`` holds the pool's one slot from its start to its end.
That is right for a step that works on the warehouse throughout, and wrong for the evolution
cycle's two long steps, which spend minutes in advisor calls, sandbox work and backtests with no
connection open: holding the slot through them kept the 5-minute scan waiting for the whole
cycle. Those steps declare no pool; instead ``StepPoolSlot`` claims the slot for the step each
time the step opens a warehouse connection, and frees it when the connection closes.

Contract:
- ``held()`` is re-entrant and shared by the step's threads: the first open claims (under the
  step's own run id and step key, so the UI's pool page names the step as the holder); the last
  close frees it ``linger_s`` (0.25 s) later unless another connection opens meanwhile — a
  claim and a free cost ~15-80 ms of Dagster storage writes (by load; bench_evolution_pool
  measures it), and the cycle opens its connections in bursts — and ``release()`` (the
  step's end) frees it at once. So another
  step waits at most one session plus ``linger_s``. While another run's step holds the slot
  the claim waits in Dagster's own queue (by priority, then arrival), polling with back-off;
  ``wait_s`` is its bound, after which ``WarehouseLocked`` is raised (a TemporaryError) and
  the pending claim is withdrawn;
- nothing is claimed when the instance's storage has no global pools (an ephemeral instance),
  when the pool granularity is ``run`` (the run, not the step, holds the slot) or when the pool
  has no limit — exactly the cases where Dagster's own step claim is a no-op;
- a slot left claimed by a killed process belongs to its run and is freed with the run's other
  slots (``concurrency.pools`` ``free_slots_after_run_end_seconds`` in ``dagster.yaml``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg
from dagster._core.instance.config import PoolGranularity

from trading_brain.adapters.backoff import backoff_delay
from trading_brain.errors import ConfigError, WarehouseLocked

POLL_BASE_S, POLL_MAX_S = 0.05, 1.0  # first and longest pause between claim attempts
DEFAULT_WAIT_S = 3600.0  # as long as a run may last (run_monitoring.max_runtime_seconds)
LINGER_S = 0.25  # a freed slot is kept this long for the next connection of a burst


class StepPoolSlot:
    """The pool slot of one step (``run_id``, ``step_key``) in ``instance``, claimed on demand."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, step_key: str, pool: str, *,
                 priority: int = 0, wait_s: float = DEFAULT_WAIT_S,
                 linger_s: float = LINGER_S, log: Callable[[str], None] | None = None) -> None:
        self.instance, self.run_id, self.step_key, self.pool = instance, run_id, step_key, pool
        self.priority, self.wait_s, self.linger_s, self.log = priority, wait_s, linger_s, log
        self.claims = 0  # how many times the slot was claimed (for the step's metadata)
        self.waited_s = 0.0  # total seconds spent waiting for it
        self.held_s = 0.0  # total seconds it was held
        self.longest_hold_s = 0.0  # the longest single hold: the most another step waited
        self._since = 0.0
        self._depth = 0
        self._holding = False  # whether the slot is claimed now
        self._generation = 0  # bumped by each entry and exit: a stale release timer is void
        self._pooled: bool | None = None  # whether the pool limits this step (asked once)
        self._lock = threading.RLock()

    @classmethod
    def of_step(cls, context: dg.AssetExecutionContext, pool: str) -> StepPoolSlot:
        """The slot of the step ``context`` runs (its run's priority tag applies).

        Refused (``ConfigError``) for a step that declares a pool itself: Dagster already holds
        the slot for it, and freeing a connection's claim would free that one.
        """
        if context.op_def.pool:
            raise ConfigError(f"step {context.op_def.name} declares pool "
                              f"{context.op_def.pool!r}: it cannot also claim per connection")
        try:
            priority = int(context.run.tags.get("dagster/priority", "0"))
        except ValueError:
            priority = 0
        step = context.get_step_execution_context().step.key
        return cls(context.instance, context.run.run_id, step, pool, priority=priority,
                   log=context.log.info)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the slot for the block (claimed on the outermost entry; released ``linger_s``
        after the outermost exit unless another block starts meanwhile)."""
        with self._lock:
            if self._depth == 0:
                self._generation += 1  # a pending release is void: the slot is in use again
                if not self._holding:
                    self._holding = self._claim()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._holding:
                    self._generation += 1
                    if self.linger_s <= 0:
                        self._free()
                    else:
                        timer = threading.Timer(self.linger_s, self._expire,
                                                (self._generation,))
                        timer.daemon = True
                        timer.start()

    def release(self) -> None:
        """Free the slot now if no block holds it (the step's end: nothing may linger)."""
        with self._lock:
            self._generation += 1
            if self._depth == 0:
                self._free()

    def _expire(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation and self._depth == 0:
                self._free()

    def _limited(self) -> bool:
        storage = self.instance.event_log_storage
        if not storage.supports_global_concurrency_limits:
            return False
        config = storage.get_pool_config()
        if config.pool_granularity == PoolGranularity.RUN:
            return False
        limits = {p.name: p for p in storage.get_pool_limits()}
        info = limits.get(self.pool)
        if (info is None and config.default_pool_limit is not None) or (
                info is not None and info.from_default
                and info.limit != config.default_pool_limit):
            storage.initialize_concurrency_limit_to_default(self.pool)  # as Dagster's own claim
            info = {p.name: p for p in storage.get_pool_limits()}.get(self.pool)
        return info is not None

    def _claim(self) -> bool:
        if self._pooled is None:
            self._pooled = self._limited()
        if not self._pooled:
            return False
        storage = self.instance.event_log_storage
        start = time.monotonic()
        attempt = 0
        while not storage.claim_concurrency_slot(self.pool, self.run_id, self.step_key,
                                                 self.priority).is_claimed:
            waited = time.monotonic() - start
            if waited >= self.wait_s:
                storage.free_concurrency_slot_for_step(self.run_id, self.step_key)
                raise WarehouseLocked(f"pool {self.pool!r}: no free slot for step "
                                      f"{self.step_key} after {waited:.0f}s")
            if attempt == 20 and self.log is not None:
                self.log(f"waiting for a slot of pool {self.pool!r} (another step holds it)")
            time.sleep(min(self.wait_s - waited, backoff_delay(attempt, POLL_BASE_S, POLL_MAX_S)))
            attempt += 1
        self.claims += 1
        self._since = time.monotonic()
        self.waited_s += self._since - start
        return True

    def _free(self) -> None:
        if self._holding:
            self._holding = False
            hold = time.monotonic() - self._since
            self.held_s += hold
            self.longest_hold_s = max(self.longest_hold_s, hold)
            self.instance.event_log_storage.free_concurrency_slot_for_step(self.run_id,
                                                                           self.step_key)
