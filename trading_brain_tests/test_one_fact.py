"""One fact in one place: the default fee, the finished order states, the warehouse pool.

Each is written once (``domain.fees``, ``domain.orders``, ``defs.resources``); these tests scan
the package's code tokens (docstrings and comments are prose and may quote the values) so a new
copy fails here.
"""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import pytest

import trading_brain
from trading_brain.domain.fees import DEFAULT_MAKER_FEE, DEFAULT_TAKER_FEE
from trading_brain.domain.orders import (
    FINISHED_ORDER_STATES,
    FINISHED_STATES_SQL,
    ORDER_STATES,
    OrderStatus,
    sql_list,
)

PACKAGE = Path(trading_brain.__file__).parent


def _code_tokens(path: Path) -> list[tokenize.TokenInfo]:
    """NUMBER and non-docstring STRING tokens of ``path``."""
    toks = list(tokenize.generate_tokens(io.StringIO(path.read_text("utf-8")).readline))
    out = []
    for i, t in enumerate(toks):
        prev = next((p for p in reversed(toks[:i]) if p.type not in (
            tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT)),
            None)
        docstring = t.type == tokenize.STRING and (prev is None or prev.string == ":")
        if t.type == tokenize.NUMBER or (t.type == tokenize.STRING and not docstring):
            out.append(t)
    return out


def _where(pred) -> list[str]:  # noqa: ANN001 - a predicate on a token
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for t in _code_tokens(path):
            if pred(t):
                hits.append(f"{path.relative_to(PACKAGE)}:{t.start[0]}")
    return hits


def test_the_default_fees_are_written_once() -> None:
    hits = _where(lambda t: t.type == tokenize.NUMBER and t.string in ("0.0026", "0.0016"))
    assert hits == ["domain/fees.py:17", "domain/fees.py:18"]
    assert (DEFAULT_TAKER_FEE, DEFAULT_MAKER_FEE) == (0.0026, 0.0016)


def test_the_finished_order_states_are_written_once() -> None:
    hits = _where(lambda t: t.type == tokenize.STRING and "'canceled'" in t.string)
    assert hits == []  # SQL takes FINISHED_STATES_SQL, generated from the tuple
    assert FINISHED_STATES_SQL == "('filled', 'canceled', 'rejected', 'expired')"
    assert set(FINISHED_ORDER_STATES) < set(ORDER_STATES)


def test_the_warehouse_pool_is_named_once() -> None:
    """Every ``pool=`` in defs/ names the constant; the string is written in resources.py."""
    literal_pools = []
    for path in sorted((PACKAGE / "defs").rglob("*.py")):
        toks = [t for t in tokenize.generate_tokens(io.StringIO(path.read_text("utf-8")).readline)
                if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)]
        literal_pools += [f"{path.name}:{t.start[0]}" for i, t in enumerate(toks[:-2])
                          if t.string in ("pool", "POOL") and toks[i + 1].string == "="
                          and toks[i + 2].type == tokenize.STRING]
    assert literal_pools == []
    from trading_brain.defs.resources import WAREHOUSE_POOL

    assert WAREHOUSE_POOL == "warehouse"


@pytest.mark.parametrize("state", ORDER_STATES)
def test_is_terminal_follows_the_tuple(state: str) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    s = OrderStatus(client_order_id=None, venue_order_id="o", symbol="BTC/USD", side="buy",
                    order_type="market", quantity=Decimal(1), state=state,
                    updated_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert s.is_terminal == (state in FINISHED_ORDER_STATES)


def test_sql_list_refuses_anything_but_state_names() -> None:
    assert sql_list(["open", "partially_filled"]) == "('open', 'partially_filled')"
    for bad in (["x'); DROP TABLE orders; --"], ["Open"], []):
        with pytest.raises(ValueError):
            sql_list(bad)
