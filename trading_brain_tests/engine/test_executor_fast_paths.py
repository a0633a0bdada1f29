"""Helpers the executor tick calls many times answer what their plain definitions do.

``ledger.money``/``mul``/``PositionRecord.entry_price`` compute in one 60-digit context built
once (was a ``localcontext`` per call); ``derive_client_order_id`` is memoised (a pure function,
typed keys); ``make_snapshot`` takes the valuation its caller already has.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal, localcontext

import pytest

from trading_brain.domain.orders import _NAMESPACE, derive_client_order_id
from trading_brain.domain.records import PREC, QUANT, PositionRecord, money, mul
from trading_brain.engine.valuation import make_snapshot, valuation

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _old_money(x: Decimal) -> Decimal:
    with localcontext(prec=PREC) as ctx:
        return x.quantize(QUANT, context=ctx)


def _old_mul(a: Decimal, b: Decimal) -> Decimal:
    with localcontext(prec=PREC) as ctx:
        return ctx.multiply(a, b).quantize(QUANT, context=ctx)


def _numbers(rng: random.Random, n: int) -> list[Decimal]:
    out = [Decimal("0"), Decimal("-0"), Decimal("1E-19"), Decimal("5E-19"), Decimal("-5E-19"),
           Decimal("1.5E-18"), Decimal("123456789012345678901.123456789012345678901")]
    for _ in range(n):
        digits = rng.randrange(1, 40)
        out.append(Decimal(rng.randrange(-10**digits, 10**digits)).scaleb(-rng.randrange(0, 30)))
    return out


def _outcome(f, *args) -> str:
    try:
        return str(f(*args))
    except ArithmeticError as e:  # more than 60 digits: refused, as before
        return type(e).__name__


def test_money_and_mul_equal_their_localcontext_definitions() -> None:
    rng = random.Random(3)
    xs = _numbers(rng, 300)
    for a in xs:
        assert _outcome(money, a) == _outcome(_old_money, a)
    refused = 0
    for a, b in zip(xs, reversed(xs), strict=True):
        assert _outcome(mul, a, b) == _outcome(_old_mul, a, b)
        refused += _outcome(mul, a, b) == "InvalidOperation"
    assert 0 < refused < len(xs) // 2


def test_entry_price_equals_its_localcontext_definition() -> None:
    rng = random.Random(5)
    for _ in range(200):
        q, sold = (Decimal(rng.randrange(0, 10**8)).scaleb(-8) for _ in range(2))
        cost, entry = (Decimal(rng.randrange(1, 10**12)).scaleb(-6) for _ in range(2))
        p = PositionRecord("p", "BTC/USD", "active", "s", 1, "swing", "open", q, cost,
                           Decimal(0), T0, T0, sold_qty=sold, entry_cost=entry)
        with localcontext(prec=PREC):
            want = (_old_money(p.cost_basis / p.quantity) if p.quantity > 0 else
                    _old_money(p.entry_cost / (p.quantity + p.sold_qty))
                    if p.quantity + p.sold_qty > 0 else Decimal(0))
        assert str(p.entry_price) == str(want)


def test_client_order_ids_are_the_name_based_uuids() -> None:
    for intent, suffix in [("i-1", ""), ("i-1", "sl"), ("i-1", "tp"), ("i-1:sl", ""), ("x", "")]:
        name = f"{intent}:{suffix}" if suffix else intent
        assert derive_client_order_id(intent, suffix) == str(uuid.uuid5(_NAMESPACE, name))
        assert derive_client_order_id(intent, suffix) == str(uuid.uuid5(_NAMESPACE, name))
    with pytest.raises(ValueError):
        derive_client_order_id("")


def test_a_snapshot_from_the_callers_valuation_is_the_same_row() -> None:
    pos = [PositionRecord("p", "BTC/USD", "active", "s", 1, "swing", "open", Decimal("0.3"),
                          Decimal("18000.5"), Decimal("0.1"), T0, T0)]
    marks = {"BTC/USD": Decimal("61000.25")}
    cash = Decimal("1234.5")
    for peak, start in ((None, None), (Decimal("30000"), Decimal("20000"))):
        assert make_snapshot(T0, "active", cash, pos, marks, (), peak, start) == \
            make_snapshot(T0, "active", cash, pos, marks, (), peak, start,
                          valued=valuation(cash, pos, marks))
