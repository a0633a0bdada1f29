"""The offline advisor's search space and its deterministic sample of parameter sets (pure).

- ``dimensions(schema, fixed)``: the tunable fields of a version's declared search space (its
  JSON schema as the registry stores it in ``param_space``): integers and numbers with both
  bounds (``minimum``/``maximum`` or exclusive ones), booleans and ``enum``s. Fields named in
  ``fixed`` are never tuned: by default ``size`` (position sizing scales risk, not skill; the
  search tunes when to trade, the risk shell decides how much).
- ``param_sets(schema, defaults, count)``: the defaults first, then points of a scrambled-free
  Halton sequence (bases 2, 3, 5, …; index from 1) mapped onto the dimensions: integers rounded,
  floats rounded to 4 significant digits, booleans and enums by bucket; duplicates dropped, at
  most ``count`` sets in all. The same inputs give the same sets, on any machine. Sets that a
  strategy's own validator refuses (``fast >= slow``) are dropped later, by the evaluation.
- ``variant_hash(params)``: sha256 of the canonical JSON of a parameter set (the key of
  ``variant_trials``: N of the deflated Sharpe ratio counts distinct hashes per family).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Value = bool | int | float
Params = dict[str, Value]
DEFAULT_FIXED = ("size",)
_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71)


@dataclass(frozen=True)
class Dimension:
    """One tunable field: ``kind`` int | float (``low``..``high``) or choice (``choices``)."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Value, ...] = ()

    def at(self, u: float) -> Value:
        """The value at ``u`` in [0, 1)."""
        if self.kind == "choice":
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        x = self.low + u * (self.high - self.low)
        if self.kind == "int":
            return int(min(max(round(x), math.ceil(self.low)), math.floor(self.high)))
        return min(max(_round(x), self.low), self.high)


def _round(x: float, digits: int = 4) -> float:
    if x == 0.0:
        return 0.0
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def _bounds(spec: Mapping[str, object]) -> tuple[float, float] | None:
    lo = spec.get("minimum", spec.get("exclusiveMinimum"))
    hi = spec.get("maximum", spec.get("exclusiveMaximum"))
    if not isinstance(lo, int | float) or not isinstance(hi, int | float) or lo >= hi:
        return None
    lo_f, hi_f = float(lo), float(hi)
    if "minimum" not in spec:
        lo_f += (hi_f - lo_f) * 1e-6
    if "maximum" not in spec:
        hi_f -= (hi_f - lo_f) * 1e-6
    return lo_f, hi_f


def dimensions(schema: Mapping[str, object],
               fixed: Sequence[str] = DEFAULT_FIXED) -> list[Dimension]:
    """The tunable dimensions of ``schema`` in its property order (see the module docstring)."""
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return []
    out: list[Dimension] = []
    for name, spec in props.items():
        if name in fixed or not isinstance(spec, Mapping):
            continue
        enum = spec.get("enum")
        kind = spec.get("type")
        if isinstance(enum, list) and enum and all(isinstance(v, bool | int | float)
                                                   for v in enum):
            out.append(Dimension(str(name), "choice", choices=tuple(enum)))
        elif kind == "boolean":
            out.append(Dimension(str(name), "choice", choices=(False, True)))
        elif kind in ("integer", "number") and (b := _bounds(spec)) is not None:
            out.append(Dimension(str(name), "int" if kind == "integer" else "float", *b))
    return out


def halton(index: int, base: int) -> float:
    """The ``index``-th element (from 1) of the van der Corput sequence in ``base``."""
    f, r, i = 1.0, 0.0, index
    while i > 0:
        f /= base
        r += f * (i % base)
        i //= base
    return r


def param_sets(schema: Mapping[str, object], defaults: Mapping[str, Value], count: int,
               fixed: Sequence[str] = DEFAULT_FIXED) -> list[Params]:
    """``count`` distinct sets at most: the defaults, then Halton points (module docstring)."""
    dims = dimensions(schema, fixed)[:len(_PRIMES)]
    base: Params = dict(defaults)
    out: list[Params] = [base]
    seen = {variant_hash(base)}
    index = 0
    while dims and len(out) < count and index < count * 20:
        index += 1
        point = {**base, **{d.name: d.at(halton(index, p)) for d, p in zip(dims, _PRIMES,
                                                                          strict=False)}}
        key = variant_hash(point)
        if key not in seen:
            seen.add(key)
            out.append(point)
    return out


def variant_hash(params: Mapping[str, Value]) -> str:
    """sha256 of the canonical JSON of ``params`` (sorted keys; ``12.0`` and ``12`` differ)."""
    text = json.dumps({k: params[k] for k in sorted(params)}, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def diff(params: Mapping[str, Value], defaults: Mapping[str, Value]) -> Params:
    """The entries of ``params`` that differ from ``defaults``."""
    return {k: v for k, v in params.items() if defaults.get(k) != v
            or type(defaults.get(k)) is not type(v)}
