"""How numbers are shown to people (CLI text, alerts, Telegram): pure formatting, no I/O.

- ``money(x)``: two decimals and thousands separators (``10,000.00``); None -> ``-``.
- ``quantity(x, decimals)``: the symbol's lot precision (``AssetPair.lot_decimals``), rounded
  half-even, thousands separators (``0.01234500``); ``decimals`` None -> the value as stored,
  without trailing zeros.
- ``percent(f)``: a fraction as a percent with two decimals (``0.0532`` -> ``5.32%``).
Machine-readable outputs (``--json``) keep the exact strings; these are for eyes only.
"""

from __future__ import annotations

from decimal import Decimal

Number = Decimal | float | int


def money(x: Number | str | None) -> str:
    if x is None:
        return "-"
    return f"{Decimal(str(x)):,.2f}"


def quantity(x: Number | str | None, decimals: int | None = None) -> str:
    if x is None:
        return "-"
    d = Decimal(str(x))
    if decimals is None:
        return format(d.normalize(), "f")
    return f"{d:,.{decimals}f}"


def percent(fraction: Number | str | None) -> str:
    if fraction is None:
        return "-"
    return f"{float(fraction):.2%}"
