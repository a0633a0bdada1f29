"""``StepPoolSlot``: a step's `warehouse` slot claimed per connection, in a real instance."""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest
from dagster._core.storage.event_log.base import EventLogStorage

from trading_brain.defs.pool_slot import StepPoolSlot
from trading_brain.errors import WarehouseLocked

POOLS = {"concurrency": {"pools": {"default_limit": 1}}}


def _holders(inst: dg.DagsterInstance) -> list[tuple[str, str]]:
    info = inst.event_log_storage.get_concurrency_info("warehouse")
    return [(c.run_id, c.step_key) for c in info.claimed_slots]


def _scan_holds_the_slot(inst: dg.DagsterInstance) -> EventLogStorage:
    """Another run's step (``run-scan``/``scan``) takes the one `warehouse` slot."""
    storage = inst.event_log_storage
    storage.initialize_concurrency_limit_to_default("warehouse")
    assert storage.claim_concurrency_slot("warehouse", "run-scan", "scan").is_claimed
    return storage


def test_the_slot_waits_for_another_step_then_is_held_once_and_freed() -> None:
    with dg.instance_for_test(overrides=POOLS) as inst:
        storage = _scan_holds_the_slot(inst)
        slot = StepPoolSlot(inst, "run-cycle", "evolution_decision", "warehouse", wait_s=30,
                            linger_s=0)
        threading.Timer(0.4, storage.free_concurrency_slot_for_step,
                        ("run-scan", "scan")).start()
        t0 = time.monotonic()
        with slot.held():
            assert time.monotonic() - t0 >= 0.3  # it waited for the scan's step
            with slot.held():  # re-entrant: no second claim
                assert _holders(inst) == [("run-cycle", "evolution_decision")]
            assert _holders(inst) == [("run-cycle", "evolution_decision")]
        assert _holders(inst) == []
        assert slot.claims == 1 and slot.waited_s >= 0.3
        with slot.held():  # taken again on the next connection
            assert _holders(inst) == [("run-cycle", "evolution_decision")]
        assert slot.claims == 2 and _holders(inst) == []


def test_a_slot_never_freed_ends_in_warehouse_locked_and_the_claim_is_withdrawn() -> None:
    with dg.instance_for_test(overrides=POOLS) as inst:
        storage = _scan_holds_the_slot(inst)
        slot = StepPoolSlot(inst, "run-cycle", "strategy_candidates", "warehouse", wait_s=0.3,
                            linger_s=0)
        with pytest.raises(WarehouseLocked, match="no free slot for step strategy_candidates"):
            with slot.held():
                pytest.fail("the block ran without the slot")
        info = storage.get_concurrency_info("warehouse")
        assert info.pending_step_count == 0  # the waiting claim does not linger in the queue
        assert _holders(inst) == [("run-scan", "scan")]
        storage.free_concurrency_slot_for_step("run-scan", "scan")
        with slot.held():  # nothing is stuck: the next connection gets the slot
            assert _holders(inst) == [("run-cycle", "strategy_candidates")]


def test_a_burst_of_connections_shares_one_claim_and_the_slot_is_freed_after_it() -> None:
    with dg.instance_for_test(overrides=POOLS) as inst:
        slot = StepPoolSlot(inst, "run-cycle", "evolution_decision", "warehouse", linger_s=0.3)
        for _ in range(5):  # connections 0.05 s apart: one claim
            with slot.held():
                assert _holders(inst) == [("run-cycle", "evolution_decision")]
            time.sleep(0.05)
            last_exit = time.monotonic()
        assert slot.claims == 1
        while _holders(inst) and time.monotonic() < last_exit + 5:
            time.sleep(0.02)
        assert _holders(inst) == []  # freed once the burst is over, after the linger
        assert time.monotonic() - last_exit >= 0.25
        with slot.held():
            pass
        slot.release()  # the step's end: freed at once, not after the linger
        assert _holders(inst) == [] and slot.claims == 2


def test_without_pools_nothing_is_claimed() -> None:
    slot = StepPoolSlot(dg.DagsterInstance.ephemeral(), "run", "step", "warehouse", wait_s=0.1)
    with slot.held():
        pass
    assert slot.claims == 0


def test_a_step_that_declares_the_pool_cannot_also_claim_per_connection() -> None:
    @dg.asset(pool="warehouse")
    def pooled(context) -> None:  # a string annotation is refused by Dagster
        StepPoolSlot.of_step(context, "warehouse")

    result = dg.materialize([pooled], instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None and "declares pool 'warehouse'" in str(failure.cause or failure)
