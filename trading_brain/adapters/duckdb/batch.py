"""Column-list binding for set-based inserts (shared by the ledger and trading tables).

``columns(names, types, rows)`` gives a ``SELECT`` list that turns one list parameter per column
into rows, so a batch of any size is one statement with one parameter per column.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

DEC, TS, TXT = "DECIMAL(38, 18)", "TIMESTAMPTZ", "VARCHAR"


def _wire(v: Any, t: str) -> Any:
    """A value as sent: decimals travel as exact plain strings (see ``columns``)."""
    if v is None or t != DEC:
        return v
    return format(v if isinstance(v, Decimal) else Decimal(repr(v)), "f")


def columns(names: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]
            ) -> tuple[str, list[Any]]:
    """``SELECT`` list turning one list parameter per column into rows, and the parameters.

    ``unnest(?::T[])`` binds a whole column at once: a 50-row, 19-column batch is one
    statement with 19 parameters (a VALUES list of 950 cast placeholders takes ~40 ms to plan).
    Decimals are sent as exact strings and cast in SQL: the same rounding as binding the
    ``Decimal`` itself, and never the DOUBLE a list of unequal decimals would be typed as.
    """
    sel = ", ".join(f"unnest(?::VARCHAR[])::{t} AS {n}" if t == DEC else
                    f"unnest(?::{t}[]) AS {n}" for n, t in zip(names, types, strict=True))
    params = [[_wire(r[j], t) for r in rows] for j, t in enumerate(types)]
    return sel, params
