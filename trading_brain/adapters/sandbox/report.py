"""Host side of an analysis reply: the report is untrusted JSON; check its shape before use.

``check_report(obj) -> dict`` returns a cleaned copy of a report or raises ``ValueError`` naming
the first problem. A report is a JSON object whose keys are strings and whose values are
``None``, ``bool``, ``int`` (|i| < 2**63), finite ``float``, ``str``, lists and objects of
those, at most ``MAX_DEPTH`` levels deep, ``MAX_NODES`` values in all, strings of at most
``MAX_STRING`` characters. Every string (keys included) passes ``text.safe_text``: control
sequences written by analysis code reach logs, stored rows and the CLI only as visible escapes.
The byte size is bounded before parsing (the worker's reply cap, ``MAX_REPORT_BYTES``).
"""

from __future__ import annotations

import math
from typing import TypeAlias

from trading_brain.adapters.sandbox.text import safe_text

MAX_REPORT_BYTES = 1 << 20  # the reply cap of an analysis worker (README: aim for < 64 kB)
MAX_DEPTH = 16
MAX_NODES = 200_000
MAX_STRING = 10_000
JsonValue: TypeAlias = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


class _Walk:
    def __init__(self) -> None:
        self.nodes = 0

    def text(self, s: str, where: str) -> str:
        if len(s) > MAX_STRING:
            raise ValueError(f"string of {len(s)} characters at {where} (max {MAX_STRING})")
        return safe_text(s)

    def value(self, v: object, where: str, depth: int) -> JsonValue:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ValueError(f"more than {MAX_NODES} values in the report")
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels at {where}")
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, int):
            if abs(v) >= 1 << 63:
                raise ValueError(f"integer out of range at {where}")
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                raise ValueError(f"non-finite number at {where} (report None for undefined)")
            return v
        if isinstance(v, str):
            return self.text(v, where)
        if isinstance(v, list):
            return [self.value(x, f"{where}[{i}]", depth + 1) for i, x in enumerate(v)]
        if isinstance(v, dict):
            return self.mapping(v, where, depth)
        raise ValueError(f"{type(v).__name__} at {where} is not JSON")

    def mapping(self, d: dict[object, object], where: str, depth: int) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {}
        for k, x in d.items():
            if not isinstance(k, str):
                raise ValueError(f"non-string key at {where}")
            key = self.text(k, where)
            out[key] = self.value(x, f"{where}.{key[:40]}", depth + 1)
        return out


def check_report(obj: object) -> dict[str, JsonValue]:
    """A cleaned copy of the report ``obj`` (module docstring); ValueError when malformed."""
    if not isinstance(obj, dict):
        raise ValueError(f"the report is a {type(obj).__name__}, not an object")
    return _Walk().mapping(obj, "report", 0)
