"""The advisor's decision: a strict, frozen schema and ``parse_decision`` (pure).

Contract for every advisor (offline or AI) and for the cycle that acts on a decision:

- ``action`` is one of ``ACTIONS``. Which other fields it takes (anything else present is refused):

  ========================  =============================================================
  no_change                 —
  create_candidate          ``tier`` (1 tweak, 2 restructure, 3 overhaul); optional ``target``
                            = the parent version (default: the active one). Tier 1 needs
                            ``params`` (new defaults, name → bool/int/float); tiers 2/3 need
                            ``source`` (the new module's text)
  promote_candidate         ``target`` (``family@N``)
  cancel_candidate          ``target``
  update_market_analysis    ``source`` (the new analysis module)
  update_trade_analysis     ``source``
  ========================  =============================================================

  ``reasoning`` (required, 1..4,000 chars), ``observation`` (≤ 2,000, for the institutional
  memory) and up to 5 ``predictions`` are allowed with every action.
- A ``Prediction`` is falsifiable: ``claim`` (text), ``metric`` (``decision_fields.METRICS``, by
  the truth benchmarks in the units given there), ``comparator`` (``>``, ``>=``, ``<``, ``<=``),
  a finite ``threshold``, a timezone-aware ``deadline`` (or, on input, ``deadline_days`` 1..90,
  resolved against ``now``; a date ``YYYY-MM-DD`` means 00:00 UTC) and a ``subject`` (``"active"``
  or a version ``family@N``) whose benchmarks grade it (``predictions.grade_prediction``).
- Nothing in a decision can touch risk limits, the risk shell or orders: every model forbids
  extra keys (``risk``, ``limits``, ``max_position``… are refused with a reason that says so) and a
  ``params`` name equal to a ``RiskLimits`` field is refused too. The cycle still validates
  ``params`` against the parent's declared space and ``source`` through the registration gates.
- Text is kept as data, unescaped: display escaping belongs to the adapters that render it (CLI,
  Dagster metadata). Only what storage cannot hold is refused: NUL and lone surrogates.

``parse_decision(raw, known_versions=…, now=…)`` accepts the advisor's JSON text (optionally
inside one ```json fence) or a dict (dates may be ``date``/``datetime`` objects), and returns a
``Decision`` or raises ``AdvisorOutputRejected`` with ONE reason: malformed JSON, duplicate keys,
NaN/Infinity, schema violations, an unknown ``target``/``subject`` (not in ``known_versions``,
strings ``family@N``) or a deadline outside ``(now, now + 90 days]``. Whether a target is in the
right status (a candidate for promote/cancel) is the cycle's check, not this module's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from trading_brain.engine.evolution.decision_fields import (
    MAX_DEADLINE_DAYS,
    MAX_PARAMS,
    MAX_PREDICTIONS,
    MAX_RAW_CHARS,
    Action,
    Claim,
    Comparator,
    Metric,
    Observation,
    ParamName,
    ParamValue,
    Reasoning,
    SourceText,
    Subject,
    Tier,
    VersionRef,
    is_risk_key,
    parse_deadline,
)
from trading_brain.errors import AdvisorOutputRejected, DataError


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)


class Prediction(_Strict):
    """A falsifiable claim graded later from the truth benchmarks of ``subject``."""

    claim: Claim
    metric: Metric
    comparator: Comparator
    threshold: float
    deadline: AwareDatetime
    subject: Subject = "active"

    @model_validator(mode="before")
    @classmethod
    def _resolve_deadline(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or ("deadline_days" not in data
                                          and not isinstance(data.get("deadline"), str)):
            return data
        data = dict(data)
        if "deadline_days" in data:
            days = data.pop("deadline_days")
            now = (info.context or {}).get("now")
            if "deadline" in data:
                raise ValueError("give deadline or deadline_days, not both")
            if isinstance(days, bool) or not isinstance(days, int) \
                    or not 1 <= days <= MAX_DEADLINE_DAYS:
                raise ValueError(f"deadline_days must be an integer in 1..{MAX_DEADLINE_DAYS}")
            if not isinstance(now, datetime):
                raise ValueError("deadline_days needs the decision time (now) to resolve")
            data["deadline"] = now + timedelta(days=days)
        else:
            data["deadline"] = parse_deadline(data["deadline"])
        return data


class Decision(_Strict):
    """One advisor decision; see the module docstring for which fields each action takes."""

    action: Action
    tier: Tier | None = None
    reasoning: Reasoning
    observation: Observation = ""
    predictions: tuple[Prediction, ...] = Field(default=(), max_length=MAX_PREDICTIONS)
    target: VersionRef | None = None
    params: dict[ParamName, ParamValue] | None = Field(default=None, min_length=1,
                                                       max_length=MAX_PARAMS)
    source: SourceText | None = None

    @model_validator(mode="after")
    def _fields_fit_the_action(self) -> Decision:
        allowed, required = _FIELDS_BY_ACTION[self.action]
        if self.action == "create_candidate":
            if self.tier is None:
                raise ValueError("tier is required for create_candidate")
            required = ("params",) if self.tier == 1 else ("source",)
            allowed = ("tier", "target", *required)
        what = self.action + (f" tier {self.tier}" if self.action == "create_candidate" else "")
        for name in ("tier", "target", "params", "source"):
            present = getattr(self, name) is not None
            if name in required and not present:
                raise ValueError(f"{name} is required for {what}")
            if present and name not in allowed:
                raise ValueError(f"{name} is not allowed for {what}")
        return self


_FIELDS_BY_ACTION: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "no_change": ((), ()),
    "create_candidate": ((), ()),  # decided by tier in the validator
    "promote_candidate": (("target",), ("target",)),
    "cancel_candidate": (("target",), ("target",)),
    "update_market_analysis": (("source",), ("source",)),
    "update_trade_analysis": (("source",), ("source",)),
}


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise AdvisorOutputRejected(f"duplicate key {key!r} in the JSON object")
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    raise AdvisorOutputRejected(f"{name} is not a number JSON allows")


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"a {type(value).__name__} is not JSON data")


def _to_json(raw: str | Mapping[str, Any]) -> str:
    """The decision as one JSON object text, or AdvisorOutputRejected."""
    if isinstance(raw, Mapping):
        try:
            return _dump(raw)
        except (TypeError, ValueError) as e:
            raise AdvisorOutputRejected(f"not JSON data: {e}") from e
    if not isinstance(raw, str):
        raise AdvisorOutputRejected(f"expected JSON text or a dict, got {type(raw).__name__}")
    if len(raw) > MAX_RAW_CHARS:
        raise AdvisorOutputRejected(f"reply longer than {MAX_RAW_CHARS} characters")
    text = raw.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*\n(.*)\n\s*```", text, flags=re.DOTALL)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise AdvisorOutputRejected(f"malformed JSON: {e.msg} at line {e.lineno} col {e.colno}"
                                    ) from e
    if not isinstance(value, dict):
        raise AdvisorOutputRejected(f"expected a JSON object, got {type(value).__name__}")
    return _dump(value)


def _dump(value: Mapping[str, Any]) -> str:
    text = json.dumps(value, default=_json_default, allow_nan=False, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise AdvisorOutputRejected("text is not valid Unicode (lone surrogate)") from e
    return text


def _extra_reason(key: str) -> str:
    if is_risk_key(key):
        return (f"field {key!r} is not allowed: the advisor cannot change risk limits, "
                "the risk shell or orders")
    return f"unknown field {key!r}"


def _first_problem(error: ValidationError) -> str:
    problems = error.errors(include_url=False)
    first = problems[0]
    loc = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        reason = _extra_reason(str(first["loc"][-1]))
        where = ".".join(str(part) for part in first["loc"][:-1])
        reason = f"{where}: {reason}" if where else reason
    else:
        msg = str(first["msg"]).removeprefix("Value error, ")
        reason = f"{loc}: {msg}" if loc else msg
    more = len(problems) - 1
    return reason + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def _check_refs(decision: Decision, known: Collection[str], now: datetime) -> None:
    if decision.target is not None and decision.target not in known:
        raise AdvisorOutputRejected(f"target: unknown version {decision.target!r}")
    latest = now + timedelta(days=MAX_DEADLINE_DAYS)
    for i, p in enumerate(decision.predictions):
        if p.subject != "active" and p.subject not in known:
            raise AdvisorOutputRejected(f"predictions.{i}.subject: unknown version {p.subject!r}")
        if not now < p.deadline <= latest:
            raise AdvisorOutputRejected(
                f"predictions.{i}.deadline: {p.deadline.isoformat()} is not after now "
                f"and within {MAX_DEADLINE_DAYS} days")


def parse_decision(raw: str | Mapping[str, Any], *, known_versions: Collection[str],
                   now: datetime) -> Decision:
    """Validate an advisor reply into a ``Decision`` or raise ``AdvisorOutputRejected``.

    ``known_versions``: every registered ``family@N``; ``now``: the decision time (aware).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise DataError("parse_decision needs a timezone-aware now")
    now = now.astimezone(UTC)
    text = _to_json(raw)
    try:
        decision = Decision.model_validate_json(text, context={"now": now})
    except ValidationError as e:
        raise AdvisorOutputRejected(_first_problem(e)) from e
    _check_refs(decision, frozenset(known_versions), now)
    return decision
