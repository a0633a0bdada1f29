"""domain/intents.py: an intent's purpose (entry, exit, kill) is explicit, derived in one place
when the stored row has none, and an explicit purpose must agree with that rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from trading_brain.domain.intents import (
    KILL_STRATEGY_ID,
    IntentPurpose,
    OrderIntent,
    purpose_for,
)

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def fields(strategy_id: str, action: str) -> dict:
    return dict(intent_id="int-12345678", scan_id="s", strategy_id=strategy_id, version=1,
                symbol="BTC/USD", bar_time=T0, action=action, quantity="0.01",
                reference_price="30000", created_at=T0)


@pytest.mark.parametrize(("sid", "action", "purpose"), [
    ("sma", "enter", IntentPurpose.ENTRY), ("sma", "exit", IntentPurpose.EXIT),
    (KILL_STRATEGY_ID, "exit", IntentPurpose.KILL),
])
def test_the_purpose_is_derived_from_action_and_strategy(sid: str, action: str,
                                                          purpose: IntentPurpose) -> None:
    assert purpose_for(action, sid) is purpose
    stored = OrderIntent.model_validate(fields(sid, action))  # a row: no purpose column
    assert stored.purpose is purpose
    assert OrderIntent(**fields(sid, action), purpose=purpose) == stored  # written == read


def test_a_purpose_that_disagrees_with_the_intent_is_refused() -> None:
    with pytest.raises(ValidationError, match="disagrees"):
        OrderIntent(**fields("sma", "exit"), purpose=IntentPurpose.KILL)
    with pytest.raises(ValidationError, match="disagrees"):
        OrderIntent(**fields(KILL_STRATEGY_ID, "exit"), purpose=IntentPurpose.EXIT)


def test_an_order_row_stores_the_purpose_as_its_plain_value() -> None:
    kill = OrderIntent(**fields(KILL_STRATEGY_ID, "exit"))
    assert kill.purpose.value == "kill" and type(kill.purpose.value) is str
    assert kill.model_copy(update={"status": "submitted"}).purpose is IntentPurpose.KILL
